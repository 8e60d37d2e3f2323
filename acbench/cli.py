"""The ``acbench`` command line (Typer). Thin: parses, calls the runner/analysis, reports.

No torch import at module top: ``acbench --help`` and ``acbench ls`` stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from acbench.cli_common import Display, _check_paths, _fail

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="acbench: benchmark associative compression of image datasets.",
    pretty_exceptions_enable=False,
)


def _build_config(
    preset: str,
    data: Optional[Path] = None,
    dataset: Optional[str] = None,
    sets: Optional[list[str]] = None,
    lmbda: Optional[list[str]] = None,
    **flags: object,
):
    """The preset, then every flag and ``--set`` through :func:`acbench.config.override` (the one
    config path, shared with sweep files and searches), validated."""
    from acbench.config import ConfigError, apply_overrides, override, validate
    from acbench.config import preset as get_preset

    cfg = get_preset(preset)
    if data is not None:
        if not data.exists():
            raise ConfigError(f"--data {data}: no such folder")
        cfg = override(override(cfg, "data.name", dataset or "folder"), "data.root", str(data.resolve()))
    elif dataset:
        cfg = override(cfg, "data.name", dataset)
    if lmbda:
        flags["lmbdas"] = ",".join(lmbda)
    for key, value in flags.items():  # ordering, mixer, codec, chain, sites, ..., seed
        if value is not None and value != "":
            cfg = override(cfg, key, value)
    cfg = apply_overrides(cfg, sets or [])
    try:
        return validate(cfg)
    except TypeError as e:
        raise ConfigError(str(e)) from None


@app.command()
def run(
    ordering: Annotated[Optional[str], typer.Option(help="ordering (acbench ls orderings)")] = None,
    mixer: Annotated[Optional[str], typer.Option(help="mixer (acbench ls mixers)")] = None,
    chain: Annotated[Optional[int], typer.Option(help="chain length L (>= 2)")] = None,
    structure: Annotated[
        Optional[str], typer.Option(help="chain | tree (reference: the previous image, or the tree parent)")
    ] = None,
    codec: Annotated[Optional[str], typer.Option(help="codec (acbench ls codecs)")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="dataset (acbench ls datasets)")] = None,
    data: Annotated[Optional[Path], typer.Option(help="a folder of images (dataset 'folder')")] = None,
    preset: Annotated[str, typer.Option(help="tiny | cpu | paper")] = "cpu",
    lmbda: Annotated[Optional[list[str]], typer.Option("--lmbda", help="λ (repeat for a curve)")] = None,
    sites: Annotated[Optional[str], typer.Option(help="comma-separated conditioning sites")] = None,
    reference: Annotated[Optional[str], typer.Option(help="latents | reconstruction")] = None,
    baseline: Annotated[Optional[str], typer.Option(help="frozen | joint")] = None,
    features: Annotated[Optional[str], typer.Option(help="hyper | y | pixels")] = None,
    warm_start: Annotated[
        Optional[bool], typer.Option("--warm-start/--no-warm-start", help="start from the baseline's weights")
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="training seed")] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="override a config key, e.g. train.steps=200")
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder (one directory per run)")] = Path("runs"),
    controls: Annotated[
        bool,
        typer.Option(
            "--controls/--no-controls", help="also train the step-matched anchor and the zero-mixer control"
        ),
    ] = True,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
    executor: Annotated[
        str, typer.Option(help="local (steps shown) | pool (jobs in parallel processes) | slurm")
    ] = "local",
    workers: Annotated[int, typer.Option(help="processes for --executor pool")] = 2,
) -> None:
    """Train (or load from cache) and evaluate one conditional curve against its baseline."""
    _check_paths(data, out)
    from acbench.config import ConfigError
    from acbench.data.base import DataError
    from acbench.data.cache import load_split
    from acbench.registry import UnknownPluginError
    from acbench.store import StoreError, check_writable

    try:
        cfg = _build_config(
            preset,
            data,
            dataset,
            set_,
            lmbda,
            ordering=ordering,
            mixer=mixer,
            codec=codec,
            chain=chain,
            structure=structure,
            sites=sites,
            reference=reference,
            baseline=baseline,
            features=features,
            warm_start=warm_start,
            seed=seed,
        )
        check_writable(out)
        load_split(cfg.data)  # decode / check the data before any training
    except (ConfigError, UnknownPluginError, StoreError, DataError) as e:
        _fail(str(e))
    if executor not in ("local", "pool", "slurm"):
        _fail(f"unknown executor {executor!r}; known: local, pool, slurm")
    _execute([cfg], out, quiet, controls, executor=executor, workers=workers)
    _report(cfg, out)


def _plan(configs, controls: bool):
    from acbench.runner import plan

    try:
        return plan(configs, controls)
    except Exception as e:  # plugin import / config problems before any work
        _fail(f"{type(e).__name__}: {e}")


def _execute(
    configs,
    out: Path,
    quiet: bool,
    controls: bool = True,
    retry_failed: bool = True,
    executor: str = "local",
    workers: int = 2,
    slurm: Optional[list[str]] = None,
) -> list:
    from acbench.executors import ExecutorError, execute, make_executor, parse_parameters

    try:
        parameters = parse_parameters(slurm or [])
    except ExecutorError as e:
        _fail(str(e))

    jobs = _plan(configs, controls)
    few = sorted({len(c.lmbdas) for c in configs if len(c.lmbdas) < 4})
    if few:
        typer.secho(
            f"warning: {few[0]} λ values per curve; BD-rate needs >= 4 (tables will say n/a)",
            fg="yellow",
            err=True,
        )
    try:
        with Display(len(jobs), quiet) as disp:
            ex = make_executor(executor, workers=workers, root=out, parameters=parameters)
            outcomes = execute(jobs, out, disp.phase, disp.outcome, retry_failed, executor=ex)
    except KeyboardInterrupt:
        typer.secho(
            "\ninterrupted: finished runs are kept and the current one resumes from its last "
            "checkpoint; rerun the same command to continue",
            fg="yellow",
            err=True,
        )
        raise typer.Exit(130) from None
    return outcomes


def _report(cfg, out: Path) -> None:
    from acbench.analysis.answer import answer_report
    from acbench.runner import conditional_job, replicas
    from acbench.store import load_rows

    rows, _ = load_rows(out)
    curves = [conditional_job(r, r.lmbdas[0]).curve for r in replicas(cfg)]
    if rows.empty:
        _fail("no results were produced; see the errors above")
    if not rows["curve"].isin(curves).any():
        _fail("no results were produced for this curve; see the errors above", 1)
    mine = rows[rows["curve"].isin(curves)]
    text = answer_report(rows, curves, bootstrap=1000)
    path = out / f"report-{curves[0]}.md"
    path.write_text(text)
    typer.echo(text)
    typer.echo(f"written: {path}")
    if "error" in mine and mine["error"].fillna("").astype(str).str.len().gt(0).any():
        raise typer.Exit(1)


@app.command()
def order(
    ordering: Annotated[str, typer.Option(help="ordering (acbench ls orderings)")] = "isomap",
    dataset: Annotated[Optional[str], typer.Option(help="dataset (acbench ls datasets)")] = None,
    data: Annotated[Optional[Path], typer.Option(help="a folder of images (dataset 'folder')")] = None,
    features: Annotated[
        Optional[str], typer.Option(help="hyper | y | pixels (pixels trains nothing)")
    ] = None,
    preset: Annotated[str, typer.Option(help="tiny | cpu | paper")] = "cpu",
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="override a config key, e.g. ordering.params.n_neighbors=15"),
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs"),
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Fit an ordering alone (no conditional training) and print its quality report and timing."""
    _check_paths(data, out)
    from acbench.config import ConfigError
    from acbench.data.base import DataError
    from acbench.data.cache import load_split
    from acbench.executors import execute
    from acbench.registry import UnknownPluginError
    from acbench.runner import baseline_job, feature_lambda, ordering_job
    from acbench.store import Run, StoreError, check_writable

    try:
        cfg = _build_config(preset, data, dataset, set_, ordering=ordering, features=features)
        check_writable(out)
        load_split(cfg.data)
    except (ConfigError, UnknownPluginError, StoreError, DataError) as e:
        _fail(str(e))
    jobs = ([baseline_job(cfg, feature_lambda(cfg))] if cfg.features != "pixels" else []) + [
        ordering_job(cfg)
    ]
    with Display(len(jobs), quiet) as disp:
        outcomes = execute(jobs, out, disp.phase, disp.outcome)
    if outcomes[-1].status == "failed":
        _fail(outcomes[-1].reason, 1)
    meta = Run(out, jobs[-1].id).meta()
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"ordering {ordering} on {cfg.data.name} ({cfg.features} features, {cfg.data.tile}px)"
    )
    table.add_column("split")
    for col in ("neighbour dist", "random-pair dist", "ratio ↓", "same class ↑"):
        table.add_column(col, justify="right")
    for split in ("train", "eval"):
        q = meta[f"quality_{split}"]
        table.add_row(
            split,
            *(
                f"{q.get(k, float('nan')):.4g}"
                for k in ("q_neighbour_dist", "q_random_dist", "q_dist_ratio", "q_same_class")
            ),
        )
    Console().print(table)
    typer.echo(f"fit time: {meta['fit_seconds']:.2f} s  (run {jobs[-1].id})")


@app.command()
def sweep(
    file: Annotated[Path, typer.Argument(help="a sweep file, e.g. ablations/mixers.toml")],
    preset: Annotated[
        Optional[str], typer.Option(help="override the file's preset (tiny | cpu | paper)")
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan and what is cached; train nothing")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="rerun runs that failed before")
    ] = False,
    controls: Annotated[
        bool, typer.Option("--controls/--no-controls", help="step-matched anchors and zero-mixer controls")
    ] = True,
    leaderboard: Annotated[Optional[Path], typer.Option(help="write leaderboards here when done")] = None,
    executor: Annotated[str, typer.Option(help="local | pool | slurm (submitit)")] = "local",
    workers: Annotated[int, typer.Option(help="processes for --executor pool")] = 2,
    slurm: Annotated[
        Optional[list[str]],
        typer.Option("--slurm", help="submitit parameter key=value (timeout_min=4320, gpus_per_node=1, ...)"),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Train every combination of a TOML grid (deduplicated, shared, resumable)."""
    if not dry_run:
        _check_paths(out=out)
    from acbench.config import ConfigError
    from acbench.grid import sweep_configs
    from acbench.registry import UnknownPluginError

    try:
        configs = sweep_configs(file, preset, import_plugins=not dry_run)
    except (ConfigError, UnknownPluginError) as e:
        _fail(str(e))
    if dry_run:
        _print_plan(configs, out, controls)
        return
    from acbench.data.base import DataError
    from acbench.data.cache import load_split
    from acbench.store import StoreError, check_writable

    try:
        check_writable(out)
        for data in dict.fromkeys(c.data for c in configs):  # each dataset, before any training
            load_split(data)
    except (StoreError, DataError) as e:
        _fail(str(e))
    if executor not in ("local", "pool", "slurm"):
        _fail(f"unknown executor {executor!r}; known: local, pool, slurm")
    outcomes = _execute(configs, out, quiet, controls, retry_failed, executor, workers, slurm)
    failed = [o for o in outcomes if o.status == "failed"]
    if leaderboard is not None:
        _write_leaderboards(out, leaderboard, sweep=file, preset=preset, configs=configs, controls=controls)
    if failed:
        typer.secho(f"{len(failed)} run(s) failed; fix and rerun with --retry-failed", fg="red", err=True)
        raise typer.Exit(1)


def _print_plan(configs, out: Path, controls: bool) -> None:
    from acbench.runner import count
    from acbench.store import Run

    jobs = _plan(configs, controls)
    cached = sum(Run(out, j.id).is_done() for j in jobs)
    # without sharing: every curve trains its own baselines (and controls)
    naive = sum(len(c.lmbdas) * (2 + (2 if controls and c.mixer.name != "zero" else 0)) for c in configs)
    by_kind = count(jobs)
    typer.echo(
        f"{len(configs)} curves → {len(jobs)} jobs ({', '.join(f'{v} {k}' for k, v in by_kind.items())})"
    )
    typer.echo(
        f"trainings: {len(jobs) - by_kind.get('ordering', 0)} after sharing baselines, anchors and "
        f"orderings (without sharing: {naive})"
    )
    typer.echo(f"cached: {cached} · to run: {len(jobs) - cached}")


@app.command("leaderboard")
def leaderboard_cmd(
    runs: Annotated[Path, typer.Option("--runs", help="output folder holding the runs")] = Path("runs"),
    out: Annotated[Path, typer.Option(help="where to write the markdown, CSV and plots")] = Path(
        "leaderboards"
    ),
    sweep: Annotated[
        Optional[Path], typer.Option(help="only the curves of this sweep file (and its question, preset)")
    ] = None,
    preset: Annotated[Optional[str], typer.Option(help="the sweep's preset (with --sweep)")] = None,
    rows: Annotated[
        Optional[list[Path]],
        typer.Option(help="read long rows from this CSV instead of --runs (e.g. a committed one; repeat)"),
    ] = None,
    controls: Annotated[bool, typer.Option("--controls/--no-controls", help="as the sweep ran")] = True,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="draw the RD plots")] = True,
    contrast: Annotated[
        bool,
        typer.Option(
            "--contrast", help="one page, <out>/content.md: the content gain of every dataset side by side"
        ),
    ] = False,
) -> None:
    """Build <out>/<dataset>.md (+ CSV of long rows, RD plots) from runs or from a rows CSV.

    With --sweep, only that sweep's curves (and their anchors and controls) are used, and the page
    names the sweep's question and preset. The page is a pure function of its rows: rebuilt from
    its own CSV (--rows) it is byte-identical.
    """
    if preset is not None and sweep is None:
        _fail("--preset goes with --sweep (the preset the sweep ran with)")
    configs = None
    if sweep is not None and rows is None:
        from acbench.config import ConfigError
        from acbench.grid import sweep_configs

        try:
            configs = sweep_configs(sweep, preset, import_plugins=False)
        except ConfigError as e:
            _fail(str(e))
    if contrast and sweep is not None:
        _fail("--contrast takes every dataset of --rows or --runs; leave out --sweep")
    _write_leaderboards(runs, out, sweep, preset, configs, controls, rows or None, plots, contrast)


def _leaderboard_command(
    out: Path, sweep: Path | None, preset: str | None, runs: Path, controls: bool = True
) -> str:
    if sweep is None:
        return f"acbench leaderboard --runs {runs} --out {out}"
    return (
        f"acbench leaderboard --sweep {sweep}"
        + (f" --preset {preset}" if preset else "")
        + ("" if controls else " --no-controls")
        + f" --out {out}"
    )


def _write_leaderboards(
    runs: Path,
    out: Path,
    sweep: Path | None = None,
    preset: str | None = None,
    configs=None,
    controls: bool = True,
    rows_csv: list[Path] | None = None,
    plots: bool = True,
    contrast: bool = False,
) -> None:
    from acbench.analysis.leaderboard import write_contrast, write_leaderboard

    if rows_csv:
        import pandas as pd

        frames = [_read_rows(p) for p in rows_csv]
        rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    else:
        from acbench.store import load_rows

        rows, skipped = load_rows(runs)
        for s in skipped:
            typer.secho(f"skipped {s}", fg="yellow", err=True)
        if configs is not None and not rows.empty:
            ids = {j.id for j in _plan(configs, controls)}
            rows = rows[rows["run_id"].isin(ids)]
        if rows.empty:
            what = f"of {sweep} " if sweep is not None else ""
            _fail(f"no finished runs {what}under {runs}; run `acbench run` or `acbench sweep` first")
    if contrast:
        command = f"acbench leaderboard --contrast --out {out}"
        for path in write_contrast(rows, out, command):
            typer.echo(f"written: {path}")
        return
    command = _leaderboard_command(out, sweep, preset, runs, controls)
    title, about = None, []
    if sweep is not None:
        from acbench.grid import question

        title = f"{sweep.stem} ablation"
        q = question(sweep) if sweep.is_file() else ""
        trained = (
            f"`acbench sweep {sweep}" + (f" --preset {preset}" if preset else "")
            + ("" if controls else " --no-controls") + "`"
        )  # fmt: skip
        about = [q] if q else []
        about.append(
            f"Sweep file `{sweep}`, preset `{preset or 'as in the file'}`; trained by {trained} "
            f"(a rerun trains nothing). This page rebuilt from its own rows: `{command} --rows "
            f"{out}/<dataset>_rows.csv.gz`."
        )
    out.mkdir(parents=True, exist_ok=True)
    for path in write_leaderboard(rows, out, command, plots=plots, title=title, about=about):
        typer.echo(f"written: {path}")


def _read_rows(rows_csv: Path):
    """A committed rows CSV, or one clear line on why it is not one."""
    import pandas as pd

    from acbench.store import read_rows_csv

    if not rows_csv.is_file():
        _fail(f"rows file {rows_csv} does not exist; give a *_rows.csv.gz written by `acbench leaderboard`")
    try:
        rows = read_rows_csv(rows_csv)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        _fail(f"{rows_csv} is not a rows CSV ({type(e).__name__}: {str(e).splitlines()[0]})")
    missing = {"curve", "dataset", "kind", "lam", "component"} - set(rows.columns)
    if missing:
        _fail(f"{rows_csv} lacks the column(s) {', '.join(sorted(missing))}; is it a *_rows.csv.gz?")
    return rows


@app.command()
def export(
    runs: Annotated[Path, typer.Option("--runs", help="output folder holding the runs")] = Path("runs"),
    out: Annotated[Path, typer.Option(help="folder for the JSON files")] = Path("export"),
    format: Annotated[str, typer.Option(help="compressai")] = "compressai",
) -> None:
    """Write every curve in CompressAI's results-JSON format (one file per curve)."""
    import json

    from acbench.analysis.export import compressai_json
    from acbench.store import load_rows

    if format != "compressai":
        _fail(f"unknown export format {format!r}; known: compressai")
    rows, _ = load_rows(runs)
    if rows.empty:
        _fail(f"no finished runs under {runs}")
    out.mkdir(parents=True, exist_ok=True)
    for curve in sorted(rows["curve"].dropna().unique()):
        data = compressai_json(rows, curve)
        path = out / f"{curve}.json"
        path.write_text(json.dumps(data, indent=2))
        typer.echo(f"written: {path}")


@app.command()
def oracle(
    run: Annotated[str, typer.Argument(help="a finished conditional run id (under --runs)")],
    runs: Annotated[Path, typer.Option("--runs", help="output folder holding the runs")] = Path("runs"),
    k: Annotated[int, typer.Option(min=1, help="feature neighbours per image as candidate references")] = 5,
    random_refs: Annotated[int, typer.Option(min=0, help="random candidate references per image")] = 0,
) -> None:
    """How close feature orderings (as chains and as trees) come to a trained conditional run's
    rate oracle on its eval split (its own estimated rates as edge weights; read-only)."""
    run_dir = runs / run
    if not (run_dir / "config.json").is_file():
        _fail(f"{run_dir}: no such run (the run ids are the folders under {runs})")
    from acbench.oracle import format_oracle, measure_run

    try:
        res = measure_run(run_dir, k, random_refs)
    except (ValueError, OSError, KeyError) as e:
        _fail(f"{run}: {e}")
    typer.echo(format_oracle(res))


from acbench.cli_archive import compress, decompress, info_cmd  # noqa: E402  (light: no torch at import)

app.command()(compress)
app.command()(decompress)
app.command("info")(info_cmd)

from acbench.cli_search import search  # noqa: E402  (light: no optuna / torch at import)

app.command()(search)

from acbench.cli_zoo import zoo_app  # noqa: E402  (light: no torch at import)

app.add_typer(zoo_app, name="zoo")


@app.command("ls")
def ls(
    kind: Annotated[Optional[str], typer.Argument(help="orderings | mixers | codecs | datasets")] = None,
    pattern: Annotated[str, typer.Argument(help="wildcard, e.g. 'conv*'")] = "*",
) -> None:
    """List registered plugins (built-ins and entry points)."""
    from acbench.registry import REGISTRIES

    kinds = list(REGISTRIES) if kind is None else [kind]
    for k in kinds:
        if k not in REGISTRIES:
            from acbench.suggest import unknown

            _fail(unknown("plugin kind", k, REGISTRIES))
        names = REGISTRIES[k].names(pattern)
        typer.echo(f"{k}: {' '.join(names) if names else '(none match ' + repr(pattern) + ')'}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
