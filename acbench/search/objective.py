"""Searches: objective, pruner, sampler (see :mod:`acbench.search`)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acbench.config import RunConfig
from acbench.search.base import (
    AGAINST,
    COMPONENTS,
    COSTS,
    EVALS,
    METRICS,
    PRUNERS,
    RATES,
    SAMPLERS,
    SPLITS,
    SearchError,
)


@dataclass(frozen=True)
class Objective:
    """What a trial returns: BD-rate (percent, lower = better) or RD loss; optionally a cost."""

    metric: str = "bd_rate"
    component: str = "total"
    eval: str = "chain"
    rate: str = "bpp_real"
    conditioned: bool = False
    against: str = "baseline"
    lam: float = 0.0
    cost: str = ""
    split: str = ""

    @property
    def directions(self) -> list[str]:
        return ["minimize", "minimize"] if self.cost else ["minimize"]

    def describe(self) -> str:
        split = ", even-numbered eval images (odd ones held back for the report)" if self.split else ""
        if self.against == "shuffled":
            how = "BD-rate" if self.metric == "bd_rate" else "rate change at the same λ"
            s = (
                f"content gain: {how} {self.component} ({self.rate}, eval {self.eval}) of true vs "
                f"shuffled references, conditioned images{split}"
            )
            return s + (f" + cost {self.cost}" if self.cost else "")
        if self.metric == "bd_rate":
            s = f"BD-rate {self.component} ({self.rate}, eval {self.eval}, vs {self.against}"
            s += ", conditioned images only)" if self.conditioned else ")"
        else:
            s = f"RD loss {self.component} at λ={self.lam:g} ({self.rate}, eval {self.eval})"
        return s + (f" + cost {self.cost}" if self.cost else "")

    def identity(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "directions": self.directions}


def parse_objective(spec: Mapping[str, Any], base: RunConfig, source: str = "search") -> Objective:
    fields_ = {f.name for f in dataclasses.fields(Objective)}
    unknown = set(spec) - fields_
    if unknown:
        raise SearchError(
            f"{source}: objective has unknown key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(fields_))}"
        )
    obj = Objective(**spec)
    for name, allowed in (
        ("metric", METRICS), ("component", COMPONENTS), ("eval", EVALS), ("rate", RATES),
        ("against", AGAINST), ("cost", COSTS), ("split", SPLITS),
    ):  # fmt: skip
        if getattr(obj, name) not in allowed:
            raise SearchError(
                f"{source}: objective.{name} must be one of "
                f"{', '.join(repr(a) for a in allowed)} (got {getattr(obj, name)!r})"
            )
    if obj.metric == "same_lam" and obj.against != "shuffled":
        raise SearchError(
            f'{source}: metric = "same_lam" needs against = "shuffled" (the neighbour\'s content)'
        )
    if obj.split and obj.against != "shuffled":
        raise SearchError(f'{source}: split = "{obj.split}" needs against = "shuffled" (the content gain)')
    if obj.metric == "same_lam":
        return obj
    if obj.metric == "rd_loss":
        from acbench.runner import feature_lambda

        lam = float(obj.lam) if obj.lam else feature_lambda(dataclasses.replace(base, feature_lambda=0.0))
        if not any(math.isclose(lam, x) for x in base.lmbdas):
            raise SearchError(f"{source}: objective.lam = {lam:g} is not in the λ list {list(base.lmbdas)}")
        obj = dataclasses.replace(obj, lam=lam)
    elif len(base.lmbdas) < 4:
        raise SearchError(
            f'{source}: BD-rate needs >= 4 λ values (got {len(base.lmbdas)}); use metric = "rd_loss"'
        )
    return obj


def _kwargs(cls: Any, params: Mapping[str, Any], what: str) -> dict[str, Any]:
    import inspect

    try:
        inspect.signature(cls).bind(**params)
    except TypeError as e:
        raise SearchError(f"{what}: {e}") from None
    return dict(params)


def make_pruner(spec: Mapping[str, Any], kind: str | None = None, source: str = "search") -> Any:
    """An Optuna pruner from ``[pruner]`` (``kind`` overrides the file's)."""
    import optuna

    spec = dict(spec)
    kind = kind or spec.pop("kind", "median")
    spec.pop("kind", None)
    if kind == "none":
        return optuna.pruners.NopPruner()
    classes = {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner}
    if kind not in classes:
        raise SearchError(f"{source}: unknown pruner {kind!r}; use one of {', '.join(PRUNERS)}")
    return classes[kind](**_kwargs(classes[kind], spec, f"{source}: pruner {kind}"))


def make_sampler(
    spec: Mapping[str, Any], worker: int = 0, multi: bool = False, source: str = "search"
) -> Any:
    """An Optuna sampler from ``[sampler]``; each worker gets its own seed (seed + worker)."""
    import optuna

    spec = dict(spec)
    kind = spec.pop("kind", "nsga2" if multi else "tpe")
    classes = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "nsga2": optuna.samplers.NSGAIISampler,
    }
    if kind not in classes:
        raise SearchError(f"{source}: unknown sampler {kind!r}; use one of {', '.join(SAMPLERS)}")
    if spec.get("seed") is not None:
        spec["seed"] = int(spec["seed"]) + worker
    if kind == "tpe":
        spec.setdefault("constant_liar", True)  # parallel workers avoid proposing running points
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return classes[kind](**_kwargs(classes[kind], spec, f"{source}: sampler {kind}"))
