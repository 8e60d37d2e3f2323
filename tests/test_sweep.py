"""Sweeps: grid expansion and sharing, caching, SIGKILL + resume, failures, dry-run counts."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from acbench.cli import app
from acbench.config import ConfigError
from acbench.grid import expand, sweep_configs
from acbench.runner import count, plan

DATA = Path(__file__).parent / "data"
runner = CliRunner()


@pytest.mark.slow  # a whole tiny sweep with controls: ~19 s
def test_tiny_sweep_end_to_end_then_cached(tmp_path):
    args = ["sweep", str(DATA / "sweep_tiny.toml"), "--out", str(tmp_path), "--quiet", "--no-controls"]
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    models = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/model.pt")}
    # 4 baselines (one per λ, shared by all 8 curves) + 8 curves × 4 λ conditionals
    assert len(models) == 4 + 8 * 4
    res = runner.invoke(app, args + ["--leaderboard", str(tmp_path / "lb")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/model.pt")} == models
    md = (tmp_path / "lb" / "photos.md").read_text()
    assert md.startswith("<!-- generated")
    assert "# sweep_tiny ablation: photos" in md and "A tiny 2 × 2 × 2 grid for the tests." in md

    # a leaderboard of a sub-grid takes only its own curves, from the cached runs, training nothing
    sub = tmp_path / "sub.toml"
    sub.write_text(
        '# One curve.\npreset = "tiny"\n[grid]\nordering = ["random"]\nmixer = ["film"]\nchain = [2]\n'
    )
    lb = tmp_path / "lb-sub"
    common = ["--sweep", str(sub), "--preset", "tiny", "--out", str(lb), "--no-controls", "--no-plots"]
    res = runner.invoke(app, ["leaderboard", "--runs", str(tmp_path), *common], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(lb / "photos_rows.csv.gz")
    assert rows.loc[rows["kind"] == "conditional", "curve"].nunique() == 1
    assert set(rows["kind"]) == {"baseline", "conditional"}
    first = (lb / "photos.md").read_bytes()
    assert b"Provenance: code: `0.1.0" in first
    # ... and rebuilt from its own rows CSV, byte for byte
    res = runner.invoke(app, ["leaderboard", "--rows", str(lb / "photos_rows.csv.gz"), *common])
    assert res.exit_code == 0, res.output
    assert (lb / "photos.md").read_bytes() == first
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/model.pt")} == models


def test_dry_run_counts_shared_trainings_fast():
    from acbench.config import Component, preset

    base = preset("paper")
    grid = {
        "ordering": ["isomap", "umap", "random", "greedy_chain", "spectral"],
        "mixer": ["conv1x1", "film", "deep_conv", "zero"],
        "codec": [{"name": "mshp", "N": 128, "M": 192}, {"name": "mshp", "N": 192, "M": 320}],
        "chain": [2, 3, 4],
    }
    t0 = time.perf_counter()
    configs = expand({"preset": "paper", "grid": grid}, import_plugins=False)
    jobs = plan(configs, controls=True)
    elapsed = time.perf_counter() - t0
    n = count(jobs)
    assert len(configs) == 5 * 4 * 2 * 3
    assert n["baseline"] == 2 * 8  # one per codec × λ
    assert n["ordering"] == 5 * 2  # one per ordering × feature baseline (codec)
    # step-matched anchors depend on codec × chain × λ × seed only: shared by orderings and mixers
    assert base.seeds == 3 and n["anchor"] == 2 * 3 * 8 * 3
    # conditionals: per ordering × codec × chain × seed, the grid's 4 mixers plus a zero control
    # for each of the 3 non-zero mixers; each at 8 λ
    assert n["conditional"] == 8 * (5 * 2 * 3) * (4 + 3) * 3
    assert elapsed < 20, f"planning took {elapsed:.1f}s"  # ~0.5 s on a quiet machine: see benchmarks
    assert base.codec == Component("mshp", {"N": 128, "M": 192})
    out = runner.invoke(app, ["sweep", str(DATA / "sweep_tiny.toml"), "--dry-run", "--out", "/nonexistent-x"])
    assert out.exit_code == 0 and "to run:" in out.output


@pytest.mark.parametrize(
    "text, message",
    [
        ('preset = "tiny"\n[grid\nmixer = ["film"]', "line 2"),
        ('preset = "tiny"\nbogus = 1\n', "unknown top-level key"),
        ('preset = "tiny"\n[grid]\nmixer = []\n', "grid.mixer is empty"),
        ('preset = "tiny"\n[grid]\nmixre = ["film"]\n', "unknown config key 'mixre'"),
        ('preset = "tiny"\n[grid]\nmixer = ["flim"]\n', "did you mean 'film'"),
    ],
)
def test_bad_sweep_files(tmp_path, text, message):
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(Exception, match=message):
        sweep_configs(f)
    res = runner.invoke(app, ["sweep", str(f), "--dry-run"])
    assert res.exit_code == 2 and message.split("'")[0] in res.output


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "s.toml is empty; a sweep file needs a [grid] table"),
        ("# a question, and nothing else\n\n", "s.toml is empty"),
        ('preset = "tiny"\n[grid]\n', "s.toml: the [grid] table is empty"),
        ('preset = "tiny"\n[set]\n"train.steps" = 3\n', "s.toml has no [grid] table"),
        ('preset = "tiny"\ngrid = 3\n', "grid must be a table"),
    ],
    ids=["empty-file", "only-comments", "empty-grid", "no-grid", "grid-not-a-table"],
)
def test_sweep_without_axes_is_refused_before_any_work(tmp_path, text, message):
    """An empty file or [grid] would otherwise train the preset's default curve (17 jobs)."""
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        sweep_configs(f)
    out = tmp_path / "runs"
    for extra in ([], ["--dry-run"]):
        res = runner.invoke(app, ["sweep", str(f), "--out", str(out), "--quiet", *extra])
        assert res.exit_code == 2, res.output
        assert message in res.output  # "[grid]" printed as written, not taken for markup
        assert len(res.output.strip().splitlines()) == 1, res.output  # one line
    assert not out.exists()  # nothing planned, nothing trained


def test_few_lambdas_warn(tmp_path, monkeypatch):
    monkeypatch.setattr("acbench.executors.execute", lambda *a, **k: [])  # the warning, not training
    f = tmp_path / "s.toml"
    f.write_text('preset = "tiny"\nlmbdas = [0.01, 0.02]\n[grid]\nordering = ["random"]\n')
    res = runner.invoke(app, ["sweep", str(f), "--out", str(tmp_path / "r"), "--quiet", "--no-controls"])
    assert "BD-rate needs >= 4" in res.output


def test_nan_run_is_recorded_and_others_finish(tmp_path):
    from acbench.config import preset
    from acbench.executors import execute
    from acbench.mixers.basic import FiLM
    from acbench.registry import MIXERS
    from acbench.store import load_rows

    @MIXERS.register("nan_film")
    class NanFiLM(FiLM):
        def forward(self, a, ref):
            return super().forward(a, ref) * float("nan")

    good = dataclasses.replace(preset("tiny"), lmbdas=(0.013,))  # one λ: one baseline, two trainings
    bad = dataclasses.replace(good, mixer=dataclasses.replace(good.mixer, name="nan_film"))
    outcomes = execute(plan([bad, good], controls=False), tmp_path)
    failed = [o for o in outcomes if o.status == "failed"]
    assert failed and all(o.job.mixer.name == "nan_film" for o in failed)
    assert "loss is nan" in failed[0].reason
    assert sum(o.status == "done" for o in outcomes) == len(outcomes) - len(failed)
    rows, _ = load_rows(tmp_path)
    assert rows["error"].fillna("").str.contains("loss is nan").any()
    # a rerun does not retry failures unless asked
    again = execute(plan([bad], controls=False), tmp_path, retry_failed=False)
    assert {o.status for o in again if o.job.kind == "conditional"} == {"failed"}
    from acbench.analysis.leaderboard import write_leaderboard

    paths = write_leaderboard(rows, tmp_path / "lb", "test", plots=False)
    assert "loss is nan" in Path(paths[0]).read_text()


def _sweep_cmd(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "acbench.cli",
        "sweep",
        str(DATA / "sweep_kill.toml"),
        "--out",
        str(out),
        "--quiet",
        "--no-controls",
    ]


@pytest.mark.slow  # a real sweep killed and resumed: ~100 s
def test_sigkill_mid_training_then_resume(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(_sweep_cmd(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    victim = None
    while time.time() < deadline and proc.poll() is None:
        for cfg in killed.glob("*/checkpoint.pt"):
            if '"conditional"' in (cfg.parent / "config.json").read_text():
                victim = cfg.parent
        if victim is not None:
            break
        time.sleep(0.05)
    assert victim is not None, "the sweep finished before a conditional checkpoint appeared"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in killed.glob("*/done")}
    subprocess.run(_sweep_cmd(killed), check=True, capture_output=True)
    import torch

    meta = torch.load(victim / "model.pt", weights_only=True)
    assert meta["resumed_from"] > 0, "the killed run restarted from step 0"
    for name, mtime in done_before.items():  # no finished run was redone
        assert (killed / name / "done").stat().st_mtime_ns == mtime
    subprocess.run(_sweep_cmd(clean), check=True, capture_output=True)

    def rows(root):
        frames = [pd.read_csv(p) for p in sorted(root.glob("*/rows.csv"))]
        stamps = ["code", "date", "train_seconds"]  # when and with what it ran, not its result
        return (
            pd.concat(frames)
            .drop(columns=stamps, errors="ignore")
            .sort_values(["run_id", "eval", "image", "component"])
            .reset_index(drop=True)
        )

    pd.testing.assert_frame_equal(rows(killed), rows(clean))


def test_unknown_file():
    with pytest.raises(ConfigError, match="does not exist"):
        sweep_configs(Path("nope.toml"))


def test_lambda_finetune_baselines_start_from_the_feature_lambda():
    from acbench.config import preset
    from acbench.runner import baseline_job, feature_lambda

    cfg = dataclasses.replace(preset("tiny"), lambda_finetune=5)
    jobs = plan([cfg], controls=False)
    base = [j for j in jobs if j.kind == "baseline"]
    middle = baseline_job(cfg, feature_lambda(cfg))
    assert base[0].id == middle.id and middle.deps == () and "init_run" not in middle.payload()
    assert all(j.deps == (middle.id,) and j.init_run == middle.id for j in base[1:])
    assert len(base) == len(cfg.lmbdas) and len({j.curve for j in base}) == 1
    independent = plan([preset("tiny")], controls=False)
    assert not {j.id for j in independent} & {j.id for j in base}
    with pytest.raises(ConfigError, match="lambda_finetune must be >= 0"):
        expand({"preset": "tiny", "set": {"lambda_finetune": -1}})


def test_bad_slurm_parameter_fails_before_any_work(tmp_path):
    res = runner.invoke(
        app, ["sweep", str(DATA / "sweep_tiny.toml"), "--out", str(tmp_path), "--slurm", "nokey"]
    )
    assert res.exit_code == 2 and "expected key=value, got 'nokey'" in res.output
    assert not any(tmp_path.glob("*/model.pt"))
