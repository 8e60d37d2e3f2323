"""``acbench compress`` / ``decompress`` / ``info``: lossy dataset archives (registered in
:mod:`acbench.cli`; the work happens in :mod:`acbench.archive`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from acbench.cli_common import Display, _fail


def compress(
    src: Annotated[Path, typer.Argument(help="folder of images (nested folders too)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="archive to write (.acb)")],
    run: Annotated[Optional[str], typer.Option(help="conditional run id under --runs")] = None,
    model: Annotated[Optional[Path], typer.Option(help="conditional run dir or its model.pt")] = None,
    runs: Annotated[Path, typer.Option(help="folder of run directories")] = Path("runs"),
    embed_model: Annotated[
        bool, typer.Option("--embed-model", help="store the weights in the archive")
    ] = False,
    baseline_estimate: Annotated[
        bool,
        typer.Option("--baseline-estimate/--no-baseline-estimate", help="also estimate each image alone"),
    ] = True,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="chains coded in parallel")] = 1,
    overwrite: Annotated[bool, typer.Option(help="replace an existing archive")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Compress a folder of images into one archive with a trained conditional codec."""
    from acbench.archive import ArchiveError, compress_folder, format_info

    if run is None and model is None:
        _fail("give the model: --run RUN_ID (a conditional run under --runs) or --model PATH")
    try:
        with Display(1, quiet) as disp:
            summary = compress_folder(
                src,
                out,
                run_dir=runs / run if run else None,
                model=model,
                embed_model=embed_model,
                jobs=jobs,
                overwrite=overwrite,
                progress=disp.step_of,
                baseline_estimate=baseline_estimate,
            )
    except ArchiveError as e:
        _fail(str(e))
    typer.echo(format_info(summary))


def decompress(
    archive: Annotated[Path, typer.Argument(help="an .acb archive")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    model: Annotated[Optional[Path], typer.Option(help="model, when the archive does not embed it")] = None,
    runs: Annotated[Path, typer.Option(help="folder of run directories (to find the model)")] = Path("runs"),
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="chains decoded in parallel")] = 1,
    overwrite: Annotated[bool, typer.Option(help="write into a folder that already has files")] = False,
    skip_corrupt: Annotated[bool, typer.Option("--skip-corrupt", help="restore what is intact")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress display")] = False,
) -> None:
    """Restore every image of an archive under its original relative name, as PNG."""
    from acbench.archive import ArchiveError, decompress_archive, format_restored

    try:
        with Display(1, quiet) as disp:
            summary = decompress_archive(
                archive, out, overwrite, skip_corrupt, model, runs, jobs, disp.step_of
            )
    except ArchiveError as e:
        _fail(str(e))
    typer.echo(format_restored(summary))
    if summary.get("lost") or summary.get("mismatch"):
        raise typer.Exit(1)


def info_cmd(
    archive: Annotated[Path, typer.Argument(help="an .acb archive")],
    all_: Annotated[bool, typer.Option("--all", help="list every item")] = False,
) -> None:
    """List an archive's contents, bpp per image and the total against the baseline alone."""
    from acbench.archive import ArchiveError, archive_info, format_info

    try:
        typer.echo(format_info(archive_info(archive), max_items=0 if all_ else 30))
    except ArchiveError as e:
        _fail(str(e))
