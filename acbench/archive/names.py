"""Archives, names and targets (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from acbench.archive.format import ArchiveError
from acbench.store import atomic_write


def check_name(name: Any) -> str:
    """``name`` if it is a safe relative POSIX path ending in ``.png``, else :class:`ArchiveError`."""
    if not isinstance(name, str) or not name:
        raise ArchiveError(f"archive item name {name!r} is not a file name; the archive is not trustworthy")
    bad = None
    parts = name.split("/")
    if "\\" in name or "\x00" in name or any(ord(c) < 32 for c in name):
        bad = "contains a backslash or control character"
    elif name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        bad = "is an absolute path"
    elif any(p in ("", ".", "..") for p in parts):
        bad = "has an empty, '.' or '..' component"
    elif not name.lower().endswith(".png"):
        bad = "does not end in .png"
    if bad:
        raise ArchiveError(
            f"archive item name {name!r} {bad}: it could write outside the output folder, so the "
            "archive is refused; only decompress archives from sources you trust"
        )
    return name


def _targets(out_dir: Path, names: list[str]) -> list[Path]:
    """Output paths, each checked to stay inside ``out_dir`` (symlinks resolved)."""
    root = out_dir.resolve()
    seen: set[str] = set()
    paths = []
    for name in names:
        check_name(name)
        if name.casefold() in seen:
            raise ArchiveError(f"archive names {name!r} twice; the archive is malformed and refused")
        seen.add(name.casefold())
        target = out_dir / name
        for parent in list(target.parents)[: name.count("/")]:  # sub-folders named by the archive
            if parent.exists() and not parent.is_dir():
                raise ArchiveError(f"{parent} is a file, but the archive needs a folder there; move it away")
        if target.is_symlink():
            raise ArchiveError(
                f"{target} is a symbolic link; refusing to write through it. Remove it or choose "
                "an empty output folder"
            )
        if target.is_dir():
            raise ArchiveError(
                f"{target} is a folder, but the archive has an image of that name; move it away"
            )
        if not target.resolve().is_relative_to(root):
            raise ArchiveError(
                f"{name!r} would be written to {target.resolve()}, outside {root} (a symbolic link "
                "on the way points elsewhere); remove the link or choose an empty output folder"
            )
        paths.append(target)
    return paths


def _write_png(path: Path, a: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Image.fromarray(a).save(tmp, format="PNG"))
