"""Plan: expand configs into jobs, dedupe them, share baselines and orderings.

Four kinds of job (:mod:`acbench.job`), each a run directory named by the hash of what defines it:

- ``baseline``: the unconditioned codec at one λ (shared by every curve that needs it); its
  rows code each eval image alone (the BD-rate anchor).
- ``ordering``: one ordering fitted on the train features of the designated baseline and placed
  on the eval split (shared by every λ, so each point of an RD curve codes the same chains).
- ``anchor``: the step-matched unconditioned anchor of a conditional training budget.
- ``conditional``: the conditional codec at one λ, trained on chains and evaluated on chains of
  the trained length, on one chain through the eval set, and with shuffled references.

Execution is :mod:`acbench.executors` (the loop) and :mod:`acbench.jobs` (what each kind does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from functools import cache

from acbench.config import PROTOCOL, Component, RunConfig
from acbench.job import AnchorJob, BaselineJob, ConditionalJob, Job, OrderingJob
from acbench.registry import CODECS, DATASETS, MIXERS, ORDERINGS

JOINT_VERSION = "2"


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
    if with_mixer and cfg.baseline == "joint":
        # 2: joint training weighs every image of a chain alike and fine-tunes warm weights (the
        # baseline's too) at the warm rate; runs trained before (1, unmarked) are not reused
        v["joint"] = JOINT_VERSION
    if with_ordering and cfg.structure == "tree":
        from acbench.orderings.tree import SpanningTree

        v["structure"] = SpanningTree.version
    return v


def feature_lambda(cfg: RunConfig) -> float:
    """The λ whose baseline embeds the data for the ordering (the middle λ by default)."""
    if cfg.feature_lambda:
        return cfg.feature_lambda
    lams = sorted(cfg.lmbdas)
    return lams[(len(lams) - 1) // 2]


@cache
def baseline_job(cfg: RunConfig, lam: float) -> BaselineJob:
    """The unconditioned codec at ``lam``; with ``lambda_finetune`` it fine-tunes from the
    feature λ's pretraining (every λ but the feature λ)."""
    middle = feature_lambda(cfg)
    init = "" if not cfg.lambda_finetune or lam == middle else baseline_job(cfg, middle).id
    job = BaselineJob(
        data=cfg.data,
        codec=cfg.codec,
        train=cfg.baseline_train,
        versions=_versions(cfg, False, False),
        lambda_finetune=cfg.lambda_finetune,
        lam=lam,
        eval_batch=cfg.eval_batch,
        init_run=init,
    )
    return dataclasses.replace(job, anchor_curve=job.curve)


@cache
def ordering_job(cfg: RunConfig) -> OrderingJob:
    feat = baseline_job(cfg, feature_lambda(cfg)) if cfg.features != "pixels" else None
    return OrderingJob(
        data=cfg.data,
        ordering=cfg.ordering,
        features=cfg.features,
        feature_baseline=feat.id if feat else None,
        seed=cfg.seed,
        versions=_versions(cfg, True, False),
        structure=cfg.structure,
    )


@cache
def anchor_job(cfg: RunConfig, lam: float) -> AnchorJob:
    """The step-matched anchor: the unconditioned codec given the conditional model's budget.

    Same start (the baseline's weights when the conditional codec is warm-started), same steps,
    learning rate and images per step (batch × (L − 1)) as the conditional training; shared by
    every ordering, mixer and site set with that budget.
    """
    base = baseline_job(cfg, lam)
    t = cfg.train
    return AnchorJob(
        data=cfg.data,
        codec=cfg.codec,
        train=dataclasses.replace(t, batch=t.batch * (cfg.chain - 1)),
        warm_start=cfg.warm_start,
        baseline_curve=base.curve,
        versions=_versions(cfg, False, False),
        lam=lam,
        baseline_run=base.id,
        eval_batch=cfg.eval_batch,
        anchor_curve=base.curve,
    )


def zero_control(cfg: RunConfig) -> RunConfig | None:
    """The capacity-matched control: the same architecture with the ``zero`` mixer."""
    if cfg.mixer.name == "zero":
        return None
    return dataclasses.replace(cfg, mixer=Component("zero", {"like": cfg.mixer.name, **cfg.mixer.params}))


@cache
def conditional_job(cfg: RunConfig, lam: float) -> ConditionalJob:
    base = baseline_job(cfg, lam)
    zero = zero_control(cfg)
    return ConditionalJob(
        data=cfg.data,
        codec=cfg.codec,
        mixer=cfg.mixer,
        ordering=cfg.ordering,
        sites=tuple(sorted(cfg.sites)),
        chain=cfg.chain,
        train=cfg.train,
        reference=cfg.reference,
        baseline=cfg.baseline,
        warm_start=cfg.warm_start,
        shared_transforms=cfg.shared_transforms,
        ordering_run=ordering_job(cfg).id,
        baseline_train=cfg.baseline_train,
        seed=cfg.seed,
        versions=_versions(cfg, True, True),
        lam=lam,
        baseline_run=base.id,
        eval_batch=cfg.eval_batch,
        anchor_curve=base.curve,
        matched_curve=anchor_job(cfg, lam).curve,
        control_curve=conditional_job(zero, lam).curve if zero is not None else "",
        structure=cfg.structure,
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


def describe(cfg: RunConfig) -> str:
    """One line naming a curve's config (for messages)."""
    sites = ",".join(cfg.sites)
    tree = " | tree" if cfg.structure == "tree" else ""
    return f"{cfg.codec.name} + {cfg.mixer.name}@{sites} | {cfg.ordering.name}{tree} | L={cfg.chain}"
