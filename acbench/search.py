"""Optuna studies on top of the runner: every trial is a planned curve, so repeats are cache hits.

A search file is a sweep file (``preset``, ``lmbdas``, ``[set]``, ``[presets.<name>]``) with a
search space instead of a grid, an objective, and optionally a pruner and a sampler::

    preset = "cpu"
    name = "mixers-and-orderings"            # study name (default: the file's stem)

    [space]
    chain = {int = [2, 6]}
    "train.lr" = {float = [1e-4, 3e-3], log = true}
    sites = {choices = [["hyper_analysis", "hyper_synthesis"], ["latent_prior"]]}

    [space.ordering]
    choices = ["isomap", "random", "umap"]
    params.umap.n_neighbors = {int = [5, 50], log = true}   # sampled only when umap is chosen

    [space.mixer]
    choices = ["conv1x1", "film", {name = "deep_conv", depth = 2}]
    params.deep_conv.width = {choices = [32, 64]}

    [objective]
    metric = "bd_rate"      # bd_rate (vs the anchor, over the λ list) | rd_loss (at one λ)
    component = "total"     # total | y | z
    eval = "chain"          # chain | full
    rate = "bpp_real"       # bpp_real | bpp_est
    conditioned = false     # bd_rate on the conditioned images only (chain position >= 2)
    against = "baseline"    # baseline | matched (step-matched anchor) | zero (zero-mixer control)
    lam = 0.0067            # rd_loss: which λ (default: the middle one)
    cost = ""               # "" | "seconds" | "steps_params": a second objective (multi-objective)

    [pruner]
    kind = "median"         # median | hyperband | none; other keys go to the Optuna pruner
    n_startup_trials = 4

    [sampler]
    kind = "tpe"            # tpe | random | nsga2; other keys go to the Optuna sampler
    seed = 0

Space entries: ``{choices = [...]}`` (a bare list is the same), ``{int = [lo, hi]}`` or
``{float = [lo, hi]}`` with optional ``log`` and ``step``. Keys are config keys (dotted keys
reach nested fields and plugin parameters, ``"mixer.depth"``); ``ordering``, ``mixer`` and
``codec`` take plugin names or tables (name + fixed parameters) and a ``params.<name>`` table of
parameters sampled only when that plugin is chosen (Optuna name ``mixer:deep_conv.width``).

Each trial runs :func:`acbench.runner.plan` + an executor on the shared run store; its curve id,
anchor curve and run ids are trial user attributes, so trials join to the long rows. Training
losses at every checkpoint are reported to the pruner (single objective, local executor).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from acbench.config import Component, ConfigError, RunConfig, override, validate
from acbench.grid import expand
from acbench.job import Progress

TOP_KEYS = {
    "preset", "presets", "lmbdas", "set", "name", "description",
    "space", "objective", "pruner", "sampler", "controls",
}  # fmt: skip
COMPONENT_KEYS = ("codec", "ordering", "mixer")
METRICS = ("bd_rate", "rd_loss")
COMPONENTS = ("total", "y", "z")
EVALS = ("chain", "full")
RATES = ("bpp_real", "bpp_est")
AGAINST = ("baseline", "matched", "zero")
COSTS = ("", "seconds", "steps_params")
PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "random", "nsga2")
OBJECTIVE_ATTR = "acbench.objective"


class SearchError(ValueError):
    """A search file, storage or study cannot be used; the message names the fix."""


class TrialFailed(Exception):
    """A trial produced no objective value (a run failed, or BD-rate is n/a); it is marked failed."""


class _Prune(BaseException):
    """Raised from the progress hook; a BaseException so that the runner does not record it as
    a failed run (the checkpoint is kept and a later trial with the same config resumes it)."""


# --------------------------------------------------------------------------------------------
# Search space


def _label(value: Any) -> str | int | float | bool:
    """An Optuna-storable label for a choice (lists joined by commas, tables as JSON)."""
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Param:
    """One dimension: a choice among values, or an int / float range."""

    key: str  # config key it sets
    name: str  # Optuna parameter name
    kind: str  # choice | int | float
    values: Mapping[Any, Any] = field(default_factory=dict)  # label -> value (choices)
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return self.values[trial.suggest_categorical(self.name, list(self.values))]
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def examples(self) -> list[Any]:
        """Values that exercise the dimension's ends (used to check keys before any trial)."""
        if self.kind == "choice":
            return list(self.values.values())
        lo = int(self.low) if self.kind == "int" else self.low
        hi = int(self.high) if self.kind == "int" else self.high
        return [lo, hi]


@dataclass(frozen=True)
class ComponentParam:
    """A plugin choice (ordering / mixer / codec) with parameters sampled per chosen plugin."""

    choice: Param
    params: Mapping[str, tuple[Param, ...]]  # plugin name -> its sampled parameters


@dataclass(frozen=True)
class Space:
    """The search space, in the order its dimensions are applied (plugin choices first)."""

    components: tuple[ComponentParam, ...] = ()
    params: tuple[Param, ...] = ()

    def names(self) -> list[str]:
        out = []
        for c in self.components:
            out.append(c.choice.name)
            out += [p.name for ps in c.params.values() for p in ps]
        return out + [p.name for p in self.params]


def _dimension(key: str, name: str, spec: Any, where: str) -> Param:
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, Mapping):
        raise SearchError(
            f"{where}: expected a table such as {{choices = [...]}}, {{int = [lo, hi]}} or "
            f"{{float = [lo, hi], log = true}} (got {spec!r}); fixed values go in [set]"
        )
    kinds = [k for k in ("choices", "int", "float") if k in spec]
    unknown = set(spec) - {"choices", "int", "float", "log", "step"}
    if unknown or len(kinds) != 1:
        raise SearchError(
            f"{where}: give exactly one of choices / int / float (plus log, step); "
            f"got keys {', '.join(sorted(spec))}"
        )
    kind = kinds[0]
    if kind == "choices":
        values = spec["choices"]
        if not isinstance(values, list):
            raise SearchError(f"{where}: choices must be a list (got {values!r})")
        if not values:
            raise SearchError(f"{where}: empty choice list; give at least one value")
        labels = {_label(v): v for v in values}
        if len(labels) != len(values):
            raise SearchError(f"{where}: duplicate choices in {values!r}")
        if "log" in spec or "step" in spec:
            raise SearchError(f"{where}: log / step apply to int and float ranges, not to choices")
        return Param(key, name, "choice", labels)
    bounds = spec[kind]
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
    ):
        raise SearchError(f"{where}: {kind} range must be [low, high] numbers (got {bounds!r})")
    low, high = bounds
    if kind == "int" and not all(float(b).is_integer() for b in bounds):
        raise SearchError(f"{where}: int range needs whole numbers (got {bounds!r}); use float = [...]")
    if low > high:
        raise SearchError(f"{where}: inverted range [{low}, {high}]: low must be <= high")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise SearchError(f"{where}: a log range needs low > 0 (got {low})")
    step = spec.get("step")
    if step is not None and (not isinstance(step, (int, float)) or step <= 0):
        raise SearchError(f"{where}: step must be a positive number (got {step!r})")
    if step is not None and log:
        raise SearchError(f"{where}: step and log cannot be combined (Optuna)")
    return Param(key, name, kind, {}, float(low), float(high), log, step)


def _component_choice(key: str, spec: Any, where: str) -> ComponentParam:
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, Mapping) or "choices" not in spec:
        raise SearchError(f"{where}: expected {{choices = [...]}} (plugin names or tables with `name`)")
    extra = set(spec) - {"choices", "params"}
    if extra:
        raise SearchError(f"{where}: unknown key(s) {', '.join(sorted(extra))}; allowed: choices, params")
    choice = _dimension(key, key, {"choices": spec["choices"]}, where)
    names = set()
    for v in choice.values.values():
        if isinstance(v, str):
            names.add(v)
        elif isinstance(v, Mapping) and isinstance(v.get("name"), str):
            names.add(v["name"])
        else:
            raise SearchError(
                f"{where}: each choice must be a plugin name or a table with `name` (got {v!r})"
            )
    nested = spec.get("params") or {}
    if not isinstance(nested, Mapping):
        raise SearchError(f"{where}.params: expected a table per plugin name")
    params: dict[str, tuple[Param, ...]] = {}
    for plugin, table in nested.items():
        if plugin not in names:
            raise SearchError(
                f"{where}.params.{plugin}: {plugin!r} is not among the choices ({', '.join(sorted(names))})"
            )
        if not isinstance(table, Mapping):
            raise SearchError(f"{where}.params.{plugin}: expected a table of parameter ranges")
        params[plugin] = tuple(
            _dimension(f"{key}.{p}", f"{key}:{plugin}.{p}", s, f"{where}.params.{plugin}.{p}")
            for p, s in table.items()
        )
    return ComponentParam(choice, params)


def parse_space(spec: Mapping[str, Any], source: str = "search") -> Space:
    """Parse a ``[space]`` table; every error names the entry and what to write instead."""
    if not spec:
        raise SearchError(
            f"{source}: [space] is empty; add at least one dimension (see ablations/search.toml)"
        )
    comps, params = [], []
    for key, value in spec.items():
        where = f"{source}: space.{key}"
        if key in COMPONENT_KEYS:
            comps.append(_component_choice(key, value, where))
        else:
            params.append(_dimension(key, key, value, where))
    return Space(tuple(comps), tuple(params))


def _component(value: Any) -> Component:
    if isinstance(value, str):
        return Component(value)
    return Component(value["name"], {k: v for k, v in value.items() if k != "name"})


def _apply_component(cfg: RunConfig, key: str, comp: Component, sampled: Mapping[str, Any]) -> RunConfig:
    """Set a sampled plugin and its sampled hyper-parameters through :func:`config.override`."""
    if key == "codec" and comp.name == cfg.codec.name:
        cfg, extra = override(cfg, key, comp.name), {**comp.params, **sampled}  # keeps the sizes
    else:
        cfg, extra = override(cfg, key, {"name": comp.name, **comp.params}), dict(sampled)
    for k, v in extra.items():
        cfg = override(cfg, f"{key}.{k}", v)
    return cfg


def configure(space: Space, base: RunConfig, pick: Callable[[Param], Any]) -> RunConfig:
    """Apply one point of the space to ``base`` (``pick`` chooses each dimension's value)."""
    cfg = base
    for c in space.components:
        comp = _component(pick(c.choice))
        sampled = {p.key.split(".", 1)[1]: pick(p) for p in c.params.get(comp.name, ())}
        cfg = _apply_component(cfg, c.choice.key, comp, sampled)
    for p in space.params:
        cfg = override(cfg, p.key, pick(p))
    return validate(cfg)


def check_space(space: Space, base: RunConfig, source: str = "search") -> None:
    """Apply every choice and both ends of every range once, so typos fail before any trial."""
    from acbench.registry import UnknownPluginError

    cases: list[tuple[Param, dict[int, Any]]] = []  # (dimension, forced values by id)
    for c in space.components:
        cases.append((c.choice, {}))
        for plugin, ps in c.params.items():
            owner = next(v for v in c.choice.values.values() if _component(v).name == plugin)
            cases += [(p, {id(c.choice): owner}) for p in ps]
    cases += [(p, {}) for p in space.params]
    for p, forced in cases:
        for value in p.examples():
            fixed = {**forced, id(p): value}
            try:
                configure(space, base, lambda q, fixed=fixed: fixed.get(id(q), q.examples()[0]))
            except (ConfigError, UnknownPluginError, TypeError) as e:
                raise SearchError(f"{source}: space.{p.name} = {value!r}: {e}") from None


# --------------------------------------------------------------------------------------------
# Objective, pruner, sampler


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

    @property
    def directions(self) -> list[str]:
        return ["minimize", "minimize"] if self.cost else ["minimize"]

    def describe(self) -> str:
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
        ("against", AGAINST), ("cost", COSTS),
    ):  # fmt: skip
        if getattr(obj, name) not in allowed:
            raise SearchError(
                f"{source}: objective.{name} must be one of "
                f"{', '.join(repr(a) for a in allowed)} (got {getattr(obj, name)!r})"
            )
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


# --------------------------------------------------------------------------------------------
# Search files


@dataclass(frozen=True)
class SearchSpec:
    """A parsed search file."""

    name: str
    base: RunConfig
    space: Space
    objective: Objective
    pruner: Mapping[str, Any]
    sampler: Mapping[str, Any]
    controls: bool
    source: str


def load_search(path: Path, preset_name: str | None = None, **objective: Any) -> SearchSpec:
    """Parse and check a search file (``objective`` keys override the file's ``[objective]``)."""
    path = Path(path)
    if not path.exists():
        raise SearchError(f"search file {path} does not exist (see ablations/search.toml)")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SearchError(f"{path}: TOML syntax error: {e}") from None
    if "grid" in spec:
        raise SearchError(f"{path}: a search file has [space], not [grid] (use `acbench sweep` for grids)")
    unknown = set(spec) - TOP_KEYS
    if unknown:
        raise SearchError(
            f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(TOP_KEYS))}"
        )
    source = str(path)
    from acbench.registry import UnknownPluginError

    try:
        (base,) = expand(
            {k: spec[k] for k in ("preset", "lmbdas", "set", "presets") if k in spec}, preset_name, source
        )
    except (ConfigError, UnknownPluginError) as e:
        raise SearchError(str(e)) from None
    space = parse_space(spec.get("space") or {}, source)
    check_space(space, base, source)
    obj_spec = {**(spec.get("objective") or {}), **{k: v for k, v in objective.items() if v is not None}}
    obj = parse_objective(obj_spec, base, source)
    pruner = dict(spec.get("pruner") or {})
    sampler = dict(spec.get("sampler") or {})
    make_pruner(pruner, None, source)  # check the keys now
    make_sampler(sampler, 0, bool(obj.cost), source)
    controls = bool(spec.get("controls", False)) or obj.against != "baseline"
    return SearchSpec(str(spec.get("name") or path.stem), base, space, obj, pruner, sampler, controls, source)


# --------------------------------------------------------------------------------------------
# Storage and study


def mask(url: str) -> str:
    """The storage URL with its password hidden."""
    import re

    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def default_storage(root: Path) -> str:
    return f"sqlite:///{Path(root).resolve() / 'optuna.db'}"


def open_storage(
    url: str | None,
    root: Path,
    heartbeat: int = 60,
    grace: int | None = None,
    max_retry: int | None = 3,
) -> Any:
    """An Optuna storage: an RDB URL (SQLite default, PostgreSQL, MySQL) with heartbeats and the
    stale-trial retry callback, or a journal file (``*.journal`` / ``journal:PATH``).

    Raises:
        SearchError: the storage cannot be reached or opened (one line, password hidden).
    """
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    url = url or default_storage(root)
    journal = url.startswith("journal:") or url.endswith((".journal", ".log"))
    try:
        if journal:
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            path = Path(url.removeprefix("journal:"))
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        if "://" not in url:
            raise SearchError(
                f"storage {url!r} is neither a URL (sqlite:///path.db, postgresql://user@host/db) "
                "nor a journal file (*.journal)"
            )
        engine: dict[str, Any] = {}
        if url.startswith("sqlite"):
            engine = {"connect_args": {"timeout": 60}}
            db = url.split(":///", 1)[-1]
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
        elif url.startswith("postgresql"):
            engine = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat,
                grace_period=grace or 2 * heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry),
            )
    except SearchError:
        raise
    except ImportError as e:
        cause = getattr(e, "__cause__", None) or e
        raise SearchError(
            f"cannot open storage {mask(url)}: {cause} (for PostgreSQL: pip install 'psycopg[binary]')"
        ) from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy / driver errors: one line, no traceback
        orig = getattr(e, "orig", None) or e
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        raise SearchError(f"cannot open storage {mask(url)}: {first}") from None


def open_study(
    spec: SearchSpec, storage: Any, name: str | None = None, worker: int = 0, pruner: str | None = None
) -> Any:
    """Create or load the study; refuse one that exists with another objective or direction."""
    import optuna

    name = name or spec.name
    want = spec.objective.identity()
    try:
        existing = optuna.study.get_all_study_names(storage)
    except Exception as e:  # noqa: BLE001
        raise SearchError(f"cannot read studies from the storage: {str(e).splitlines()[0]}") from None
    if name in existing:
        old = optuna.load_study(study_name=name, storage=storage)
        have = old.user_attrs.get(OBJECTIVE_ATTR)
        dirs = [d.name.lower() for d in old.directions]
        if (have is not None and have != want) or dirs != want["directions"]:
            what = (
                Objective(**{k: v for k, v in have.items() if k != "directions"}).describe()
                if have
                else f"directions {dirs}"
            )
            raise SearchError(
                f"study {name!r} already exists with objective {what}; this search asks for "
                f"{spec.objective.describe()}. Use another --study name, or the same objective"
            )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=spec.objective.directions,
        sampler=make_sampler(spec.sampler, worker, bool(spec.objective.cost), spec.source),
        pruner=make_pruner(spec.pruner, pruner, spec.source),
        load_if_exists=True,
    )
    if OBJECTIVE_ATTR not in study.user_attrs:
        study.set_user_attr(OBJECTIVE_ATTR, want)
        study.set_user_attr("acbench.search_file", spec.source)
    return study


# --------------------------------------------------------------------------------------------
# One trial


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
        anchor = {"baseline": head.anchor_curve, "matched": head.matched_curve, "zero": head.control_curve}[
            obj.against
        ]
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


# --------------------------------------------------------------------------------------------
# Running studies


@dataclass(frozen=True)
class SearchOptions:
    """How to run a search (everything but the file)."""

    root: Path = Path("runs")
    storage: str | None = None
    study: str | None = None
    heartbeat: int = 60
    grace: int | None = None
    max_retry: int | None = 3
    pruner: str | None = None
    executor: str = "local"
    executor_options: Mapping[str, Any] = field(default_factory=dict)


def _optimize(
    spec: SearchSpec, opts: SearchOptions, n_trials: int, worker: int, log: Callable[[str], None] | None
) -> None:
    import optuna

    from acbench.executors import make_executor

    storage = open_storage(opts.storage, opts.root, opts.heartbeat, opts.grace, opts.max_retry)
    study = open_study(spec, storage, opts.study, worker, opts.pruner)
    executor = make_executor(opts.executor, root=opts.root, **opts.executor_options)
    objective = TrialRunner(spec, Path(opts.root), executor, log=log)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, n_trials=n_trials, catch=(TrialFailed,), gc_after_trial=False)


def _worker_main(spec: SearchSpec, opts: SearchOptions, n_trials: int, worker: int, log: bool) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _optimize(
        spec,
        opts,
        n_trials,
        worker,
        (lambda line: print(f"[worker {worker}] {line}", file=sys.stderr, flush=True)) if log else None,
    )


def shares(n: int, workers: int) -> list[int]:
    """``n`` trials split over ``workers`` (the first ones take the remainder)."""
    return [n // workers + (i < n % workers) for i in range(workers)]


def run_search(
    spec: SearchSpec,
    opts: SearchOptions,
    trials: int,
    workers: int = 1,
    log: Callable[[str], None] | None = None,
) -> Any:
    """Add ``trials`` trials to the study, in this process or in ``workers`` processes.

    Returns:
        The study (loaded from the storage after every worker has finished).
    """
    from acbench.store import check_writable

    if trials < 0 or workers < 1:
        raise SearchError(f"--trials must be >= 0 and --workers >= 1 (got {trials}, {workers})")
    check_writable(opts.root)
    storage = open_storage(opts.storage, opts.root, opts.heartbeat, opts.grace, opts.max_retry)
    study = open_study(spec, storage, opts.study, 0, opts.pruner)  # create once, check the objective
    if trials == 0:
        return study
    if workers == 1:
        _optimize(spec, opts, trials, 0, log)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        procs = [
            ctx.Process(
                target=_worker_main, args=(spec, opts, n, i, log is not None), name=f"acbench-search-{i}"
            )
            for i, n in enumerate(shares(trials, workers))
            if n > 0
        ]
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            raise
        bad = [p for p in procs if p.exitcode != 0]
        if bad:
            raise SearchError(
                f"{len(bad)} search worker(s) exited with an error (exit {bad[0].exitcode}); "
                "see the messages above"
            )
    import optuna

    return optuna.load_study(study_name=study.study_name, storage=storage)


# --------------------------------------------------------------------------------------------
# Report


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_fmt(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report(study: Any, out: Path, top: int = 5, storage_label: str = "") -> tuple[str, list[Path]]:
    """Markdown summary (best trials, parameter importances) and Optuna plots written as files.

    Plots use Optuna's matplotlib backend (PNG, offline); with plotly installed, interactive
    HTML versions are written too.

    Returns:
        ``(markdown, written files)``; the markdown is also written to ``out/report.md``.
    """
    import optuna
    from optuna.trial import TrialState

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    have = study.user_attrs.get(OBJECTIVE_ATTR)
    obj = Objective(**{k: v for k, v in have.items() if k != "directions"}) if have else None
    multi = len(study.directions) > 1
    lines = [
        "<!-- Generated by `acbench search --report`; do not edit. -->",
        f"# Search `{study.study_name}`",
        "",
        f"- objective: {obj.describe() if obj else 'unknown'} (minimised)",
        *([f"- storage: `{storage_label}`"] if storage_label else []),
        f"- trials: {len(trials)} ({', '.join(f'{v} {k}' for k, v in sorted(states.items()))})",
        "",
    ]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    names = sorted({k for t in complete for k in t.params})
    if complete:
        if multi:
            best = sorted(study.best_trials, key=lambda t: t.values[0])
            lines += ["## Pareto front (saving vs cost)", ""]
            head = ["trial", "value", "cost", *names, "curve"]
            body = [
                [
                    t.number,
                    t.values[0],
                    t.values[1],
                    *[t.params.get(n, "") for n in names],
                    t.user_attrs.get("curve", ""),
                ]
                for t in best
            ]
        else:
            best = sorted(complete, key=lambda t: t.value)[:top]
            lines += [f"## Best {len(best)} trials", ""]
            head = ["trial", "value", *names, "curve"]
            body = [
                [t.number, t.value, *[t.params.get(n, "") for n in names], t.user_attrs.get("curve", "")]
                for t in best
            ]
        lines += [_table(head, body), ""]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if failed:
        lines += ["## Failed trials", ""]
        lines += [
            _table(
                ["trial", "reason"],
                [[t.number, t.user_attrs.get("error", "(worker lost: heartbeat)")] for t in failed],
            ),
            "",
        ]
    lines += ["## Parameter importances", ""]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(
                study, target=(lambda t: t.values[0]) if multi else None
            )
        lines += [
            _table(["parameter", "importance"], [[k, v] for k, v in imp.items()])
            if imp
            else "n/a: no parameter varies",
            "",
        ]
    except Exception as e:  # noqa: BLE001 - too few trials, a single distribution, ...
        lines += [f"n/a: {str(e).splitlines()[0] if str(e) else type(e).__name__}", ""]
    files = _plots(study, out, multi)
    if files:
        lines += ["## Plots", ""] + [f"- [{p.name}]({p.name})" for p in files] + [""]
    text = "\n".join(line for line in lines if line is not None) + "\n"
    path = out / "report.md"
    path.write_text(text)
    return text, [path, *files]


def _plots(study: Any, out: Path, multi: bool) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vm
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        return []
    target = (lambda t: t.values[0]) if multi else None
    plots: dict[str, Callable[[], Any]] = {
        "optimization_history": lambda: vm.plot_optimization_history(
            study, target=target, target_name="objective"
        ),
        "parallel_coordinate": lambda: vm.plot_parallel_coordinate(
            study, target=target, target_name="objective"
        ),
    }
    if multi:
        plots["pareto_front"] = lambda: vm.plot_pareto_front(study, target_names=["objective", "cost"])
    elif any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        plots["intermediate_values"] = lambda: vm.plot_intermediate_values(study)
    files = []
    for name, fn in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = fn()
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(9, 5)
            fig.tight_layout()
            path = out / f"{name}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            files.append(path)
        except Exception:  # noqa: BLE001 - a plot that needs more trials is skipped
            plt.close("all")
    files += _plotly_html(study, out, multi)
    return files


def _plotly_html(study: Any, out: Path, multi: bool) -> list[Path]:
    try:
        import plotly  # noqa: F401
    except ImportError:
        return []
    import optuna.visualization as v

    target = (lambda t: t.values[0]) if multi else None
    files = []
    for name, fn in (
        ("optimization_history", v.plot_optimization_history),
        ("parallel_coordinate", v.plot_parallel_coordinate),
    ):
        try:
            fig = fn(study, target=target, target_name="objective")
            path = out / f"{name}.html"
            fig.write_html(str(path), include_plotlyjs=True)
            files.append(path)
        except Exception:  # noqa: BLE001
            pass
    return files
