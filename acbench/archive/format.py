"""Archives, format constants, the error and header helpers (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

import platform
import struct
import zlib
from collections.abc import Callable
from typing import Any

MAGIC = b"\x89ACB\r\n\x1a\n"
FORMAT_VERSION = 3  # older versions: read._RETIRED
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


#: what the header records of the coder's platform (it always codes on the CPU, batch 1, 1 thread)
_CODER_KEYS = ("torch", "compressai", "machine", "cpu_capability")
_COLS = ("mode", "w", "h")
SHA_HEX = 16  # checkpoint sha256 kept in the header: 64 bits (why: the format, acbench.archive)


def _pix_crc32(chains: list[int]) -> int:
    """The archive's reconstruction check: crc32 over every chain's pixel crc32, chain order."""
    return zlib.crc32(b"".join(c.to_bytes(4, "little") for c in chains))


def _unpack_items(it: dict[str, Any], stride: int) -> dict[str, Any]:
    """Inverse of :func:`_pack_items` (on a structurally checked table): a column stored as one
    value (every item has it) becomes a list."""
    n = len(it["name"])
    out = {k: (v if isinstance(v, list) else [v] * n) for k, v in it.items()}
    it = out
    out["src"] = [
        n_ if s is None else (n_[:-4] + s if (s == "" or (s.startswith(".") and "/" not in s)) else s)
        for s, n_ in zip(it["src"], it["name"], strict=True)
    ]
    if "shape" not in it:
        out["shape"] = [[-(-h // stride), -(-w // stride)] for w, h in zip(it["w"], it["h"], strict=True)]
    return out


def _malformed(why: str) -> ArchiveError:
    return ArchiveError(f"archive header is malformed ({why}); the file is damaged or not from acbench")
