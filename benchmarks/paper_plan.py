"""What the `paper` preset grid costs: jobs after sharing × steps × measured seconds per step.

    python benchmarks/paper_plan.py                 # measure on this machine's device, print
    python benchmarks/paper_plan.py --json plan.json --markdown plan.md

Plans every ablation in ``ablations/`` (not the Optuna search) at the ``paper`` preset with the
controls, as ``acbench sweep`` would, and counts the image-steps each job trains: a baseline or
step-matched anchor ``steps × batch``; a conditional ``steps × batch × (L − 1)`` conditioned
images plus the frozen baseline's forward pass on x_1 (about a third of a training image-step;
a full one under ``baseline = "joint"``). It then *measures* seconds per image-step of the
paper-size MSHP (N=128, M=192, 256-px crops) on the device ``acbench`` picks (a GPU when
present, with its bf16 autocast), for the baseline and for a conditional model at the paper's
sites, and multiplies. It also counts the FLOPs of one image-step, for an estimate at an assumed
fraction of a GPU's peak where no GPU was at hand (say which one you quote).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FWD_SHARE = 1 / 3  # a forward pass is about a third of forward + backward


def plan_costs(preset: str = "paper") -> dict[str, Any]:
    """Jobs and image-steps per ablation file and for their union (shared jobs counted once)."""
    import tomllib

    from acbench.grid import sweep_configs
    from acbench.runner import plan

    def paper_sweep(path: Path) -> bool:  # the ablations written for the paper preset (not searches)
        spec = tomllib.loads(path.read_text())
        return "grid" in spec and spec.get("preset") == "paper"

    files = sorted(p for p in (ROOT / "ablations").glob("*.toml") if paper_sweep(p))
    per: dict[str, Any] = {}
    union: dict[str, tuple[str, float, float]] = {}
    for f in files:
        jobs = plan(sweep_configs(f, preset, import_plugins=False), True)
        kinds: dict[str, int] = {}
        for j in jobs:
            kinds[j.kind] = kinds.get(j.kind, 0) + 1
            union[j.id] = (j.kind, *image_steps(j))
        per[f.stem] = {"jobs": kinds, **_sum([image_steps(j) for j in jobs])}
    kinds = {}
    for kind, *_ in union.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    total = {"jobs": kinds, **_sum([(b, c) for _, b, c in union.values()])}
    return {"per_file": per, "all": total}


def image_steps(job: Any) -> tuple[float, float]:
    """(baseline-model image-steps, conditional-model image-steps) that ``job`` trains."""
    if job.kind in ("baseline", "anchor"):
        return job.train.steps * job.train.batch, 0.0
    if job.kind != "conditional":
        return 0.0, 0.0  # orderings: seconds, not GPU-hours
    t = job.train
    first = 1.0 if job.baseline == "joint" else FWD_SHARE
    return t.steps * t.batch * first, t.steps * t.batch * (job.chain - 1)


def _sum(pairs: list[tuple[float, float]]) -> dict[str, float]:
    return {"base_image_steps": sum(b for b, _ in pairs), "cond_image_steps": sum(c for _, c in pairs)}


def measure(batch: int, steps: int, warmup: int, tile: int = 256) -> dict[str, Any]:
    """Seconds per image-step of the paper-size MSHP, baseline and conditional, on this device."""
    import torch

    from acbench.codecs.base import build_codec
    from acbench.config import DataConfig, TrainConfig, preset
    from acbench.data.cache import load_split
    from acbench.device import amp_dtype, pick
    from acbench.train import BaselineTask, ChainTask, train

    cfg = preset("paper")
    dev = pick()
    pixels = torch.from_numpy(load_split(DataConfig(tile=tile))[0].pixels)
    torch.manual_seed(0)
    base = build_codec("mshp", dict(cfg.codec.params)).to(dev)
    cond = build_codec("mshp", dict(cfg.codec.params), cfg.sites, "conv1x1").to(dev)
    cond.warm_start(base.state_dict())
    out: dict[str, Any] = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.machine(),
        "amp": str(amp_dtype(dev)),
        "threads": torch.get_num_threads(),
        "batch": batch,
        "tile": tile,
        "train_images": len(pixels),
    }

    def timed(task: Any, images_per_step: int) -> float:
        train(task, TrainConfig(steps=warmup, batch=batch, lr=1e-5, checkpoint_every=10**9))
        times = []
        for r in range(steps):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            train(task, TrainConfig(steps=1, batch=batch, lr=1e-5, checkpoint_every=10**9, seed=r))
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) / (batch * images_per_step)

    out["s_per_base_image_step"] = timed(BaselineTask(base, pixels, 0.0032), 1)
    # chain 2: one conditioned image per chain, plus the frozen baseline's forward on x_1
    chain = timed(ChainTask(cond, base, pixels, 0.0032, 2), 1)
    out["s_per_cond_image_step"] = chain - FWD_SHARE * out["s_per_base_image_step"]
    out["flops_per_base_image_step"] = _flops(base, pixels[:1].to(dev))
    return out


def _flops(model: Any, x: Any) -> float:
    """FLOPs of one image's forward + backward (torch's FLOP counter: convolutions and matmuls)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from acbench.train import rd_terms, to_float

    model.train().requires_grad_(True)  # a ChainTask froze it as the first codec
    x = to_float(x)
    with FlopCounterMode(display=False) as fc:
        bpp, mse = rd_terms(model(x), x)
        (bpp + 0.01 * mse).backward()
    model.zero_grad(set_to_none=True)
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return float(fc.get_total_flops())


def report(costs: dict[str, Any], m: dict[str, Any], peak_tflops: float, mfu: float) -> str:
    """A markdown table: device-hours at the measured rate, and a FLOP-based GPU estimate."""
    sb, sc, fl = m["s_per_base_image_step"], m["s_per_cond_image_step"], m["flops_per_base_image_step"]
    lines = [
        f"Measured on `{m['device']}` ({m['device_name']}, {m['threads']} threads, amp {m['amp']}), "
        f"paper MSHP N=128/M=192, {m['tile']}-px crops, batch {m['batch']}: "
        f"{sb * 1e3:.1f} ms per baseline image-step, {sc * 1e3:.1f} ms per conditioned image-step; "
        f"{fl / 1e9:.1f} GFLOP per image-step (forward + backward).",
        "",
        f"| ablation | jobs (baseline / anchor / conditional) | image-steps | hours at the measured rate "
        f"| GPU-hours at {mfu:.0%} of {peak_tflops:g} TFLOP/s (estimate) |",
        "|:--|:--|--:|--:|--:|",
    ]
    rows = [*costs["per_file"].items(), ("**all (shared jobs once)**", costs["all"])]
    for name, c in rows:
        j = c["jobs"]
        steps = c["base_image_steps"] + c["cond_image_steps"]
        hours = (c["base_image_steps"] * sb + c["cond_image_steps"] * sc) / 3600
        gpu = steps * fl / (peak_tflops * 1e12 * mfu) / 3600
        jobs = f"{j.get('baseline', 0)} / {j.get('anchor', 0)} / {j.get('conditional', 0)}"
        lines.append(f"| {name} | {jobs} | {steps:.3g} | {hours:,.0f} | {gpu:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--batch", type=int, default=0, help="measure at this batch (default: 32 on GPU, 2 on CPU)"
    )
    ap.add_argument("--steps", type=int, default=3, help="timed steps (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="GPU bf16 dense peak (H100/H200 SXM)")
    ap.add_argument("--mfu", type=float, default=0.15, help="assumed fraction of peak for the estimate")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    import torch

    batch = args.batch or (32 if torch.cuda.is_available() else 2)
    costs = plan_costs()
    m = measure(batch, args.steps, args.warmup)
    text = report(costs, m, args.peak_tflops, args.mfu)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"plan": costs, "measured": m}, indent=1))
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
