"""Configs are frozen dataclasses; presets; ``--set key=value`` overrides; stable run ids.

Precedence: CLI > file > preset defaults. A run is named by the hash of its config (plus plugin
versions and the results schema), never by time, device, worker count or paths.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# run identity lives in the leaf module acbench.job; re-exported here for callers of config
from acbench.job import SCHEMA, run_id, to_dict  # noqa: F401
from acbench.suggest import did_you_mean, unknown

# bump when the training loop changes what a config trains (schedule, validation, augmentation):
# part of every run id, so cached runs and shipped zoo models of another protocol are not reused
PROTOCOL = 2

SITES = ("hyper_analysis", "hyper_synthesis", "latent_prior", "hyper_prior")
PAPER_SITES = ("hyper_analysis", "hyper_synthesis")
FEATURES = ("hyper", "y", "pixels")
REFERENCES = ("latents", "reconstruction")
BASELINE_MODES = ("frozen", "joint")
# chain: x_k given x_{k-1} of the ordering; tree: each image given its parent in a minimum
# spanning forest of the ordering features (acbench.orderings.tree)
STRUCTURES = ("chain", "tree")


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class Component:
    """A plugin by registry name plus its keyword hyper-parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # params is a dict: hash its canonical JSON
        return hash((self.name, json.dumps(to_dict(self.params), sort_keys=True, default=str)))


@dataclass(frozen=True)
class DataConfig:
    """Which images, cut how, split how."""

    name: str = "photos"
    root: str | None = None  # folder for the ``folder`` dataset
    tile: int = 64  # tile / crop side in pixels
    eval_fraction: float = 0.2
    # held out of the train split for the convergence figure (never trained on, never evaluated)
    val_fraction: float = 0.0
    max_items: int = 0  # 0 = all
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)  # the dataset's own options

    def __hash__(self) -> int:
        return hash(json.dumps(to_dict(self), sort_keys=True, default=str))


@dataclass(frozen=True)
class TrainConfig:
    """One training job (baseline or conditional)."""

    steps: int = 100
    batch: int = 8
    lr: float = 1e-4
    aux_lr: float = 1e-3
    clip: float = 1.0
    checkpoint_every: int = 100
    seed: int = 0
    # the last ``decay_steps`` steps run at ``lr * decay`` (step decay; 0 = constant lr)
    decay_steps: int = 0
    decay: float = 0.1
    # parameters loaded from a warm start train at ``lr * warm_lr_scale``; new ones (mixers) at lr
    warm_lr_scale: float = 1.0
    # random flips and 90-degree rotations (one per sample, the same for a whole chain)
    augment: bool = False


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one conditional curve (all λ) and its shared dependencies."""

    preset: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    codec: Component = field(default_factory=lambda: Component("mshp", {"N": 32, "M": 48}))
    ordering: Component = field(default_factory=lambda: Component("isomap"))
    mixer: Component = field(default_factory=lambda: Component("film"))
    sites: tuple[str, ...] = PAPER_SITES
    chain: int = 4  # chain length L; with structure "tree", the longest root-ward path (depth cut)
    structure: str = "chain"
    lmbdas: tuple[float, ...] = (0.0035, 0.0067, 0.013, 0.025)
    baseline_train: TrainConfig = field(default_factory=TrainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    features: str = "hyper"
    reference: str = "latents"
    baseline: str = "frozen"
    warm_start: bool = True
    shared_transforms: bool = False  # freeze g_a / g_s at the baseline's (needs warm_start)
    feature_lambda: float = 0.0  # 0 = the middle λ of the list
    # > 0: the baselines share their first baseline_train.steps steps, trained at the feature λ;
    # then every λ (the feature λ too) trains this many more steps at its own λ
    lambda_finetune: int = 0
    eval_batch: int = 64
    seed: int = 0
    # conditional models and their controls are trained with train.seed, +1, ..., +seeds-1
    # (baselines and the ordering shared); reports pool them with seed-and-image intervals
    seeds: int = 1


# --------------------------------------------------------------------------------------------
# Presets

PRESETS: dict[str, RunConfig] = {
    "tiny": RunConfig(
        preset="tiny",
        data=DataConfig(tile=64, max_items=60, eval_fraction=0.25, val_fraction=0.1),
        codec=Component("mshp", {"N": 8, "M": 12}),
        lmbdas=(0.0035, 0.0067, 0.013, 0.025),
        baseline_train=TrainConfig(steps=6, batch=4, lr=1e-3, checkpoint_every=3, decay_steps=2),
        train=TrainConfig(
            steps=4, batch=2, lr=1e-3, checkpoint_every=2, decay_steps=2, warm_lr_scale=0.1, augment=True
        ),
        eval_batch=16,
    ),
    # baselines: 5000 steps shared at the feature λ, then 3000 at each λ, the last 2000 of them
    # at lr / 10 (shipped in acbench/zoo for ZOO_LAMBDAS); conditional models and controls:
    # mixers at 1e-3, warm-started weights at 1e-4, the last half at a tenth; 3 seeds
    "cpu": RunConfig(
        preset="cpu",
        data=DataConfig(tile=64, val_fraction=0.1),
        codec=Component("mshp", {"N": 32, "M": 48}),
        lmbdas=(0.0035, 0.0067, 0.013, 0.025),
        baseline_train=TrainConfig(
            steps=5000, batch=16, lr=1e-3, checkpoint_every=500, decay_steps=2000, augment=True
        ),
        train=TrainConfig(
            steps=160,
            batch=8,
            lr=1e-3,
            checkpoint_every=40,
            decay_steps=80,
            warm_lr_scale=0.1,
            augment=True,
        ),
        lambda_finetune=3000,
        seeds=3,
    ),
    # the paper's schedule (100k steps, batch 32, Adam 3e-4, 8 λ) under protocol 2: the last 20k
    # steps at lr / 10, flips and rotations, warm-started weights of conditional models at lr / 10,
    # a validation split, 3 seeds of every conditional model and control
    "paper": RunConfig(
        preset="paper",
        data=DataConfig(tile=256, val_fraction=0.05),
        codec=Component("mshp", {"N": 128, "M": 192}),
        lmbdas=(0.0004, 0.0008, 0.0016, 0.0032, 0.0075, 0.015, 0.03, 0.045),
        baseline_train=TrainConfig(
            steps=100_000, batch=32, lr=3e-4, checkpoint_every=2000, decay_steps=20_000, augment=True
        ),
        train=TrainConfig(
            steps=100_000,
            batch=32,
            lr=3e-4,
            checkpoint_every=2000,
            decay_steps=20_000,
            warm_lr_scale=0.1,
            augment=True,
        ),
        eval_batch=16,
        seeds=3,
    ),
}


def preset(name: str) -> RunConfig:
    """The named preset; unknown names fail with the known ones listed."""
    if name not in PRESETS:
        raise ConfigError(unknown("preset", name, PRESETS))
    return PRESETS[name]


# --------------------------------------------------------------------------------------------
# Overrides: ``--set train.steps=200`` / TOML tables


def _field_type(obj: Any, name: str) -> Any:
    hints = typing.get_type_hints(type(obj))
    return hints[name]


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: cannot parse {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key} expects true/false, got {value!r}")
    if tp in (int, float, str):
        if isinstance(value, bool) and tp is not str:
            raise ConfigError(f"{key} expects {tp.__name__}, got {value!r}")
        try:
            out = tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} expects {tp.__name__}, got {value!r}") from None
        if tp is int and isinstance(value, float) and value != out:
            raise ConfigError(f"{key} expects int, got {value!r}")
        return out
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(";", ",").split(",") if v.strip()]
        if not isinstance(value, Sequence):
            raise ConfigError(f"{key} expects a list, got {value!r}")
        inner = args[0] if args else str
        return tuple(_coerce(v.strip() if isinstance(v, str) else v, inner, key) for v in value)
    if origin in (Mapping, dict) or tp is Mapping:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(f"{key} expects a JSON object, got {value!r}") from None
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} expects a table, got {value!r}")
        return dict(value)
    return value


def _parse_scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def override(cfg: Any, key: str, value: Any, _prefix: str = "") -> Any:
    """Return ``cfg`` with the dotted ``key`` set to ``value`` (type-checked).

    ``seed`` on a run config is *the* seed: it sets the run's seed and the conditional training's
    (``train.seed``) together, whether it comes from ``--seed``, ``--set seed=`` or a sweep file.
    """
    if isinstance(cfg, RunConfig) and key == "seed":
        s = _coerce(value, int, _prefix + key)
        return dataclasses.replace(cfg, seed=s, train=dataclasses.replace(cfg.train, seed=s))
    if isinstance(cfg, RunConfig) and key in COMPONENTS and not _is_table_without_name(value):
        return dataclasses.replace(cfg, **{key: _component(getattr(cfg, key), value, key)})
    head, _, rest = key.partition(".")
    full = _prefix + key
    fields = {f.name for f in dataclasses.fields(cfg)}
    if head not in fields:
        if isinstance(cfg, Component) and head not in fields:
            head, rest = "params", key
        else:
            hint = did_you_mean(head, fields)
            hint = f"; {hint}" if hint else ""
            raise ConfigError(f"unknown config key {full!r}{hint} (keys: {', '.join(sorted(fields))})")
    current = getattr(cfg, head)
    if rest:
        if head == "params":
            params = dict(current)
            params[rest] = _parse_scalar(value) if isinstance(value, str) else value
            return dataclasses.replace(cfg, params=params)
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"config key {head!r} has no sub-keys (got {key!r})")
        return dataclasses.replace(cfg, **{head: override(current, rest, value, f"{_prefix}{head}.")})
    if dataclasses.is_dataclass(current):
        if isinstance(value, Mapping):
            sub = current
            for k, v in value.items():
                sub = override(sub, k, v, f"{_prefix}{head}.")
            return dataclasses.replace(cfg, **{head: sub})
        raise ConfigError(f"config key {key!r} is a table; set its fields ({key}.name=...)")
    return dataclasses.replace(cfg, **{head: _coerce(value, _field_type(cfg, head), full)})


COMPONENTS = ("ordering", "mixer", "codec")


def _is_table_without_name(value: Any) -> bool:
    return isinstance(value, Mapping) and "name" not in value  # hyper-parameters, set one by one


def _component(current: Component, value: Any, key: str) -> Component:
    """A plugin set by name (``--mixer film``, ``--set mixer=film``, ``mixer = "film"``) or by a
    table with ``name`` and hyper-parameters (``{name = "umap", n_neighbors = 15}``).

    A bare name keeps the current hyper-parameters when the name does not change; a codec keeps
    the preset's sizes (``N``, ``M``) whenever none are given.
    """
    if isinstance(value, Component):
        return value
    if isinstance(value, str):
        name, params = value, None
    elif isinstance(value, Mapping) and "name" in value:
        name, params = value["name"], {k: v for k, v in value.items() if k != "name"}
    else:
        raise ConfigError(f"{key}: give a name or a table with `name` (got {value!r})")
    if not params and (name == current.name or key == "codec"):
        params = dict(current.params)
    return Component(name, params or {})


def apply_overrides(cfg: RunConfig, pairs: Sequence[str]) -> RunConfig:
    """Apply ``key=value`` strings (the CLI's ``--set``)."""
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r} (e.g. --set train.steps=200)")
        key, value = pair.split("=", 1)
        cfg = override(cfg, key.strip(), value.strip())
    return cfg


def validate(cfg: RunConfig, import_plugins: bool = True) -> RunConfig:
    """Check values and plugin names early, so a typo fails before any training.

    With ``import_plugins=False`` (dry runs), plugin parameters are bound only for plugins
    already imported, so planning never waits for torch.
    """
    from acbench.registry import CODECS, DATASETS, MIXERS, ORDERINGS

    if cfg.lambda_finetune < 0:
        raise ConfigError(
            f"lambda_finetune must be >= 0 steps (got {cfg.lambda_finetune}); 0 = independent baselines"
        )
    if cfg.chain < 2:
        raise ConfigError(f"chain length must be >= 2 (got {cfg.chain}); use --chain 2 or more")
    if not cfg.lmbdas:
        raise ConfigError("the λ list is empty; give at least one --lmbda")
    for lam in cfg.lmbdas:
        if not lam > 0:
            raise ConfigError(f"λ must be > 0 (got {lam}); e.g. --lmbda 0.0067")
    if len(set(cfg.lmbdas)) != len(cfg.lmbdas):
        raise ConfigError(f"λ list has duplicates: {cfg.lmbdas}")
    unknown = [s for s in cfg.sites if s not in SITES]
    if unknown or not cfg.sites:
        raise ConfigError(
            f"unknown conditioning site(s) {unknown or cfg.sites!r}; choose from {', '.join(SITES)}"
        )
    for name, allowed in (
        ("features", FEATURES),
        ("reference", REFERENCES),
        ("baseline", BASELINE_MODES),
        ("structure", STRUCTURES),
    ):
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)} (got {getattr(cfg, name)!r})")
    for t in (cfg.train, cfg.baseline_train):
        if t.steps < 0 or t.batch < 1 or t.lr <= 0:
            raise ConfigError(f"training needs steps >= 0, batch >= 1, lr > 0 (got {t})")
        if t.decay_steps < 0 or not 0 < t.decay <= 1 or not t.warm_lr_scale > 0:
            raise ConfigError(
                f"training needs decay_steps >= 0, 0 < decay <= 1 and warm_lr_scale > 0 (got {t})"
            )
    if cfg.seeds < 1:
        raise ConfigError(f"seeds must be >= 1 (got {cfg.seeds}); e.g. --set seeds=3")
    if cfg.shared_transforms and not cfg.warm_start:
        raise ConfigError("shared_transforms needs warm_start (the transforms are the baseline's)")
    if cfg.data.tile < 16:
        raise ConfigError(f"data.tile must be >= 16 px (got {cfg.data.tile})")
    if not 0 < cfg.data.eval_fraction < 1:
        raise ConfigError(f"data.eval_fraction must be in (0, 1) (got {cfg.data.eval_fraction})")
    if not 0 <= cfg.data.val_fraction < 0.5:
        raise ConfigError(f"data.val_fraction must be in [0, 0.5) (got {cfg.data.val_fraction})")
    DATASETS.check(cfg.data.name)
    CODECS.check(cfg.codec.name)
    MIXERS.check(cfg.mixer.name)
    ORDERINGS.check(cfg.ordering.name)
    for reg, comp in ((ORDERINGS, cfg.ordering), (MIXERS, cfg.mixer), (CODECS, cfg.codec)):
        if import_plugins or reg.loaded(comp.name):
            _bind(reg.get(comp.name), comp, reg.kind)
    return cfg


def _bind(factory: Any, comp: Component, kind: str) -> None:
    import inspect

    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    if len(params) != len(sig.parameters):
        return  # accepts **kwargs
    names = {p.name for p in params}
    bad = [k for k in comp.params if k not in names]
    if bad:
        ok = sorted(n for n in names if n not in ("self", "channels"))
        raise ConfigError(
            f"{kind[:-1]} {comp.name!r} has no parameter {', '.join(map(repr, bad))}; "
            f"it takes: {', '.join(ok) or 'none'}"
        )


# --------------------------------------------------------------------------------------------
# Identity


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Inverse of :func:`to_dict` for the config dataclasses."""
    kwargs = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        v = data[f.name]
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            v = from_dict(tp, v)
        elif typing.get_origin(tp) is tuple:
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)
