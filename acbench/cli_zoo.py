"""``acbench zoo``: the shipped reference baselines (registered in :mod:`acbench.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

zoo_app = typer.Typer(no_args_is_help=True, help="The shipped, converged `cpu`-preset baselines.")


@zoo_app.command("ls")
def zoo_ls() -> None:
    """Every shipped model: codec, λ, convergence figure, training threads, bytes."""
    from acbench import zoo

    man = zoo.manifest()
    if not man["models"]:
        typer.echo(f"the zoo is empty; build it with `{zoo.REBUILD}`")
        return
    typer.echo(f"built {man.get('built')} by {man.get('code')} with `{man.get('command')}`")
    for run_id, e in sorted(man["models"].items(), key=lambda kv: kv[1]["lam"]):
        env = e.get("environment") or {}
        typer.echo(
            f"{run_id}  {e['codec']} {e['codec_params']}  λ={e['lam']:<7g} convergence "
            f"{100 * e['convergence']:+.2f} %  threads {env.get('threads')}  {e['bytes'] / 1e6:.2f} MB"
        )


@zoo_app.command("build")
def zoo_build(
    preset: Annotated[str, typer.Option(help="the preset whose baselines to ship")] = "cpu",
    runs: Annotated[Path, typer.Option(help="run folder for the trainings (reused if present)")] = Path(
        "runs-zoo"
    ),
    workers: Annotated[int, typer.Option(help="processes for the λ fine-tunes")] = 2,
    check: Annotated[bool, typer.Option("--check", help="only re-evaluate every shipped model")] = False,
) -> None:
    """Train the zoo's baselines and ship them in acbench/zoo (or --check the shipped ones)."""
    from acbench import zoo
    from acbench.zoo_build import build, verify

    if check:
        bad = 0
        for run_id, e in sorted(zoo.manifest()["models"].items(), key=lambda kv: kv[1]["lam"]):
            try:
                zoo.checked(run_id)
                r = verify(run_id, runs / "check")
            except zoo.ZooError as err:
                typer.echo(f"{run_id} λ={e['lam']:g}: {err}")
                bad += 1
                continue
            bad += not r["ok"]
            typer.echo(
                f"{run_id} λ={e['lam']:g}: ΔPSNR {r['d_psnr']:+.4f} dB, Δbpp {100 * r['d_bpp']:+.3f} % "
                f"over {r['n']} images: {'ok' if r['ok'] else 'NOT REPRODUCED'}"
            )
        raise typer.Exit(1 if bad else 0)
    info = build(runs, workers, preset)
    typer.echo(f"shipped {len(info['entries'])} models in {info['wall_seconds']:.0f} s")
    zoo_ls()
