"""``acbench search``: Optuna studies over a TOML search space (registered in :mod:`acbench.cli`).

Light at import (no optuna, no torch): the work happens in :mod:`acbench.search`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from acbench.cli_common import _fail


def search(
    file: Annotated[Path, typer.Argument(help="a search file, e.g. ablations/search.toml")],
    trials: Annotated[
        Optional[int], typer.Option(help="trials to add to the study (split over --workers)")
    ] = None,
    workers: Annotated[int, typer.Option(help="worker processes on this machine sharing the study")] = 1,
    storage: Annotated[
        Optional[str],
        typer.Option(
            help="Optuna storage: sqlite:///x.db, postgresql://user@host/db or a *.journal file "
            "(default: sqlite in --out)"
        ),
    ] = None,
    study: Annotated[
        Optional[str], typer.Option(help="study name (default: the file's `name`, else its stem)")
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder (the run store shared with sweeps)")] = Path(
        "runs"
    ),
    preset: Annotated[
        Optional[str], typer.Option(help="override the file's preset (tiny | cpu | paper)")
    ] = None,
    metric: Annotated[
        Optional[str], typer.Option(help="override objective.metric: bd_rate | rd_loss")
    ] = None,
    component: Annotated[
        Optional[str], typer.Option(help="override objective.component: total | y | z")
    ] = None,
    cost: Annotated[
        Optional[str], typer.Option(help="second objective: seconds | steps_params (multi-objective)")
    ] = None,
    pruner: Annotated[
        Optional[str], typer.Option(help="override the file's pruner: median | hyperband | none")
    ] = None,
    executor: Annotated[
        str, typer.Option(help="where each trial's runs execute: local | pool | slurm")
    ] = "local",
    pool_workers: Annotated[int, typer.Option(help="processes of the pool executor")] = 2,
    slurm: Annotated[
        Optional[list[str]],
        typer.Option(
            "--slurm",
            help="submitit parameter key=value (timeout_min=120, gpus_per_node=1, slurm_partition=...)",
        ),
    ] = None,
    cluster: Annotated[
        Optional[str], typer.Option(help="submitit cluster: slurm | local | debug (default: slurm if found)")
    ] = None,
    heartbeat: Annotated[int, typer.Option(help="seconds between trial heartbeats (RDB storage)")] = 60,
    grace: Annotated[
        Optional[int],
        typer.Option(
            help="seconds without heartbeat before a trial counts as crashed (default 2 × heartbeat)"
        ),
    ] = None,
    max_retry: Annotated[int, typer.Option(help="times a crashed trial is retried")] = 3,
    report: Annotated[
        bool, typer.Option("--report", help="print best trials and importances; write plots")
    ] = False,
    report_dir: Annotated[
        Optional[Path], typer.Option(help="where --report writes (default: OUT/search-STUDY)")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no per-trial lines")] = False,
) -> None:
    """Search the design space with Optuna; every trial is a cached, resumable run of the runner."""
    if trials is None and not report:
        _fail("give --trials N to run trials, and/or --report to summarise the study")
    from acbench.executors import ExecutorError, parse_parameters
    from acbench.registry import UnknownPluginError
    from acbench.search import SearchError, SearchOptions, load_search, mask, run_search
    from acbench.store import StoreError

    try:
        spec = load_search(file, preset, metric=metric, component=component, cost=cost)
        ex_opts: dict = {}
        if executor == "pool":
            ex_opts = {"workers": pool_workers}
        elif executor == "slurm":
            ex_opts = {
                "folder": out / "slurm",
                "cluster": cluster,
                "parameters": parse_parameters(slurm or []),
            }
        opts = SearchOptions(
            root=out, storage=storage, study=study, heartbeat=heartbeat, grace=grace,
            max_retry=max_retry, pruner=pruner, executor=executor, executor_options=ex_opts,
        )  # fmt: skip
        from acbench.executors import make_executor

        make_executor(executor, root=out, **ex_opts)  # unknown names fail before any trial
        log = None if quiet else (lambda line: typer.echo(line, err=True))
        if not quiet and trials:
            typer.echo(
                f"study {study or spec.name}: {spec.objective.describe()}; "
                f"space {', '.join(spec.space.names())}",
                err=True,
            )
        result = run_search(spec, opts, trials or 0, workers, log)
    except (SearchError, ExecutorError, StoreError, UnknownPluginError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        typer.secho(
            "\ninterrupted: finished trials are in the study and the running one is marked "
            "failed; rerun to continue (its runs resume from their checkpoints)",
            fg="yellow",
            err=True,
        )
        raise typer.Exit(130) from None
    if trials:
        states: dict[str, int] = {}
        for t in result.get_trials(deepcopy=False):
            states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
        typer.echo(f"study {result.study_name}: {', '.join(f'{v} {k}' for k, v in sorted(states.items()))}")
    if report:
        from acbench.search import default_storage
        from acbench.search import report as write_report

        where = report_dir or out / f"search-{result.study_name}"
        text, files = write_report(
            result, where, storage_label=mask(storage or default_storage(out)), root=out
        )
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(text))
        for f in files:
            typer.echo(f"written: {f}")
