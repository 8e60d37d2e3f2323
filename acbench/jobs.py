"""What each kind of job does: train / fit, evaluate, write the run directory."""

from __future__ import annotations

import dataclasses
import datetime
import time
from pathlib import Path
from typing import Any

import numpy as np

from acbench.config import Component, DataConfig, TrainConfig, from_dict
from acbench.device import pick
from acbench.runner import Job, Progress
from acbench.store import Run
from acbench.version import code_version

PRETRAIN = "pretrain.pt"  # the feature λ's weights where λ fine-tuning starts


def _data(job: Job):
    """(train, validation, eval) image sets of the job's data config."""
    from acbench.data.cache import load_splits

    return load_splits(from_dict(DataConfig, job.payload["data"]))


def _meta(job: Job) -> dict[str, Any]:
    p = job.payload
    kind = job.kind
    return {
        "run_id": job.id,
        "curve": job.curve,
        "anchor_curve": job.anchor_curve,
        "matched_curve": job.matched_curve,
        "control_curve": job.control_curve,
        "kind": kind,
        "dataset": p["data"]["name"],
        "tile": p["data"]["tile"],
        "codec": p["codec"]["name"],
        "ordering": p["ordering"]["name"] if kind == "conditional" else "",
        "mixer": p["mixer"]["name"] if kind == "conditional" else "",
        "sites": ",".join(p["sites"]) if kind == "conditional" else "",
        "chain": p["chain"] if kind == "conditional" else 1,
        "lam": p["lam"],
        "seed": p["train"]["seed"],
        "steps": p["train"]["steps"] + p.get("lambda_finetune", 0),
        "code": code_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
    }


def _train_and_save(
    task: Any,
    tcfg: TrainConfig,
    run: Run,
    model: Any,
    progress: Any,
    val: Any,
    snapshot: Any = None,
    warm: Any = (),
) -> None:
    """Train (resuming from the run's checkpoint) and write model.pt with the wall time it took,
    the validation history, the convergence figure and the training environment."""
    import torch

    from acbench.codecs.base import save_checkpoint
    from acbench.train import train

    t0 = time.perf_counter()
    val_px = torch.from_numpy(val.pixels)
    logs = train(task, tcfg, run.ckpt, progress, snapshot=snapshot, val=val_px, warm=warm)
    save_checkpoint(
        run.model,
        model,
        seconds=time.perf_counter() - t0,
        resumed_from=logs["resumed_from"],
        amp=logs["amp"],
        val=logs["val"],
        convergence=logs["convergence"],
        environment=logs["environment"],
        steps=tcfg.steps,
    )


MODEL_COLUMNS = ("train_seconds", "convergence", "threads")


def model_info(path: Path) -> dict[str, Any]:
    """Row columns from a model file: wall seconds, convergence figure, training threads."""
    import torch

    m = torch.load(path, map_location="cpu", weights_only=True)
    return {
        "train_seconds": float(m.get("seconds", np.nan)),
        "convergence": float(m.get("convergence", np.nan)),
        "threads": (m.get("environment") or {}).get("threads", np.nan),
    }


def record_failure(job: Job, run: Run, reason: str, trace: str = "") -> None:
    """Keep the reason (and a traceback) in the run dir; a one-row ``rows.csv`` names it.

    A finished run is never touched: when it is done (another process on the same output folder
    finished it), or its ``rows.csv`` already holds results (finished, ``done`` not yet written),
    nothing is written, so a failure record cannot replace a finished run's rows.
    """
    import os

    import pandas as pd

    if run.is_done() or _holds_results(run):
        return
    run.fail(reason + ("\n\n" + trace if trace else ""))
    if job.kind == "ordering":
        return
    try:
        row = {**_meta(job), "params": np.nan, "error": reason.splitlines()[0]}
    except (KeyError, TypeError):
        return
    tmp = run.dir / f".rows.tmp{os.getpid()}.csv"
    pd.DataFrame([row]).to_csv(tmp, index=False)
    if run.is_done() or _holds_results(run):  # finished meanwhile
        tmp.unlink(missing_ok=True)
        return
    os.replace(tmp, run.rows)


def _holds_results(run: Run) -> bool:
    """Whether the run's rows.csv holds result rows (not a failure record's one row)."""
    from acbench.store import read_rows_csv

    if not run.rows.exists():
        return False
    try:
        rows = read_rows_csv(run.rows)
    except Exception:  # noqa: BLE001 - unreadable: not results anyone can use
        return False
    return "error" not in rows or bool((rows["error"].fillna("") == "").any())


def run_job(job: Job, root: Path, progress: Progress | None = None) -> None:
    run = Run(root, job.id)
    run.start({"kind": job.kind, **job.payload, "curve": job.curve, "anchor_curve": job.anchor_curve})
    kinds = {"baseline": _baseline, "anchor": _baseline, "ordering": _ordering, "conditional": _conditional}
    kinds[job.kind](job, root, run, progress)


def _progress_for(progress: Progress | None, label: str):
    if progress is None:
        return None
    return lambda step, total, logs: progress(label, step, total, logs)


# --------------------------------------------------------------------------------------------


def _baseline(job: Job, root: Path, run: Run, progress: Progress | None) -> None:
    import pandas as pd
    import torch

    from acbench import zoo
    from acbench.codecs.base import build_codec
    from acbench.evaluate import code_chains, rows_of
    from acbench.train import BaselineTask

    p = job.payload
    train_set, val_set, eval_set = _data(job)
    torch.manual_seed(p["train"]["seed"])
    model = build_codec(p["codec"]["name"], p["codec"]["params"])
    if not run.model.exists() and job.kind == "baseline":
        zoo.install(job.id, run.model, progress)  # a shipped reference model, when there is one
    if not run.model.exists():
        model.to(pick())
        warm: Any = ()
        tcfg = from_dict(TrainConfig, p["train"])
        snapshot = None
        if job.kind == "anchor" and p["warm_start"]:  # continue the baseline
            model.load_state_dict(
                torch.load(Run(root, p["baseline_run"]).model, weights_only=True)["state_dict"]
            )
            warm = {n for n, _ in model.named_parameters()}
        elif p.get("init_run"):  # a λ fine-tune starts where the feature λ's pretraining ended
            model.load_state_dict(torch.load(Run(root, p["init_run"]).dir / PRETRAIN, weights_only=True))
            tcfg = dataclasses.replace(tcfg, steps=p["lambda_finetune"])
            warm = {n for n, _ in model.named_parameters()}
        elif p.get("lambda_finetune"):  # the feature λ: pretraining, then its own fine-tune steps
            snapshot = (tcfg.steps, run.dir / PRETRAIN)
            tcfg = dataclasses.replace(tcfg, steps=tcfg.steps + p["lambda_finetune"])
        task = BaselineTask(model, torch.from_numpy(train_set.pixels), p["lam"], tcfg.augment)
        label = _progress_for(progress, f"{job.kind} λ={p['lam']}")
        _train_and_save(task, tcfg, run, model, label, val_set, snapshot, warm)
        run.ckpt.unlink(missing_ok=True)
    else:
        model.load_state_dict(torch.load(run.model, map_location="cpu", weights_only=True)["state_dict"])
    model.to(pick()).update(force=True)
    if progress:
        progress(f"evaluate {job.kind} λ={p['lam']}", 0, 1, {})
    order = np.arange(len(eval_set))
    res = code_chains(model, None, eval_set.pixels, order, 1, p["eval_batch"])
    meta = {**_meta(job), "params": sum(t.numel() for t in model.parameters()), **model_info(run.model)}
    rows = pd.DataFrame(
        [
            {**meta, "eval": "alone", **r, "n_eval": len(eval_set), "error": ""}
            for r in rows_of(res, eval_set.pixels, eval_set.labels)
        ]
    )
    run.finish(rows)


def _ordering(job: Job, root: Path, run: Run, progress: Progress | None) -> None:
    from acbench.codecs.base import load_codec
    from acbench.features import embed
    from acbench.orderings.quality import ordering_quality
    from acbench.registry import ORDERINGS

    p = job.payload
    train_set, _, eval_set = _data(job)
    codec = None
    if p["feature_baseline"]:
        codec, _ = load_codec(Run(root, p["feature_baseline"]).model)
    if progress:
        progress(f"ordering {p['ordering']['name']}", 0, 1, {})
    f_train = embed(train_set.pixels, p["features"], codec)
    f_eval = embed(eval_set.pixels, p["features"], codec)
    comp = from_dict(Component, p["ordering"])
    params = {"random_state": p["seed"], **comp.params}
    t0 = time.perf_counter()
    est = ORDERINGS.get(comp.name)(**params).fit(f_train, train_set.labels)
    fit_s = time.perf_counter() - t0
    order_eval = np.asarray(est.place(f_eval, eval_set.labels))
    np.save(run.dir / "order_train.npy", np.asarray(est.order_))
    np.save(run.dir / "order_eval.npy", order_eval)
    q_eval = ordering_quality(f_eval, order_eval, eval_set.labels)
    q_train = ordering_quality(f_train, np.asarray(est.order_), train_set.labels)
    run.finish(meta={"fit_seconds": fit_s, "quality_eval": q_eval, "quality_train": q_train})


def _conditional(job: Job, root: Path, run: Run, progress: Progress | None) -> None:
    import pandas as pd
    import torch

    from acbench.codecs.base import build_codec, load_codec, save_checkpoint
    from acbench.evaluate import code_chains, rows_of
    from acbench.train import ChainTask

    p = job.payload
    train_set, val_set, eval_set = _data(job)
    order_run = Run(root, p["ordering_run"])
    order_train = np.load(order_run.dir / "order_train.npy")
    order_eval = np.load(order_run.dir / "order_eval.npy")
    quality = order_run.meta().get("quality_eval", {})
    first, _ = load_codec(Run(root, p["baseline_run"]).model)
    first.to(pick())
    torch.manual_seed(p["train"]["seed"])
    model = build_codec(
        p["codec"]["name"],
        p["codec"]["params"],
        tuple(p["sites"]),
        p["mixer"]["name"],
        p["mixer"]["params"],
        p["reference"],
    )
    joint = p["baseline"] == "joint"
    model.to(pick())
    if not run.model.exists():
        warm: Any = ()
        if p["warm_start"]:
            warm = model.warm_start(first.state_dict())
        if p.get("shared_transforms"):  # the baseline's analysis/synthesis transforms, frozen
            for name, param in model.named_parameters():
                if ".g_a." in name or ".g_s." in name:
                    param.requires_grad_(False)
        tcfg = from_dict(TrainConfig, p["train"])
        task = ChainTask(
            model,
            first,
            torch.from_numpy(train_set.pixels[order_train]),
            p["lam"],
            p["chain"],
            joint,
            tcfg.augment,
        )
        label = _progress_for(progress, f"conditional λ={p['lam']}")
        _train_and_save(task, tcfg, run, model, label, val_set, warm=warm)
        if joint:
            save_checkpoint(run.dir / "first.pt", first)
        run.ckpt.unlink(missing_ok=True)
    else:
        model.load_state_dict(torch.load(run.model, map_location="cpu", weights_only=True)["state_dict"])
        if joint:
            first, _ = load_codec(run.dir / "first.pt")
            first.to(pick())
    model.update(force=True)
    first.update(force=True)
    if progress:
        progress(f"evaluate λ={p['lam']}", 0, 1, {})
    meta = {
        **_meta(job),
        "params": sum(t.numel() for t in model.parameters()),
        **model_info(run.model),
        "n_eval": len(eval_set),
        **{k: v for k, v in quality.items()},
        "error": "",
    }
    rows = []
    n = len(eval_set)
    true_chain = code_chains(first, model, eval_set.pixels, order_eval, p["chain"], p["eval_batch"])
    states = {img: c.ref for img, _, _, c in true_chain}
    variants = {
        "chain": true_chain,
        "full": code_chains(first, model, eval_set.pixels, order_eval, n, p["eval_batch"]),
        "shuffled": code_chains(
            first,
            model,
            eval_set.pixels,
            order_eval,
            p["chain"],
            p["eval_batch"],
            shuffle_from=states,
            seed=p["train"]["seed"],
        ),
    }
    for name, res in variants.items():
        rows += [{**meta, "eval": name, **r} for r in rows_of(res, eval_set.pixels, eval_set.labels)]
    run.finish(pd.DataFrame(rows))
