"""The positive control: packaged photos cut into sequences of tiles, each shifted a few pixels.

Tile k of a sequence is the crop at ``x + k * shift`` of one photo region, so every tile shares
``1 - shift / tile`` of its pixels with the one before it: a neighbour that certainly carries
information. Stored in sequence order (use the ``stored`` ordering); a whole sequence lands in
train or in eval (``groups``), so no eval pixel was trained on. Conditioning that finds no large
content gain here is broken.
"""

from __future__ import annotations

import numpy as np

from acbench.data.base import DataError, Dataset, ImageSet, digest, to_rgb_uint8
from acbench.data.photos import _packaged_photos


class Shifted(Dataset):
    """Sequences of ``length`` tiles, each ``shift`` pixels right of the one before.

    Args:
        shift: pixels between consecutive tiles (small: the tiles overlap; ``tile``: they abut).
        length: tiles per sequence.
        max_per_photo: cap on sequences per photo (evenly spaced; 0 = no cap).
        min_std: drop sequences whose first tile is flatter than this (8-bit units).
    """

    version = "1"

    def __init__(self, shift: int = 4, length: int = 8, max_per_photo: int = 12, min_std: float = 2.0):
        if shift < 1 or length < 2:
            raise DataError(f"shifted needs shift >= 1 and length >= 2 (got {shift}, {length})")
        self.shift = shift
        self.length = length
        self.max_per_photo = max_per_photo
        self.min_std = min_std

    def fingerprint(self, tile: int, root: str | None) -> str:
        return digest([self.shift, self.length, self.max_per_photo, self.min_std, tile])

    def build(self, tile: int, root: str | None = None) -> ImageSet:
        width = tile + (self.length - 1) * self.shift
        pixels, labels, groups, names, classes = [], [], [], [], []
        for name, img in _packaged_photos(False):
            a = to_rgb_uint8(img)
            h, w = a.shape[:2]
            regions = [(y, x) for y in range(0, h - tile + 1, tile) for x in range(0, w - width + 1, width)]
            regions = [(y, x) for y, x in regions if a[y : y + tile, x : x + tile].std() >= self.min_std]
            if self.max_per_photo and len(regions) > self.max_per_photo:
                pick = np.linspace(0, len(regions) - 1, self.max_per_photo).round().astype(int)
                regions = [regions[i] for i in pick]
            if not regions:
                continue
            classes.append(name)
            for y, x in regions:
                group = groups[-1] + 1 if groups else 0
                for k in range(self.length):
                    t = a[y : y + tile, x + k * self.shift : x + k * self.shift + tile]
                    pixels.append(np.ascontiguousarray(t.transpose(2, 0, 1)))
                    labels.append(len(classes) - 1)
                    groups.append(group)
                    names.append(f"{name}@{y},{x}+{k * self.shift}")
        if not pixels:
            raise DataError(f"no {tile}-px sequences in the packaged photos; use a smaller data.tile")
        return ImageSet(np.stack(pixels), np.asarray(labels), names, classes, {"groups": groups})
