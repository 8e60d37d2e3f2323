"""Plan (expand configs into jobs, dedupe, share baselines and orderings) and execute them.

Three kinds of job, each a run directory named by the hash of what defines it:

- ``baseline``: the unconditioned codec at one λ (shared by every curve that needs it); its
  rows code each eval image alone (the BD-rate anchor).
- ``ordering``: one ordering fitted on the train features of the designated baseline and placed
  on the eval split (shared by every λ, so each point of an RD curve codes the same chains).
- ``conditional``: the conditional codec at one λ, trained on chains and evaluated on chains of
  the trained length, on one chain through the eval set, and with shuffled references.

A rerun skips done jobs, resumes unfinished ones from their checkpoint, and records a failed
job's reason instead of stopping.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from acbench.config import PROTOCOL, RunConfig, run_id, to_dict
from acbench.registry import CODECS, DATASETS, MIXERS, ORDERINGS
from acbench.store import Run


@dataclass(frozen=True)
class Job:
    """One unit of work; ``payload`` is everything that defines its result."""

    kind: str
    payload: dict[str, Any] = field(hash=False)
    deps: tuple[str, ...] = ()
    curve: str = ""  # id of the curve (payload without λ)
    anchor_curve: str = ""  # the unconditioned baseline's curve
    matched_curve: str = ""  # the step-matched unconditioned anchor's curve
    control_curve: str = ""  # the zero-mixer control's curve

    @cached_property
    def id(self) -> str:
        return run_id({"kind": self.kind, **self.payload})


def _versions(cfg: RunConfig, with_ordering: bool, with_mixer: bool) -> dict[str, str]:
    v = {
        "codec": CODECS.version(cfg.codec.name),
        "dataset": DATASETS.version(cfg.data.name),
        "protocol": str(PROTOCOL),
    }
    if with_ordering:
        v["ordering"] = ORDERINGS.version(cfg.ordering.name)
    if with_mixer:
        v["mixer"] = MIXERS.version(cfg.mixer.name)
    return v


def feature_lambda(cfg: RunConfig) -> float:
    """The λ whose baseline embeds the data for the ordering (the middle λ by default)."""
    if cfg.feature_lambda:
        return cfg.feature_lambda
    lams = sorted(cfg.lmbdas)
    return lams[(len(lams) - 1) // 2]


@cache
def baseline_job(cfg: RunConfig, lam: float) -> Job:
    base = {
        "data": to_dict(cfg.data),
        "codec": to_dict(cfg.codec),
        "train": to_dict(cfg.baseline_train),
        "versions": _versions(cfg, False, False),
    }
    if cfg.lambda_finetune:
        base["lambda_finetune"] = cfg.lambda_finetune
    curve = run_id({"kind": "baseline", **base})
    payload = {**base, "lam": lam, "eval_batch": cfg.eval_batch}
    middle = feature_lambda(cfg)
    if not cfg.lambda_finetune or lam == middle:
        return Job("baseline", payload, (), curve, curve)
    init = baseline_job(cfg, middle)  # fine-tune from the feature λ's baseline
    return Job("baseline", {**payload, "init_run": init.id}, (init.id,), curve, curve)


@cache
def ordering_job(cfg: RunConfig) -> Job:
    feat = baseline_job(cfg, feature_lambda(cfg)) if cfg.features != "pixels" else None
    payload = {
        "data": to_dict(cfg.data),
        "ordering": to_dict(cfg.ordering),
        "features": cfg.features,
        "feature_baseline": feat.id if feat else None,
        "seed": cfg.seed,
        "versions": _versions(cfg, True, False),
    }
    return Job("ordering", payload, (feat.id,) if feat else ())


@cache
def anchor_job(cfg: RunConfig, lam: float) -> Job:
    """The step-matched anchor: the unconditioned codec given the conditional model's budget.

    Same start (the baseline's weights when the conditional codec is warm-started), same steps,
    learning rate and images per step (batch × (L − 1)) as the conditional training; shared by
    every ordering, mixer and site set with that budget.
    """
    base = baseline_job(cfg, lam)
    t = cfg.train
    train = dataclasses.replace(t, batch=t.batch * (cfg.chain - 1))
    body = {
        "data": to_dict(cfg.data),
        "codec": to_dict(cfg.codec),
        "train": to_dict(train),
        "warm_start": cfg.warm_start,
        "baseline_curve": base.curve,
        "versions": _versions(cfg, False, False),
    }
    curve = run_id({"kind": "anchor", **body})
    payload = {**body, "lam": lam, "baseline_run": base.id, "eval_batch": cfg.eval_batch}
    return Job("anchor", payload, (base.id,), curve, base.curve)


def zero_control(cfg: RunConfig) -> RunConfig | None:
    """The capacity-matched control: the same architecture with the ``zero`` mixer."""
    if cfg.mixer.name == "zero":
        return None
    from acbench.config import Component

    return dataclasses.replace(cfg, mixer=Component("zero", {"like": cfg.mixer.name, **cfg.mixer.params}))


@cache
def conditional_job(cfg: RunConfig, lam: float) -> Job:
    order = ordering_job(cfg)
    base = baseline_job(cfg, lam)
    body = {
        "data": to_dict(cfg.data),
        "codec": to_dict(cfg.codec),
        "mixer": to_dict(cfg.mixer),
        "ordering": to_dict(cfg.ordering),
        "sites": sorted(cfg.sites),
        "chain": cfg.chain,
        "train": to_dict(cfg.train),
        "reference": cfg.reference,
        "baseline": cfg.baseline,
        "warm_start": cfg.warm_start,
        "shared_transforms": cfg.shared_transforms,
        "ordering_run": order.id,
        "baseline_train": to_dict(cfg.baseline_train),
        "seed": cfg.seed,
        "versions": _versions(cfg, True, True),
    }
    curve = run_id({"kind": "conditional", **body})
    payload = {**body, "lam": lam, "baseline_run": base.id, "eval_batch": cfg.eval_batch}
    zero = zero_control(cfg)
    return Job(
        "conditional",
        payload,
        (order.id, base.id),
        curve,
        base.curve,
        anchor_job(cfg, lam).curve,
        conditional_job(zero, lam).curve if zero is not None else "",
    )


def replicas(cfg: RunConfig) -> list[RunConfig]:
    """The config once per training seed: ``train.seed``, +1, ..., +``seeds`` − 1.

    Only the conditional training (and with it the anchor's and the zero control's) changes:
    baselines and the ordering are shared by every seed.
    """
    return [
        dataclasses.replace(cfg, seeds=1, train=dataclasses.replace(cfg.train, seed=cfg.train.seed + i))
        for i in range(cfg.seeds)
    ]


def plan(configs: Iterable[RunConfig], controls: bool = True) -> list[Job]:
    """Jobs for every config (each of its seeds), deduplicated by id, dependencies first.

    With ``controls``, every conditioned curve also gets its step-matched anchor and its
    zero-mixer control (shared wherever they coincide).
    """
    jobs: dict[str, Job] = {}

    def add(job: Job) -> None:
        jobs.setdefault(job.id, job)

    for cfg in (r for c in configs for r in replicas(c)):
        family = [cfg]
        if controls and (zero := zero_control(cfg)) is not None:
            family.append(zero)
        for c in family:
            add(baseline_job(c, feature_lambda(c)))  # first: the others may fine-tune from it
            for lam in c.lmbdas:
                add(baseline_job(c, lam))
            add(ordering_job(c))
            for lam in c.lmbdas:
                if controls:
                    add(anchor_job(c, lam))
                add(conditional_job(c, lam))
    rank = {"baseline": 0, "ordering": 1, "anchor": 2, "conditional": 3}
    return sorted(jobs.values(), key=lambda j: rank[j.kind])


def count(jobs: Sequence[Job]) -> dict[str, int]:
    """Trainings by kind (ordering fits counted apart)."""
    out: dict[str, int] = {}
    for j in jobs:
        out[j.kind] = out.get(j.kind, 0) + 1
    return out


# --------------------------------------------------------------------------------------------
# Execution

Progress = Callable[[str, int, int, dict[str, float]], None]


@dataclass
class Outcome:
    job: Job
    status: str  # done | cached | failed
    reason: str = ""


def execute(
    jobs: Sequence[Job],
    root: Path,
    progress: Progress | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    retry_failed: bool = True,
    executor: Any = None,
) -> list[Outcome]:
    """Run every job not already done; a failure is recorded and the others go on.

    A job whose dependency failed fails too, naming the dependency. With ``executor`` (see
    :mod:`acbench.executors`: local, pool, slurm) the jobs are handed to it instead.
    """
    if executor is not None:
        return executor.run(jobs, root, progress, on_outcome, retry_failed)
    from acbench import jobs as work

    outcomes: dict[str, Outcome] = {}
    for job in jobs:
        run = Run(root, job.id)
        if run.is_done():
            out = Outcome(job, "cached")
        elif run.error() is not None and not retry_failed:
            out = Outcome(job, "failed", run.error() or "")
        elif failed := [d for d in job.deps if d in outcomes and outcomes[d].status == "failed"]:
            reason = f"dependency {failed[0]} failed: {outcomes[failed[0]].reason}"
            work.record_failure(job, run, reason)
            out = Outcome(job, "failed", reason)
        else:
            try:
                work.run_job(job, root, progress)
                out = Outcome(job, "done")
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one failing run is recorded; the sweep goes on
                reason = f"{type(e).__name__}: {e}"
                work.record_failure(job, run, reason, traceback.format_exc())
                out = Outcome(job, "failed", reason)
        outcomes[job.id] = out
        if on_outcome is not None:
            on_outcome(out)
    return list(outcomes.values())


def describe(cfg: RunConfig) -> str:
    """One line naming a curve's config (for messages)."""
    sites = ",".join(cfg.sites)
    return f"{cfg.codec.name} + {cfg.mixer.name}@{sites} | {cfg.ordering.name} | L={cfg.chain}"


def replace(cfg: RunConfig, **kw: Any) -> RunConfig:
    return dataclasses.replace(cfg, **kw)
