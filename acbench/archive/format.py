"""Archives, format constants, the error and header helpers (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

import platform
import struct
from collections.abc import Callable
from typing import Any

MAGIC = b"\x89ACB\r\n\x1a\n"
FORMAT_VERSION = 2  # 1: one rANS stream per image and component (no longer read)
_PREFIX = struct.Struct("<8sHHQ")  # magic, version, flags, header length
_DIGEST = 32
MAX_HEADER = 1 << 30  # compressed and decompressed header bound (bytes)
MAX_SIDE = 1 << 16
SUFFIX = ".acb"
Progress = Callable[[str, int, int, dict[str, float]], None]  # progress(label, done, total, logs)


class ArchiveError(ValueError):
    """An archive cannot be written or read as asked; the message names the problem and the fix."""


def _platform() -> dict[str, Any]:
    import compressai
    import torch

    return {
        "torch": torch.__version__,
        "compressai": compressai.__version__,
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "batch": 1,
        "threads": 1,
        "device": "cpu",
    }


_COLS = ("mode", "w", "h")


def _unpack_items(it: dict[str, Any], stride: int) -> dict[str, Any]:
    """Inverse of :func:`_pack_items` (on a structurally checked table)."""
    out = dict(it)
    out["src"] = [
        n_ if s is None else (n_[:-4] + s if (s == "" or (s.startswith(".") and "/" not in s)) else s)
        for s, n_ in zip(it["src"], it["name"], strict=True)
    ]
    if "shape" not in it:
        out["shape"] = [[-(-h // stride), -(-w // stride)] for w, h in zip(it["w"], it["h"], strict=True)]
    return out


def _unhex(hx: Any, n: int, what: str) -> list[int]:
    if not (isinstance(hx, str) and len(hx) == 8 * n):
        raise _malformed(what)
    try:
        return [int(hx[8 * i : 8 * i + 8], 16) for i in range(n)]
    except ValueError:
        raise _malformed(what) from None


def _malformed(why: str) -> ArchiveError:
    return ArchiveError(f"archive header is malformed ({why}); the file is damaged or not from acbench")
