"""The Python API: the verbs the CLI is made of, one call each (re-exported lazily by ``acbench``).

::

    import acbench

    cfg = acbench.create_config("tiny", mixer="film", chain=3, overrides={"train.steps": 4})
    outcomes = acbench.run(cfg, out="runs")              # plan + execute one curve
    rows = acbench.load_rows("runs")                     # one long table
    table = acbench.bd_table(rows)                       # BD-rate per curve / eval / component
    acbench.list_plugins("mixers", "conv*")              # ['conv1x1']

The CLI is a thin shell over these functions (``acbench run`` = :func:`create_config` +
:func:`run`, ``acbench sweep`` = :func:`load_sweep` + :func:`plan` + :func:`execute`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from acbench.config import RunConfig
    from acbench.executors import Executor
    from acbench.job import Job, OnProgress, Outcome


def create_config(preset: str = "cpu", overrides: Mapping[str, Any] | None = None, **keys: Any) -> RunConfig:
    """A validated run config: the preset, then each key through :func:`acbench.config.override`.

    Args:
        preset: ``tiny``, ``cpu`` or ``paper``.
        overrides: dotted keys (``{"train.steps": 50, "mixer.params.depth": 3}``), applied last.
        **keys: top-level keys (``mixer="film"``, ``chain=3``, ``lmbdas=[...]``, ``seed=1``).
    """
    from acbench.config import override, validate
    from acbench.config import preset as get_preset

    cfg = get_preset(preset)
    for key, value in {**keys, **dict(overrides or {})}.items():
        cfg = override(cfg, key, value)
    return validate(cfg)


def load_sweep(path: str | Path, preset: str | None = None) -> list[RunConfig]:
    """Every curve of a sweep file (``ablations/*.toml``), validated; ``preset`` overrides the file's."""
    from acbench.grid import sweep_configs

    return sweep_configs(Path(path), preset)


def plan(configs: RunConfig | Iterable[RunConfig], controls: bool = True) -> list[Job]:
    """The deduplicated jobs of one or several curves, dependencies first (see :mod:`acbench.runner`)."""
    from acbench.config import RunConfig
    from acbench.runner import plan as _plan

    return _plan([configs] if isinstance(configs, RunConfig) else configs, controls)


def execute(
    jobs: Sequence[Job],
    out: str | Path = "runs",
    executor: str | Executor = "local",
    workers: int = 2,
    progress: OnProgress | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    retry_failed: bool = True,
) -> list[Outcome]:
    """Run the jobs not yet done in ``out`` (each under its run lock); one outcome per job.

    Args:
        executor: ``local`` (this process), ``pool`` (``workers`` processes), ``slurm``, or an
            executor object from :func:`acbench.executors.make_executor`.
    """
    from acbench.executors import execute as _execute
    from acbench.executors import make_executor

    ex = make_executor(executor, workers=workers, root=out) if isinstance(executor, str) else executor
    return _execute(jobs, Path(out), progress, on_outcome, retry_failed, executor=ex)


def run(
    config: RunConfig | Iterable[RunConfig],
    out: str | Path = "runs",
    controls: bool = True,
    executor: str | Executor = "local",
    workers: int = 2,
    progress: OnProgress | None = None,
) -> list[Outcome]:
    """Train (or find cached) and evaluate one curve or several: :func:`plan` + :func:`execute`."""
    from acbench.store import check_writable

    check_writable(Path(out))
    return execute(plan(config, controls), out, executor, workers, progress)


def load_rows(out: str | Path = "runs") -> pd.DataFrame:
    """The long rows of every finished run under ``out`` (one per run × image × component × eval)."""
    from acbench.store import load_rows as _load_rows

    return _load_rows(Path(out))[0]


def curve_id(config: RunConfig) -> str:
    """The curve id of a config's conditional runs (the ``curve`` column of its rows)."""
    from acbench.runner import conditional_job

    return conditional_job(config, config.lmbdas[0]).curve


def list_plugins(kind: str | None = None, pattern: str = "*") -> dict[str, list[str]] | list[str]:
    """Plugin names of one kind (``orderings``, ``mixers``, ``codecs``, ``datasets``), or of
    every kind as a dict; ``pattern`` is a shell wildcard (``"conv*"``)."""
    from acbench.registry import REGISTRIES

    if kind is None:
        return {k: r.names(pattern) for k, r in REGISTRIES.items()}
    return _registry(kind).names(pattern)


def register(kind: str, name: str) -> Callable[[Any], Any]:
    """Decorator registering a plugin class under ``name`` (``@acbench.register("mixers", "gate")``)."""
    return _registry(kind).register(name)


def _registry(kind: str) -> Any:
    from acbench.registry import REGISTRIES, UnknownPluginError
    from acbench.suggest import unknown

    if kind not in REGISTRIES:
        raise UnknownPluginError(unknown("plugin kind", kind, REGISTRIES))
    return REGISTRIES[kind]
