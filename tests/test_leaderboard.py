"""Leaderboard markdown, run report, plots and export from synthetic long rows (no torch).

Regenerate the golden file after an intended change of the layout:
``ACBENCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_leaderboard.py`` (then read the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from acbench.analysis.bdrate import BD
from acbench.analysis.export import compressai_json
from acbench.analysis.leaderboard import (
    HEADER,
    Footnotes,
    markdown_table,
    write_leaderboard,
)
from acbench.analysis.report import run_report
from acbench.analysis.synthetic import LAMS, failed_row, synthetic_rows

GOLDEN = Path(__file__).parent / "golden" / "leaderboard.md"
COMMAND = "acbench leaderboard --results runs --out leaderboards"
NA_CURVE = "mshp-random-conv1x1-L4"
FAILED_CONTROL = "mshp-random-zero~film-L4"


def _fixed_rows() -> pd.DataFrame:
    rows = synthetic_rows(orderings=("isomap", "random"), mixers=("conv1x1", "film"), seed=0, controls=True)
    rows = rows[~((rows["curve"] == NA_CURVE) & (rows["lam"] > 0.005))]
    oom = [failed_row(rows, FAILED_CONTROL, "ValueError: loss is NaN at step 412", lam) for lam in LAMS]
    rows = pd.concat([rows[rows["curve"] != FAILED_CONTROL], pd.DataFrame(oom)], ignore_index=True)
    failed = {
        "run_id": "run-umap-film-L4-0.0067",
        "curve": "mshp-umap-film-L4",
        "anchor_curve": "base-mshp-128",
        "kind": "conditional",
        "dataset": "synthetic",
        "tile": 128,
        "codec": "mshp",
        "ordering": "umap",
        "mixer": "film",
        "sites": "hyper_analysis,hyper_synthesis",
        "chain": 4,
        "lam": 0.0067,
        "seed": 0,
        "steps": 1000,
        "params": np.nan,
        "error": "RuntimeError: CUDA out of memory",
    }
    return pd.concat([rows, pd.DataFrame([failed])], ignore_index=True)


def _write(tmp_path: Path, **kw) -> list[Path]:
    kw.setdefault("plots", False)
    return write_leaderboard(_fixed_rows(), tmp_path, COMMAND, bootstrap=200, seed=0, **kw)


def test_markdown_table_formats_cells():
    notes = Footnotes()
    df = pd.DataFrame(
        {
            "name": ["a", "b"],
            "bd": [BD(-10.004), BD(float("nan"), "n/a: needs >= 4 points (got 3)")],
            "x": [0.123456, float("nan")],
            "n": [3, 4],
        }
    )
    text = markdown_table(df, notes)
    assert text.splitlines()[0].startswith("| name")
    assert "-10.00 %" in text and "n/a[^1]" in text and "0.1235" in text
    assert notes.render() == "[^1]: needs >= 4 points (got 3)"
    own = markdown_table(df)
    assert own.endswith("[^1]: needs >= 4 points (got 3)")
    assert "0.00 %" in markdown_table(pd.DataFrame({"bd": [BD(-0.001)]}))
    assert "-0.00" not in markdown_table(pd.DataFrame({"bd": [BD(-0.001)]}))


def test_leaderboard_matches_golden(tmp_path):
    md = _write(tmp_path)[0]
    text = md.read_text(encoding="utf-8")
    if os.environ.get("ACBENCH_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_leaderboard_is_deterministic(tmp_path):
    a = _write(tmp_path / "a")
    b = _write(tmp_path / "b")
    assert [p.name for p in a] == ["synthetic.md", "synthetic_rows.csv.gz"]
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
    shuffled = _fixed_rows().sample(frac=1.0, random_state=1)
    c = write_leaderboard(shuffled, tmp_path / "c", COMMAND, bootstrap=200, plots=False)
    assert c[0].read_bytes() == a[0].read_bytes()


def test_leaderboard_content(tmp_path):
    text = _write(tmp_path)[0].read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == HEADER
    assert f"`{COMMAND}`" in text
    assert "## mshp · 128-px tiles" in text and "Tile size: 128 px" in text
    assert "log2(N!)/N = 2.18 bits/image" in text
    assert "L=2 total ↓" in text and "L=4 z ↓" in text and "q_dist_ratio ↓" in text
    assert "## Failed runs" in text
    assert "RuntimeError: CUDA out of memory" in text and "run-umap-film-L4-0.0067" in text
    na_line = next(ln for ln in lines if ln.startswith("| random") and "conv1x1" in ln)
    assert "n/a[^" in na_line
    assert "]: needs >= 4 points (got 2)" in text
    assert "[synthetic_rows.csv.gz](synthetic_rows.csv.gz)" in text
    assert "### Attribution: where the saving comes from (total)" in text
    assert "### Attribution per component (y / z)" in text and "### Models compared" in text
    assert "zero control failed: ValueError: loss is NaN at step 412" in text
    assert "| isomap     | zero (film)    |" in text and "is the zero control" in text
    assert "generated 2024" not in text


def test_aligning_mixers_get_a_column_only_where_present(tmp_path):
    """attention (tagged ``aligns``) next to film: an ``aligned`` column after ``mixer`` in every
    table; a page of position-wise mixers only (as every committed page) keeps its layout."""
    rows = synthetic_rows(mixers=("film", "attention"), seed=0, controls=True)
    (md,) = write_leaderboard(rows, tmp_path, COMMAND, bootstrap=0, plots=False)[:1]
    table = [
        [c.strip() for c in ln.strip("|").split("|")]
        for ln in md.read_text().splitlines()
        if ln.startswith("|")
    ]
    heads = [r for r in table if r[:2] == ["ordering", "mixer"]]
    assert len(heads) >= 5 and all(r[2] == "aligned" for r in heads)
    cells = {tuple(r[1:3]) for r in table if r[0] == "isomap"}
    assert {("attention", "yes"), ("film", "no"), ("zero (attention)", "no")} <= cells
    rows = synthetic_rows(mixers=("film", "conv1x1"), seed=0, controls=True)
    (md,) = write_leaderboard(rows, tmp_path, COMMAND, bootstrap=0, plots=False)[:1]
    assert "aligned" not in md.read_text()


def test_leaderboard_small_tiles_warn_and_date(tmp_path):
    rows = synthetic_rows(tile=64)
    md = write_leaderboard(rows, tmp_path, COMMAND, bootstrap=0, plots=False, date="2024-01-02")[0]
    text = md.read_text(encoding="utf-8")
    assert "Below 128 px" in text and "generated 2024-01-02" in text
    assert "at 64-px tiles it is a single 1×1 vector per image" in text
    assert "*" not in text.split("### Chains")[1].split("###")[0]


def test_leaderboard_with_plots(tmp_path):
    paths = _write(tmp_path, plots=True)
    png = [p for p in paths if p.suffix == ".png"]
    assert [p.name for p in png] == ["synthetic_mshp_128px_rd.png"]
    assert png[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[0].stat().st_size < 300_000
    assert f"]({png[0].name})" in paths[0].read_text(encoding="utf-8")


def test_leaderboard_per_dataset(tmp_path):
    rows = pd.concat([synthetic_rows(), synthetic_rows(dataset="other", n_images=6)])
    paths = write_leaderboard(rows, tmp_path, COMMAND, bootstrap=0, plots=False)
    assert sorted(p.name for p in paths if p.suffix == ".md") == ["other.md", "synthetic.md"]
    only = write_leaderboard(rows, tmp_path / "x", COMMAND, dataset="other", plots=False)
    assert [p.name for p in only] == ["other.md", "other_rows.csv.gz"]


def test_run_report():
    rows = _fixed_rows()
    mine = rows[rows["curve"].isin(["mshp-isomap-film-L4", "base-mshp-128", "mshp-umap-film-L4"])]
    text = run_report(mine, bootstrap=100)
    assert text.startswith("# acbench run report")
    assert "## mshp · isomap · film · hyper_analysis,hyper_synthesis · L=4" in text
    assert "| component" in text and "| total " in text and "| z " in text
    for head in (
        "chain: PCHIP ↓",
        "chain: Akima ↓",
        "chain: cond. only ↓",
        "full: PCHIP ↓",
        "chain: 95 % CI",
    ):
        assert head in text, head
    assert "baseline bpp est" in text and "chain bpp real" in text and "chain PSNR" in text
    assert "Tile size: 128 px" in text and "10 eval images" in text
    assert "log2(N!)/N" in text and "Mean measured saving" in text
    assert "## Failed runs" in text
    assert run_report(mine) == run_report(mine)


def test_run_report_without_conditional_rows():
    rows = synthetic_rows()
    assert "nothing to compare" in run_report(rows[rows["kind"] == "baseline"])


def test_compressai_json():
    rows = synthetic_rows()
    d = compressai_json(rows, "mshp-isomap-film-L2")
    assert set(d) == {"name", "description", "results"}
    res = d["results"]
    assert len(res["bpp"]) == len(res["psnr-rgb"]) == len(res["ms-ssim-rgb"]) == 5
    assert res["bpp"] == sorted(res["bpp"]) and res["ms-ssim-rgb"][0] is None
    base = compressai_json(rows, "base-mshp-128")
    assert "baseline" in base["name"] and base["results"]["bpp"][0] > res["bpp"][0]
    with pytest.raises(KeyError):
        compressai_json(rows, "nope")


def test_rows_read_back_from_csv_give_the_same_leaderboard(tmp_path):
    path = tmp_path / "rows.csv"
    _fixed_rows().to_csv(path, index=False)
    back = pd.read_csv(path, keep_default_na=False, na_values=[""])  # as store.load_rows reads
    md = write_leaderboard(back, tmp_path / "lb", COMMAND, bootstrap=200, plots=False)[0]
    assert md.read_text(encoding="utf-8") == GOLDEN.read_text(encoding="utf-8")


def test_ordering_quality_vs_saving_line():
    from acbench.analysis.leaderboard import leaderboard_markdown

    rows = synthetic_rows(orderings=("isomap", "random", "umap", "spectral"), controls=True, chains=(4,))
    # later orderings keep less of the saving; give them worse (higher) distance ratios
    quality = {"isomap": 0.3, "random": 0.5, "umap": 0.7, "spectral": 0.9}
    rows["q_dist_ratio"] = rows["ordering"].map(quality)
    md = leaderboard_markdown(rows, "cmd", "synthetic", bootstrap=0)
    line = next(ln for ln in md.splitlines() if ln.startswith("Ordering quality vs saving (film"))
    assert "with the BD-rate vs baseline ρ = +1.00" in line and "4 orderings" in line
    assert "content gain ρ = +1.00" in line
    two = synthetic_rows(orderings=("isomap", "random"))
    two["q_dist_ratio"] = 0.5
    assert "Ordering quality vs saving" not in leaderboard_markdown(two, "cmd", "synthetic", bootstrap=0)


def test_spearman_p_value_is_exact_for_few_orderings():
    from acbench.analysis.leaderboard import spearman

    assert spearman([0.3, 0.6, 1.0], [-0.1, 0.0, 0.2]) == pytest.approx((1.0, 1 / 3))
    rho, p = spearman([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5])
    assert rho == pytest.approx(29 / 35) and p == pytest.approx(42 / 720)  # SciPy's t approximation: 0.042
