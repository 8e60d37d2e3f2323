"""What every ``acbench`` command shares: one-line errors, the stderr voice, early path checks
and the progress display. Light: no torch, no acbench library import at module top."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _fail(msg: str, code: int = 2) -> None:
    from rich.console import Console
    from rich.markup import escape

    # one line, as written: no markup ("[grid]" is text) and no wrapping at the terminal width
    Console(stderr=True).print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _check_paths(data: Optional[Path] = None, out: Optional[Path] = None) -> None:
    """A missing, empty or non-folder --data and an unwritable --out fail here, before torch is
    imported (a fraction of a second instead of seconds); then every dataset a command loads says
    which classes it found and which files it skipped (from the cache too)."""
    from acbench.data.base import DataError
    from acbench.data.cache import report_to
    from acbench.data.folder import check_folder
    from acbench.store import StoreError, check_writable

    try:
        if data is not None:
            check_folder(str(data))
        if out is not None:
            check_writable(out, create=False)
    except (DataError, StoreError) as e:
        _fail(str(e))
    report_to(_say)


def _say(line: str) -> None:
    """A line on stderr (warnings in yellow), outside the progress display's way."""
    typer.secho(line, fg="yellow" if line.startswith("warning:") else None, err=True)


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

    def phase(self, event) -> None:
        """A job's :class:`acbench.job.Progress` event."""
        self.step_of(event.label, event.step, event.total, event.logs)

    def step_of(self, label: str, step: int, total: int, logs) -> None:
        """A step of anything else (an archive's chains)."""
        info = " ".join(f"{k}={v:.4g}" for k, v in logs.items() if k in ("loss", "bpp"))
        self.progress.update(
            self.step, description=label, completed=step, total=total, info=info, visible=True
        )

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
