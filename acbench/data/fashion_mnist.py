"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package (70k labelled 28x28 images)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from acbench.data.base import DataError, Dataset, ImageSet, digest

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"  # where the Debian package installs it
SPLITS = (
    ("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)
CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
SIDE = 28


class FashionMNIST(Dataset):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60k train + 10k test greyscale 28x28 images
    of 10 clothing classes, read from the idx files (``.gz`` or not) of Debian's
    ``dataset-fashion-mnist`` package, or of ``root`` when given.

    The labelled set at scale for ``class_label``. All 70k images form one pool (train first,
    then test; named ``train#i`` / ``t10k#i``); the cache makes its own stratified split.

    Tile size: images are never cropped (``tile`` < 28 is refused). By default each image is
    zero-padded, centred, to ``tile`` x ``tile``: the background of Fashion-MNIST is 0, so the
    padding looks like more background and costs the codec next to nothing, but rates are
    reported per tile pixel, padding included. With ``upscale=True`` it is first enlarged by the
    largest integer factor that fits (nearest neighbour, e.g. x2 to 56 px for a 64-px tile).

    Args:
        limit: keep only the first ``limit`` images (0 = all 70k).
        upscale: enlarge by an integer factor before padding.
    """

    version = "1"

    def __init__(self, limit: int = 0, upscale: bool = False) -> None:
        self.limit = limit
        self.upscale = upscale

    def fingerprint(self, tile: int, root: str | None) -> str:
        stats = []
        for img_path, lab_path in _files(root):
            for p in (img_path, lab_path):
                st = p.stat()
                stats.append((p.name, st.st_size, st.st_mtime_ns))
        return digest([stats, tile, self.limit, self.upscale])

    def build(self, tile: int, root: str | None = None) -> ImageSet:
        if tile < SIDE:
            raise DataError(
                f"fashion_mnist images are {SIDE}x{SIDE} and are never cropped; use a tile of at "
                f"least {SIDE} px (they are zero-padded to the tile), got {tile}"
            )
        images, labels, names = [], [], []
        for (split, _, _), (img_path, lab_path) in zip(SPLITS, _files(root)):
            x = _read_idx(img_path, ndim=3)
            y = _read_idx(lab_path, ndim=1)
            if len(x) != len(y) or x.shape[1:] != (SIDE, SIDE):
                raise DataError(f"{img_path} and {lab_path} do not match ({x.shape}, {y.shape})")
            images.append(x)
            labels.append(y)
            names += [f"{split}#{i}" for i in range(len(x))]
        x = np.concatenate(images)
        y = np.concatenate(labels).astype(np.int64)
        if self.limit:
            x, y, names = x[: self.limit], y[: self.limit], names[: self.limit]
        k = tile // SIDE if self.upscale else 1
        if k > 1:
            x = x.repeat(k, axis=1).repeat(k, axis=2)
        side = SIDE * k
        off = (tile - side) // 2
        pixels = np.zeros((len(x), 3, tile, tile), dtype=np.uint8)
        pixels[:, :, off : off + side, off : off + side] = x[:, None]
        info = {"source_side": SIDE, "scale": k, "pad": off}
        return ImageSet(pixels, y, names, list(CLASSES), info)


def _files(root: str | None) -> list[tuple[Path, Path]]:
    """(images, labels) paths of each split; a clear error naming the package when missing."""
    base = Path(root or DEFAULT_ROOT).expanduser()
    out = []
    for _, *stems in SPLITS:
        pair = []
        for stem in stems:
            found = [base / (stem + ext) for ext in (".gz", "") if (base / (stem + ext)).is_file()]
            if not found:
                raise DataError(
                    f"Fashion-MNIST not found: no {stem}[.gz] in {base}. Install Debian's package "
                    f"(`sudo apt-get install dataset-fashion-mnist`, which puts it in "
                    f"{DEFAULT_ROOT}), or set data.root to a folder holding the four idx files"
                )
            pair.append(found[0])
        out.append((pair[0], pair[1]))
    return out


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array (LeCun's MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    if len(data) < 4 + 4 * ndim or data[:2] != b"\0\0" or data[2] != 0x08 or data[3] != ndim:
        raise DataError(f"{path} is not an unsigned-byte IDX file with {ndim} dimension(s)")
    shape = tuple(int(v) for v in np.frombuffer(data, ">u4", count=ndim, offset=4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(shape))} bytes of data, got {body.size}")
    return body.reshape(shape)
