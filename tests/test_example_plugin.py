"""The example plugin package is found through its entry points and runs in a tiny sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "examples" / "acbench-example-plugin"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    import shutil

    target = tmp_path_factory.mktemp("site")
    src = tmp_path_factory.mktemp("src") / "plugin"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))  # keep the repo clean
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    return target


def _env(plugin_path):
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}


def test_listed_through_entry_points(plugin_path):
    out = subprocess.run(
        [sys.executable, "-m", "acbench.cli", "ls"],
        env=_env(plugin_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "gated" in out.stdout and "brightness" in out.stdout


@pytest.mark.slow  # a tiny sweep of the plugin's mixer and ordering: ~13 s
def test_contracts_and_tiny_sweep(plugin_path, tmp_path):
    sweep = tmp_path / "plugin.toml"
    sweep.write_text(
        'preset = "tiny"\n[set]\nfeatures = "pixels"\n'
        '[grid]\nordering = ["brightness"]\nmixer = ["gated"]\nchain = [2]\n'
    )
    code = (
        "from acbench.testing import check_mixer, check_ordering; "
        "check_mixer('gated'); check_ordering('brightness'); print('contracts ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(plugin_path), capture_output=True, text=True)
    assert "contracts ok" in out.stdout, out.stderr[-2000:]
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "acbench.cli",
            "sweep",
            str(sweep),
            "--out",
            str(tmp_path / "runs"),
            "--quiet",
            "--no-controls",
        ],
        env=_env(plugin_path),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rows = "".join(p.read_text() for p in (tmp_path / "runs").glob("*/rows.csv"))
    assert "gated" in rows and "brightness" in rows
