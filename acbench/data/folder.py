"""Any folder of images (ImageNet / ImageFolder layout, or a flat Kodak / CLIC style folder)."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from acbench.data.base import DataError, Dataset, ImageSet, digest, tiles_of, to_rgb_uint8

ROOT_CLASS = "."  # class of the images that sit directly in the root folder
#: first-level folder names (any case) that name a split, not a class: train/<class>/..., val/<class>/...
SPLITS = frozenset({"train", "val", "valid", "validation", "test"})
EXAMPLES = 5  # how many skipped names ``ImageSet.info`` keeps per reason
_BATCH = 64  # files decoded concurrently (Pillow releases the GIL while decoding)


class Folder(Dataset):
    """Every image under a folder, recursively, cut into non-overlapping ``tile``-px tiles.

    The class of an image is its first-level subfolder (``root/<class>/.../x.jpg``, the
    ImageNet / torchvision ImageFolder layout); images directly in ``root`` form the class
    ``"."``, so a flat folder (Kodak, CLIC) is one class. When every first-level subfolder is a
    split (``train``, ``val``, ``valid``, ``validation``, ``test``, any case: the layout
    ``train/<class>/…``, ``val/<class>/…`` of most downloaded datasets), the class is the
    folder one level below; ``class_level`` names the level outright. Images above the class
    level form the class ``"."``. Files are visited in sorted path order
    and every non-hidden file is tried with Pillow, whatever its extension. Greyscale, RGBA,
    palette, 1-bit, CMYK and 16-bit images are converted to 8-bit RGB (alpha dropped, 16 bits
    scaled by 1/257); multi-frame files give their first frame. Tiles are named
    ``relpath#tileindex``.

    Reported in ``ImageSet.info`` (counts, and the first few names with the reason):
    unreadable files (corrupt, truncated, not an image; skipped, or refused with ``strict``),
    images smaller than the tile (skipped), and duplicates (same decoded pixels as an earlier file;
    kept unless ``dedupe``, because duplicates inflate conditional savings); also the class level
    used, the split folders recognised and the images per class (:func:`acbench.data.cache.describe`
    turns them into the lines a run prints, from the cache too).

    Args:
        strict: refuse the folder at the first unreadable file instead of skipping it.
        per_image: keep at most this many tiles per image, evenly spaced (0 = all; 1 = the
            centre tile, one item per image as in ImageNet-style benchmarks).
        dedupe: skip images whose decoded pixels equal an earlier file's.
        class_level: the folder level that names the class (1 = first-level subfolders, 2 = the
            level below, ...); 0 = automatic: 2 below split folders, else 1.
    """

    version = "2"  # 2: split folders (train/<class>/...) are recognised

    def __init__(
        self, strict: bool = False, per_image: int = 0, dedupe: bool = False, class_level: int = 0
    ) -> None:
        if isinstance(class_level, bool) or not isinstance(class_level, int) or class_level < 0:
            raise DataError(
                f"data.params.class_level must be 0 (automatic), 1 (first-level folders), 2, ... "
                f"(got {class_level!r}); e.g. --set data.params.class_level=2"
            )
        self.strict = strict
        self.per_image = per_image
        self.dedupe = dedupe
        self.class_level = class_level

    def fingerprint(self, tile: int, root: str | None) -> str:
        files = _scan(root)
        base = Path(root)  # type: ignore[arg-type]
        stats = []
        for rel in files:
            st = (base / rel).stat()
            stats.append((rel, st.st_size, st.st_mtime_ns))
        return digest([stats, tile, self.strict, self.per_image, self.dedupe, self.class_level])

    def build(self, tile: int, root: str | None) -> ImageSet:
        files = _scan(root)
        base = Path(root)  # type: ignore[arg-type]
        level, splits = class_level(files, self.class_level)
        skipped: dict[str, list[str]] = {"unreadable": [], "small": [], "duplicate": []}
        seen: dict[str, str] = {}
        order: list[tuple[str, str, list[tuple[int, np.ndarray]]]] = []
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for s in range(0, len(files), _BATCH):
                batch = files[s : s + _BATCH]
                for rel, (img, h, err) in zip(batch, pool.map(lambda r: _decode(base / r), batch)):
                    if err is not None:
                        if self.strict:
                            raise DataError(
                                f"unreadable image file {rel!r} in {root} ({err}); remove it, or "
                                f"build without strict to skip unreadable files"
                            )
                        skipped["unreadable"].append(f"{rel} ({err})")
                        continue
                    if h in seen:
                        skipped["duplicate"].append(f"{rel} (same pixels as {seen[h]})")
                        if self.dedupe:
                            continue
                    else:
                        seen[h] = rel
                    if min(img.shape[:2]) < tile:
                        skipped["small"].append(f"{rel} ({img.shape[1]}x{img.shape[0]})")
                        continue
                    tiles = self._select(tiles_of(img, tile))
                    cls = _class_of(rel, level)
                    order.append((cls, rel, tiles))
        if not order:
            raise DataError(
                f"no {tile}-px tiles in {root}: {len(files)} files, "
                f"{len(skipped['unreadable'])} unreadable, {len(skipped['small'])} smaller than "
                f"the tile{_examples(skipped)}; use a smaller tile or a folder of images"
            )
        classes = sorted({cls for cls, _, _ in order})
        label_of = {c: i for i, c in enumerate(classes)}
        pixels, labels, names = [], [], []
        for cls, rel, tiles in order:
            for i, t in tiles:
                pixels.append(t)
                labels.append(label_of[cls])
                names.append(f"{rel}#{i}")
        per_class = {c: 0 for c in classes}
        for cls, _, _ in order:
            per_class[cls] += 1
        info: dict[str, Any] = {
            "files": len(files),
            "images": len(order),
            "class_level": level,
            "split_folders": splits,
            "class_images": [per_class[c] for c in classes],
            "skipped_unreadable": len(skipped["unreadable"]),
            "unreadable_examples": skipped["unreadable"][:EXAMPLES],
            "skipped_small": len(skipped["small"]),
            "small_examples": skipped["small"][:EXAMPLES],
            "duplicates": len(skipped["duplicate"]),
            "duplicate_examples": skipped["duplicate"][:EXAMPLES],
            "duplicates_skipped": self.dedupe,
        }
        return ImageSet(np.stack(pixels), np.asarray(labels, dtype=np.int64), names, classes, info)

    def _select(self, tiles: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
        n = len(tiles)
        if not self.per_image or n <= self.per_image:
            return list(enumerate(tiles))
        idx = ((np.arange(self.per_image) + 0.5) * n / self.per_image).astype(int)
        return [(int(i), tiles[i]) for i in idx]


def class_level(files: list[str], level: int = 0) -> tuple[int, list[str]]:
    """The folder level that names the class, and the split folders recognised (automatic: 0).

    Automatic: 2 when every first-level folder is a split (train / val / valid / validation /
    test, any case), else 1.
    """
    if level:
        return level, []
    tops = sorted({f.split("/", 1)[0] for f in files if "/" in f})
    if tops and all(t.lower() in SPLITS for t in tops):
        return 2, tops
    return 1, []


def _class_of(rel: str, level: int) -> str:
    dirs = rel.split("/")[:-1]
    return dirs[level - 1] if len(dirs) >= level else ROOT_CLASS


def class_of(files: list[str], level: int = 0) -> list[str]:
    """The class of each file (relative POSIX paths), as :class:`Folder` assigns it."""
    level, _ = class_level(files, level)
    return [_class_of(f, level) for f in files]


def _walk(base: Path) -> Iterator[str]:
    """Relative POSIX paths of the non-hidden files under ``base`` (hidden folders skipped)."""
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(base)
        for f in filenames:
            if not f.startswith("."):
                yield (rel_dir / f).as_posix()


def _root(root: str | None) -> Path:
    if root is None or str(root) == "":
        raise DataError("the folder dataset needs a folder: pass --data DIR (data.root)")
    base = Path(root).expanduser()
    if not base.exists():
        raise DataError(f"image folder {str(root)!r} does not exist; pass --data with a folder of images")
    if not base.is_dir():
        raise DataError(f"{str(root)!r} is not a folder; pass the folder that holds the images")
    return base


def check_folder(root: str | None) -> None:
    """Fail fast (no decoding, stops at the first file) if ``root`` is missing, a file or empty."""
    if next(_walk(_root(root)), None) is None:
        raise DataError(_empty(root))


def _scan(root: str | None) -> list[str]:
    """Sorted relative POSIX paths of every non-hidden file under ``root``; clear errors."""
    files = sorted(_walk(_root(root)))
    if not files:
        raise DataError(_empty(root))
    return files


def _empty(root: str | None) -> str:
    return f"image folder {str(root)!r} is empty (no files, hidden ones aside); pass a folder of images"


def _decode(path: Path) -> tuple[np.ndarray | None, str, str | None]:
    """(HxWx3 uint8 image, sha1 of its pixels, None) or (None, "", why it cannot be read)."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.read_bytes()
    except OSError as e:
        return None, "", f"cannot read: {e.strerror or e}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # palette transparency, EXIF and bomb warnings
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                img = _to_rgb(im)
        h = hashlib.sha1(repr(img.shape).encode() + img.tobytes()).hexdigest()
        return img, h, None
    except UnidentifiedImageError:
        return None, "", "not an image"
    except Image.DecompressionBombError:
        return None, "", "too many pixels (decompression-bomb limit)"
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return None, "", f"corrupt: {msg[:80]}"


def _to_rgb(im: Any) -> np.ndarray:
    """8-bit RGB array of any Pillow image mode."""
    mode = im.mode
    if mode in ("RGB", "L", "RGBA", "LA", "1", "F"):
        return to_rgb_uint8(np.asarray(im))
    if mode.startswith("I;16"):
        return to_rgb_uint8(np.asarray(im).astype(np.uint16))
    if mode == "I":  # 32-bit ints, in practice 16-bit data (PNG, TIFF)
        a = np.asarray(im)
        if a.max() > 255:
            return to_rgb_uint8(np.clip(a, 0, 65535).astype(np.uint16))
        return to_rgb_uint8(np.clip(a, 0, 255).astype(np.uint8))
    return to_rgb_uint8(np.asarray(im.convert("RGB")))


def _examples(skipped: dict[str, list[str]]) -> str:
    ex = (skipped["unreadable"] + skipped["small"])[:EXAMPLES]
    return f" (e.g. {', '.join(ex)})" if ex else ""
