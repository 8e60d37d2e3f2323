"""Searches: search space (see :mod:`acbench.search`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from acbench.config import Component, ConfigError, RunConfig, override, validate
from acbench.search.base import COMPONENT_KEYS, SearchError


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
