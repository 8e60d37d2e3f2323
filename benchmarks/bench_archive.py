"""Archive throughput and overhead, side by side with CompressAI's per-image ``compress`` loop.

    python benchmarks/bench_archive.py [--quick] [--run RUNS/ID] [--images 48] [--size 128]
                                       [--jobs 2] [--rounds 3] [--eval-split] [--sizes-only]

Without ``--run`` it trains a small conditional run (MSHP N=32, M=48, random ordering, chain 4)
with the real pipeline under ``.cache/bench-archive`` (reused by later invocations). Inputs are
non-overlapping ``size``-px crops of the packaged photos, written as PNG; "MB/s" is of raw input
pixels (H·W·3 bytes). Every arm reads the PNGs from disk and every decode writes PNGs, so the arms
differ only in what they code:

- reference, ``compressai loop``: ``compress`` / ``decompress`` of the run's baseline (CompressAI's
  ``mbt2018-mean`` module with the same weights), one image at a time, one thread, strings kept in
  memory (no container, no checksums, no ordering).
- ``acbench compress``: load + hash the checkpoints, embed + order, chain coding with the
  reconstruction checksum, optionally the baseline-alone estimate, the archive file;
  ``acbench decompress``: load the checkpoints, integrity pass, chain decoding, PNG files.

As in ``benchlib``: arms alternate in ABBA order round by round, figures are medians, ratios are
medians of per-round ratios (min–max), > 1 means acbench is faster. ``rows(quick)`` feeds
``benchmarks/run_all.py``. Overhead = archive size − Σ bitstream bytes (header, checksums, names;
no embedded model).

Sizes, single stream vs per-image streams: the archive codes each chain as one rANS stream;
the same images coded with one stream per image and component (format 1) cost the per-image
strings, measured in the same pass. The table puts both side by side: bitstream bytes, the
archive (for per-image streams: this archive with its streams swapped, format 1's per-item
lengths and checksums not counted), the flush per image (stream bytes over the model's
estimate), and against each image coded alone by the baseline (per-image strings, one stream
per image, one stream per chain as here) and the multiset bound log2(N!)/N. ``--eval-split``
compresses the run's own eval split (its data config) instead of crops; ``--sizes-only``
compresses once and prints only that table and the header's parts (:func:`header_table`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def make_run(cache: Path, steps: int) -> Path:
    """A small conditional run made by the real pipeline (cached by run id)."""
    import torch

    from acbench.config import Component, TrainConfig, preset
    from acbench.executors import execute
    from acbench.runner import conditional_job, plan

    cfg = dataclasses.replace(
        preset("tiny"),
        codec=Component("mshp", {"N": 32, "M": 48}),
        ordering=Component("random"),
        lmbdas=(0.013,),
        chain=4,
        baseline_train=TrainConfig(steps=steps, batch=8, lr=1e-3, checkpoint_every=steps),
        train=TrainConfig(steps=max(1, steps // 4), batch=4, lr=3e-4, checkpoint_every=steps),
    )
    try:
        jobs = plan([cfg], controls=False)
    except TypeError:
        jobs = plan([cfg])
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcomes = execute(jobs, cache)
    finally:
        torch.set_num_threads(n)
    bad = [o for o in outcomes if o.status == "failed"]
    if bad:
        raise SystemExit(f"could not build the benchmark run: {bad[0].reason}")
    return cache / conditional_job(cfg, 0.013).id


def make_images(folder: Path, n: int, size: int) -> int:
    """``n`` non-overlapping crops of the packaged photos, one sub-folder per photo."""
    from PIL import Image

    from acbench.data.base import to_rgb_uint8
    from acbench.data.photos import _packaged_photos

    k = 0
    for name, img in _packaged_photos(False):
        a = to_rgb_uint8(img)
        for y in range(0, a.shape[0] - size + 1, size):
            for x in range(0, a.shape[1] - size + 1, size):
                if k == n:
                    return k
                (folder / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(a[y : y + size, x : x + size]).save(folder / name / f"{y}_{x}.png")
                k += 1
    return k


def write_eval_split(folder: Path, run: Path) -> tuple[int, int]:
    """The eval tiles of ``run``'s data config as PNG, one sub-folder per class (the label);
    returns their number and side."""
    import json

    from PIL import Image

    from acbench.config import DataConfig
    from acbench.data.cache import load_splits

    data = json.loads((run / "config.json").read_text())["data"]
    _, _, evl = load_splits(DataConfig(**data))
    for i, (px, label) in enumerate(zip(evl.pixels, evl.labels, strict=True)):
        (folder / evl.classes[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(px.transpose(1, 2, 0)).save(folder / evl.classes[label] / f"{i:04d}.png")
    return len(evl), int(evl.pixels.shape[-1])


def size_table(info: dict[str, Any]) -> str:
    """Single stream per chain vs per-image streams, side by side (markdown)."""
    from acbench.analysis.bd import multiset_bits

    n, px = info["images"], info["pixels"]
    file_after = info["bytes"] - info["trailing_bytes"]
    file_before = file_after - info["stream_bytes"] + info["image_stream_bytes"]
    base = {
        "per-image strings": info["bpp_baseline_real"],
        "one stream per image": info["bpp_baseline_stream"],
        "one stream per chain": info["bpp_baseline_chain_stream"],
    }
    ms = multiset_bits(n)

    def vs(bpp: float, ref: float | None) -> str:
        return "n/a" if not ref else f"{100 * (bpp / ref - 1):+.2f} %"

    rows = [
        ("bitstream bytes", f"{info['image_stream_bytes']:,}", f"{info['stream_bytes']:,}"),
        ("archive bytes", f"{file_before:,} (streams swapped)", f"{file_after:,}"),
        ("archive bpp", f"{8 * file_before / px:.4f}", f"{8 * file_after / px:.4f}"),
        (
            "flush per image (B over the estimate)",
            f"{info['flush_bytes_per_image_before']:.2f}",
            f"{info['flush_bytes_per_image']:.2f}",
        ),
        *(
            (f"file vs baseline alone, {k}", vs(8 * file_before / px, v), vs(8 * file_after / px, v))
            for k, v in base.items()
        ),
    ]
    head = [
        f"{n} images, {px:,} px, {info['chains']} chains of <= {info['chain_length']}; model estimate "
        f"{info['bpp_est']:.4f} bpp, baseline estimate "
        + (f"{info['bpp_baseline_est']:.4f} bpp" if info["bpp_baseline_est"] else "n/a")
        + (
            f" (content: {100 * (info['bpp_est'] / info['bpp_baseline_est'] - 1):+.2f} %)"
            if info["bpp_baseline_est"]
            else ""
        ),
        f"multiset bound log2(N!)/N = {ms:.2f} bits/image = {ms / 8:.2f} B/image"
        + (
            f" = {100 * ms * n / px / info['bpp_baseline_real']:.2f} % of the baseline alone"
            if info["bpp_baseline_real"]
            else ""
        ),
        "",
        f"| {'':<44} | {'per-image streams (format 1)':>30} | {'one stream per chain':>22} |",
        f"|{'-' * 46}|{'-' * 32}|{'-' * 24}|",
    ]
    return "\n".join(head + [f"| {a:<44} | {b:>30} | {c:>22} |" for a, b, c in rows])


def header_table(path: Path) -> str:
    """What the archive's overhead is made of (markdown): each part of the header's tables and
    its JSON fields, raw and as zlib codes it — alone, and what leaving it out of the whole saves
    (the parts share one zlib stream, so neither column adds up exactly to the header)."""
    import json
    import zlib

    from acbench.archive.format import _DIGEST, _PREFIX
    from acbench.archive.layout import Reader

    raw = path.read_bytes()
    hlen = _PREFIX.unpack_from(raw)[3]
    dz = zlib.decompressobj()
    d = dz.decompress(raw[_PREFIX.size : _PREFIX.size + hlen])
    stored = len(dz.unused_data)  # checksums and permutation, after the zlib stream
    r = Reader(d)
    meta_len = r.varint("meta")
    meta_at = r.pos
    meta = json.loads(r.take(meta_len, "meta"))
    spans: list[tuple[str, int, int]] = []
    at = r.pos
    n, c = r.varint("n"), r.varint("c")
    spans.append(("counts (varints)", at, r.pos))
    at = r.pos
    for _ in range(c):
        r.varint("chain lengths")
    spans.append(("chain lengths (varints)", at, r.pos))
    spans.append(("names, sorted, front-coded", r.pos, len(d)))
    total = len(zlib.compress(d, 9))

    def z(b: bytes) -> int:
        return len(zlib.compress(b, 9))

    rows = [(f"zlib: {what}", b - a, z(d[a:b]), total - z(d[:a] + d[b:])) for what, a, b in spans]
    for k in sorted(meta):  # the JSON fields: marginal = the header without that field
        rest = json.dumps({x: v for x, v in meta.items() if x != k}, sort_keys=True, separators=(",", ":"))
        field = json.dumps(meta[k], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        without = d[:meta_at] + rest.encode() + d[meta_at + meta_len :]
        rows.append((f"zlib: JSON {k}", len(field), z(field), total - z(without)))
    t = Reader(dz.unused_data)
    for _ in range(c):
        t.varint("stream lengths")
    perm = stored - t.pos - 4 * c
    rows += [
        ("stored: stream lengths (varints)", t.pos, t.pos, t.pos),
        ("stored: stream crc32, one per chain", 4 * c, 4 * c, 4 * c),
        ("stored: chain order (permutation)", perm, perm, perm),
    ]
    lines = [
        f"header: {hlen:,} bytes ({hlen - stored:,} zlib of {len(d):,}, {stored} stored) + prefix "
        f"{_PREFIX.size} + sha256 {_DIGEST} = "
        f"{hlen + _PREFIX.size + _DIGEST:,} bytes, {(hlen + _PREFIX.size + _DIGEST) / n:.2f} per image "
        f"({n} images, {c} chains)",
        "",
        f"| {'part':<40} | {'raw B':>7} | {'zlib alone':>10} | {'zlib, marginal':>14} |",
        f"|{'-' * 42}|{'-' * 9}|{'-' * 12}|{'-' * 16}|",
    ]
    lines += [f"| {a:<40} | {b:>7,} | {c_:>10,} | {m:>14,} |" for a, b, c_, m in rows]
    return "\n".join(lines)


def sizes_only(run: Path, images: int, size: int, eval_split: bool, jobs: int) -> str:
    """Compress once (with the baseline-alone estimate) and return :func:`size_table`."""
    from acbench.archive import archive_info, compress_folder

    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        src = work / "images"
        n, size = write_eval_split(src, run) if eval_split else (make_images(src, images, size), size)
        t0 = time.perf_counter()
        compress_folder(src, work / "a.acb", run_dir=run, jobs=jobs)
        info = archive_info(work / "a.acb")
        secs = time.perf_counter() - t0
        header = header_table(work / "a.acb")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    what = f"the run's eval split ({n} tiles of {size} px)" if eval_split else f"{n} crops of {size} px"
    return (
        f"run {run.name}, {what}, compressed in {secs:.1f} s (jobs={jobs})\n"
        + size_table(info)
        + "\n\n"
        + header
    )


class CompressAILoop:
    """The reference: per-image ``compress`` then ``decompress`` of the baseline's compressai module."""

    def __init__(self, first: Any, files: list[Path], threads: int = 1) -> None:
        self.net, self.files, self.threads = first.base, files, threads
        self.coded: list[tuple[Any, Any, int, int]] = []
        self.bytes = 0

    def encode(self) -> float:
        import torch

        from acbench.archive import _chw, read_image
        from acbench.codecs.base import pad_to

        n = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                t0 = time.perf_counter()
                self.coded, self.bytes = [], 0
                for f in self.files:
                    a, _ = read_image(f)
                    xp, (h, w) = pad_to(_chw(a), 64)
                    enc = self.net.compress(xp)
                    self.coded.append((enc["strings"], enc["shape"], h, w))
                    self.bytes += sum(len(s[0]) for s in enc["strings"])
                return time.perf_counter() - t0
        finally:
            torch.set_num_threads(n)

    def decode(self, out: Path) -> float:
        import torch
        from PIL import Image

        from acbench.archive import _to_uint8

        out.mkdir(parents=True, exist_ok=True)
        n = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                t0 = time.perf_counter()
                for i, (strings, shape, h, w) in enumerate(self.coded):
                    x_hat = self.net.decompress(strings, shape)["x_hat"][0, :, :h, :w]
                    Image.fromarray(_to_uint8(x_hat)).save(out / f"{i}.png")
                return time.perf_counter() - t0
        finally:
            torch.set_num_threads(n)


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(
    quick: bool = False,
    run: Path | None = None,
    images: int = 48,
    size: int = 128,
    jobs: int = 2,
    rounds: int = 3,
    steps: int = 200,
    eval_split: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (``benchlib.Row`` fields) and extra figures for the printed table."""
    os.environ.setdefault("ACBENCH_CACHE", str(ROOT / ".cache" / "test-data"))
    from acbench.archive import archive_info, compress_folder, decompress_archive, open_run, scan

    if quick:
        images, rounds, steps, jobs = min(images, 12), 1, min(steps, 20), 1
    run_dir = run or make_run(ROOT / ".cache" / "bench-archive", steps)
    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        src = work / "images"
        n, size = write_eval_split(src, run_dir) if eval_split else (make_images(src, images, size), size)
        files = [src / f for f in scan(src)]
        mb = n * size * size * 3 / 1e6
        ref = CompressAILoop(open_run(run_dir).codecs[0], files)
        arc = work / "a.acb"

        def compress(j: int, estimate: bool) -> Callable[[int], float]:
            return lambda r: _timed(
                lambda: compress_folder(
                    src, arc, run_dir=run_dir, jobs=j, overwrite=True, baseline_estimate=estimate
                )
            )

        def decompress(j: int) -> Callable[[int], float]:
            def arm(r: int) -> float:
                shutil.rmtree(work / "out", ignore_errors=True)
                return _timed(lambda: decompress_archive(arc, work / "out", runs_root=run_dir.parent, jobs=j))

            return arm

        # warm-up (imports, first-call allocations, the fork server), then the interleaved rounds
        ref.encode(), ref.decode(work / "ref-out")
        compress(jobs, True)(0), decompress(jobs)(0)
        arms: dict[str, Callable[[int], float]] = {
            "ref_enc": lambda r: ref.encode(),
            "enc": compress(1, True),
            "enc_noest": compress(1, False),
            "ref_dec": lambda r: ref.decode(work / "ref-out"),
            "dec": decompress(1),
        }
        if jobs > 1:
            arms[f"enc_j{jobs}"] = compress(jobs, False)
            arms[f"dec_j{jobs}"] = decompress(jobs)
        times: dict[str, list[float]] = {k: [] for k in arms}
        names = list(arms)
        for r in range(rounds):
            for k in names if r % 2 == 0 else names[::-1]:
                times[k].append(arms[k](r))
        compress(1, True)(0)  # the archive measured below has the baseline estimate
        info = archive_info(arc)
        cai_bpp = 8 * ref.bytes / info["pixels"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def row(name: str, arm: str, ref_arm: str, note: str = "") -> dict[str, Any]:
        ratios = [b / a for a, b in zip(times[arm], times[ref_arm], strict=True)]  # throughput ratio
        return {
            "name": name,
            "acbench": n / statistics.median(times[arm]),
            "reference": n / statistics.median(times[ref_arm]),
            "unit": "img/s",
            "ratio": statistics.median(ratios),
            "ratio_lo": min(ratios),
            "ratio_hi": max(ratios),
            "note": note,
        }

    rows = [
        row(
            "archive compress, 1 process (vs compressai per-image compress)",
            "enc",
            "ref_enc",
            "with the baseline-alone estimate (each conditioned image coded twice)",
        ),
        row("archive compress, no baseline estimate", "enc_noest", "ref_enc"),
        row(
            "archive decompress, 1 process (vs compressai per-image decompress)",
            "dec",
            "ref_dec",
            "integrity pass + chain decoding + PNG files",
        ),
    ]
    if jobs > 1:
        rows += [
            row(
                f"archive compress, {jobs} processes",
                f"enc_j{jobs}",
                "ref_enc",
                "fork-server start-up not included (once per command)",
            ),
            row(f"archive decompress, {jobs} processes", f"dec_j{jobs}", "ref_dec"),
        ]
    over = info["overhead_bytes"]
    rows += [
        {
            "name": "archive overhead per image (file − bitstreams)",
            "acbench": over / n,
            "unit": "B",
            "note": f"{100 * over / info['bytes']:.1f} % of the file ({n} images of {size} px)",
        },
        {
            "name": "flush per image, one stream per chain (vs per-image streams)",
            "acbench": info["flush_bytes_per_image"],
            "reference": info["flush_bytes_per_image_before"],
            "unit": "B",
            "ratio": info["flush_bytes_per_image_before"] / info["flush_bytes_per_image"],
            "note": "bitstream bytes over the model's estimate, per image",
        },
        {
            "name": "archive file bpp (vs compressai per-image bitstreams)",
            "acbench": info["bpp_file"],
            "reference": cai_bpp,
            "unit": "bpp",
            "ratio": cai_bpp / info["bpp_file"],
            "note": "ratio > 1: the archive, overheads included, is smaller",
        },
    ]
    extra = {
        "n": n,
        "size": size,
        "mb": mb,
        "times": times,
        "info": info,
        "run": run_dir.name,
        "cai_bpp": cai_bpp,
        "rounds": rounds,
    }
    return rows, extra


def rows(quick: bool = False) -> list[dict[str, Any]]:
    """``benchmarks/run_all.py`` hook."""
    return measure(quick=quick)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description="acbench archive vs compressai per-image coding")
    ap.add_argument("--quick", action="store_true", help="12 images, 1 round, no parallel arm")
    ap.add_argument("--run", type=Path, help="a conditional run directory (default: train one)")
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--jobs", type=int, default=2, help="also time this many parallel processes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200, help="baseline training steps of the default run")
    ap.add_argument("--eval-split", action="store_true", help="code the run's eval split (needs --run)")
    ap.add_argument("--sizes-only", action="store_true", help="compress once; print only the size table")
    a = ap.parse_args()
    import torch

    if a.eval_split and not a.run:
        ap.error("--eval-split needs --run")
    if a.sizes_only:
        os.environ.setdefault("ACBENCH_CACHE", str(ROOT / ".cache" / "test-data"))
        run = a.run or make_run(ROOT / ".cache" / "bench-archive", a.steps)
        print(sizes_only(run, a.images, a.size, a.eval_split, a.jobs))
        return
    rws, x = measure(a.quick, a.run, a.images, a.size, a.jobs, a.rounds, a.steps, a.eval_split)
    info = x["info"]
    print(
        f"\n{x['n']} images of {x['size']}x{x['size']} px ({x['mb']:.2f} MB raw RGB), run {x['run']} "
        f"(MSHP, {info['model']['first']['bytes'] // 1000} + {info['model']['conditional']['bytes'] // 1000} "
        f"kB checkpoints), {x['rounds']} interleaved rounds; torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n"
    )
    print(f"| {'arm':<46} | {'img/s':>7} | {'MB/s':>6} | {'s (median)':>10} | {'vs compressai':>17} |")
    print(f"|{'-' * 48}|{'-' * 9}|{'-' * 8}|{'-' * 12}|{'-' * 19}|")
    labels = {
        "ref_enc": "compressai loop: compress",
        "enc": "acbench compress (+ baseline estimate)",
        "enc_noest": "acbench compress",
        "ref_dec": "compressai loop: decompress",
        "dec": "acbench decompress",
    }
    for k, ts in x["times"].items():
        label = labels.get(k) or (
            f"acbench {'compress' if k.startswith('enc') else 'decompress'}, {k.split('_j')[1]} processes"
        )
        s = statistics.median(ts)
        ref = "ref_enc" if k.startswith(("enc", "ref_enc")) else "ref_dec"
        rs = [b / c for c, b in zip(ts, x["times"][ref], strict=True)]
        vs = "" if k.startswith("ref") else f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"
        print(f"| {label:<46} | {x['n'] / s:>7.1f} | {x['mb'] / s:>6.3f} | {s:>10.2f} | {vs:>17} |")
    over = info["overhead_bytes"]
    print(
        f"\narchive {info['bytes']:,} bytes = {info['stream_bytes']:,} bitstream + {over:,} overhead "
        f"({over / x['n']:.1f} bytes/image, {100 * over / info['bytes']:.1f} % of the file)\n"
        f"bpp: file {info['bpp_file']:.4f}, bitstreams {info['bpp_streams']:.4f}, model estimate "
        f"{info['bpp_est']:.4f}; each image alone with the baseline: {info['bpp_baseline_real']:.4f} real "
        f"(compressai loop {x['cai_bpp']:.4f}), {info['bpp_baseline_est']:.4f} estimated"
    )
    print("\n" + size_table(info))
    if any(math.isnan(r.get("ratio", 0.0)) for r in rws):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
