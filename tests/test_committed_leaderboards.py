"""The committed leaderboards are what their own rows give: rebuilt from the CSV, byte for byte.

Each page under ``leaderboards/`` names the command that made it; this runs that command with
``--rows`` on the committed CSV (in a scratch copy of the repository layout) and compares.
"""

from __future__ import annotations

import gzip
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acbench.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "leaderboards").glob("*/*.md"))
runner = CliRunner()
#: pages rebuilt in the fast tier (the demo's, and the smallest); every other page in `make test-slow`
#: (each rebuild bootstraps its intervals: 5-30 s a page)
FAST = {"demo/photos.md", "z128/photos.md"}


def _case(page: Path):
    name = f"{page.parent.name}/{page.name}"
    return pytest.param(page, id=name, marks=() if name in FAST else pytest.mark.slow)


def test_leaderboards_are_committed():
    assert PAGES, "no leaderboards/<ablation>/<dataset>.md committed"


@pytest.mark.parametrize("page", [_case(p) for p in PAGES])
def test_committed_leaderboard_regenerates_from_its_rows(page, tmp_path, monkeypatch):
    text = page.read_text(encoding="utf-8")
    m = re.search(r"^Regenerate: `(acbench leaderboard [^`]+)`", text, re.M)
    assert m, f"{page} does not say how to regenerate it"
    args = shlex.split(m.group(1))[1:]
    rel = page.relative_to(ROOT)
    csv = rel.with_name(f"{page.stem}_rows.csv.gz")
    for f in (rel, csv):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / f, tmp_path / f)
    if "--sweep" in args:
        sweep = Path(args[args.index("--sweep") + 1])
        (tmp_path / sweep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / sweep, tmp_path / sweep)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*args, "--rows", str(csv)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert (tmp_path / rel).read_text(encoding="utf-8") == text
    # the rows themselves, not gzip's bytes (another zlib may compress the same text otherwise)
    assert gzip.decompress((tmp_path / csv).read_bytes()) == gzip.decompress((ROOT / csv).read_bytes())


def _said(res) -> str:
    return " ".join(res.output.split())  # rich wraps long lines


def test_rows_option_errors(tmp_path):
    res = runner.invoke(app, ["leaderboard", "--rows", str(tmp_path / "none.csv"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "does not exist" in _said(res)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    res = runner.invoke(app, ["leaderboard", "--rows", str(bad), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "lacks the column(s) component, curve" in _said(res)
    res = runner.invoke(app, ["leaderboard", "--preset", "cpu", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--preset goes with --sweep" in _said(res)
