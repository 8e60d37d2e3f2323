"""Is the instrument stronger than the effects it measures? Three figures, side by side.

1. The shipped `cpu` baselines (acbench/zoo): PSNR and bpp per λ, dB per doubling of λ, and the
   convergence figure of each (validation loss change over the last 20 % of training).
2. With ``--runs`` (after ``make demo`` or any `cpu` run): the step-matched anchors' PSNR gain
   over their baselines at each λ (target <= 0.1 dB: the baseline has converged).
3. With ``--retrain LAM``: the same baseline config retrained here with 1 and with 2 threads,
   from the zoo build's shared pretraining (``--build-runs``, as left by `acbench zoo build`),
   against the shipped rows: per-λ PSNR within 0.05 dB and bpp within 0.5 % is the target.

    python benchmarks/trust.py
    python benchmarks/trust.py --runs runs
    python benchmarks/trust.py --retrain 0.013 --build-runs runs-zoo     # ~8 min on 2 cores
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def zoo_table() -> pd.DataFrame:
    from acbench import zoo
    from acbench.store import read_rows_csv

    out = []
    for run_id, e in zoo.manifest()["models"].items():
        rows = read_rows_csv(zoo.folder() / e["rows"])
        tot = rows[rows["component"] == "total"]
        env = e.get("environment") or {}
        out.append(
            {
                "run": run_id,
                "lam": e["lam"],
                "bpp": tot["bpp_real"].mean(),
                "psnr": tot["psnr"].mean(),
                "convergence_%": 100 * e["convergence"],
                "threads": env.get("threads"),
                "train_s": e.get("train_seconds"),
            }
        )
    df = pd.DataFrame(out).sort_values("lam").reset_index(drop=True)
    df["dB_per_doubling"] = np.r_[np.nan, np.diff(df["psnr"]) / np.diff(np.log2(df["lam"]))]
    return df


def anchor_gain(runs: Path) -> pd.DataFrame:
    from acbench.store import load_rows

    rows, _ = load_rows(runs)
    tot = rows[(rows["component"] == "total") & (rows["eval"] == "alone")]
    base = tot[tot["kind"] == "baseline"].groupby(["curve", "lam"])["psnr"].mean()
    out = []
    for (_, anchor_of, lam, seed), g in tot[tot["kind"] == "anchor"].groupby(
        ["curve", "anchor_curve", "lam", "seed"]
    ):
        if (anchor_of, lam) in base.index:
            out.append({"lam": lam, "seed": seed, "gain_dB": g["psnr"].mean() - base[(anchor_of, lam)]})
    return pd.DataFrame(out)


def retrain(lam: float, build_runs: Path) -> pd.DataFrame:
    """Retrain the zoo's λ fine-tune with 1 and 2 threads; compare with the shipped rows."""
    import torch

    from acbench import zoo
    from acbench.executors import execute
    from acbench.runner import baseline_job
    from acbench.store import Run, read_rows_csv
    from acbench.zoo_build import zoo_config

    cfg = zoo_config("cpu")
    job = baseline_job(cfg, lam)
    init = job.init_run
    if not init or not (Run(build_runs, init).dir / "pretrain.pt").exists():
        raise SystemExit(f"no shared pretraining for λ={lam} in {build_runs}: run `acbench zoo build` first")
    shipped = read_rows_csv(zoo.folder() / zoo.manifest()["models"][job.id]["rows"])
    ref = shipped[shipped["component"] == "total"]
    out = [{"arm": "shipped", "threads": "", "psnr": ref["psnr"].mean(), "bpp": ref["bpp_real"].mean()}]
    import os

    os.environ["ACBENCH_NO_ZOO"] = "1"
    for threads in (1, 2):
        tmp = Path(tempfile.mkdtemp())
        shutil.copytree(Run(build_runs, init).dir, tmp / init)
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        execute([job], tmp)
        rows = read_rows_csv(Run(tmp, job.id).rows)
        tot = rows[rows["component"] == "total"]
        out.append(
            {
                "arm": f"retrained, {threads} thread(s)",
                "threads": threads,
                "psnr": tot["psnr"].mean(),
                "bpp": tot["bpp_real"].mean(),
                "seconds": time.perf_counter() - t0,
            }
        )
        shutil.rmtree(tmp)
    df = pd.DataFrame(out)
    df["d_psnr_dB"] = df["psnr"] - df["psnr"].iloc[0]
    df["d_bpp_%"] = 100 * (df["bpp"] / df["bpp"].iloc[0] - 1)
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path)
    ap.add_argument("--retrain", type=float)
    ap.add_argument("--build-runs", type=Path, default=Path("runs-zoo"))
    args = ap.parse_args()
    pd.set_option("display.width", 160)
    z = zoo_table()
    print("Shipped cpu baselines (acbench/zoo):\n")
    print(z.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    mono = {k: bool((np.diff(z[k]) > 0).all()) for k in ("psnr", "bpp")}
    print(f"\nmonotone in λ: PSNR {mono['psnr']}, bpp {mono['bpp']}")
    if args.runs:
        g = anchor_gain(args.runs)
        if g.empty:
            print(f"\nno step-matched anchors with baselines in {args.runs}")
        else:
            print("\nStep-matched anchor gain over its baseline (target <= 0.1 dB):\n")
            print(
                g.groupby("lam")["gain_dB"]
                .agg(["mean", "min", "max", "count"])
                .to_string(float_format="{:+.3f}".format)
            )
            print(
                f"\nmedian {g['gain_dB'].median():+.3f} dB, largest |gain| {g['gain_dB'].abs().max():.3f} dB"
            )
    if args.retrain:
        print(f"\nRetrained λ={args.retrain} against the shipped rows (target: 0.05 dB, 0.5 %):\n")
        print(
            retrain(args.retrain, args.build_runs).to_string(index=False, float_format=lambda v: f"{v:.4f}")
        )


if __name__ == "__main__":
    main()
