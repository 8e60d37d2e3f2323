"""Archives, coding (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acbench.archive.format import MAX_SIDE, ArchiveError, Progress
from acbench.archive.images import _chw, _psnr, _to_uint8, read_image
from acbench.archive.models import ModelFile, _load_model
from acbench.archive.names import _write_png


@contextmanager
def _one_thread() -> Iterator[None]:
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@dataclass
class _Coder:
    first: Any
    conditional: Any


_WORKER: dict[str, _Coder] = {}


def _init_worker(first: ModelFile, cond: ModelFile) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER["coder"] = _Coder(_load_model(first, "first-image model"), _load_model(cond, "conditional model"))


def _bits(lik) -> float:
    import torch

    return float(torch.log(lik).sum() / -math.log(2))


def encode_chain(
    coder: _Coder,
    src: str,
    items: list[str],
    path: str,
    baseline: bool,
    parents: list[int] | None = None,
    tick: Callable[[], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Code one chain into ``path`` as one rANS stream. With ``parents`` (a tree: item 0 the root,
    each other item's parent an earlier item) every item is conditioned on its parent's decoded
    state instead of the previous item's.

    Returns:
        one record per item (in chain order) and the stream's ``bytes`` and ``crc32`` (with
        ``baseline``, also ``base_bytes``: the chain's images coded alone by the baseline into
        one stream of their own, the flush-matched anchor).
    """
    import torch

    from acbench.codecs import coder as rans
    from acbench.codecs.base import pad_to

    recs = []
    refs: list[Any] = []
    pix = 0
    stream, base_chain = rans.stream_encoders(2)
    with torch.inference_mode():
        for pos, rel in enumerate(items):
            ref = None if pos == 0 else refs[_parent(parents, pos)]
            a, mode = read_image(Path(src) / rel)
            h, w = a.shape[:2]
            if max(h, w) > MAX_SIDE:
                raise ArchiveError(f"{rel}: {w}x{h} px is larger than {MAX_SIDE} px a side; downscale it")
            model = coder.first if pos == 0 else coder.conditional
            xp, _ = pad_to(_chw(a), model.stride)
            alone = rans.stream_encoders(1)[0] if baseline else None
            sink = rans.Tee(stream, alone, base_chain) if (pos == 0 and alone is not None) else stream
            enc = model.compress(xp, ref, need_x_hat=True, streams=[sink])
            rec_px = _to_uint8(enc["x_hat"][0, :, :h, :w])
            bits = sum(_bits(v) for v in enc["likelihoods"].values())
            own = sum(len(v[0]) for v in enc["strings"].values())  # per-image streams, for info
            if pos == 0 or not baseline:
                base_bits, base_bytes = (bits, own) if pos == 0 else (None, None)
            else:
                b = coder.first.compress(xp, streams=[rans.Tee(alone, base_chain)])
                base_bits = sum(_bits(v) for v in b["likelihoods"].values())
                base_bytes = sum(len(v[0]) for v in b["strings"].values())
            pix = zlib.crc32(rec_px.tobytes(), pix)
            recs.append(
                {
                    "src": rel,
                    "mode": mode,
                    "w": w,
                    "h": h,
                    "shape": [int(s) for s in enc["shape"]],
                    "image_bytes": own,
                    "chain_pix_crc32": pix,  # running: the last item's covers the chain
                    "psnr": _psnr(a, rec_px),
                    "bits_est": bits,
                    "base_bits_est": base_bits,
                    "base_bytes": base_bytes,
                    "base_stream_bytes": len(alone.flush()) if alone is not None else None,
                }
            )
            refs.append(enc["ref"])
            if tick:
                tick()
    data = stream.flush()
    with open(path, "wb") as f:
        f.write(data)
    meta = {"bytes": len(data), "crc32": zlib.crc32(data)}
    if baseline:
        meta["base_bytes"] = len(base_chain.flush())
    return recs, meta


def _parent(parents: list[int] | None, pos: int) -> int:
    """The item whose state conditions item ``pos`` of a chain (``parents is None``) or tree."""
    return pos - 1 if parents is None else parents[pos]


def decode_chain(
    coder: _Coder,
    archive: str,
    items: list[dict[str, Any]],
    stream: tuple[int, int, int],
    parents: list[int] | None = None,
    tick: Callable[[], None] | None = None,
) -> tuple[list[tuple[str, str]], int]:
    """Decode the items of one chain (or tree: ``parents`` as :func:`encode_chain`) from its
    stream, image after image. In one stream an item that fails takes every later item of its
    chain or tree with it (the decoder loses its place in the stream).

    ``items`` carry ``name``, ``w``, ``h``, ``shape`` and ``target``; ``stream`` is the chain's
    (offset, bytes, crc32) in ``archive``.

    Returns:
        ``(status, detail)`` per item — ``ok`` (written), ``corrupt`` / ``failed`` (not written),
        ``lost`` (an earlier item of the chain failed, or its stream is corrupt) — and the crc32
        of the chain's decoded pixels (the encoder records the same, :func:`encode_chain`).
    """
    import torch

    from acbench.codecs import coder as rans

    offset, size, crc = stream
    with open(archive, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    why = ""
    if len(data) < size:
        why = "truncated: the archive ends inside its chain's stream"
    elif zlib.crc32(data) != crc:
        why = "chain stream checksum mismatch"
    if why:
        first = items[0]["name"]
        return [("corrupt", why)] + [("lost", f"depends on {first} (same chain)")] * (len(items) - 1), 0
    out: list[tuple[str, str]] = []
    refs: list[Any] = []
    pix = 0
    (dec,) = rans.stream_decoders([data])
    with torch.inference_mode():
        for pos, it in enumerate(items):
            if out and out[-1][0] in ("corrupt", "failed", "lost"):
                out.append(("lost", f"depends on {items[pos - 1]['name']} (same chain)"))
                continue
            model = coder.first if pos == 0 else coder.conditional
            try:
                ref = refs[_parent(parents, pos)] if pos else None
                res = model.decompress(None, tuple(it["shape"]), ref, streams=[dec])
                px = _to_uint8(res["x_hat"][0, :, : it["h"], : it["w"]])
            except Exception as e:  # a crc-valid but undecodable stream (wrong model, forged file)
                out.append(("failed", f"decoding failed ({type(e).__name__}: {e})"))
                continue
            _write_png(Path(it["target"]), px)
            refs.append(res["ref"])
            pix = zlib.crc32(px.tobytes(), pix)
            out.append(("ok", ""))
            if tick:
                tick()
    return out, pix


def _in_worker(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(_WORKER["coder"], *args)


def _run_chains(
    fn: Callable[..., Any],
    tasks: list[tuple[Any, ...]],
    sizes: list[int],
    jobs: int,
    coder: _Coder,
    models: tuple[ModelFile, ModelFile],
    progress: Progress | None,
    label: str,
) -> list[Any]:
    """``fn(coder, *task)`` for every chain: in this process, or in ``jobs`` spawned processes."""
    total, done = sum(sizes), 0
    results: list[Any] = [None] * len(tasks)

    def report(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(label, done, total, {})

    if progress:
        progress(label, 0, total, {})
    if jobs <= 1 or len(tasks) <= 1:
        with _one_thread():
            for i, t in enumerate(tasks):
                results[i] = fn(coder, *t, lambda: report(1))
        return results
    import multiprocessing as mp
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # Not fork: forking after torch's thread pools started can hang. A fork server imports torch
    # and compressai once, so each worker starts in a fraction of the seconds spawn would take.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["acbench.archive", "compressai.models"])
    else:
        ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(
        min(jobs, len(tasks)), mp_context=ctx, initializer=_init_worker, initargs=models
    ) as ex:
        futs = {ex.submit(_in_worker, fn, *t): i for i, t in enumerate(tasks)}
        pending = set(futs)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in finished:
                    results[futs[fut]] = fut.result()
                    report(sizes[futs[fut]])
        except BrokenProcessPool:
            raise ArchiveError(
                "a worker process died (out of memory, or a calling script without "
                "`if __name__ == '__main__':`, which spawned workers need); retry with jobs=1"
            ) from None
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise
    return results
