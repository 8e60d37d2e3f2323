"""(d) CLI start-up: ``acbench --help`` / ``acbench ls`` as subprocesses, vs importing torch."""

from __future__ import annotations

import sys

import benchlib
import pytest

CASES = {
    "acbench --help": [*benchlib._acbench_cmd(), "--help"],
    "acbench ls": [*benchlib._acbench_cmd(), "ls"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "python -c pass": [sys.executable, "-c", "pass"],
}


@pytest.mark.benchmark(group="cli start-up (subprocess wall time)")
@pytest.mark.parametrize("case", list(CASES))
def test_startup(benchmark, profile, case):
    benchmark.pedantic(benchlib._wall, args=(CASES[case],), rounds=profile.cli_repeats, warmup_rounds=1)


@pytest.mark.parametrize("argv", [["--help"], ["ls"]])
def test_no_torch_import(argv):
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", benchlib._CHECK.format(argv=argv)], capture_output=True, text=True
    )
    assert "HEAVY=" in out.stdout and "torch" not in out.stdout.split("HEAVY=")[1].split(",")
