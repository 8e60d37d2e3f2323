"""Build and verify the model zoo (``acbench zoo build`` / ``acbench zoo build --check``)."""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from acbench import zoo
from acbench.config import RunConfig, preset, validate

# tolerances of a reproduction on another machine (the trust targets of docs/architecture.md)
PSNR_TOL_DB = 0.05
BPP_TOL = 0.005


def zoo_config(name: str = "cpu") -> RunConfig:
    """The preset with the zoo's λ list (the same baseline run ids as the preset's own λ)."""
    return validate(dataclasses.replace(preset(name), lmbdas=zoo.ZOO_LAMBDAS))


def jobs(cfg: RunConfig) -> list[Any]:
    from acbench.runner import baseline_job, feature_lambda

    first = baseline_job(cfg, feature_lambda(cfg))
    rest = [baseline_job(cfg, lam) for lam in cfg.lmbdas if baseline_job(cfg, lam).id != first.id]
    return [first, *rest]


def build(runs: Path, workers: int = 2, name: str = "cpu", progress: Any = None) -> dict[str, Any]:
    """Train (or take from ``runs``) the zoo's baselines and ship them into the package.

    The feature λ (shared pretraining + its fine-tune) trains alone with every core; the other
    λ fine-tune from it in a process pool of ``workers`` (one thread each).
    """
    from acbench.executors import execute, make_executor
    from acbench.store import Run

    cfg = zoo_config(name)
    todo = jobs(cfg)
    t0 = time.perf_counter()
    before = os.environ.get("ACBENCH_NO_ZOO")
    os.environ["ACBENCH_NO_ZOO"] = "1"  # never install the zoo into its own build (workers inherit it)
    try:
        outcomes = execute(todo[:1], runs, progress)
        if len(todo) > 1:
            pool = make_executor("pool", workers=workers, root=runs)
            outcomes += execute(todo[1:], runs, progress, executor=pool)
    finally:
        if before is None:
            del os.environ["ACBENCH_NO_ZOO"]
        else:
            os.environ["ACBENCH_NO_ZOO"] = before
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise RuntimeError(f"zoo build: {failed[0].job.id} failed: {failed[0].reason}")
    zoo.clear()
    entries = {}
    for job in todo:
        run = Run(runs, job.id)
        describe = {
            "codec": cfg.codec.name,
            "codec_params": dict(cfg.codec.params),
            "lam": job.lam,
        }
        describe.update(preset=name, dataset=cfg.data.name, tile=cfg.data.tile)
        entries[job.id] = zoo.add(job.id, run.model, run.rows, describe)
    from acbench.version import code_version

    info = {
        "built": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "code": code_version(),
        "command": f"acbench zoo build --preset {name} --workers {workers}",
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    zoo.write_manifest(entries, info)
    return {"entries": entries, **info}


def verify(run_id: str, runs: Path) -> dict[str, float]:
    """Re-evaluate a shipped model through the normal baseline job and compare with its rows.

    Returns:
        ``d_psnr`` and ``d_bpp`` (relative) of the means over eval images, the largest over λ-free
        per-image PSNR change (``max_image_d_psnr``), and ``ok`` (within the tolerances).
    """
    from acbench.executors import execute
    from acbench.store import Run, read_rows_csv

    entry = zoo.manifest()["models"][run_id]
    every = jobs(zoo_config(entry["preset"]))
    job = next(j for j in every if j.id == run_id)
    # a λ fine-tune depends on the feature λ's run: installed from the zoo and evaluated first
    out = execute([j for j in every if j.id in job.deps] + [job], runs)[-1]
    if out.status == "failed":
        raise zoo.ZooError(out.reason)
    new = read_rows_csv(Run(runs, run_id).rows)
    old = read_rows_csv(zoo.folder() / entry["rows"])
    key = ["image", "component"]
    m = old.merge(new, on=key, suffixes=("_old", "_new"))
    tot = m[m["component"] == "total"]
    d_psnr = float(tot["psnr_new"].mean() - tot["psnr_old"].mean())
    d_bpp = float(tot["bpp_real_new"].mean() / tot["bpp_real_old"].mean() - 1)
    per_image = float(np.abs(tot["psnr_new"] - tot["psnr_old"]).max())
    return {
        "d_psnr": d_psnr,
        "d_bpp": d_bpp,
        "max_image_d_psnr": per_image,
        "n": len(tot),
        "ok": abs(d_psnr) <= PSNR_TOL_DB and abs(d_bpp) <= BPP_TOL and len(tot) == len(old) // 3,
    }
