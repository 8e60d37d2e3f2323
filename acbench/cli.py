"""The ``acbench`` command line (Typer). Thin: parses, calls the runner/analysis, reports.

No torch import at module top: ``acbench --help`` and ``acbench ls`` stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="acbench: benchmark associative compression of image datasets.",
    pretty_exceptions_enable=False,
)

def _fail(msg: str, code: int = 2) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {msg}", highlight=False)
    raise typer.Exit(code)


def _build_config(
    preset: str,
    ordering: Optional[str],
    mixer: Optional[str],
    codec: Optional[str],
    dataset: Optional[str],
    data: Optional[Path],
    chain: Optional[int],
    lmbda: Optional[list[str]],
    sites: Optional[str],
    reference: Optional[str],
    baseline: Optional[str],
    features: Optional[str],
    warm_start: Optional[bool],
    seed: Optional[int],
    sets: Optional[list[str]],
):
    import dataclasses

    from acbench.config import Component, ConfigError, apply_overrides, override, validate
    from acbench.config import preset as get_preset

    cfg = get_preset(preset)
    if data is not None:
        if not data.exists():
            raise ConfigError(f"--data {data}: no such folder")
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, name=dataset or "folder", root=str(data.resolve())))
    elif dataset:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, name=dataset))
    for key, value in (("ordering", ordering), ("mixer", mixer), ("codec", codec)):
        if value:
            comp = getattr(cfg, key)
            new = Component(value, comp.params if value == comp.name else {})
            if key == "codec" and value != cfg.codec.name:
                new = Component(value, dict(cfg.codec.params))  # keep the preset's sizes
            cfg = dataclasses.replace(cfg, **{key: new})
    if chain is not None:
        cfg = dataclasses.replace(cfg, chain=chain)
    if lmbda:
        cfg = override(cfg, "lmbdas", ",".join(lmbda))
    if sites:
        cfg = override(cfg, "sites", sites)
    for key, value in (("reference", reference), ("baseline", baseline), ("features", features)):
        if value:
            cfg = dataclasses.replace(cfg, **{key: value})
    if warm_start is not None:
        cfg = dataclasses.replace(cfg, warm_start=warm_start)
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=seed, train=dataclasses.replace(cfg.train, seed=seed))
    cfg = apply_overrides(cfg, sets or [])
    try:
        return validate(cfg)
    except TypeError as e:
        raise ConfigError(str(e)) from None


class Display:
    """Rich progress: the current phase, its step and loss; runs done / cached / failed / left."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet,
            transient=False,
        )
        self.jobs = self.progress.add_task("runs", total=total, info="")
        self.step = self.progress.add_task("", total=1, info="", visible=False)
        self.counts = {"done": 0, "cached": 0, "failed": 0}
        self.total = total

    def __enter__(self) -> Display:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def phase(self, label: str, step: int, total: int, logs: dict[str, float]) -> None:
        info = " ".join(f"{k}={v:.4g}" for k, v in logs.items() if k in ("loss", "bpp"))
        self.progress.update(self.step, description=label, completed=step, total=total, info=info, visible=True)

    def outcome(self, out) -> None:
        self.counts[out.status] += 1
        left = self.total - sum(self.counts.values())
        c = self.counts
        self.progress.update(
            self.jobs,
            advance=1,
            info=f"done {c['done']} · cached {c['cached']} · failed {c['failed']} · left {left}",
        )
        if out.status == "failed":
            self.console.print(f"[red]failed[/] {out.job.kind} {out.job.id}: {out.reason}", highlight=False)


@app.command()
def run(
    ordering: Annotated[Optional[str], typer.Option(help="ordering (acbench ls orderings)")] = None,
    mixer: Annotated[Optional[str], typer.Option(help="mixer (acbench ls mixers)")] = None,
    chain: Annotated[Optional[int], typer.Option(help="chain length L (>= 2)")] = None,
    codec: Annotated[Optional[str], typer.Option(help="codec (acbench ls codecs)")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="dataset (acbench ls datasets)")] = None,
    data: Annotated[Optional[Path], typer.Option(help="a folder of images (dataset 'folder')")] = None,
    preset: Annotated[str, typer.Option(help="tiny | cpu | paper")] = "cpu",
    lmbda: Annotated[Optional[list[str]], typer.Option("--lmbda", help="λ (repeat for a curve)")] = None,
    sites: Annotated[Optional[str], typer.Option(help="comma-separated conditioning sites")] = None,
    reference: Annotated[Optional[str], typer.Option(help="latents | reconstruction")] = None,
    baseline: Annotated[Optional[str], typer.Option(help="frozen | joint")] = None,
    features: Annotated[Optional[str], typer.Option(help="hyper | y | pixels")] = None,
    warm_start: Annotated[Optional[bool], typer.Option("--warm-start/--no-warm-start", help="start from the baseline's weights")] = None,
    seed: Annotated[Optional[int], typer.Option(help="training seed")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override a config key, e.g. train.steps=200")] = None,
    out: Annotated[Path, typer.Option(help="output folder (one directory per run)")] = Path("runs"),
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Train (or load from cache) and evaluate one conditional curve against its baseline."""
    from acbench.config import ConfigError
    from acbench.data.base import DataError
    from acbench.data.cache import load_split
    from acbench.registry import UnknownPluginError
    from acbench.store import StoreError, check_writable

    try:
        cfg = _build_config(preset, ordering, mixer, codec, dataset, data, chain, lmbda, sites, reference, baseline, features, warm_start, seed, set_)
        check_writable(out)
        load_split(cfg.data)  # decode / check the data before any training
    except (ConfigError, UnknownPluginError, StoreError, DataError) as e:
        _fail(str(e))
    _execute([cfg], out, quiet)
    _report(cfg, out)


def _execute(configs, out: Path, quiet: bool) -> list:
    from acbench.runner import execute, plan

    try:
        jobs = plan(configs)
    except Exception as e:  # plugin import / config problems before any work
        _fail(f"{type(e).__name__}: {e}")
    if len(configs) == 1 and len(configs[0].lmbdas) < 4:
        typer.secho(f"warning: {len(configs[0].lmbdas)} λ values; BD-rate needs >= 4", fg="yellow", err=True)
    try:
        with Display(len(jobs), quiet) as disp:
            outcomes = execute(jobs, out, disp.phase, disp.outcome)
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
    from acbench.analysis.leaderboard import run_report
    from acbench.runner import conditional_job
    from acbench.store import load_rows

    rows, _ = load_rows(out)
    curve = conditional_job(cfg, cfg.lmbdas[0])
    if rows.empty:
        _fail("no results were produced; see the errors above")
    mine = rows[(rows["curve"] == curve.curve) | (rows["curve"] == curve.anchor_curve)]
    text = run_report(mine)
    path = out / f"report-{curve.curve}.md"
    path.write_text(text)
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(text))
    typer.echo(f"\nwritten: {path}")
    if "error" in mine and mine["error"].fillna("").astype(str).str.len().gt(0).any():
        raise typer.Exit(1)


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
            import difflib

            close = difflib.get_close_matches(k, REGISTRIES, n=1)
            _fail(f"unknown plugin kind {k!r}; {'did you mean ' + repr(close[0]) + '? ' if close else ''}known: {', '.join(REGISTRIES)}")
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
