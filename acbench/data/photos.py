"""The default dataset: real photos that ship inside pip (and optionally Debian) packages."""

from __future__ import annotations

import glob
import os

import numpy as np

from acbench.data.base import DataError, Dataset, ImageSet, digest, tiles_of, to_rgb_uint8

SKIMAGE = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
)
# Debian wallpaper packages, used when installed (mate-backgrounds, lomiri-wallpapers, palapeli-data)
DEBIAN_GLOBS = (
    "/usr/share/backgrounds/mate/*/*.jpg",
    "/usr/share/backgrounds/mate/*/*.png",
    "/usr/share/backgrounds/lomiri-wallpapers*/*.jpg",
    "/usr/share/wallpapers/lomiri*/*.jpg",
    "/usr/share/palapeli/collection/*.jpg",
)


def _packaged_photos(debian: bool) -> list[tuple[str, np.ndarray]]:
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = []
    for name in SKIMAGE:
        img = getattr(skimage.data, name)()
        if isinstance(img, tuple):  # stereo pair: the left view only (the right is near-identical)
            img = img[0]
        photos.append((name, img))
    sample = load_sample_images()
    for path, img in zip(sample.filenames, sample.images):
        photos.append((os.path.splitext(os.path.basename(path))[0], img))
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photos.append(("grace_hopper", np.asarray(Image.open(f).convert("RGB"))))
    if debian:
        for path in _debian_files():
            with Image.open(path) as im:
                photos.append((os.path.basename(path), np.asarray(im.convert("RGB"))))
    return photos


def _debian_files() -> list[str]:
    return sorted({p for g in DEBIAN_GLOBS for p in glob.glob(g)})


class Photos(Dataset):
    """Packaged photos (scikit-image, scikit-learn, matplotlib) cut into non-overlapping tiles.

    The class of a tile is its source photo, so the dataset is clustered the way real image
    collections are. Flat tiles (pixel std < ``min_std``, e.g. the black border of ``retina``)
    are dropped, and at most ``max_per_photo`` tiles (evenly spaced) are kept per photo, so one
    large photo does not dominate.

    Args:
        debian: also use Debian wallpaper packages when they are installed.
        max_per_photo: cap on tiles per photo (0 = no cap).
        min_std: drop tiles flatter than this (8-bit units).
    """

    version = "1"

    def __init__(self, debian: bool = False, max_per_photo: int = 120, min_std: float = 2.0):
        self.debian = debian
        self.max_per_photo = max_per_photo
        self.min_std = min_std

    def fingerprint(self, tile: int, root: str | None) -> str:
        files = _debian_files() if self.debian else []
        return digest([files, self.max_per_photo, self.min_std, tile])

    def build(self, tile: int, root: str | None = None) -> ImageSet:
        pixels, labels, names, classes = [], [], [], []
        for name, img in _packaged_photos(self.debian):
            tiles = [t for t in tiles_of(to_rgb_uint8(img), tile) if t.std() >= self.min_std]
            idx = np.arange(len(tiles))
            if self.max_per_photo and len(tiles) > self.max_per_photo:
                idx = np.linspace(0, len(tiles) - 1, self.max_per_photo).round().astype(int)
            if len(idx) == 0:
                continue
            classes.append(name)
            for i in idx:
                pixels.append(tiles[i])
                labels.append(len(classes) - 1)
                names.append(f"{name}#{i}")
        if not pixels:
            raise DataError(f"no {tile}-px tiles in the packaged photos; use a smaller data.tile")
        return ImageSet(np.stack(pixels), np.asarray(labels), names, classes)
