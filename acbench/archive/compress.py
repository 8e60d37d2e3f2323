"""Archives, compress (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from acbench.archive.coding import _Coder, _one_thread, _run_chains, encode_chain
from acbench.archive.format import (
    _CODER_KEYS,
    _COLS,
    _PREFIX,
    FORMAT_VERSION,
    MAGIC,
    ArchiveError,
    Progress,
    _pix_crc32,
    _platform,
)
from acbench.archive.images import _image_exts, _size, _thumb, output_names, read_image, scan
from acbench.archive.info import archive_info
from acbench.archive.layout import encode_header
from acbench.archive.models import RunInfo, _sha256, open_run
from acbench.archive.names import check_name
from acbench.store import atomic_write


def _features(
    src: Path, names: list[str], run: RunInfo, codec: Any, progress: Progress | None
) -> tuple[np.ndarray, str]:
    """Ordering features of every image, a batch of at most ~1 Mpx at a time (memory: one batch)."""
    from acbench.features import embed

    sizes = [_size(src / rel) for rel in names]
    same = len(set(sizes)) == 1 and sizes[0][0] * sizes[0][1] <= 512 * 512
    side = None if same else max(run.tile, codec.stride)
    px = side * side if side else sizes[0][0] * sizes[0][1]
    batch = max(1, min(32, (1 << 20) // px))
    feats = []
    with _one_thread():  # small convs: one thread is faster than contended several
        for b0 in range(0, len(names), batch):
            chunk = []
            for rel in names[b0 : b0 + batch]:
                a, _ = read_image(src / rel)
                if side:
                    a = _thumb(a, side)
                chunk.append(a.transpose(2, 0, 1))
            feats.append(embed(np.ascontiguousarray(np.stack(chunk)), run.features, codec, batch))
            if progress:
                progress("embed", min(b0 + batch, len(names)), len(names), {})
    return np.concatenate(feats), (f"{side}x{side} centre thumbnails" if side else "native size")


def _order(feats: np.ndarray, labels: np.ndarray, run: RunInfo) -> tuple[np.ndarray, str]:
    from acbench.registry import ORDERINGS, UnknownPluginError

    n = len(feats)
    name = run.ordering.get("name", "random")
    if n < 3:
        return np.arange(n), "fewer than 3 images: name order"
    try:
        cls = ORDERINGS.get(name)
    except (UnknownPluginError, ImportError) as e:
        raise ArchiveError(
            f"the run's ordering {name!r} cannot be used here ({e}); install the plugin that provides it"
        ) from None
    try:
        est = cls(**{"random_state": run.seed, **dict(run.ordering.get("params") or {})}).fit(feats, labels)
        order = np.asarray(est.order_, dtype=np.int64)
        if sorted(order.tolist()) != list(range(n)):
            raise ValueError("order_ is not a permutation of the images")
    except Exception as e:  # a plugin failing on an unusual folder must not block compression
        return np.arange(n), f"{name} failed on these {n} images ({type(e).__name__}: {e}); name order used"
    return order, ""


def compress_folder(
    src: Path,
    out: Path,
    run_dir: Path | None = None,
    model: Path | None = None,
    embed_model: bool = False,
    jobs: int = 1,
    overwrite: bool = False,
    progress: Progress | None = None,
    baseline_estimate: bool = True,
) -> dict[str, Any]:
    """Compress every image under ``src`` (nested folders too) into the archive ``out``.

    Args:
        src: folder of images (any size, any PIL-readable format).
        out: archive file to write (``.acb`` by convention).
        run_dir: a conditional run directory (``runs/<run id>``).
        model: alternatively, the run's ``model.pt`` (its folder is the run directory).
        embed_model: store both checkpoints in the archive (decoding then needs nothing else).
        jobs: chains coded in parallel processes (the archive's bytes do not depend on it).
        overwrite: replace an existing ``out``.
        progress: ``progress(label, done, total, logs)`` (the runner's signature).
        baseline_estimate: also code every conditioned image alone with the baseline, for the
            "vs baseline" figures in the summary and ``info`` (about 1.4× the coding time).

    Returns:
        summary: :func:`archive_info` of the new archive without its ``items`` — ``images``,
        ``chains``, ``bytes`` (file size), ``bpp_file`` (file size × 8 / pixels, overheads
        included), ``bpp_streams``, ``bpp_est`` (the model's estimate), ``bpp_baseline_est`` /
        ``bpp_baseline_real`` (each image alone with the baseline), ``overhead_bytes``,
        ``model_bytes``, ``psnr_mean``, ``ordering`` — plus ``psnr_min`` / ``psnr_min_name`` (the
        image farthest from its original), ``archive``, ``run_id``, ``note``
        (non-empty when the ordering fell back to name order) and ``seconds``.
        :func:`format_info` prints it.

    Raises:
        ArchiveError: bad folder, output, run or image; the message says what to do.
    """
    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ArchiveError(f"{src}: not a folder; pass a folder of images")
    if out.is_dir():
        raise ArchiveError(f"{out} is a folder; give the archive's file name (e.g. {out / 'data.acb'})")
    if out.exists() and not overwrite:
        raise ArchiveError(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise ArchiveError(f"{out.parent}: no such folder for the archive; create it first")
    if jobs < 1:
        raise ArchiveError(f"jobs must be >= 1 (got {jobs})")
    run = open_run(run_dir, model)
    coder = _Coder(*run.codecs)
    names = scan(src)
    if not names:
        raise ArchiveError(f"no images under {src} (looked for {', '.join(sorted(_image_exts())[:8])}, ...)")
    outs = output_names(names)
    for o in outs:
        try:
            check_name(o)
        except ArchiveError:
            raise ArchiveError(f"{o!r}: this file name cannot be stored portably; rename it") from None
    feats, how = _features(src, names, run, coder.first, progress)
    from acbench.data.folder import class_of

    labels = np.unique(class_of(names), return_inverse=True)[1]
    order, note = _order(feats, labels, run)
    trees: list[list[int]] | None = None
    if run.structure == "tree":
        chains, trees = _trees(feats, order, run)
    else:
        from acbench.evaluate import chains_of

        chains = [order[c].tolist() for c in chains_of(len(order), run.chain)]
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tasks = [
            (
                str(src),
                [names[i] for i in ch],
                str(tmpdir / f"{cid}.bin"),
                baseline_estimate,
                trees[cid] if trees else None,
            )
            for cid, ch in enumerate(chains)
        ]
        coded = _run_chains(
            encode_chain,
            tasks,
            [len(c) for c in chains],
            jobs,
            coder,
            (run.first, run.conditional),
            progress,
            "compress",
        )
        recs = [c[0] for c in coded]
        streams = [c[1] for c in coded]
        files = [t[2] for t in tasks]
        _write_archive(out, run, chains, outs, recs, streams, files, embed_model, how, note, trees)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    summary = {k: v for k, v in archive_info(out).items() if k != "items"}
    worst = min(
        ((r["psnr"], outs[i]) for ch, rs in zip(chains, recs) for i, r in zip(ch, rs)),
        key=lambda t: t[0],
    )
    return {
        **summary,
        "psnr_min": worst[0],
        "psnr_min_name": worst[1],
        "archive": str(out),
        "run_id": run.run_id,
        "note": note,
        "seconds": time.perf_counter() - t0,
    }


def _trees(feats: np.ndarray, order: np.ndarray, run: RunInfo) -> tuple[list[list[int]], list[list[int]]]:
    """The spanning forest rooted by the ordering, cut at depth ``run.chain`` (as evaluation
    codes it): its trees (image indices in coding order) and each tree's local parent indices."""
    from acbench.orderings.tree import SpanningTree, cut, units

    coding, parent = SpanningTree(random_state=run.seed).tree(feats, order)
    short = cut(parent, coding, run.chain)
    chains, trees = [], []
    for unit in units(short, coding):
        local = {int(g): k for k, g in enumerate(unit)}
        chains.append(unit.tolist())
        trees.append([-1] + [local[int(short[g])] for g in unit[1:]])
    return chains, trees


def _pack_items(flat: list[dict[str, Any]], names: list[str], stride: int) -> dict[str, Any]:
    """Column layout of the item table, made small: per-item overhead counts in the file's bpp.

    A column whose items all agree is stored as that one value; ``src`` is ``None`` when it
    equals the output name and only its suffix (``".jpg"``) when it differs from it only there;
    ``shape`` is left out when every z grid is the padded size over ``stride``. Items carry no
    stream lengths or checksums: their chain's stream does.
    """
    items: dict[str, Any] = {c: [r[c] for r in flat] for c in _COLS}
    items["name"] = names
    src = []
    for r, n in zip(flat, names, strict=True):
        s = r["src"]
        tail = s[len(n) - 4 :] if s.startswith(n[:-4]) else None
        if s == n:
            src.append(None)
        elif tail is not None and "/" not in tail and (tail == "" or tail.startswith(".")):
            src.append(tail)
        else:
            src.append(s)
    items["src"] = src
    for c in (*_COLS, "src"):
        if len(set(map(repr, items[c]))) == 1:
            items[c] = items[c][0]
    if any(r["shape"] != [-(-r["h"] // stride), -(-r["w"] // stride)] for r in flat):
        items["shape"] = [r["shape"] for r in flat]
    return items


def _totals(flat: list[dict[str, Any]], streams: list[dict[str, int]]) -> dict[str, Any]:
    """Statistics for ``info``, kept as totals: per-image figures would cost bytes per image."""
    finite = [r["psnr"] for r in flat if math.isfinite(r["psnr"])]
    complete = all(r["base_stream_bytes"] is not None for r in flat)
    return {
        "base_chain_bytes": sum(s["base_bytes"] for s in streams) if complete else None,
        "bits_est": round(sum(r["bits_est"] for r in flat), 1),
        "image_bytes": sum(r["image_bytes"] for r in flat),
        "base_bits_est": round(sum(r["base_bits_est"] for r in flat), 1) if complete else None,
        "base_bytes": sum(r["base_bytes"] for r in flat) if complete else None,
        "base_stream_bytes": sum(r["base_stream_bytes"] for r in flat) if complete else None,
        "psnr_mean": round(sum(finite) / len(finite), 3) if finite else None,
    }


def _write_archive(
    out: Path,
    run: RunInfo,
    chains: list[list[int]],
    outs: list[str],
    recs: list[list[dict]],
    streams: list[dict[str, int]],
    chain_files: list[str],
    embed: bool,
    how: str,
    note: str,
    trees: list[list[int]] | None = None,
) -> None:
    # the item table in sorted-name order (names front-code well so); ``order`` lists the table
    # rows in decoding order, chain after chain: the permutation is the chain structure
    by_item = {i: r for ch, rs in zip(chains, recs, strict=True) for i, r in zip(ch, rs, strict=True)}
    table = sorted(by_item, key=lambda i: outs[i])
    row = {i: k for k, i in enumerate(table)}
    flat = [by_item[i] for i in table]
    items = _pack_items(flat, [outs[i] for i in table], run.codecs[1].stride)
    embedded, off = {}, 0
    if embed:
        for mf in (run.first, run.conditional):
            embedded[mf.role] = (off, mf.size)
            off += mf.size
    plat = _platform()
    header = {
        "coder": {"acbench": _acbench_version(), **{k: plat[k] for k in _CODER_KEYS}},
        "model": {
            "run_id": run.run_id,
            "reference": run.config.get("reference", "latents"),
            "first": run.first.entry(embedded.get("first")),
            "conditional": run.conditional.entry(embedded.get("conditional")),
        },
        "ordering": {
            k: v
            for k, v in {**run.ordering, "features": run.features, "embedded_at": how, "note": note}.items()
            if v not in ("", {}, None)
        },
        "chain_length": run.chain,
        "chains": [len(c) for c in chains],
        "order": [row[i] for ch in chains for i in ch],
        "streams": [s["bytes"] for s in streams],
        "stream_crc32": [s["crc32"] for s in streams],
        "pix_crc32": _pix_crc32([c[-1]["chain_pix_crc32"] for c in recs]),
        "totals": _totals([r for rs in recs for r in rs], streams),
        "stride": run.codecs[1].stride,
        "items_offset": off,
        "items": items,
    }
    if trees:  # the parent indices are side information: in the header, counted in the file's size
        header["structure"] = "tree"
        header["parents"] = trees
    blob = encode_header(header)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(blob))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(prefix)
            f.write(blob)
            f.write(hashlib.sha256(prefix + blob).digest())
            if embed:
                for mf in (run.first, run.conditional):
                    data = mf.read()
                    if _sha256(data) != mf.sha256:
                        raise ArchiveError(f"{mf.path} changed during compression; run again")
                    f.write(data)
            for cf in chain_files:
                with open(cf, "rb") as g:
                    shutil.copyfileobj(g, f)

    atomic_write(out, write)


def _acbench_version() -> str:
    try:
        from importlib.metadata import version

        return version("acbench")
    except Exception:
        return "unknown"
