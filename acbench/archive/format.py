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


def parent_bits(size: int) -> int:
    """Bits of one stored parent index in a tree of ``size`` items: ⌈log2 size⌉ (as
    :func:`acbench.orderings.tree.side_bits` counts them in evaluation)."""
    from acbench.orderings.tree import index_bits

    return index_bits(size)


def pack_parents(trees: list[list[int]]) -> str:
    """Local parent indices of every tree's non-roots (item 0 of a tree is its root), packed
    ⌈log2 S⌉ bits each for a tree of S items, most significant bit first; as a hex string."""
    acc, nbits = 0, 0
    for parents in trees:
        w = parent_bits(len(parents))
        for p in parents[1:]:
            acc = (acc << w) | p
            nbits += w
    pad = -nbits % 8
    return (acc << pad).to_bytes((nbits + pad) // 8, "big").hex()


def unpack_parents(hx: Any, sizes: list[int]) -> list[list[int]]:
    """Inverse of :func:`pack_parents`; every parent must come before its child in its tree."""
    total = sum((s - 1) * parent_bits(s) for s in sizes)
    nbytes = -(-total // 8)
    if not (isinstance(hx, str) and len(hx) == 2 * nbytes):
        raise _malformed("tree parents")
    try:
        acc = int(hx, 16) if hx else 0
    except ValueError:
        raise _malformed("tree parents") from None
    acc >>= 8 * nbytes - total
    out, left = [], total
    for s in sizes:
        w = parent_bits(s)
        parents = [-1]
        for k in range(1, s):
            left -= w
            p = (acc >> left) & ((1 << w) - 1)
            if p >= k:
                raise _malformed(f"tree parent {p} of item {k} is not decoded before it")
            parents.append(p)
        out.append(parents)
    return out
