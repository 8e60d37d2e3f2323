"""One config path: CLI flags, ``--set`` and sweep keys all go through ``config.override``."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from acbench.cli import _build_config, app
from acbench.grid import expand
from acbench.runner import plan


def _cli(**flags):
    return _build_config("tiny", **flags)


def _sweep(set_=None, grid=None):
    (cfg,) = expand({"preset": "tiny", "set": set_ or {}, "grid": grid or {"chain": [4]}})
    return cfg


def _ids(cfg):
    return sorted(j.id for j in plan([cfg]))


def test_seed_flag_set_and_sweep_key_are_one_config():
    configs = [
        _cli(seed=3),
        _cli(sets=["seed=3"]),
        _sweep(set_={"seed": 3}),
        _sweep(grid={"seed": [3]}),
    ]
    assert all(c == configs[0] for c in configs)
    assert configs[0].seed == 3 and configs[0].train.seed == 3  # the ordering's and the training's
    assert len({tuple(_ids(c)) for c in configs}) == 1
    assert _ids(configs[0]) != _ids(_cli())


@pytest.mark.parametrize(
    "flags, sets, sweep",
    [
        ({"codec": "elic"}, ["codec=elic"], {"codec": ["elic"]}),  # keeps the preset's sizes
        ({"mixer": "deep_conv"}, ["mixer=deep_conv"], {"mixer": ["deep_conv"]}),
        ({"ordering": "random"}, ["ordering=random"], {"ordering": ["random"]}),
        ({"chain": 3}, ["chain=3"], {"chain": [3]}),
        ({"lmbda": ["0.01", "0.02"]}, ["lmbdas=0.01,0.02"], {"lmbdas": [[0.01, 0.02]]}),
        ({"sites": "latent_prior"}, ["sites=latent_prior"], {"sites": [["latent_prior"]]}),
        ({"warm_start": False}, ["warm_start=false"], {"warm_start": [False]}),
        ({"features": "pixels"}, ["features=pixels"], {"features": ["pixels"]}),
    ],
)
def test_every_flag_equals_its_set_and_its_sweep_key(flags, sets, sweep):
    a, b, c = _cli(**flags), _cli(sets=sets), _sweep(grid=sweep)
    assert a == b == c
    assert a != _cli()
    if "codec" in flags:
        assert dict(a.codec.params) == dict(_cli().codec.params)


def test_seed_3_three_ways_trains_once_and_rows_say_seed_3(tmp_path):
    from acbench.store import load_rows

    runner = CliRunner()
    out = tmp_path / "runs"
    base = ["--preset", "tiny", "--quiet", "--no-controls", "--out", str(out)]
    first = runner.invoke(app, ["run", "--seed", "3", *base])
    assert first.exit_code == 0, first.output
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/model.pt")}
    assert mtimes
    second = runner.invoke(app, ["run", "--set", "seed=3", *base])
    assert second.exit_code == 0, second.output
    sweep = tmp_path / "seed.toml"
    sweep.write_text('preset = "tiny"\n[set]\nseed = 3\n[grid]\nchain = [4]\n')
    third = runner.invoke(app, ["sweep", str(sweep), "--quiet", "--no-controls", "--out", str(out)])
    assert third.exit_code == 0, third.output
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/model.pt")} == mtimes  # nothing retrained
    assert first.output == second.output  # the same report
    rows, _ = load_rows(out)
    cond = rows[rows["kind"] == "conditional"]
    assert len(cond) and set(cond["seed"]) == {3}
