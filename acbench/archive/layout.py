"""Archives, the header's bytes: JSON for what is small, packed tables for what grows with N.

The header counts in the file's bpp, so what grows with the number of images or chains is packed
(the format: :mod:`acbench.archive`):

- **varints** (LEB128, 7 bits a byte): chain lengths and stream byte lengths (1–2 bytes each).
- **names** stored once, in sorted order, front-coded (bytes shared with the previous name, then
  the rest) and without their ``.png`` suffix (every output name has it): sorted names share long
  prefixes, which zlib alone, on names in chain order, does not find.
- **the chain order** as a permutation of the sorted names: its Lehmer code (digit k is the rank
  of the k-th image among those not yet placed, radix N − k) in mixed radix, written in blocks of
  at most :data:`PERM_BLOCK_BITS` bits, each rounded up to whole bytes. For N ≤ 536 images
  (log2 N! ≤ 4096) that is one block of ⌈⌈log2 N!⌉ / 8⌉ bytes, the least any code of an arbitrary
  order can take; beyond, at most 7 bits are lost per 4096, and the time stays linear in N
  (big-integer arithmetic on one block at a time).

- **tree parents** (``"structure": "tree"`` in the JSON part): every non-root's parent index
  within its tree (item 0 of a tree is its root), ⌈log2 S⌉ bits each for a tree of S items,
  packed most significant bit first and padded with zero bits to a whole byte
  (:func:`pack_parents`); the trees' sizes are the chain lengths.

What is text or small integers is zlib-compressed once; the checksums, the permutation and the
parents, near-random bits, follow the zlib stream as they are (:func:`encode_header`).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from acbench.archive.format import MAX_HEADER, _malformed

PERM_BLOCK_BITS = 4096
_U32 = struct.Struct("<I")
_TABLES = ("chains", "streams", "stream_crc32", "order", "parents")


def put_varint(out: bytearray, v: int) -> None:
    """Append ``v`` ≥ 0 as an LEB128 varint."""
    if v < 0:
        raise ValueError(f"varint of a negative number ({v})")
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


class Reader:
    """Reads a byte string front to back; running past its end is a malformed header."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def varint(self, what: str) -> int:
        v = shift = 0
        while True:
            if self.pos >= len(self.data) or shift > 63:
                raise _malformed(what)
            b = self.data[self.pos]
            self.pos += 1
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return v
            shift += 7

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _malformed(what)
        self.pos += n
        return self.data[self.pos - n : self.pos]


def _blocks(n: int) -> list[tuple[int, int, int]]:
    """The permutation's blocks: (first digit, end, bytes); digit k has radix n - k."""
    out, k = [], 0
    while k < n:
        p, j = n - k, k + 1
        while j < n and (p * (n - j) - 1).bit_length() <= PERM_BLOCK_BITS:
            p *= n - j
            j += 1
        out.append((k, j, ((p - 1).bit_length() + 7) // 8))
        k = j
    return out


def perm_bytes(n: int) -> int:
    """Bytes :func:`encode_perm` takes for ``n`` images (⌈⌈log2 n!⌉ / 8⌉ up to n = 536)."""
    return sum(b for _, _, b in _blocks(n))


class _Fenwick:
    """Counts of the indices not yet placed: rank of one, and the one of a given rank."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.t = [0] * (n + 1)
        for i in range(1, n + 1):
            self.t[i] += 1
            j = i + (i & -i)
            if j <= n:
                self.t[j] += self.t[i]
        self.top = 1 << max(0, n.bit_length() - 1)

    def remove(self, i: int) -> None:
        i += 1
        while i <= self.n:
            self.t[i] -= 1
            i += i & -i

    def rank(self, i: int) -> int:
        """How many indices < ``i`` are not yet placed."""
        s = 0
        while i > 0:
            s += self.t[i]
            i -= i & -i
        return s

    def select(self, r: int) -> int:
        """The index not yet placed with ``r`` such indices below it."""
        pos, step = 0, self.top
        while step:
            if pos + step <= self.n and self.t[pos + step] <= r:
                pos += step
                r -= self.t[pos]
            step >>= 1
        return pos


def encode_perm(order: list[int]) -> bytes:
    """``order`` (a permutation of 0..n-1) in :func:`perm_bytes` bytes."""
    n = len(order)
    fw, digits = _Fenwick(n), []
    for i in order:
        digits.append(fw.rank(i))
        fw.remove(i)
    out = bytearray()
    for a, b, nb in _blocks(n):
        v = 0
        for k in range(a, b):
            v = v * (n - k) + digits[k]
        out += v.to_bytes(nb, "little")
    return bytes(out)


def decode_perm(data: bytes, n: int) -> list[int]:
    """Inverse of :func:`encode_perm`; a value out of range is a malformed header."""
    digits = [0] * n
    pos = 0
    for a, b, nb in _blocks(n):
        v = int.from_bytes(data[pos : pos + nb], "little")
        pos += nb
        for k in range(b - 1, a, -1):
            v, digits[k] = divmod(v, n - k)
        if v >= n - a:
            raise _malformed("chain order")
        digits[a] = v
    fw, order = _Fenwick(n), []
    for d in digits:
        i = fw.select(d)
        order.append(i)
        fw.remove(i)
    return order


def parent_bits(size: int) -> int:
    """Bits of one stored parent index in a tree of ``size`` items: ⌈log2 size⌉ (as
    :func:`acbench.orderings.tree.side_bits` counts them in evaluation)."""
    from acbench.orderings.tree import index_bits

    return index_bits(size)


def pack_parents(trees: list[list[int]]) -> bytes:
    """Every tree's local parent indices (``parents[0]`` is the root's, not stored), packed
    :func:`parent_bits` each, most significant bit first, zero-padded to a whole byte."""
    bits = "".join(format(p, f"0{parent_bits(len(t))}b") for t in trees for p in t[1:])
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def parents_bytes(sizes: list[int]) -> int:
    """Bytes :func:`pack_parents` takes for trees of ``sizes`` items."""
    return -(-sum((s - 1) * parent_bits(s) for s in sizes) // 8)


def unpack_parents(data: bytes, sizes: list[int]) -> list[list[int]]:
    """Inverse of :func:`pack_parents` on ``parents_bytes(sizes)`` bytes; a parent not decoded
    before its child, or a padding bit set, is a malformed header."""
    bits = "".join(format(b, "08b") for b in data)
    out, pos = [], 0
    for s in sizes:
        w = parent_bits(s)
        parents = [-1]
        for k in range(1, s):
            p = int(bits[pos : pos + w], 2)
            pos += w
            if p >= k:
                raise _malformed(f"tree parent {p} of item {k} is not decoded before it")
            parents.append(p)
        out.append(parents)
    if "1" in bits[pos:]:
        raise _malformed("tree parents: padding bits set")
    return out


def encode_names(names: list[str]) -> bytes:
    """Front-coded names without their ``.png`` suffix (every name has it)."""
    out, prev = bytearray(), b""
    for name in names:
        if not name.endswith(".png"):
            raise ValueError(f"output name {name!r} does not end in .png")
        b = name[:-4].encode()
        k = 0
        while k < min(len(b), len(prev)) and b[k] == prev[k]:
            k += 1
        put_varint(out, k)
        put_varint(out, len(b) - k)
        out += b[k:]
        prev = b
    return bytes(out)


def decode_names(r: Reader, n: int) -> list[str]:
    names, prev = [], b""
    for _ in range(n):
        k = r.varint("item names")
        if k > len(prev):
            raise _malformed("item names")
        b = prev[:k] + r.take(r.varint("item names"), "item names")
        try:
            names.append(b.decode() + ".png")
        except UnicodeDecodeError:
            raise _malformed("item names") from None
        prev = b
    return names


def encode_header(h: dict[str, Any]) -> bytes:
    """The header's bytes: ``zlib(varint(len(meta)) meta tables) checks order``.

    ``h`` holds the JSON fields and, packed into the tables, ``chains`` (lengths), ``streams``
    (byte lengths), ``stream_crc32`` (ints), ``order`` (item indices in decoding order) and
    ``items["name"]`` (the item table's names, sorted by the writer); with ``"structure":
    "tree"``, ``parents`` (per tree its local parent indices)::

        zlib:  varint(len(meta)), meta (UTF-8 JSON), varint N, varint C,
               C varints: chain lengths, N front-coded names
        then:  C varints: stream bytes, C × u32: stream crc32, the chain order (perm_bytes(N)),
               for a tree archive the parents (parents_bytes(chain lengths))

    Stream lengths, checksums and the permutation are near-random bytes: after the zlib stream
    they cost what they are; inside it they would also spoil the Huffman codes of the text.
    """
    meta = {k: v for k, v in h.items() if k not in _TABLES}
    meta["items"] = {k: v for k, v in h["items"].items() if k != "name"}
    js = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    out = bytearray()
    put_varint(out, len(js))
    out += js
    names = h["items"]["name"]
    put_varint(out, len(names))
    put_varint(out, len(h["chains"]))
    for v in h["chains"]:
        put_varint(out, v)
    out += encode_names(names)
    tail = bytearray()
    for v in h["streams"]:
        put_varint(tail, v)
    tail += b"".join(_U32.pack(c) for c in h["stream_crc32"])
    tail += encode_perm(h["order"])
    if h.get("structure") == "tree":
        tail += pack_parents(h["parents"])
    return zlib.compress(bytes(out), 9) + bytes(tail)


def decode_header(blob: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_header` (structure only: :func:`acbench.archive.read._check_header`
    checks the fields)."""
    try:
        d = zlib.decompressobj()
        raw = d.decompress(blob, MAX_HEADER)
        if d.unconsumed_tail:
            raise ValueError("header larger than the limit")
        if not d.eof:
            raise ValueError("the compressed tables end early")
    except (zlib.error, ValueError) as e:
        raise _malformed(str(e)) from None
    r = Reader(raw)
    try:
        h = json.loads(r.take(r.varint("header length"), "header").decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise _malformed(str(e)) from None
    if not (isinstance(h, dict) and isinstance(h.get("items"), dict)):
        raise _malformed("no item table")
    tree = h.get("structure", "chain")
    if tree not in ("chain", "tree"):
        raise _malformed(f"structure {tree!r}")
    if any(k in h for k in _TABLES):
        raise _malformed("a table in the JSON part")
    n, c = r.varint("image count"), r.varint("chain count")
    if n > len(raw) or c > n:  # every image has at least 2 bytes of name; a chain an image
        raise _malformed(f"{n} images in {c} chains")
    h["chains"] = [r.varint("chain length") for _ in range(c)]
    for v in h["chains"]:
        if not 1 <= v <= n:
            raise _malformed(f"chain length = {v}")
    if sum(h["chains"]) != n:
        raise _malformed(f"chains hold {sum(h['chains'])} items, the table {n}")
    h["items"]["name"] = decode_names(r, n)
    if r.pos != len(raw):
        raise _malformed(f"{len(raw) - r.pos} bytes after the tables")
    tail = Reader(d.unused_data)
    h["streams"] = [tail.varint("stream length") for _ in range(c)]
    h["stream_crc32"] = [_U32.unpack(tail.take(4, "stream checksums"))[0] for _ in range(c)]
    h["order"] = decode_perm(tail.take(perm_bytes(n), "chain order"), n)
    if tree == "tree":
        h["parents"] = unpack_parents(tail.take(parents_bytes(h["chains"]), "tree parents"), h["chains"])
    if tail.pos != len(tail.data):
        last = "tree parents" if tree == "tree" else "chain order"
        raise _malformed(f"{len(tail.data) - tail.pos} bytes after the {last}")
    return h
