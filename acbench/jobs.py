"""What each kind of job does: train / fit, evaluate, write the run directory.

:func:`run_job` is the one entry: the executors (:mod:`acbench.executors`) call it for a job that
is not done, under the job's run lock.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from pathlib import Path
from typing import Any

import numpy as np

from acbench.device import pick
from acbench.job import AnchorJob, BaselineJob, ConditionalJob, Job, OnProgress, OrderingJob, Progress
from acbench.schema import LABEL_COLUMNS, STAMP_COLUMNS, variant
from acbench.store import Run, atomic_write
from acbench.version import code_version

PRETRAIN = "pretrain.pt"  # the feature λ's weights where λ fine-tuning starts


def _data(job: BaselineJob | AnchorJob | OrderingJob | ConditionalJob):
    """(train, validation, eval) image sets of the job's data config."""
    from acbench.data.cache import load_splits

    return load_splits(job.data)


def _meta(job: BaselineJob | AnchorJob | ConditionalJob) -> dict[str, Any]:
    """The columns every row of the run carries, in the order of :mod:`acbench.schema`."""
    cond = job if isinstance(job, ConditionalJob) else None
    meta = {
        "run_id": job.id,
        "curve": job.curve,
        "anchor_curve": job.anchor_curve,
        "matched_curve": job.matched_curve,
        "control_curve": job.control_curve,
        "kind": job.kind,
        "dataset": job.data.name,
        "tile": job.data.tile,
        "codec": job.codec.name,
        "ordering": cond.ordering.name if cond else "",
        "mixer": cond.mixer.name if cond else "",
        "sites": ",".join(cond.sites) if cond else "",
        "variant": variant(job.record()),
        "chain": cond.chain if cond else 1,
        "structure": cond.structure if cond else "",
        "lam": job.lam,
        "seed": job.train.seed,
        "steps": job.train.steps + (job.lambda_finetune if isinstance(job, BaselineJob) else 0),
        "code": code_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
    }
    return {k: meta[k] for k in ("run_id", *LABEL_COLUMNS, *STAMP_COLUMNS)}


def _train_and_save(
    task: Any,
    tcfg: Any,
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
    import pandas as pd

    if run.is_done() or _holds_results(run):
        return
    run.fail(reason + ("\n\n" + trace if trace else ""))
    if isinstance(job, OrderingJob):
        return
    row = {**_meta(job), "params": np.nan, "error": reason.splitlines()[0]}
    atomic_write(run.rows, lambda tmp: pd.DataFrame([row]).to_csv(tmp, index=False))


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


def run_job(job: Job, root: Path, progress: OnProgress | None = None) -> None:
    """Train / fit and evaluate ``job``, writing its run directory (resuming a checkpoint)."""
    run = Run(root, job.id)
    run.start(job.record())
    if isinstance(job, (BaselineJob, AnchorJob)):
        _baseline(job, root, run, progress)
    elif isinstance(job, OrderingJob):
        _ordering(job, root, run, progress)
    elif isinstance(job, ConditionalJob):
        _conditional(job, root, run, progress)
    else:
        raise TypeError(f"not a job kind: {type(job).__name__}")


def _steps(progress: OnProgress | None, job: Job):
    """The training loop's ``progress(step, total, logs)`` as :class:`Progress` events."""
    if progress is None:
        return None
    return lambda step, total, logs: progress(Progress(job, "train", step, total, logs))


# --------------------------------------------------------------------------------------------


def _baseline(job: BaselineJob | AnchorJob, root: Path, run: Run, progress: OnProgress | None) -> None:
    import pandas as pd
    import torch

    from acbench import zoo
    from acbench.codecs.base import build_codec
    from acbench.evaluate import code_chains, rows_of
    from acbench.train import BaselineTask

    train_set, val_set, eval_set = _data(job)
    torch.manual_seed(job.train.seed)
    model = build_codec(job.codec.name, job.codec.params)
    if not run.model.exists() and isinstance(job, BaselineJob):
        # a shipped reference model, when there is one
        zoo.install(job.id, run.model, (lambda: progress(Progress(job, "zoo"))) if progress else None)
    if not run.model.exists():
        model.to(pick())
        warm: Any = ()
        tcfg = job.train
        snapshot = None
        if isinstance(job, AnchorJob):
            if job.warm_start:  # continue the baseline
                state = torch.load(Run(root, job.baseline_run).model, weights_only=True)["state_dict"]
                model.load_state_dict(state)
                warm = {n for n, _ in model.named_parameters()}
        elif job.init_run:  # a λ fine-tune starts where the feature λ's pretraining ended
            model.load_state_dict(torch.load(Run(root, job.init_run).dir / PRETRAIN, weights_only=True))
            tcfg = dataclasses.replace(tcfg, steps=job.lambda_finetune)
            warm = {n for n, _ in model.named_parameters()}
        elif job.lambda_finetune:  # the feature λ: pretraining, then its own fine-tune steps
            snapshot = (tcfg.steps, run.dir / PRETRAIN)
            tcfg = dataclasses.replace(tcfg, steps=tcfg.steps + job.lambda_finetune)
        task = BaselineTask(model, torch.from_numpy(train_set.pixels), job.lam, tcfg.augment)
        _train_and_save(task, tcfg, run, model, _steps(progress, job), val_set, snapshot, warm)
        run.ckpt.unlink(missing_ok=True)
    else:
        model.load_state_dict(torch.load(run.model, map_location="cpu", weights_only=True)["state_dict"])
    model.to(pick()).update(force=True)
    if progress:
        progress(Progress(job, "evaluate"))
    order = np.arange(len(eval_set))
    res = code_chains(model, None, eval_set.pixels, order, 1, job.eval_batch)
    meta = {**_meta(job), "params": sum(t.numel() for t in model.parameters()), **model_info(run.model)}
    rows = pd.DataFrame(
        [
            {**meta, "eval": "alone", **r, "n_eval": len(eval_set), "error": ""}
            for r in rows_of(res, eval_set.pixels, eval_set.labels)
        ]
    )
    run.finish(rows)


def _ordering(job: OrderingJob, root: Path, run: Run, progress: OnProgress | None) -> None:
    from acbench.codecs.base import load_codec
    from acbench.features import embed
    from acbench.orderings.quality import ordering_quality
    from acbench.registry import ORDERINGS

    train_set, _, eval_set = _data(job)
    codec = None
    if job.feature_baseline:
        codec, _ = load_codec(Run(root, job.feature_baseline).model)
    if progress:
        progress(Progress(job, "fit"))
    f_train = embed(train_set.pixels, job.features, codec)
    f_eval = embed(eval_set.pixels, job.features, codec)
    params = {"random_state": job.seed, **job.ordering.params}
    t0 = time.perf_counter()
    est = ORDERINGS.get(job.ordering.name)(**params).fit(f_train, train_set.labels)
    fit_s = time.perf_counter() - t0
    order_eval = np.asarray(est.place(f_eval, eval_set.labels))
    np.save(run.dir / "order_train.npy", np.asarray(est.order_))
    np.save(run.dir / "order_eval.npy", order_eval)
    q_eval = ordering_quality(f_eval, order_eval, eval_set.labels)
    q_train = ordering_quality(f_train, np.asarray(est.order_), train_set.labels)
    meta = {"fit_seconds": fit_s, "quality_eval": q_eval, "quality_train": q_train}
    if job.structure == "tree":
        ranks = (np.asarray(est.order_), order_eval)
        meta.update(_trees(run, job.seed, (f_train, f_eval), ranks, (train_set, eval_set)))
    run.finish(meta=meta)


def _trees(run: Run, seed: int, features: tuple, ranks: tuple, splits: tuple) -> dict[str, Any]:
    """The spanning forests of both splits, rooted and sibling-ordered by the ordering: saved as
    ``tree_<split>.npy`` ([2, N]: coding order, parent); their quality is that of their edges."""
    from acbench.orderings.quality import edge_quality
    from acbench.orderings.tree import SpanningTree

    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    for split, f, rank, data in zip(("train", "eval"), features, ranks, splits):
        order, parent = SpanningTree(random_state=seed).tree(f, rank)
        np.save(run.dir / f"tree_{split}.npy", np.stack([order, parent]))
        out[f"quality_{split}"] = edge_quality(f, parent, data.labels)
        out[f"roots_{split}"] = int((parent < 0).sum())
    out["tree_seconds"] = time.perf_counter() - t0
    return out


def _conditional(job: ConditionalJob, root: Path, run: Run, progress: OnProgress | None) -> None:
    import pandas as pd
    import torch

    from acbench.codecs.base import build_codec, load_codec, save_checkpoint
    from acbench.evaluate import code_chains, code_tree, rows_of
    from acbench.train import ChainTask

    train_set, val_set, eval_set = _data(job)
    order_run = Run(root, job.ordering_run)
    order_train = np.load(order_run.dir / "order_train.npy")
    order_eval = np.load(order_run.dir / "order_eval.npy")
    tree = job.structure == "tree"
    if tree:
        from acbench.orderings.tree import cut, paths, side_bits

        (order_train, parent_train), (order_eval, parent_eval) = (
            np.load(order_run.dir / f"tree_{s}.npy") for s in ("train", "eval")
        )
    quality = order_run.meta().get("quality_eval", {})
    first, _ = load_codec(Run(root, job.baseline_run).model)
    first.to(pick())
    torch.manual_seed(job.train.seed)
    model = build_codec(
        job.codec.name, job.codec.params, tuple(job.sites), job.mixer.name, job.mixer.params, job.reference
    )
    joint = job.baseline == "joint"
    model.to(pick())
    if not run.model.exists():
        warm: Any = ()
        if job.warm_start:
            warm = model.warm_start(first.state_dict())
        if job.shared_transforms:  # the baseline's analysis/synthesis transforms, frozen
            for name, param in model.named_parameters():
                if ".g_a." in name or ".g_s." in name:
                    param.requires_grad_(False)
        tcfg = job.train
        if tree:  # root-ward paths of L images of the train forest
            pixels = torch.from_numpy(train_set.pixels)
            walks = torch.from_numpy(paths(parent_train, order_train, job.chain))
        else:
            pixels, walks = torch.from_numpy(train_set.pixels[order_train]), None
        task = ChainTask(model, first, pixels, job.lam, job.chain, joint, tcfg.augment, walks)
        _train_and_save(task, tcfg, run, model, _steps(progress, job), val_set, warm=warm)
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
        progress(Progress(job, "evaluate"))
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
    px, L, batch = eval_set.pixels, job.chain, job.eval_batch
    side: dict[bool, Any] = {False: None, True: None}
    if tree:  # "chain": the forest cut at depth L (paths of at most L images); "full": uncut
        short = cut(parent_eval, order_eval, L)
        side = {False: side_bits(short, order_eval), True: side_bits(parent_eval, order_eval)}

        def code(whole: bool, **kw: Any) -> list:
            return code_tree(first, model, px, parent_eval if whole else short, order_eval, batch, **kw)
    else:

        def code(whole: bool, **kw: Any) -> list:
            return code_chains(first, model, px, order_eval, n if whole else L, batch, **kw)

    true_chain = code(False)
    states = {img: c.ref for img, _, _, c in true_chain}
    variants = {
        "chain": true_chain,
        "full": code(True),
        "shuffled": code(False, shuffle_from=states, seed=job.train.seed),
    }
    for name, res in variants.items():
        bits = side[name == "full"]
        rows += [{**meta, "eval": name, **r} for r in rows_of(res, eval_set.pixels, eval_set.labels, bits)]
    run.finish(pd.DataFrame(rows))
