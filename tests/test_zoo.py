"""The model zoo: shipped `cpu` baselines that reproduce their rows; damaged, truncated or stale
models refused with one line and retrained, never used silently."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from acbench import zoo
from acbench.config import PROTOCOL
from acbench.executors import execute
from acbench.runner import baseline_job
from acbench.store import Run, read_rows_csv
from acbench.zoo_build import build, verify, zoo_config

SHIPPED = zoo.manifest(zoo.HERE)["models"]


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A zoo of the `tiny` preset's baselines, built by the real command's code."""
    root = tmp_path_factory.mktemp("zoo")
    runs = tmp_path_factory.mktemp("zoo-runs")
    with pytest.MonkeyPatch.context() as mp:  # only while building: the tests set it themselves
        mp.setenv("ACBENCH_ZOO_DIR", str(root))
        build(runs, workers=1, name="tiny")
    return root


def _job(name: str = "tiny"):
    cfg = zoo_config(name)
    return baseline_job(cfg, cfg.lmbdas[0])


def test_built_zoo_is_installed_and_reproduces_its_rows(tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("ACBENCH_ZOO_DIR", str(tiny_zoo))
    man = zoo.manifest()
    assert len(man["models"]) == len(zoo.ZOO_LAMBDAS) and man["command"].startswith("acbench zoo build")
    job = _job()
    r = verify(job.id, tmp_path)
    assert r["ok"] and r["d_psnr"] == 0 and r["d_bpp"] == 0 and r["n"] > 0
    # installed, not trained: the run's model is the shipped file's weights
    shipped = torch.load(tiny_zoo / man["models"][job.id]["file"], weights_only=True)
    mine = torch.load(Run(tmp_path, job.id).model, weights_only=True)["state_dict"]
    assert mine.keys() == shipped["state_dict"].keys()
    assert all(torch.equal(mine[k], shipped["state_dict"][k]) for k in mine)
    assert shipped["zoo_key"] == job.id and shipped["protocol"] == PROTOCOL


def _damage(root, run_id: str, how: str) -> None:
    man = json.loads((root / "manifest.json").read_text())
    path = root / man["models"][run_id]["file"]
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "bitflip":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif how == "missing":
        path.unlink()
    elif how == "stale":  # another protocol's model, re-hashed so that only the stamp is wrong
        state = torch.load(path, weights_only=True)
        state["protocol"] = PROTOCOL - 1
        torch.save(state, path)
        man["models"][run_id].update(bytes=path.stat().st_size, sha256=zoo.sha256(path))
        (root / "manifest.json").write_text(json.dumps(man))


@pytest.mark.parametrize(
    "how, words",
    [
        ("truncated", "truncated or altered"),
        ("bitflip", "damaged (sha256"),
        ("missing", "is missing"),
        ("stale", "training protocol"),
    ],
)
def test_bad_zoo_model_is_refused_with_one_line_and_retrained(
    tiny_zoo, tmp_path, monkeypatch, capfd, how, words
):
    import shutil

    root = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, root)
    monkeypatch.setenv("ACBENCH_ZOO_DIR", str(root))
    job = _job()
    _damage(root, job.id, how)
    with pytest.raises(zoo.ZooError, match=re.escape(words)):
        zoo.checked(job.id)
    out = execute([job], tmp_path / "runs")
    assert out[0].status == "done"
    err = capfd.readouterr().err
    line = [ln for ln in err.splitlines() if "zoo model" in ln]
    assert len(line) == 1 and words in line[0] and "acbench zoo build" in line[0] and "training" in line[0]
    model = torch.load(Run(tmp_path / "runs", job.id).model, weights_only=True)
    assert "zoo_key" not in model and model["steps"] > 0  # trained here, with its own record


def test_no_zoo_env_trains_instead(tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("ACBENCH_ZOO_DIR", str(tiny_zoo))
    monkeypatch.setenv("ACBENCH_NO_ZOO", "1")
    job = _job()
    execute([job], tmp_path)
    assert "zoo_key" not in torch.load(Run(tmp_path, job.id).model, weights_only=True)


# -- the shipped zoo ----------------------------------------------------------------------------

pytestmark_shipped = pytest.mark.skipif(not SHIPPED, reason="no shipped zoo (build it: acbench zoo build)")


@pytestmark_shipped
def test_shipped_zoo_covers_the_cpu_preset_with_six_lambdas_over_8x():
    cfg = zoo_config("cpu")
    ids = {baseline_job(cfg, lam).id for lam in cfg.lmbdas}
    assert ids == set(SHIPPED), "the shipped zoo is stale for this code: rebuild with `acbench zoo build`"
    lams = sorted(e["lam"] for e in SHIPPED.values())
    assert len(lams) >= 6 and lams[-1] / lams[0] >= 8
    for run_id in SHIPPED:
        assert zoo.checked(run_id, zoo.HERE) is not None
    total = sum(e["bytes"] for e in SHIPPED.values())
    assert total < 25e6


@pytestmark_shipped
def test_shipped_baseline_curve_is_monotone_and_converged():
    points = []
    for e in sorted(SHIPPED.values(), key=lambda e: e["lam"]):
        rows = read_rows_csv(zoo.HERE / e["rows"])
        tot = rows[rows["component"] == "total"]
        points.append((e["lam"], tot["bpp_real"].mean(), tot["psnr"].mean(), e["convergence"]))
    df = pd.DataFrame(points, columns=["lam", "bpp", "psnr", "convergence"])
    assert (np.diff(df["psnr"]) > 0).all(), f"PSNR not increasing with λ:\n{df}"
    assert (np.diff(df["bpp"]) > 0).all(), f"rate not increasing with λ:\n{df}"
    # shipped: -0.7 … -2.2 % (still falling slowly: reported, not hidden); a regression to a
    # constant-lr schedule would move it by far more
    assert (df["convergence"].abs() < 0.03).all(), f"validation loss still moving > 3 %:\n{df}"


@pytestmark_shipped
def test_one_shipped_model_reproduces_its_rows(tmp_path):
    """The feature λ (no dependency) re-evaluated here; every λ: the slow test below and
    `acbench zoo build --check`."""
    from acbench.runner import feature_lambda

    cfg = zoo_config("cpu")
    job = baseline_job(cfg, feature_lambda(cfg))
    r = verify(job.id, tmp_path)
    assert r["ok"], r


@pytest.mark.slow
@pytestmark_shipped
def test_every_shipped_model_reproduces_its_rows(tmp_path):
    for run_id in SHIPPED:
        r = verify(run_id, tmp_path)
        assert r["ok"], (run_id, r)
