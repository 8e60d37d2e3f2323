"""Why 300 more steps lift every cpu-preset model by ~1 dB: extra training, or the lower learning rate?

The `cpu` baselines train at a constant lr of 1e-3; the conditional models, their step-matched
anchors and zero controls continue for 300 steps at 3e-4. This continues one cached baseline
(the middle λ by default) for the anchor's budget (300 steps, batch 8 × 3) at each learning
rate given, and codes the eval tiles alone with real rANS bitstreams. If the gain comes at the
lower lr but not at the baseline's own, it is the drop in lr (a baseline still bouncing at its
lr), not the steps.

    python benchmarks/lr_drop.py --runs runs            # after the cpu baselines exist
    python benchmarks/lr_drop.py --runs runs --lam 0.0035 --lr 1e-3 --lr 3e-4 --lr 1e-4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    from acbench.codecs.base import build_codec
    from acbench.config import DataConfig, from_dict, preset
    from acbench.data.cache import load_split
    from acbench.evaluate import code_chains, rows_of
    from acbench.train import BaselineTask, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--lam", type=float, default=0.0067)
    ap.add_argument("--lr", type=float, action="append")
    args = ap.parse_args()
    lrs = args.lr or [1e-3, 3e-4]
    cpu = preset("cpu")
    base = None
    for cfg_path in sorted(args.runs.glob("*/config.json")):
        c = json.loads(cfg_path.read_text())
        if (
            c.get("kind") == "baseline"
            and c.get("lam") == args.lam
            and c["codec"]["params"] == dict(cpu.codec.params)
            and from_dict(DataConfig, c["data"]) == cpu.data
            and (cfg_path.parent / "model.pt").exists()
        ):
            base = c, cfg_path.parent
    if base is None:
        raise SystemExit(
            f"no finished cpu-preset baseline at λ={args.lam} under {args.runs}; run `make demo` first"
        )
    c, run_dir = base
    train_set, eval_set = load_split(from_dict(DataConfig, c["data"]))
    state = torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]
    t = cpu.train
    budget = dataclasses.replace(t, batch=t.batch * (cpu.chain - 1), checkpoint_every=10**9)

    def measure(model) -> tuple[float, float]:
        model.update(force=True)
        res = code_chains(model, None, eval_set.pixels, np.arange(len(eval_set)), 1, cpu.eval_batch)
        rows = [r for r in rows_of(res, eval_set.pixels, eval_set.labels) if r["component"] == "total"]
        return float(np.mean([r["bpp_real"] for r in rows])), float(np.mean([r["psnr"] for r in rows]))

    model = build_codec(c["codec"]["name"], c["codec"]["params"])
    model.load_state_dict(state)
    bpp0, psnr0 = measure(model)
    print(f"baseline {run_dir.name} λ={args.lam}: {bpp0:.4f} bpp, {psnr0:.2f} dB (3000 steps at lr 1e-3)")
    print(f"{'continued 300 steps at lr':>28} {'bpp':>8} {'PSNR dB':>8} {'Δbpp %':>8} {'ΔPSNR dB':>9}")
    for lr in lrs:
        model = build_codec(c["codec"]["name"], c["codec"]["params"])
        model.load_state_dict(state)
        torch.manual_seed(0)
        train(
            BaselineTask(model, torch.from_numpy(train_set.pixels), args.lam),
            dataclasses.replace(budget, lr=lr),
        )
        bpp, psnr = measure(model)
        print(f"{lr:>28g} {bpp:8.4f} {psnr:8.2f} {100 * (bpp / bpp0 - 1):+8.2f} {psnr - psnr0:+9.2f}")


if __name__ == "__main__":
    main()
