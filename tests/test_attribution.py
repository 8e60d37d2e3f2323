"""Attribution of savings to training budget, capacity and the neighbour's content (no torch)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from acbench.analysis.attribution import (
    COMPARISONS,
    attribution_sentence,
    attribution_table,
    decompose,
    seed_spread,
    zero_labels,
)
from acbench.analysis.bdrate import bd_between
from acbench.analysis.leaderboard import leaderboard_markdown
from acbench.analysis.report import run_report
from acbench.analysis.synthetic import failed_row, synthetic_rows

FILM = "mshp-isomap-film-L4"
ZERO = "mshp-isomap-zero~film-L4"
ANCHOR = "anchor-mshp-128-L4"
BASE = "base-mshp-128"


def _rows(**kw) -> pd.DataFrame:
    kw.setdefault("controls", True)
    kw.setdefault("chains", (4,))
    return synthetic_rows(**kw)


def _get(attr: pd.DataFrame, curve: str, which: str, comp: str = "total") -> pd.Series:
    sel = attr[(attr["curve"] == curve) & (attr["comparison"] == which)]
    return sel[sel["component"] == comp].iloc[0]


def _content(rows: pd.DataFrame, seed: int = 0, bootstrap: int = 1000) -> pd.DataFrame:
    attr = attribution_table(rows, bootstrap=bootstrap, seed=seed, curves=[FILM])
    return attr[attr["comparison"] == "content"].set_index("component")


def test_copy_of_the_image_as_reference_gives_a_large_significant_content_gain():
    rows = _rows(n_images=20, saving={"y": 0.5, "z": 0.5}, shuffled_keep=0.0, noise=0.05)
    c = _content(rows)
    assert (c["bd_pchip"] < -40).all()
    assert c["significant"].all() and (c["ci_high"] < -40).all()


@pytest.mark.parametrize("seed", range(5))
def test_independent_noise_as_reference_gives_a_content_gain_interval_around_zero(seed):
    rows = _rows(n_images=20, saving={"y": 0.05, "z": 0.05}, shuffled_keep=1.0, noise=0.05, seed=seed)
    c = _content(rows)
    assert ((c["ci_low"] < 0) & (c["ci_high"] > 0)).all()
    assert not c["significant"].any()
    vs_base = attribution_table(rows, bootstrap=200, curves=[FILM])
    assert _get(vs_base, FILM, "baseline")["significant"]  # a saving, but not from content


def test_known_split_on_conditioned_images():
    b, c, s, keep = {"z": 0.10}, {"z": 0.03}, {"y": 0.04, "z": 0.12}, 0.2
    rows = _rows(budget={"y": 0.03, **b}, capacity={"y": 0.01, **c}, saving=s)
    attr = attribution_table(rows)
    expect = {
        "baseline": (1 - b["z"]) * (1 - c["z"]) * (1 - s["z"]) - 1,
        "matched": (1 - c["z"]) * (1 - s["z"]) - 1,
        "control": (1 - s["z"]) - 1,
        "content": (1 - s["z"]) / (1 - keep * s["z"]) - 1,
    }
    for which, v in expect.items():
        assert _get(attr, FILM, which, "z")["bd_pchip"] == pytest.approx(100 * v, abs=1e-6)
    # the zero control: vs step-matched = capacity alone, no content gain
    assert _get(attr, ZERO, "matched", "z")["bd_pchip"] == pytest.approx(-3.0, abs=1e-6)
    assert _get(attr, ZERO, "content", "z")["bd_pchip"] == pytest.approx(0.0, abs=1e-9)
    assert _get(attr, ZERO, "control", "z")["missing"] == "is the zero control"
    total = attr[attr["curve"] == FILM]
    assert list(total["comparison"].unique()) == list(COMPARISONS)
    assert set(total["against"]) == {BASE, ANCHOR, ZERO, FILM}
    assert (total["against_steps"] == 1000).all()
    assert set(total["against_params"]) == {1_000_000, 1_020_000}


def test_decompose_differences_and_merging():
    parts = decompose({"baseline": -6.1, "matched": -1.2, "control": -0.4, "content": -0.4})
    labels = [p for p, _ in parts]
    assert labels[0] == "training budget (step-matched anchor)"
    assert labels[1] == "capacity (zero-mixer control)"
    assert [round(v, 6) for _, v in parts] == [-4.9, -0.8, 0.0, -0.4]
    assert sum(v for _, v in parts) == pytest.approx(-6.1)
    merged = decompose({"baseline": -6.1, "matched": float("nan"), "control": -0.4})
    assert merged[0] == ("training budget + capacity", pytest.approx(-5.7))
    assert merged[1][0] == "a random reference rather than none + the neighbour's content"
    late = decompose({"baseline": float("nan"), "matched": -1.0, "content": -0.25})
    assert late == [
        ("capacity + a random reference rather than none", pytest.approx(-0.75)),
        ("the neighbour's content (shuffled references)", pytest.approx(-0.25)),
    ]
    assert decompose({"baseline": float("nan")}) == []


def test_sentence_names_each_part():
    attr = attribution_table(_rows())
    text = attribution_sentence(attr[attr["curve"] == FILM])
    assert "approximate" in text and "vs the baseline" in text
    for part in ("training budget", "capacity", "the neighbour's content"):
        assert part in text
    zero = attribution_sentence(attr[attr["curve"] == ZERO])
    assert "Not separated" not in zero and "+0.00 % the neighbour's content" in zero
    no_base = attr[(attr["curve"] == FILM) & (attr["comparison"] != "baseline")]
    text = attribution_sentence(no_base)
    assert "vs the step-matched anchor, " in text and "lack of a figure: baseline: not computed." in text


def test_bootstrap_intervals_reproducible_with_a_seed():
    rows = _rows(noise=0.05)
    a = attribution_table(rows, bootstrap=300, seed=7)
    b = attribution_table(rows, bootstrap=300, seed=7)
    c = attribution_table(rows, bootstrap=300, seed=8)
    pd.testing.assert_frame_equal(a, b)
    ok = a["ci_low"].notna()
    assert ok.any() and not np.allclose(a.loc[ok, "ci_low"], c.loc[ok, "ci_low"])
    # the baseline comparison matches bd_between on the same (conditioned) images and seed
    chain = rows[(rows["curve"] != FILM) | (rows["position"] >= 2) | (rows["eval"] != "chain")]
    ref = bd_between(chain, FILM, BASE, bootstrap=300, seed=7).set_index("component")
    mine = a[(a["curve"] == FILM) & (a["comparison"] == "baseline")].set_index("component")
    assert np.allclose(mine["ci_low"], ref["ci_low"]) and np.allclose(mine["bd_pchip"], ref["bd_pchip"])


def test_missing_step_matched_anchor_is_named_never_replaced():
    rows = _rows()
    rows = rows[rows["curve"] != ANCHOR]
    attr = attribution_table(rows, bootstrap=100)
    r = _get(attr, FILM, "matched")
    assert r["missing"] == f"no step-matched anchor (no rows for {ANCHOR})"
    assert math.isnan(r["bd_pchip"]) and not r["significant"]
    assert not _get(attr, FILM, "baseline")["missing"]
    text = leaderboard_markdown(rows, "cmd", "synthetic", bootstrap=100)
    assert f"no step-matched anchor (no rows for {ANCHOR})" in text
    old = synthetic_rows(chains=(4,))  # rows written before controls existed
    attr = attribution_table(old)
    assert _get(attr, FILM, "matched")["missing"] == "no step-matched anchor (rows predate controls)"
    assert _get(attr, FILM, "control")["missing"] == "no zero control (rows predate controls)"
    assert not _get(attr, FILM, "content")["missing"]


def test_failed_zero_control_is_named_in_table_leaderboard_and_report():
    rows = _rows()
    failed = [failed_row(rows, ZERO, "RuntimeError: CUDA out of memory", lam) for lam in (0.0018,)]
    rows = pd.concat([rows[rows["curve"] != ZERO], pd.DataFrame(failed)], ignore_index=True)
    attr = attribution_table(rows, bootstrap=100)
    r = _get(attr, FILM, "control")
    assert r["missing"] == "zero control failed: RuntimeError: CUDA out of memory"
    assert math.isnan(r["bd_pchip"])
    md = leaderboard_markdown(rows, "cmd", "synthetic", bootstrap=100)
    assert "zero control failed: RuntimeError: CUDA out of memory" in md
    other = failed_row(rows, "mshp-isomap-film-L4", "unrelated", 0.0018)
    other["curve"] = "some-other-curve"
    rep = run_report(pd.concat([rows, pd.DataFrame([other])]), bootstrap=100, curves=[FILM])
    assert "zero control failed: RuntimeError: CUDA out of memory" in rep
    assert "## Failed runs" in rep and "unrelated" not in rep
    assert "lack of a figure: zero control failed: RuntimeError: CUDA out of memory." in rep


def test_control_failed_at_one_lambda_is_noted():
    rows = _rows()
    lam = 0.025
    gone = (rows["curve"] == ZERO) & (rows["lam"] == lam)
    rows = pd.concat(
        [rows[~gone], pd.DataFrame([failed_row(rows, ZERO, "ValueError: NaN loss", lam)])],
        ignore_index=True,
    )
    r = _get(attribution_table(rows), FILM, "control")
    assert not r["missing"] and not math.isnan(r["bd_pchip"])
    assert r["note"] == "zero control failed at 1 λ (ValueError: NaN loss); BD-rate on the rest"
    md = leaderboard_markdown(rows, "cmd", "synthetic", bootstrap=0)
    assert "]: zero control failed at 1 λ (ValueError: NaN loss)" in md


def test_too_few_eval_images_give_no_interval_and_say_why():
    rows = _rows(n_images=4)
    attr = attribution_table(rows, bootstrap=200)
    film = attr[attr["curve"] == FILM]
    assert film["ci_low"].isna().all() and not film["significant"].any()
    assert film["bd_pchip"].notna().all()
    assert (film["reason_ci"] == "too few conditioned eval images for a bootstrap (n=3)").all()
    rep = run_report(rows, bootstrap=200, curves=[FILM])
    assert "(no CI[^" in rep and "too few conditioned eval images for a bootstrap (n=3)" in rep
    md = leaderboard_markdown(rows, "cmd", "synthetic", bootstrap=200)
    assert "(no CI[^" in md


def test_seed_spread():
    rows = _rows(seeds=(0, 1, 2), noise=0.02)
    attr = attribution_table(rows)
    sp = seed_spread(attr)
    film = sp[(sp["mixer"] == "film") & (sp["component"] == "total")].set_index("comparison")
    assert (film["n_seeds"] == 3).all() and (film["sd"] > 0).all()
    assert (film["min"] <= film["mean"]).all() and (film["mean"] <= film["max"]).all()
    md = leaderboard_markdown(rows, "cmd", "synthetic", bootstrap=0)
    section = md.split("### Spread across seeds (total)")[1].split("###")[0]
    film_line = next(ln for ln in section.splitlines() if ln.startswith("| isomap     | film "))
    assert "| 3 " in film_line and "±" in film_line and " to " in film_line
    assert "| seed " in md.split("### Attribution: where")[1].split("###")[0]


def test_seed_spread_skips_curves_told_apart_by_nothing_else():
    rows = _rows(seeds=(0, 1))
    twin = rows[rows["curve"] == f"{FILM}-s0"].assign(curve=f"{FILM}-other")
    attr = attribution_table(pd.concat([rows, twin], ignore_index=True))
    sp = seed_spread(attr)
    assert not ((sp["mixer"] == "film") & (sp["chain"] == 4)).any()


def test_run_report_attribution_block():
    rows = _rows(noise=0.03)
    rep = run_report(rows, bootstrap=200, curves=[FILM])
    assert rep.count("\n## ") == 1  # only the curve asked for
    for head in ("vs baseline ↓", "vs step-matched ↓", "vs zero control ↓", "content gain ↓"):
        assert head in rep
    assert "Models (training steps · parameters): this model 1,000 · 1,020,000" in rep
    assert f"step-matched anchor `{ANCHOR}` 1,000 · 1,000,000" in rep
    assert "of the " in rep and "% training budget (step-matched anchor)" in rep
    assert "7 conditioned images" in rep
    same = next(ln for ln in rep.splitlines() if ln.startswith("Same λ, same images"))
    assert "content gain -3.56* [" in same and "ΔPSNR +0.000 (0.000) dB" in same
    assert run_report(rows, bootstrap=200, curves=[FILM]) == rep


def test_leaderboard_attribution_tables_and_zero_labels():
    rows = _rows(mixers=("film", "conv1x1"))
    assert zero_labels(rows)[ZERO] == "zero (film)"
    md = leaderboard_markdown(rows, "cmd", "synthetic", bootstrap=100)
    for head in (
        "### Attribution: where the saving comes from (total)",
        "### Attribution per component (y / z)",
        "### Models compared (training steps · parameters)",
    ):
        assert head in md
    att = md.split("### Attribution: where")[1].split("###")[0]
    assert "zero (film)" in att and "zero (conv1x1)" in att and "is the zero control" in att
    assert "%* [" in att
    models = md.split("### Models compared")[1].split("###")[0]
    assert "1,000 · 1,020,000" in models and "1,000 · 1,000,000" in models
    assert "Spread across seeds" not in md


def test_small_tiles_say_z_is_one_vector():
    md = leaderboard_markdown(_rows(tile=64), "cmd", "synthetic", bootstrap=0)
    assert "at 64-px tiles it is a single 1×1 vector per image" in md
    md = leaderboard_markdown(_rows(tile=96), "cmd", "synthetic", bootstrap=0)
    assert "only 2×2 positions" in md
