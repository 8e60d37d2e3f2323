"""Archives, read (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acbench.archive.format import (
    _COLS,
    _DIGEST,
    _PREFIX,
    FORMAT_VERSION,
    MAGIC,
    MAX_HEADER,
    MAX_SIDE,
    SHA_HEX,
    ArchiveError,
    _malformed,
    _unpack_items,
)
from acbench.archive.layout import decode_header


@dataclass
class _Archive:
    path: Path
    header: dict[str, Any]
    payload_start: int
    file_size: int

    @property
    def n(self) -> int:
        return len(self.header["items"]["name"])

    @property
    def end(self) -> int:
        """Where the archive ends (its header's sizes): bytes after it belong to no item."""
        return self.payload_start + self.header["payload_bytes"]

    @property
    def trailing(self) -> int:
        """Bytes after the archive's end (appended by a copy or another program); ignored."""
        return max(0, self.file_size - self.end)

    def stream_offsets(self) -> list[int]:
        """Where each chain's stream starts in the file (streams follow each other, chain order)."""
        offs, o = [], self.payload_start + self.header["items_offset"]
        for n in self.header["streams"]:
            offs.append(o)
            o += n
        return offs

    def chains(self) -> list[list[int]]:
        """Item-table rows of every chain, in decoding order (chains follow each other in
        ``order``)."""
        out, i, order = [], 0, self.header["order"]
        for n in self.header["chains"]:
            out.append(order[i : i + n])
            i += n
        return out

    def parents(self) -> list[list[int] | None]:
        """Each chain's local parent indices (a tree), or ``None`` (a chain: the previous item)."""
        return self.header.get("parents") or [None] * len(self.header["chains"])


#: versions once written, no longer read: what they were
_RETIRED = {
    1: "one rANS stream per image and component",
    2: "a JSON header with names in chain order and two crc32 per chain",
}


def _check_header(h: Any) -> None:
    """Types and ranges of every field the reader uses (the header is untrusted; the tables'
    structure is checked while decoding them, :func:`acbench.archive.layout.decode_header`)."""
    it = h["items"]
    names = it["name"]
    n = len(names)

    def ints(v: Any, lo: int, hi: int, what: str) -> None:
        if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
            raise _malformed(f"{what} = {v!r}")

    for col in (*_COLS, "src"):
        if col not in it:
            raise _malformed(f"item column {col!r}")
        if not isinstance(it[col], list):
            it[col] = [it[col]] * n
        if len(it[col]) != n:
            raise _malformed(f"item column {col!r}")
    if not all(s is None or isinstance(s, str) for s in it["src"]):
        raise _malformed("item column 'src'")
    if not all(isinstance(x, str) for x in it["mode"]):
        raise _malformed("item column 'mode'")
    tot = h.get("totals")
    if not (isinstance(tot, dict) and isinstance(tot.get("bits_est"), (int, float))):
        raise _malformed("totals")
    for k in (
        "image_bytes",
        "base_bits_est",
        "base_bytes",
        "base_stream_bytes",
        "base_chain_bytes",
        "psnr_mean",
    ):
        if not (tot.get(k) is None or isinstance(tot[k], (int, float))):
            raise _malformed(f"totals {k!r}")
    ints(h.get("stride"), 1, 4096, "stride")
    if "shape" in it and (not isinstance(it["shape"], list) or len(it["shape"]) != n):
        raise _malformed("item column 'shape'")
    h["items"] = it = _unpack_items(it, h["stride"])
    for i in range(n):
        ints(it["w"][i], 1, MAX_SIDE, "width")
        ints(it["h"][i], 1, MAX_SIDE, "height")
        sh = it["shape"][i]
        if not (isinstance(sh, list) and len(sh) == 2):
            raise _malformed("z shape")
        for v, side in zip(sh, (it["h"][i], it["w"][i])):
            ints(v, 1, side, "z shape")
    ints(h.get("pix_crc32"), 0, 2**32 - 1, "reconstruction checksum")
    for v in h["streams"]:
        ints(v, 0, 2**40, "stream length")
    ints(h.get("items_offset"), 0, 2**50, "items offset")
    h["payload_bytes"] = h["items_offset"] + sum(h["streams"])
    m = h.get("model")
    if not isinstance(m, dict):
        raise _malformed("model")
    for role in ("first", "conditional"):
        e = m.get(role)
        if not (
            isinstance(e, dict)
            and isinstance(e.get("sha256"), str)
            and len(e["sha256"]) == SHA_HEX
            and isinstance(e.get("run_id"), str)
            and isinstance(e.get("file"), str)
        ):
            raise _malformed(f"{role} model entry")
        ints(e.get("bytes"), 0, 2**40, "model size")
        if e.get("embedded") is not None:
            emb = e["embedded"]
            if not (isinstance(emb, list) and len(emb) == 2):
                raise _malformed("embedded model")
            ints(emb[0], 0, h["items_offset"], "embedded model offset")
            ints(emb[1], 0, h["items_offset"], "embedded model size")


def read_header(path: Path) -> _Archive:
    """Open an archive: magic, version, header checksum and structure checked."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ArchiveError(f"{path}: cannot open ({e.strerror})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(_PREFIX.size)
        if len(prefix) < len(MAGIC) or prefix[: len(MAGIC)] != MAGIC:
            raise ArchiveError(f"{path} is not an acbench archive (wrong magic bytes)")
        if len(prefix) < _PREFIX.size:
            raise ArchiveError(f"{path} is truncated (it ends inside the archive's prefix); re-copy it")
        _, version, _flags, hlen = _PREFIX.unpack(prefix)
        if version > FORMAT_VERSION:
            raise ArchiveError(
                f"{path} uses archive format version {version}, newer than this acbench reads "
                f"(version {FORMAT_VERSION}); upgrade acbench (pip install -U acbench)"
            )
        if version in _RETIRED:
            raise ArchiveError(
                f"{path} uses archive format version {version} ({_RETIRED[version]}), which this "
                f"acbench no longer reads (it reads version {FORMAT_VERSION}); decompress it with the "
                "acbench that wrote it, then compress the images again"
            )
        if version != FORMAT_VERSION:
            raise ArchiveError(f"{path}: invalid format version {version}; the file is damaged")
        if hlen > MAX_HEADER:
            raise ArchiveError(f"{path}: header length {hlen} is implausible; the file is damaged")
        blob = f.read(hlen)
        digest = f.read(_DIGEST)
        if len(blob) < hlen or len(digest) < _DIGEST:
            raise ArchiveError(f"{path} is truncated inside its header ({size} bytes); re-copy it")
        if hashlib.sha256(prefix + blob).digest() != digest:
            raise ArchiveError(
                f"{path}: the archive header is corrupt (sha256 mismatch); nothing in it can be "
                "trusted, so nothing is restored — re-copy the file from its source"
            )
    header = decode_header(blob)
    header["version"] = version
    _check_header(header)
    return _Archive(path, header, _PREFIX.size + hlen + _DIGEST, size)
