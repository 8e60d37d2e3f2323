"""Searches: one trial (see :mod:`acbench.search`)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acbench.job import Progress
from acbench.search.base import TrialFailed, _Prune
from acbench.search.files import SearchSpec
from acbench.search.objective import Objective
from acbench.search.space import configure


def trial_rows(root: Path, job_ids: Sequence[str]) -> Any:
    """The long rows of these runs (only their run directories are read; ids stay strings)."""
    import pandas as pd

    from acbench.store import Run, read_rows_csv

    frames = []
    for j in job_ids:
        run = Run(root, j)
        if run.rows.exists() and (run.is_done() or run.error() is not None):
            frames.append(read_rows_csv(run.rows))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def rd_loss(
    rows: Any, curve: str, lam: float, component: str = "total", eval_: str = "chain", rate: str = "bpp_real"
) -> float:
    """Mean rate + λ·255²·MSE of a curve's eval images at one λ (MSE from each image's PSNR)."""
    import numpy as np

    sel = rows[(rows["curve"] == curve) & (rows["eval"] == eval_) & (rows["component"] == component)]
    sel = sel[np.isclose(sel["lam"].astype(float), lam)]
    if sel.empty:
        raise TrialFailed(f"no rows for curve {curve} at λ={lam:g} (eval {eval_})")
    mse = np.power(10.0, -sel["psnr"].astype(float) / 10.0)  # PSNR of 8-bit images → MSE in [0, 1]²
    return float(sel[rate].astype(float).mean() + lam * 255**2 * mse.mean())


def bd_value(rows: Any, obj: Objective, curve: str, anchor: str) -> tuple[float, str]:
    """The objective's BD-rate of ``curve`` (percent) and the reason when it is n/a."""
    from acbench.analysis.bdrate import bd_between, bd_table

    col, why = ("bd_cond_pchip", "reason_cond") if obj.conditioned else ("bd_pchip", "reason_pchip")
    if obj.against == "baseline":
        table = bd_table(rows, obj.rate)
        sel = table[
            (table["curve"] == curve) & (table["eval"] == obj.eval) & (table["component"] == obj.component)
        ]
    else:
        eval_anchor = "alone" if obj.against == "matched" else obj.eval
        sel = bd_between(rows, curve, anchor, obj.eval, eval_anchor, obj.rate, [obj.component])
    if sel.empty:
        return float("nan"), f"n/a: no BD-rate row for curve {curve}"
    r = sel.iloc[0]
    return float(r[col]), str(r[why] or r.get("reason", ""))


def split_images(images: Any, split: str, part: str) -> list[int]:
    """The eval images of one part of a search's split: ``select`` (even-numbered: the objective)
    or ``report`` (odd-numbered: the figure reported for the chosen trials); all without a split."""
    images = sorted(int(i) for i in images)
    if not split:
        return images
    return [i for i in images if (i % 2 == 0) == (part == "select")]


def content_figure(rows: Any, obj: Objective, curve: str, part: str = "select", bootstrap: int = 0) -> Any:
    """The neighbour's content (true vs shuffled references of one curve) on the conditioned
    images of one part of the split: :func:`~acbench.analysis.bdrate.pooled_compare`'s row of the
    objective's component (``bd``, ``same_lam``, intervals with ``bootstrap``, ``n_images``)."""
    from acbench.analysis.bdrate import clean_rows, pooled_compare

    clean = clean_rows(rows)
    mine = clean[clean["curve"].astype(str) == str(curve)]
    chain, shuffled = mine[mine["eval"] == obj.eval], mine[mine["eval"] == "shuffled"]
    cond = chain.loc[chain["position"] >= 2, "image"].unique() if "position" in chain else []
    images = split_images(cond, obj.split, part)
    table = pooled_compare([(shuffled, chain)], obj.rate, [obj.component], bootstrap, images=images)
    return table.iloc[0]


def content_value(rows: Any, obj: Objective, curve: str) -> tuple[float, str]:
    """The objective's content gain (percent, selection images) and the reason when it is n/a."""
    r = content_figure(rows, obj, curve)
    if obj.metric == "same_lam":
        return float(r["same_lam"]), "n/a: no common images and λ"
    return float(r["bd"]), str(r.get("bd_reason") or "")


def cost_value(obj: Objective, root: Path, rows: Any, curve: str, run_ids: Sequence[str]) -> float:
    """Training cost of the trial's conditional runs: seconds, or steps × parameters (millions)."""
    if obj.cost == "seconds":
        import torch

        from acbench.store import Run

        total = 0.0
        for rid in run_ids:
            ck = torch.load(Run(root, rid).model, map_location="cpu", weights_only=True)
            total += float(ck.get("seconds", float("nan")))
        return total
    sel = rows[rows["curve"] == curve].drop_duplicates("run_id")
    return float((sel["steps"].astype(float) * sel["params"].astype(float)).sum() / 1e6)


@dataclass
class TrialRunner:
    """The objective function: one Optuna trial = one planned curve through an executor."""

    spec: SearchSpec
    root: Path
    executor: Any = None  # an acbench.executors executor; local when None
    quiet: bool = True
    log: Callable[[str], None] | None = None

    def __call__(self, trial: Any) -> float | tuple[float, ...]:
        """Run the trial; a failed one returns NaN (Optuna marks it failed, one warning line,
        no traceback) with the reason in its ``error`` attribute."""
        try:
            return self._run(trial)
        except TrialFailed as e:
            trial.set_user_attr("error", str(e))
            if self.log:
                self.log(f"trial {trial.number}: failed: {e}")
            nan = float("nan")
            return (nan, nan) if self.spec.objective.cost else nan

    def _run(self, trial: Any) -> float | tuple[float, float]:
        import optuna

        from acbench.executors import LocalExecutor
        from acbench.runner import conditional_job, describe, plan

        t0 = time.perf_counter()
        spec, obj = self.spec, self.spec.objective
        cfg = configure(spec.space, spec.base, lambda p: p.suggest(trial))
        jobs = plan([cfg], spec.controls)
        lams = sorted(cfg.lmbdas)
        mine = {conditional_job(cfg, lam).id: i for i, lam in enumerate(lams)}
        head = conditional_job(cfg, lams[0])
        anchor = {
            "baseline": head.anchor_curve,
            "matched": head.matched_curve,
            "zero": head.control_curve,
            "shuffled": head.curve,
        }[obj.against]
        trial.set_user_attr("config", describe(cfg))
        trial.set_user_attr("curve", head.curve)
        trial.set_user_attr("anchor_curve", anchor)
        trial.set_user_attr("run_ids", list(mine))
        trial.set_user_attr("worker", os.getpid())
        executor = self.executor or LocalExecutor()
        done: list[Any] = []
        hook = None
        if len(obj.directions) == 1 and isinstance(executor, LocalExecutor):
            hook = self._pruning_hook(trial, mine, cfg.train.checkpoint_every)
        try:
            outcomes = executor.run(jobs, self.root, hook, done.append, True)
        except _Prune as p:
            trial.set_user_attr("trained", [o.job.id for o in done if o.status == "done"])
            raise optuna.TrialPruned(str(p)) from None
        trained = [o.job.id for o in outcomes if o.status == "done"]
        trial.set_user_attr("trained", trained)
        trial.set_user_attr("cached", sum(o.status == "cached" for o in outcomes))
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            reason = f"{failed[0].job.kind} run {failed[0].job.id} failed: {failed[0].reason}"
            trial.set_user_attr("error", reason)
            raise TrialFailed(reason)
        rows = trial_rows(self.root, [j.id for j in jobs])
        if obj.metric == "rd_loss":
            value, why = rd_loss(rows, head.curve, obj.lam, obj.component, obj.eval, obj.rate), ""
        elif obj.against == "shuffled":
            value, why = content_value(rows, obj, head.curve)
        else:
            value, why = bd_value(rows, obj, head.curve, anchor)
        if not math.isfinite(value):
            trial.set_user_attr("error", why or "objective is not finite")
            raise TrialFailed(why or "objective is not finite")
        if self.log:
            self.log(
                f"trial {trial.number}: {describe(cfg)} → {value:.4g} "
                f"({len(trained)} trained, {len(outcomes) - len(trained)} cached)"
            )
        if obj.cost:
            cost = cost_value(obj, self.root, rows, head.curve, list(mine))
            trial.set_user_attr("cost", cost)
            return value, cost
        return value

    @staticmethod
    def _pruning_hook(trial: Any, mine: Mapping[str, int], every: int) -> Callable[[Progress], None]:
        """Progress callback: training loss of the trial's own conditional runs → the pruner.

        Intermediate step = (index of λ in the sorted list) × steps + step, so trials are
        compared at the same λ and the same training step. Each event names its job, so shared
        runs (baselines, anchors) and other phases are told apart without labels or job order.
        """

        def hook(event: Progress) -> None:
            if event.job.id not in mine or event.phase != "train" or "loss" not in event.logs:
                return
            step, total = event.step, event.total
            if step % every and step != total:
                return
            at = mine[event.job.id] * total + step
            loss = float(event.logs["loss"])
            trial.report(loss, at)
            if trial.should_prune():
                raise _Prune(f"pruned at λ #{mine[event.job.id] + 1}, step {step} (loss {loss:.4g})")

        return hook
