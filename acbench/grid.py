"""Sweep files: a TOML grid expanded into run configs.

A sweep file names a research question (its header comment says which), a preset, fixed
settings and a grid::

    preset = "cpu"                        # tiny | cpu | paper (the CLI's --preset wins)
    lmbdas = [0.0035, 0.0067, 0.013, 0.025]

    [set]                                 # fixed settings, any config key
    "train.steps" = 300

    [grid]                                # axes; every combination is one curve
    ordering = ["isomap", "random", {name = "umap", n_neighbors = 15}]
    mixer = ["conv1x1", "film"]
    sites = [["hyper_analysis", "hyper_synthesis"], ["latent_prior"]]
    chain = [2, 3, 4]
    seed = [0, 1]

    [presets.cpu]                         # extra settings used only with that preset
    "train.steps" = 200

Grid keys are config keys (dotted keys reach nested fields); ``ordering``, ``mixer`` and
``codec`` take a name or a table with ``name`` and hyper-parameters. Every key goes through
:func:`acbench.config.override`, as the CLI's flags and ``--set`` do.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomllib

from acbench.config import ConfigError, RunConfig, override, preset, validate

TOP_KEYS = {"preset", "presets", "lmbdas", "set", "grid", "name", "description"}


def read_toml(path: Path, what: str, see: str, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """A sweep or search file as a dict; a missing file or a syntax error (naming the line and
    column) raises ``error`` with one line that says what to do."""
    path = Path(path)
    if not path.exists():
        raise error(f"{what} file {path} does not exist (see {see})")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: TOML syntax error: {e}") from None


def check_keys(
    spec: Mapping[str, Any], allowed: set[str], path: Path, error: type[Exception] = ConfigError
) -> None:
    """Refuse top-level keys outside ``allowed``, listing the allowed ones."""
    unknown = set(spec) - allowed
    if unknown:
        raise error(
            f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def load_sweep(path: Path) -> dict[str, Any]:
    """Parse a sweep file; syntax errors name the line and column."""
    spec = read_toml(path, "sweep", "ablations/ for examples")
    check_keys(spec, TOP_KEYS, path)
    return spec


def expand(
    spec: Mapping[str, Any],
    preset_name: str | None = None,
    source: str = "sweep",
    import_plugins: bool = True,
) -> list[RunConfig]:
    """Every combination of the grid as a validated config (duplicates removed)."""
    name = preset_name or spec.get("preset", "cpu")
    cfg = preset(name)
    if "lmbdas" in spec:
        cfg = override(cfg, "lmbdas", spec["lmbdas"])
    for k, v in (spec.get("set") or {}).items():
        cfg = override(cfg, k, v)
    for k, v in (spec.get("presets") or {}).get(name, {}).items():
        cfg = override(cfg, k, v)
    grid = spec.get("grid") or {}
    axes = []
    for key, values in grid.items():
        if not isinstance(values, list):
            raise ConfigError(f"{source}: grid.{key} must be a list of values (got {values!r})")
        if not values:
            raise ConfigError(f"{source}: grid.{key} is empty; give at least one value")
        axes.append((key, values))
    configs: list[RunConfig] = []
    seen = set()
    for combo in itertools.product(*[v for _, v in axes]) if axes else [()]:
        c = cfg
        for (key, _), value in zip(axes, combo):
            c = override(c, key, value)
        c = validate(c, import_plugins)
        key = c
        if key not in seen:
            seen.add(key)
            configs.append(c)
    return configs


def question(path: Path) -> str:
    """The sweep file's leading comment (its research question), as one paragraph."""
    lines = []
    for line in Path(path).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(t for t in lines if t)
    return text.split(" Run: ")[0]  # usage lines (search.toml) are not part of the question


def check_grid(spec: Mapping[str, Any], source: str) -> None:
    """Refuse a sweep without axes: an empty file or ``[grid]`` would train the preset's default curve."""
    hint = (
        'give at least one axis, e.g. [grid] mixer = ["film"] (see ablations/); '
        "for one curve use `acbench run`"
    )
    if not spec:
        raise ConfigError(f"{source} is empty; a sweep file needs a [grid] table: {hint}")
    if "grid" not in spec:
        raise ConfigError(f"{source} has no [grid] table; {hint}")
    if not isinstance(spec["grid"], Mapping):
        raise ConfigError(f"{source}: grid must be a table ([grid] with one list per axis); {hint}")
    if not spec["grid"]:
        raise ConfigError(f"{source}: the [grid] table is empty; {hint}")


def sweep_configs(path: Path, preset_name: str | None = None, import_plugins: bool = True) -> list[RunConfig]:
    """Load and expand a sweep file (one with at least one grid axis)."""
    spec = load_sweep(path)
    check_grid(spec, str(path))
    return expand(spec, preset_name, str(path), import_plugins)
