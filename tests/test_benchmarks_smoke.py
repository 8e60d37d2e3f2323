"""The benchmark suite cannot rot: every measurement of ``make bench`` runs once at tiny sizes.

Only that it runs and returns finite numbers is checked; timings on a shared machine say
nothing, so there are no thresholds here (``python benchmarks/run_all.py`` prints the ratios).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402
import run_all  # noqa: E402

SMOKE = benchlib.PROFILES["smoke"]
SLOW = {"archive"}  # trains a run and spawns coder processes: `make test-slow`


def _check(rows: list[benchlib.Row]) -> None:
    assert rows
    for r in rows:
        assert "failed" not in r.name and "skipped" not in r.name, r.name
        assert math.isfinite(r.acbench), r
        if not math.isnan(r.reference):
            assert math.isfinite(r.reference) and r.reference > 0, r
            assert math.isfinite(r.ratio) and r.ratio > 0, r
        assert not any(math.isinf(x) for x in r.numbers()), r


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in benchlib.MEASUREMENTS],
)
def test_measurement_runs(name):
    _check(benchlib.MEASUREMENTS[name](SMOKE))


def test_table_and_json(tmp_path, capsys):
    rows = [
        benchlib.Row("x: images/s", 120.0, 40.0, "img/s", 3.0, 2.5, 3.5, ">= 3x", True, "a note"),
        benchlib.Row("y: skipped", math.nan),
    ]
    text = run_all.table(rows)
    assert "3.00x (2.50-3.50)" in text and "[1] a note" in text
    assert run_all.main(["--profile", "smoke", "--only", "plan", "--json", str(tmp_path / "b.json")]) == 0
    assert "runner.plan" in capsys.readouterr().out
    assert (tmp_path / "b.json").read_text().startswith("{")


def test_interleave_alternates_and_pairs():
    calls = []
    res = benchlib.interleave(
        {"a": lambda r: calls.append(("a", r)) or 2.0, "b": lambda r: calls.append(("b", r)) or 1.0}, 3
    )
    assert calls == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]
    assert benchlib.paired(res["a"], res["b"]) == (2.0, 2.0, 2.0)
    assert len(res.foreign["a"]) == 3
    res.foreign = {"a": [0.0, 2.0, 0.0], "b": [0.0, 0.0, 0.1]}  # round 1 had a busy neighbour
    res["a"][1] = 100.0
    c = res.compare("a", "b")
    assert c["ratio"] == 2.0 and c["ratio_hi"] == 2.0 and c["note"].startswith("2/3 rounds quiet")


def test_mixer_cost_script_runs(capsys):
    import bench_mixers

    bench_mixers.main(["--shapes", "tiny", "--repeats", "1", "--mixers", "film", "attention"])
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln.startswith("tiny ")]
    assert [ln[2] for ln in lines] == ["film", "attention"]
    assert all(math.isfinite(float(x)) for ln in lines for x in ln[4:])
