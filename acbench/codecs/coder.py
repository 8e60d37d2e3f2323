"""Batched calls into CompressAI's rANS coder: the same bytes as its entropy models, faster.

CompressAI's ``EntropyModel.compress`` / ``decompress`` convert the whole padded CDF table to
Python lists for every image (64 × 3133 ints for MSHP's Gaussian conditional), and
``GaussianConditional.build_indexes`` makes one pass over the scales per table entry. Here the
tables are converted once per table version (kept while the table tensors live unchanged),
each row cut to its CDF length, and indexes come from one ``torch.bucketize``. The strings are
byte-identical to CompressAI's (``tests/test_codecs.py`` checks); chain coding is ~4× faster
end to end (``make bench``).

Single streams: every function also takes ``streams``, one rANS coder per batch item. When
compressing, each item's symbols are *also* appended to its :class:`Stream` (the
per-image strings are still returned), so that many images — a whole chain — share one stream
and one flush (:class:`Stream`, :class:`Tee`). When decompressing, symbols are read
from each item's ``RansDecoder`` (:func:`stream_decoders`) instead of from ``strings``. A codec
writes an image's symbols in the order its decoder needs them (z, then y); rANS is last-in
first-out, and a stream codes its buffered symbols backwards on ``flush``, so the
decoder reads them in the order they were written, image after image.
"""

from __future__ import annotations

import weakref
from array import array
from collections.abc import Sequence
from typing import Any

import torch
from compressai.entropy_models import EntropyBottleneck, EntropyModel, GaussianConditional

_TABLES: weakref.WeakKeyDictionary[EntropyModel, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def tables(em: EntropyModel) -> tuple[list[list[int]], list[int], list[int]]:
    """``em``'s (cdf rows cut to their lengths, lengths, offsets) as lists, cached."""
    bufs = (em._quantized_cdf, em._cdf_length, em._offset)
    hit = _TABLES.get(em)
    if hit is not None and all(r() is b and v == b._version for (r, v), b in zip(hit[0], bufs)):
        return hit[1]
    if em._quantized_cdf.numel() == 0:
        raise RuntimeError("entropy coder tables are empty; call update(force=True) before coding")
    lengths = em._cdf_length.reshape(-1).int().tolist()
    cdf = [row[:n] for row, n in zip(em._quantized_cdf.tolist(), lengths)]
    tables = (cdf, lengths, em._offset.reshape(-1).int().tolist())
    _TABLES[em] = (tuple((weakref.ref(b), b._version) for b in bufs), tables)
    return tables


class Stream:
    """One rANS stream fed by many calls (images, components): ``flush()`` gives its bytes.

    The bytes of compressai's ``BufferedRansEncoder`` fed the same calls, made faster and
    smaller: that encoder converts the CDF tables from Python on every call (most of a small
    image's coding time), so this one keeps the symbols (4 bytes each, with their table index)
    and hands them over on ``flush`` in a few large calls, with the tables of every call (kept by
    identity: :func:`tables` caches them) side by side. rANS bytes do not depend on how the
    symbols are split into calls.
    """

    CHUNK = 1 << 20  # symbols per call on flush: the tables' conversion is paid once per chunk

    def __init__(self) -> None:
        self._parts: list[tuple[array, array, tuple[Any, Any, Any]]] = []

    def encode_with_indexes(
        self, symbols: list[int], indexes: list[int], cdfs: Any, lengths: Any, offsets: Any
    ) -> None:
        self._parts.append((array("i", symbols), array("i", indexes), (cdfs, lengths, offsets)))

    def flush(self) -> bytes:
        from compressai.ans import BufferedRansEncoder

        first: dict[int, int] = {}  # id of a table -> its first row in the merged table
        cdf: list[list[int]] = []
        lengths: list[int] = []
        offsets: list[int] = []
        for _, _, (c, n, o) in self._parts:
            if id(c) not in first:
                first[id(c)] = len(cdf)
                cdf, lengths, offsets = cdf + list(c), lengths + list(n), offsets + list(o)
        enc = BufferedRansEncoder()
        symbols: list[int] = []
        indexes: list[int] = []
        for sym, idx, (c, _, _) in self._parts:
            shift = first[id(c)]
            symbols += sym
            indexes += [i + shift for i in idx] if shift else idx
            if len(symbols) >= self.CHUNK:
                enc.encode_with_indexes(symbols, indexes, cdf, lengths, offsets)
                symbols, indexes = [], []
        if symbols:
            enc.encode_with_indexes(symbols, indexes, cdf, lengths, offsets)
        self._parts = []
        return enc.flush()


def stream_encoders(n: int) -> list[Stream]:
    """``n`` empty single streams: ``encode_with_indexes`` appends, ``flush()`` gives the bytes."""
    return [Stream() for _ in range(n)]


def stream_decoders(blobs: Sequence[bytes]) -> list[Any]:
    """One compressai ``RansDecoder`` reading each single stream, from its start."""
    from compressai.ans import RansDecoder

    out = []
    for b in blobs:
        dec = RansDecoder()
        dec.set_stream(bytes(b))
        out.append(dec)
    return out


class Tee:
    """An encoder that appends every symbol to several streams (e.g. a chain's stream and a
    stream of this image alone, to measure both from one coding pass)."""

    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def encode_with_indexes(self, *args: Any) -> None:
        for s in self.streams:
            s.encode_with_indexes(*args)


def gaussian_indexes(gc: GaussianConditional, scales: torch.Tensor) -> torch.Tensor:
    """``gc.build_indexes(scales)`` in one pass.

    CompressAI computes ``(K-1) - #{t in table[:-1] : scale <= t}``; for an ascending table that
    is ``#{t in table[:-1] : t < scale}``, which ``bucketize(right=False)`` returns directly.
    """
    scales = gc.lower_bound_scale(scales)
    return torch.bucketize(scales, gc.scale_table[:-1].to(scales), right=False).int()


def compress(
    em: EntropyModel,
    x: torch.Tensor,
    indexes: torch.Tensor,
    means: torch.Tensor | None = None,
    streams: Sequence[Any] | None = None,
) -> list[bytes]:
    """``em.compress(x, indexes, means)``: one string per batch item (also appended to
    ``streams[i]`` when given)."""
    if x.size() != indexes.size():
        raise ValueError(f"inputs {tuple(x.shape)} and indexes {tuple(indexes.shape)} differ in size")
    cdf, lengths, offsets = tables(em)
    symbols = em.quantize(x, "symbols", means).reshape(len(x), -1).int().tolist()
    idx = indexes.reshape(len(x), -1).int().tolist()
    encode = em.entropy_coder.encode_with_indexes
    if streams is not None:
        for enc, s, i in zip(streams, symbols, idx, strict=True):
            enc.encode_with_indexes(s, i, cdf, lengths, offsets)
    return [encode(s, i, cdf, lengths, offsets) for s, i in zip(symbols, idx)]


def decompress(
    em: EntropyModel,
    strings: list[bytes] | None,
    indexes: torch.Tensor,
    means: torch.Tensor | None = None,
    streams: Sequence[Any] | None = None,
) -> torch.Tensor:
    """``em.decompress(strings, indexes, means=means)``: the dequantized tensor; read from the
    decoders ``streams`` instead of ``strings`` when given."""
    cdf, lengths, offsets = tables(em)
    idx = indexes.reshape(len(indexes), -1).int().tolist()
    if streams is not None:
        if len(streams) != len(indexes):
            raise ValueError(f"{len(streams)} streams for {len(indexes)} index maps")
        values = [dec.decode_stream(i, cdf, lengths, offsets) for dec, i in zip(streams, idx)]
    else:
        if strings is None or len(strings) != len(indexes):
            raise ValueError(f"{len(strings or [])} strings for {len(indexes)} index maps")
        decode = em.entropy_coder.decode_with_indexes
        values = [decode(s, i, cdf, lengths, offsets) for s, i in zip(strings, idx)]
    q = torch.tensor(values, dtype=em._quantized_cdf.dtype, device=indexes.device).reshape(indexes.shape)
    return em.dequantize(q, means, torch.float)


def _bottleneck_args(
    eb: EntropyBottleneck, n: int, size: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    channels = eb._quantized_cdf.size(0)
    indexes = eb._build_indexes((n, channels, *size)).to(eb._quantized_cdf.device)
    medians = eb._get_medians().detach().reshape(1, -1, *([1] * len(size))).expand(n, -1, *size)
    return indexes, medians


def bottleneck_compress(
    eb: EntropyBottleneck, z: torch.Tensor, streams: Sequence[Any] | None = None
) -> list[bytes]:
    """``eb.compress(z)``."""
    indexes, medians = _bottleneck_args(eb, len(z), tuple(z.shape[2:]))
    return compress(eb, z, indexes, medians, streams)


def bottleneck_decompress(
    eb: EntropyBottleneck,
    strings: list[bytes] | None,
    size: tuple[int, ...],
    streams: Sequence[Any] | None = None,
) -> torch.Tensor:
    """``eb.decompress(strings, size)``."""
    n = len(streams) if streams is not None else len(strings or [])
    indexes, medians = _bottleneck_args(eb, n, tuple(size))
    return decompress(eb, strings, indexes, medians, streams)
