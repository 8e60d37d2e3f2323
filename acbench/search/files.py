"""Searches: search files (see :mod:`acbench.search`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acbench.config import ConfigError, RunConfig
from acbench.grid import check_keys, expand, read_toml
from acbench.search.base import TOP_KEYS, SearchError
from acbench.search.objective import Objective, make_pruner, make_sampler, parse_objective
from acbench.search.space import Space, check_space, parse_space


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
    spec = read_toml(path, "search", "ablations/search.toml", SearchError)
    if "grid" in spec:
        raise SearchError(f"{path}: a search file has [space], not [grid] (use `acbench sweep` for grids)")
    check_keys(spec, TOP_KEYS, path, SearchError)
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
    controls = bool(spec.get("controls", False)) or obj.against in ("matched", "zero")
    return SearchSpec(str(spec.get("name") or path.stem), base, space, obj, pruner, sampler, controls, source)
