"""Searches: running studies (see :mod:`acbench.search`)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acbench.search.base import SearchError, TrialFailed
from acbench.search.files import SearchSpec
from acbench.search.storage import open_storage, open_study
from acbench.search.trial import TrialRunner


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
