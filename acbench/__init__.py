"""acbench: a benchmarking and ablation harness for associative compression of image datasets.

The verbs a user needs, re-exported lazily (``import acbench`` imports neither torch nor
pandas; each name loads its module on first use), as timm and Optuna do at their top level::

    import acbench

    cfg = acbench.create_config("tiny", mixer="film", chain=3)
    acbench.run(cfg, out="runs")                 # train (or find cached) and evaluate one curve
    rows = acbench.load_rows("runs")
    acbench.bd_table(rows)                       # BD-rate of every curve against its baseline

See :mod:`acbench.api` for the functions and the README's "Python API" section.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name → "module:attribute"
_EXPORTS = {
    "create_config": "acbench.api:create_config",
    "load_sweep": "acbench.api:load_sweep",
    "plan": "acbench.api:plan",
    "execute": "acbench.api:execute",
    "run": "acbench.api:run",
    "load_rows": "acbench.api:load_rows",
    "curve_id": "acbench.api:curve_id",
    "list_plugins": "acbench.api:list_plugins",
    "register": "acbench.api:register",
    "bd_rate": "acbench.analysis.bd:bd_rate",
    "bd_table": "acbench.analysis.bdrate:bd_table",
    "RunConfig": "acbench.config:RunConfig",
    "Job": "acbench.job:Job",
    "Outcome": "acbench.job:Outcome",
    "Progress": "acbench.job:Progress",
}

__all__ = [
    "__version__",
    "create_config",
    "load_sweep",
    "plan",
    "execute",
    "run",
    "load_rows",
    "curve_id",
    "list_plugins",
    "register",
    "bd_rate",
    "bd_table",
    "RunConfig",
    "Job",
    "Outcome",
    "Progress",
]

if TYPE_CHECKING:
    from acbench.analysis.bd import bd_rate
    from acbench.analysis.bdrate import bd_table
    from acbench.api import (
        create_config,
        curve_id,
        execute,
        list_plugins,
        load_rows,
        load_sweep,
        plan,
        register,
        run,
    )
    from acbench.config import RunConfig
    from acbench.job import Job, Outcome, Progress


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'acbench' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
