"""Known-answer tests for BD-rate, the bootstrap and the multiset figure (no torch)."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from acbench.analysis.bdrate import (
    BD,
    COMPONENTS,
    _bd_pchip_batch,
    bd_between,
    bd_rate,
    bd_table,
    curve_points,
    multiset_bits,
    multiset_bpp,
    paired_rate_change,
)
from acbench.analysis.synthetic import synthetic_rows

RATE = np.array([0.12, 0.21, 0.35, 0.55, 0.83])
PSNR = np.array([27.1, 29.4, 31.8, 34.0, 36.3])
BASE = "base-mshp-128"


def _as_test(rows: pd.DataFrame, curve: str, factor: object = 0.9) -> pd.DataFrame:
    """The baseline rows relabelled as a conditional curve with every rate times ``factor``."""
    base = rows[rows["curve"] == BASE].copy()
    f = factor(base) if callable(factor) else factor
    for col in ("bpp_real", "bpp_est"):
        base[col] = base[col] * f
    base["curve"], base["kind"], base["eval"] = curve, "conditional", "chain"
    base["position"] = np.where(base["image"] % 2 == 0, 1, 2)
    return pd.concat([rows, base], ignore_index=True)


@pytest.mark.parametrize("method", ["pchip", "akima"])
def test_identical_curves_give_zero(method):
    b = bd_rate(RATE, PSNR, RATE, PSNR, method)
    assert b.ok and b.reason == ""
    assert abs(b.value) < 1e-6


@pytest.mark.parametrize("method", ["pchip", "akima"])
def test_ten_percent_lower_rate_gives_minus_ten(method):
    assert bd_rate(RATE, PSNR, 0.9 * RATE, PSNR, method).value == pytest.approx(-10, abs=0.1)
    assert bd_rate(RATE, PSNR, 1.1 * RATE, PSNR, method).value == pytest.approx(10, abs=0.1)


def test_point_order_does_not_matter():
    i = [3, 0, 4, 1, 2]
    assert bd_rate(RATE[i], PSNR[i], 0.9 * RATE, PSNR).value == pytest.approx(-10, abs=0.1)


def test_barely_overlapping_curves_are_na():
    b = bd_rate(RATE, PSNR, RATE, PSNR + 8.0)
    assert math.isnan(b.value) and not b.ok
    assert b.reason.startswith("n/a: PSNR ranges overlap") and "< 50%" in b.reason


def test_three_points_are_na():
    b = bd_rate(RATE[:3], PSNR[:3], RATE, PSNR)
    assert math.isnan(b.value)
    assert b.reason == "n/a: needs >= 4 points (got 3)"


def test_non_monotone_curve_is_na():
    psnr = PSNR.copy()
    psnr[2] = psnr[0] - 1
    b = bd_rate(RATE, PSNR, RATE, psnr)
    assert math.isnan(b.value) and "not increasing" in b.reason


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="unknown BD method"):
        bd_rate(RATE, PSNR, RATE, PSNR, "cubic")


def test_vectorised_pchip_matches_bjontegaard():
    rng = np.random.default_rng(0)
    n = 200
    ra = np.sort(rng.uniform(0.05, 1.5, (n, 5)), axis=1)
    pa = np.sort(rng.uniform(25, 38, (n, 5)), axis=1)
    rt = ra * rng.uniform(0.8, 1.1, (n, 1))
    pt = np.sort(pa + rng.normal(0, 0.8, (n, 5)), axis=1)
    fast = _bd_pchip_batch(ra, pa, rt, pt)
    slow = np.array([bd_rate(ra[i], pa[i], rt[i], pt[i]).value for i in range(n)])
    assert np.array_equal(np.isnan(fast), np.isnan(slow))
    assert np.allclose(fast[~np.isnan(fast)], slow[~np.isnan(slow)], atol=1e-9)


def test_multiset_figure():
    assert multiset_bits(1) == 0.0
    assert multiset_bits(2) == pytest.approx(0.5)
    assert multiset_bits(4) == pytest.approx(math.log2(24) / 4)
    assert multiset_bits(10_000) == pytest.approx(math.log2(math.factorial(10_000)) / 10_000)
    assert multiset_bpp(4, 64 * 64) == pytest.approx(multiset_bits(4) / 4096)


def test_curve_points_are_means_per_lambda():
    rows = synthetic_rows(n_images=6)
    base = rows[rows["curve"] == BASE]
    pts = curve_points(base, "z", images=[0, 1])
    assert list(pts.columns) == ["lam", "bpp", "psnr"]
    assert pts["lam"].is_monotonic_increasing and len(pts) == 5
    sel = base[(base["component"] == "z") & base["image"].isin([0, 1])]
    first = sel[sel["lam"] == pts["lam"].iloc[0]]
    assert pts["bpp"].iloc[0] == pytest.approx(first["bpp_real"].mean())
    assert curve_points(base, "z", rate="bpp_est")["bpp"].iloc[0] < pts["bpp"].iloc[0] * 2
    with pytest.raises(ValueError, match="one curve"):
        curve_points(rows, "z")


def test_bd_between_identical_and_ten_percent_per_component():
    rows = _as_test(synthetic_rows(), "same", 1.0)
    rows = _as_test(rows, "cheaper", 0.9)
    same = bd_between(rows, "same", BASE)
    cheaper = bd_between(rows, "cheaper", BASE)
    assert list(same["component"]) == list(COMPONENTS)
    for col in ("bd_pchip", "bd_akima", "bd_cond_pchip"):
        assert np.abs(same[col]).max() < 1e-6
        assert cheaper[col].to_numpy() == pytest.approx([-10] * 3, abs=0.1)
    assert (cheaper["reason"] == "").all()
    assert (cheaper["n_images"] == 10).all() and (cheaper["n_cond_images"] == 5).all()


def test_known_saving_on_conditioned_images():
    t = bd_table(synthetic_rows(saving={"y": 0.04, "z": 0.12}))
    chain = t[(t["eval"] == "chain")].set_index(["curve", "component"])
    for curve in ("mshp-isomap-film-L2", "mshp-isomap-film-L4"):
        assert chain.loc[(curve, "y"), "bd_cond_pchip"] == pytest.approx(-4.0, abs=1e-6)
        assert chain.loc[(curve, "z"), "bd_cond_pchip"] == pytest.approx(-12.0, abs=1e-6)
        assert -4.0 < chain.loc[(curve, "y"), "bd_pchip"] < 0
    longer = chain.loc[("mshp-isomap-film-L4", "total"), "bd_pchip"]
    assert longer < chain.loc[("mshp-isomap-film-L2", "total"), "bd_pchip"]


def test_bd_table_shape_columns_and_order():
    t = bd_table(synthetic_rows(orderings=("random", "isomap"), mixers=("zero", "film")))
    assert len(t) == 2 * 2 * 2 * 3 * 3
    for col in (
        "curve",
        "anchor_curve",
        "eval",
        "dataset",
        "tile",
        "codec",
        "ordering",
        "mixer",
        "sites",
        "chain",
        "seed",
        "steps",
        "params",
        "n_eval",
        "q_dist_ratio",
        "q_same_class",
        "component",
        "bd_pchip",
        "bd_akima",
        "bd_cond_pchip",
        "reason",
    ):
        assert col in t, col
    assert "ci_low" not in t
    assert list(t["ordering"].iloc[[0, -1]]) == ["isomap", "random"]
    assert list(t["component"].iloc[:3]) == ["total", "y", "z"]
    assert list(t["eval"].iloc[[0, 3, 6]]) == ["chain", "full", "shuffled"]
    zero = t[t["mixer"] == "zero"]
    assert np.abs(zero["bd_pchip"]).max() < 1e-6


def test_shuffled_references_as_anchor():
    rows = synthetic_rows()
    b = bd_between(rows, "mshp-isomap-film-L4", "mshp-isomap-film-L4", "chain", "shuffled")
    assert (b["bd_pchip"] < 0).all()


def test_failed_rows_missing_anchor_and_csv_roundtrip(tmp_path):
    rows = synthetic_rows()
    rows.loc[rows["curve"] == "mshp-isomap-film-L2", "anchor_curve"] = "nowhere"
    bad = {
        "run_id": "x",
        "curve": "mshp-isomap-film-L4",
        "kind": "conditional",
        "error": "boom",
        "lam": 0.0067,
        "dataset": "synthetic",
    }
    rows = pd.concat([rows, pd.DataFrame([bad])], ignore_index=True)
    path = tmp_path / "rows.csv"
    rows.to_csv(path, index=False)
    back = pd.read_csv(path, keep_default_na=False, na_values=[""])
    assert back["sites"].isna().any()
    t = bd_table(back)
    l2 = t[t["curve"] == "mshp-isomap-film-L2"]
    assert l2["bd_pchip"].isna().all()
    assert l2["reason"].str.contains("no rows for anchor curve nowhere").all()
    l4 = t[t["curve"] == "mshp-isomap-film-L4"]
    assert l4["bd_pchip"].notna().all()


def test_three_lambdas_in_table_are_na():
    rows = synthetic_rows()
    drop = (rows["curve"] == "mshp-isomap-film-L2") & (rows["lam"] > 0.005)
    t = bd_table(rows[~drop])
    l2 = t[t["curve"] == "mshp-isomap-film-L2"]
    assert l2["bd_pchip"].isna().all() and l2["bd_akima"].isna().all()
    assert (l2["reason_pchip"] == "n/a: needs >= 4 points (got 2)").all()


def test_bootstrap_reproducible_and_seeded():
    rows = synthetic_rows()
    a = bd_between(rows, "mshp-isomap-film-L4", BASE, bootstrap=300, seed=7)
    b = bd_between(rows, "mshp-isomap-film-L4", BASE, bootstrap=300, seed=7)
    c = bd_between(rows, "mshp-isomap-film-L4", BASE, bootstrap=300, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"], c["ci_low"])
    assert (a["ci_low"] <= a["bd_pchip"]).all() and (a["bd_pchip"] <= a["ci_high"]).all()


def test_true_saving_on_every_image_is_significant():
    rows = _as_test(synthetic_rows(), "cheaper", 0.9)
    b = bd_table(rows, bootstrap=1000, seed=0)
    b = b[b["curve"] == "cheaper"]
    assert b["significant"].all()
    assert (b["ci_high"] < 0).all()


def test_noise_with_mean_one_is_not_significant():
    rows = synthetic_rows(n_images=12)
    noise = np.random.default_rng(3).uniform(0.7, 1.3, 12)
    noise /= noise.mean()
    rows = _as_test(rows, "noisy", lambda df: noise[df["image"].to_numpy()])
    b = bd_between(rows, "noisy", BASE, bootstrap=1000, seed=0)
    assert not b["significant"].any()
    assert ((b["ci_low"] < 0) & (b["ci_high"] > 0)).all()


def test_too_few_images_for_a_bootstrap():
    b = bd_between(synthetic_rows(n_images=4), "mshp-isomap-film-L2", BASE, bootstrap=100)
    assert b["ci_low"].isna().all() and not b["significant"].any()
    assert (b["reason_ci"] == "too few eval images for a bootstrap (n=4)").all()
    assert b["reason"].str.contains("too few eval images").all()


def test_bootstrap_is_fast():
    rows = synthetic_rows(n_images=200)
    t0 = time.perf_counter()
    bd_between(rows, "mshp-isomap-film-L4", BASE, bootstrap=1000)
    assert time.perf_counter() - t0 < 1.0


def test_bd_is_a_small_value_type():
    b = BD(float("nan"), "n/a: x")
    assert not b.ok and BD(-3.0).ok and BD(-3.0).reason == ""
    with pytest.raises(AttributeError):
        b.value = 1.0  # type: ignore[misc]


def test_bootstrap_without_complete_lambdas():
    rows = synthetic_rows()
    test = rows["curve"] == "mshp-isomap-film-L2"
    rows.loc[test & (rows["image"] == 0) & (rows["lam"] > 0.003), "bpp_real"] = np.nan
    rows.loc[test & (rows["image"] == 1) & (rows["lam"] < 0.003), "bpp_real"] = np.nan
    b = bd_between(rows, "mshp-isomap-film-L2", BASE, bootstrap=50)
    assert (b["n_lam"] == 0).all() and b["bd_pchip"].isna().all()
    assert (b["reason_ci"] == "no interval: point estimate n/a").all()


def _pair(rows: pd.DataFrame, test: str, **kw: object) -> pd.DataFrame:
    sel = rows["curve"] == BASE
    return paired_rate_change(rows[sel], rows[rows["curve"] == test], **kw)


def test_paired_change_known_answers():
    rows = _as_test(_as_test(synthetic_rows(), "same", 1.0), "cheaper", 0.9)
    same, cheaper = _pair(rows, "same"), _pair(rows, "cheaper", bootstrap=500)
    assert np.abs(same["change"]).max() < 1e-9 and (same["reason"] == "").all()
    assert cheaper["change"].to_numpy() == pytest.approx([-10.0] * 3)
    assert cheaper["significant"].all() and (cheaper["ci_high"] < 0).all()
    assert (cheaper["d_psnr"] == 0).all() and (cheaper["n_lam"] == 5).all()
    # a non-monotone test curve has no BD-rate, but a same-λ change
    wobble = _as_test(synthetic_rows(), "wobble", lambda df: np.where(df["lam"] == df["lam"].max(), 0.5, 0.9))
    assert math.isnan(bd_between(wobble, "wobble", BASE).set_index("component").loc["total", "bd_pchip"])
    assert -50 < _pair(wobble, "wobble").set_index("component").loc["total", "change"] < -10


def test_paired_change_shows_the_psnr_it_does_not_control():
    rows = _as_test(synthetic_rows(), "blurrier", 1.0)
    rows.loc[rows["curve"] == "blurrier", "psnr"] -= 0.5
    p = _pair(rows, "blurrier")
    assert p["change"].abs().max() < 1e-9
    assert p["d_psnr"].to_numpy() == pytest.approx([-0.5] * 3) and (p["max_abs_d_psnr"] > 0.49).all()


def test_paired_change_without_rows_says_why():
    p = paired_rate_change(synthetic_rows().iloc[:0], synthetic_rows())
    assert p["change"].isna().all() and (p["reason"] == "n/a: no rows to pair").all()


def _seed_pairs(factors):
    """(baseline, test) pairs, one per seed, each test the baseline's rates times its factor."""
    from acbench.analysis.synthetic import synthetic_rows as make

    rows = make(n_images=12, seed=0)
    base = rows[(rows["curve"] == BASE) & (rows["eval"] == "alone")]
    pairs = []
    for s, f in enumerate(factors):
        t = _as_test(rows, f"test-{s}", f)
        pairs.append((base, t[t["curve"] == f"test-{s}"]))
    return pairs


def test_pooled_compare_ten_percent_on_every_seed():
    from acbench.analysis.bdrate import pooled_compare

    out = pooled_compare(_seed_pairs([0.9, 0.9, 0.9]), bootstrap=200).set_index("component")
    for comp in COMPONENTS:
        r = out.loc[comp]
        assert r["bd"] == pytest.approx(-10, abs=1e-6) and r["same_lam"] == pytest.approx(-10, abs=1e-9)
        assert r["bd_low"] == pytest.approx(-10, abs=1e-6) and r["bd_high"] == pytest.approx(-10, abs=1e-6)
        assert r["seed_bd"] == pytest.approx([-10, -10, -10], abs=1e-6) and r["n_seeds"] == 3


def test_pooled_interval_carries_the_seed_spread():
    """Seeds that disagree (−10, −5, 0 %) widen the interval; images alone would not."""
    from acbench.analysis.bdrate import pooled_compare

    pairs = _seed_pairs([0.9, 0.95, 1.0])
    r = pooled_compare(pairs, bootstrap=500).set_index("component").loc["total"]
    assert r["seed_bd"] == pytest.approx([-10, -5, 0], abs=1e-6)
    assert r["same_lam"] == pytest.approx(-5, abs=1e-9)
    assert -10 <= r["bd_low"] < -5 < r["bd_high"] <= 0 and r["bd_high"] - r["bd_low"] > 4
    one = pooled_compare(pairs[1:2], bootstrap=500).set_index("component").loc["total"]
    assert one["bd_high"] - one["bd_low"] < 1e-6  # one seed, a uniform saving: no spread at all


def test_pooled_compare_restricted_to_images():
    from acbench.analysis.bdrate import pooled_compare

    pairs = _seed_pairs([0.9])
    out = pooled_compare(pairs, images=[1, 3, 5, 7, 9]).set_index("component")
    assert out.loc["total", "n_images"] == 5 and out.loc["total", "bd"] == pytest.approx(-10, abs=1e-6)
