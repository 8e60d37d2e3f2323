"""Dataset plugins produce fixed-size uint8 tiles with labels; the cache decodes them once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class DataError(ValueError):
    """A dataset cannot be built; the message says what was wrong and what to do."""


@dataclass
class ImageSet:
    """Decoded tiles: ``pixels`` uint8 [N, 3, T, T]; ``labels`` int [N]; one name per tile."""

    pixels: np.ndarray
    labels: np.ndarray
    names: list[str]
    classes: list[str]
    info: dict[str, Any] = field(default_factory=dict)  # e.g. skipped-file counts

    def __len__(self) -> int:
        return len(self.pixels)

    def subset(self, idx: np.ndarray) -> ImageSet:
        idx = np.asarray(idx)
        return ImageSet(
            self.pixels[idx], self.labels[idx], [self.names[i] for i in idx], self.classes, self.info
        )


class Dataset:
    """A source of images. Subclasses implement :meth:`build` and :meth:`fingerprint`.

    ``build(tile, root)`` returns every tile of the source (deterministic order); the cache
    splits it into train / eval. ``fingerprint`` must change whenever the source files change
    (a folder's file list, sizes and mtimes), so a changed folder is noticed.
    """

    version = "1"

    def fingerprint(self, tile: int, root: str | None) -> str:
        return "static"

    def build(self, tile: int, root: str | None) -> ImageSet:
        raise NotImplementedError


def to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """Convert greyscale / RGBA / 16-bit / float images to HxWx3 uint8."""
    a = np.asarray(img)
    if a.dtype == np.uint16:
        a = (a.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif a.dtype in (np.float32, np.float64):
        scale = 255.0 if a.max() <= 1.0 else 1.0
        a = np.clip(a * scale, 0, 255).round().astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.shape[-1] == 4:
        a = a[..., :3]
    if a.shape[-1] == 2:  # grey + alpha
        a = np.repeat(a[..., :1], 3, axis=-1)
    return np.ascontiguousarray(a)


def tiles_of(img: np.ndarray, tile: int) -> list[np.ndarray]:
    """Non-overlapping ``tile`` x ``tile`` tiles (centred grid), as 3xTxT uint8 arrays.

    Overlapping crops would leak pixels between neighbours, so tiles never overlap.
    """
    a = to_rgb_uint8(img)
    h, w = a.shape[:2]
    ny, nx = h // tile, w // tile
    oy, ox = (h - ny * tile) // 2, (w - nx * tile) // 2
    out = []
    for i in range(ny):
        for j in range(nx):
            t = a[oy + i * tile : oy + (i + 1) * tile, ox + j * tile : ox + (j + 1) * tile]
            out.append(np.ascontiguousarray(t.transpose(2, 0, 1)))
    return out


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
