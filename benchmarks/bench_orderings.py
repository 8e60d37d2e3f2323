"""Fit time and peak memory of every ordering at several sizes (one subprocess per measurement).

    python benchmarks/bench_orderings.py --sizes 1000 10000 100000
    python benchmarks/bench_orderings.py --sizes 10000 30000 100000 --orderings greedy_chain spectral

Features are a clustered synthetic Gaussian mixture (``--dim`` dims, 50 clusters, each with an
8-dim linear structure plus isotropic noise; the cluster is the label). Each (ordering, N) runs in
a fresh Python process so that its peak RSS is honest; ``cold`` is the first fit in that process
(imports, numba compilation included), ``fit`` the median of ``--repeats`` fits when N <= 10k
(one fit above). ``place`` orders N/4 further items of the same mixture with the fitted model.
Growth exponents come from the two largest sizes and are extrapolated to 1.28 M items (ImageNet).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

IMAGENET = 1_281_167


def make_features(n: int, dim: int = 192, clusters: int = 50, seed: int = 0):
    """Clustered Gaussian mixture: features float32 [n, dim], labels int [n]."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * 3.0
    basis = rng.normal(size=(clusters, 8, dim)) * 0.5
    labels = rng.integers(0, clusters, n)
    x = np.empty((n, dim), dtype=np.float32)
    for c in range(clusters):  # cluster by cluster, so the generator stays light in memory
        idx = np.flatnonzero(labels == c)
        z = rng.normal(size=(len(idx), 8))
        x[idx] = centres[c] + z @ basis[c] + rng.normal(size=(len(idx), dim)) * 0.3
    return x, labels


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(name: str, n: int, dim: int, repeats: int) -> dict:
    """Runs in the subprocess: fit ``repeats`` times, place once; report times and memory."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from acbench.orderings.quality import ordering_quality
    from acbench.registry import ORDERINGS

    x_all, y_all = make_features(n + n // 4, dim)
    x, y, x_new, y_new = x_all[:n], y_all[:n], x_all[n:], y_all[n:]
    factory = ORDERINGS.get(name)
    rss0 = _rss_mb()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model = factory().fit(x, y)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    model.place(x_new, y_new)
    place_s = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q = ordering_quality(x, model.order_, y)
    return {
        "ordering": name,
        "n": n,
        "dim": dim,
        "cold_s": times[0],
        "fit_s": statistics.median(times),
        "repeats": repeats,
        "place_s": place_s,
        "peak_rss_mb": peak,
        "delta_rss_mb": peak - rss0,
        "q_dist_ratio": q["q_dist_ratio"],
        "q_same_class": q["q_same_class"],
    }


def run(name: str, n: int, dim: int, repeats: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, str(n), str(dim), str(repeats)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ordering": name, "n": n, "error": f"timeout after {timeout:.0f} s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"ordering": name, "n": n, "error": f"exit {out.returncode}: {tail}"}
    return json.loads(lines[-1])


def table(rows: list[dict]) -> str:
    head = (
        "| ordering | N | fit s (median) | cold s | place s (N/4) | peak RSS MB | Δ RSS MB "
        "| dist ratio | same class |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    out = [head]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['ordering']} | {r['n']} | {r['error']} | | | | | | |")
            continue
        out.append(
            f"| {r['ordering']} | {r['n']} | {r['fit_s']:.2f} (×{r['repeats']}) | "
            f"{r['cold_s']:.2f} | {r['place_s']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{r['delta_rss_mb']:.0f} | {r['q_dist_ratio']:.3f} | {r['q_same_class']:.3f} |"
        )
    return "\n".join(out)


def growth(rows: list[dict]) -> str:
    """Fit-time exponent between the two largest sizes, extrapolated to ImageNet."""
    out = [
        "| ordering | sizes | time exponent | est. fit at 1.28 M | peak RSS exponent | est. RSS at 1.28 M |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name in sorted({r["ordering"] for r in rows}):
        ok = sorted((r for r in rows if r["ordering"] == name and "error" not in r), key=lambda r: r["n"])
        if len(ok) < 2:
            continue
        a, b = ok[-2], ok[-1]
        span = math.log(b["n"] / a["n"])
        bt = math.log(max(b["fit_s"], 1e-3) / max(a["fit_s"], 1e-3)) / span
        bm = math.log(max(b["peak_rss_mb"], 1) / max(a["peak_rss_mb"], 1)) / span
        t = b["fit_s"] * (IMAGENET / b["n"]) ** bt
        m = b["peak_rss_mb"] * (IMAGENET / b["n"]) ** bm
        out.append(
            f"| {name} | {a['n']}→{b['n']} | {bt:.2f} | {t / 60:.1f} min | {bm:.2f} | {m / 1024:.1f} GB |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--orderings", nargs="+", default=None, help="default: all registered")
    ap.add_argument("--dim", type=int, default=192)
    ap.add_argument("--repeats", type=int, default=3, help="fits per measurement when N <= 10k")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    ap.add_argument("--json", help="also append every measurement to this JSON-lines file")
    ap.add_argument("--report", help="only print the tables of a JSON-lines file")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        name, n, dim, repeats = args.worker
        print(json.dumps(worker(name, int(n), int(dim), int(repeats))), flush=True)
        return
    if args.report:
        with open(args.report) as f:
            rows = sorted((json.loads(ln) for ln in f if ln.strip()), key=lambda r: (r["n"], r["ordering"]))
        print(table(rows) + "\n\n" + growth(rows))
        return
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from acbench.registry import ORDERINGS

    names = args.orderings or ORDERINGS.names()
    rows = []
    for n in args.sizes:
        for name in names:
            r = run(name, n, args.dim, args.repeats if n <= 10_000 else 1, args.timeout)
            rows.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(r) + "\n")
    print(f"cores: {os.cpu_count()}, dim: {args.dim}, load average: {os.getloadavg()[0]:.1f}\n")
    print(table(rows))
    g = growth(rows)
    if g.count("\n") > 1:
        print("\n" + g)


if __name__ == "__main__":
    main()
