"""Datasets: packaged photos, image folders, Fashion-MNIST; decoded once into a uint8 cache."""

from acbench.registry import DATASETS

DATASETS.register_lazy("photos", "acbench.data.photos:Photos", version="1")
DATASETS.register_lazy("folder", "acbench.data.folder:Folder", version="2")
DATASETS.register_lazy("shifted", "acbench.data.shifted:Shifted", version="1")
DATASETS.register_lazy("fashion_mnist", "acbench.data.fashion_mnist:FashionMNIST", version="1")
