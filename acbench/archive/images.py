"""Archives, images (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from acbench.archive.format import ArchiveError


def _image_exts() -> set[str]:
    from PIL import Image

    Image.init()
    return {e.lower() for e, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def scan(src: Path) -> list[str]:
    """Relative POSIX names of the image files under ``src`` (sorted; hidden entries skipped)."""
    exts = _image_exts()
    found = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or os.path.splitext(f)[1].lower() not in exts:
                continue
            found.append(
                PurePosixPath(Path(root).relative_to(src).as_posix(), f).as_posix().removeprefix("./")
            )
    return found


def output_names(srcs: list[str]) -> list[str]:
    """PNG output name per input; collisions (also case-only ones) resolved deterministically."""
    out: list[str | None] = [None] * len(srcs)
    taken: set[str] = set()

    def claim(i: int, name: str) -> None:
        stem, k = name[:-4], 2
        while name.casefold() in taken:
            name, k = f"{stem}~{k}.png", k + 1
        taken.add(name.casefold())
        out[i] = name

    for i, s in enumerate(srcs):  # files that already are .png keep their names
        if s.lower().endswith(".png"):
            claim(i, s[:-4] + ".png")
    for i, s in enumerate(srcs):
        if out[i] is None:
            p = PurePosixPath(s)
            want = p.with_suffix(".png").as_posix()
            claim(i, want if want.casefold() not in taken else s + ".png")
    return [o for o in out if o is not None]


def read_image(path: Path) -> tuple[np.ndarray, str]:
    """HxWx3 uint8 pixels (EXIF orientation applied) and the original PIL mode."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from acbench.data.base import to_rgb_uint8

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            if mode in ("L", "LA", "RGB", "RGBA", "F") or mode.startswith("I;16"):
                a = np.asarray(im)
                if a.dtype.kind == "u" and a.dtype.itemsize == 2:
                    a = a.astype(np.uint16)
            elif mode == "I":
                a = np.asarray(im)
                a = np.clip(a, 0, 65535).astype(np.uint16) if a.max() > 255 else a.astype(np.uint8)
            else:  # palette, 1-bit, CMYK, YCbCr, LAB, premultiplied ...
                has_alpha = "A" in mode or "transparency" in im.info
                a = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as e:
        raise ArchiveError(f"{path}: cannot read this image ({e}); remove or convert it") from None
    return to_rgb_uint8(a), mode


def _size(path: Path) -> tuple[int, int]:
    """(H, W) after EXIF orientation, from the file's header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated by 90°
                w, h = h, w
    except Exception as e:
        raise ArchiveError(f"{path}: cannot read this image ({e}); remove or convert it") from None
    return h, w


def _thumb(a: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    h, w = a.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(a[top : top + s, left : left + s])
    return np.asarray(
        im.resize((side, side), Image.Resampling.BOX if s >= side else Image.Resampling.BICUBIC)
    )


def _chw(a: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float().div_(255.0)


def _to_uint8(x_hat: Any) -> np.ndarray:
    """[3, H, W] float in [0, 1] → HxWx3 uint8, rounded as evaluation's PSNR rounds."""
    import torch

    return (x_hat.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)
