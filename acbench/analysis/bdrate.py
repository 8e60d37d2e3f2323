"""BD-rate of conditioned curves against their anchors, per component, with bootstrap intervals.

Every figure is derived from the long rows (``docs/architecture.md``); the BD-rate of two curves
itself (PCHIP and Akima, the vectorised PCHIP of the bootstrap, the reasons for "n/a") is
:mod:`acbench.analysis.bd`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from acbench.analysis.bd import (  # noqa: F401 - the numerics, importable from here as before
    BD,
    METHODS,
    MIN_OVERLAP,
    MIN_POINTS,
    _bd_pchip_batch,
    _check,
    _sorted,
    bd_rate,
    multiset_bits,
    multiset_bpp,
)
from acbench.schema import DESCRIPTIVE

MIN_BOOTSTRAP_IMAGES = 5
COMPONENTS = ("total", "y", "z")
EVAL_ORDER = ("alone", "chain", "full", "shuffled")


def clean_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of runs that did not fail, with empty label strings (read back as NaN) restored."""
    rows = rows.copy()
    for col in ("sites", "variant", "ordering", "mixer", "error", "eval", "matched_curve", "control_curve"):
        if col in rows:
            rows[col] = rows[col].astype(object).where(rows[col].notna(), "").astype(str)
    if "error" in rows:
        rows = rows[rows["error"].str.strip() == ""]
    # rows from before the structure option (and baselines) are chains
    structure = rows["structure"] if "structure" in rows else pd.Series("", index=rows.index)
    rows["structure"] = structure.astype(object).where(structure.notna() & (structure != ""), "chain")
    return rows


def _select(rows: pd.DataFrame, curve: str, eval_: str | None) -> pd.DataFrame:
    sel = rows["curve"] == curve
    if eval_ is not None and "eval" in rows:
        sel &= rows["eval"] == eval_
    return rows[sel]


def curve_points(
    rows: pd.DataFrame,
    component: str,
    images: Iterable[int] | None = None,
    rate: str = "bpp_real",
) -> pd.DataFrame:
    """Mean rate and mean PSNR over images, per λ, of one curve's rows.

    Args:
        rows: Long rows of one curve and one eval variant.
        component: ``"total"``, ``"y"`` or ``"z"``.
        images: Restrict to these eval images (all when ``None``).
        rate: ``"bpp_real"`` (entropy-coded bytes) or ``"bpp_est"`` (−log2 likelihoods).

    Returns:
        Columns ``lam``, ``bpp``, ``psnr``, sorted by λ.
    """
    for col in ("curve", "eval"):
        if col in rows and rows[col].nunique() > 1:
            raise ValueError(f"curve_points wants one curve and eval variant; got several {col}s")
    sel = rows[rows["component"] == component]
    if images is not None:
        sel = sel[sel["image"].isin(list(images))]
    out = sel.groupby("lam", sort=True).agg(bpp=(rate, "mean"), psnr=("psnr", "mean"))
    return out.reset_index()


class _Matrices(NamedTuple):
    lams_a: np.ndarray
    lams_t: np.ndarray
    images: np.ndarray
    rate_a: np.ndarray  # [component, λ_a, image]
    psnr_a: np.ndarray  # [λ_a, image]
    rate_t: np.ndarray
    psnr_t: np.ndarray


def _grid(
    side: pd.DataFrame, comps: Sequence[str], rate: str, imgs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(λ, rate [component, λ, image], psnr [λ, image]); NaN where an image lacks a λ.

    Duplicate rows of one cell are averaged (NaN values skipped), as a pandas group mean.
    """
    side = side[side["component"].isin(comps) & side["image"].isin(imgs)]
    lam = side["lam"].to_numpy(dtype=float)
    lams = np.unique(lam)
    shape = (len(comps), lams.size, imgs.size)
    ci = pd.Index(list(comps)).get_indexer(side["component"])
    flat = np.ravel_multi_index(
        (ci, np.searchsorted(lams, lam), np.searchsorted(imgs, side["image"].to_numpy())), shape
    )
    size = int(np.prod(shape))

    def mean(values: np.ndarray) -> np.ndarray:
        ok = np.isfinite(values)
        tot = np.bincount(flat, weights=np.where(ok, values, 0.0), minlength=size)
        n = np.bincount(flat, weights=ok.astype(float), minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, tot / np.maximum(n, 1), np.nan).reshape(shape)

    r = mean(side[rate].to_numpy(dtype=float))
    p = mean(side["psnr"].to_numpy(dtype=float))[0]
    return lams, r, p


def _complete(
    grid: tuple[np.ndarray, np.ndarray, np.ndarray], cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid on image columns ``cols``, keeping the λ that every one of them has."""
    lams, r, p = grid
    r, p = r[:, :, cols], p[:, cols]
    full = np.isfinite(r).all(axis=(0, 2)) & np.isfinite(p).all(axis=1)
    return lams[full], r[:, full], p[full]


def _matrices(
    anchor: pd.DataFrame, test: pd.DataFrame, components: Sequence[str], rate: str
) -> Callable[[Iterable[int] | None], _Matrices]:
    """Grids of both curves on their common images; call with a subset of images (or None)."""
    imgs = np.array(sorted(set(anchor["image"]) & set(test["image"])))
    ga, gt = _grid(anchor, components, rate, imgs), _grid(test, components, rate, imgs)

    def on(images: Iterable[int] | None = None) -> _Matrices:
        cols = np.arange(imgs.size) if images is None else np.flatnonzero(np.isin(imgs, list(images)))
        (la, ra, pa), (lt, rt, pt) = _complete(ga, cols), _complete(gt, cols)
        return _Matrices(la, lt, imgs[cols], ra, pa, rt, pt)

    return on


def _figures(
    m: _Matrices, components: Sequence[str], methods: Sequence[str] = METHODS
) -> dict[str, list[BD]]:
    out: dict[str, list[BD]] = {}
    for method in methods:
        out[method] = []
        for ci in range(len(components)):
            if m.images.size == 0:
                out[method].append(BD(float("nan"), "n/a: no common eval images"))
                continue
            out[method].append(
                bd_rate(
                    m.rate_a[ci].mean(-1),
                    m.psnr_a.mean(-1),
                    m.rate_t[ci].mean(-1),
                    m.psnr_t.mean(-1),
                    method,
                )
            )
    return out


def _resample_weights(n: int, k: int, seed: int) -> np.ndarray:
    """``[n, k]`` weights of ``n`` resamples (with replacement) of ``k`` images; rows sum to 1."""
    idx = np.random.default_rng(seed).integers(0, k, size=(n, k))
    return np.bincount((idx + (np.arange(n) * k)[:, None]).ravel(), minlength=n * k).reshape(n, k) / k


def _bootstrap(
    m: _Matrices, todo: Sequence[bool], n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample images with replacement; ``(low, high, valid fraction)`` per component to do."""
    w = _resample_weights(n, m.images.size, seed)
    pa, pt = w @ m.psnr_a.T, w @ m.psnr_t.T
    low, high, valid = (np.full(len(todo), np.nan) for _ in range(3))
    for ci in np.flatnonzero(todo):
        vals = _bd_pchip_batch(w @ m.rate_a[ci].T, pa, w @ m.rate_t[ci].T, pt)
        good = vals[np.isfinite(vals)]
        valid[ci] = good.size / n
        if good.size:
            low[ci], high[ci] = np.percentile(good, [2.5, 97.5])
    return low, high, valid


def bd_between(
    rows: pd.DataFrame,
    test_curve: str,
    anchor_curve: str,
    eval_test: str = "chain",
    eval_anchor: str = "alone",
    rate: str = "bpp_real",
    components: Sequence[str] = COMPONENTS,
    bootstrap: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """BD-rate of any curve against any other, per component, on their common eval images.

    Serves the baseline comparison (:func:`bd_table`) and the controls: a step-matched anchor, a
    ``zero``-mixer curve, or the same curve with shuffled references (``eval_anchor="shuffled"``).

    Args:
        rows: Long rows (failed runs are ignored).
        test_curve: ``curve`` id of the test.
        anchor_curve: ``curve`` id of the anchor.
        eval_test: Eval variant of the test rows.
        eval_anchor: Eval variant of the anchor rows.
        rate: ``"bpp_real"`` or ``"bpp_est"``.
        components: Components to compare.
        bootstrap: Number of image resamples for a 95 % interval of the PCHIP figure (0 = none).
        seed: Seed of the resampling generator.

    Returns:
        One row per component: ``component``, ``bd_pchip``, ``bd_akima``, ``bd_cond_pchip``
        (test images at chain position >= 2 only, anchor on the same images), ``reason_pchip``,
        ``reason_akima``, ``reason_cond``, ``reason`` (all reasons, ``""`` when none),
        ``n_images``, ``n_cond_images``, ``n_lam``; with ``bootstrap > 0`` also ``ci_low``,
        ``ci_high``, ``significant`` and ``reason_ci``.
    """
    rows = clean_rows(rows)
    anchor = _select(rows, anchor_curve, eval_anchor)
    test = _select(rows, test_curve, eval_test)
    missing = ""
    if anchor.empty:
        missing = f"n/a: no rows for anchor curve {anchor_curve} (eval {eval_anchor})"
    elif test.empty:
        missing = f"n/a: no rows for test curve {test_curve} (eval {eval_test})"
    return _compare(anchor, test, rate, list(components), bootstrap, seed, missing)


def bd_by_position(
    rows: pd.DataFrame,
    test_curve: str,
    anchor_curve: str,
    eval_test: str = "chain",
    rate: str = "bpp_real",
    components: Sequence[str] = COMPONENTS,
) -> pd.DataFrame:
    """PCHIP BD-rate of a chained curve at each chain position, against the anchor on the same images.

    Position 1 is coded by the baseline (≈ 0 by construction when the baseline is frozen);
    positions 2..L show how the saving evolves along the chain (does it grow with the reference's
    own conditioning, or shrink as ŷ drifts?).

    Returns:
        One row per (position, component): ``position``, ``component``, ``bd_pchip``,
        ``reason_pchip``, ``n_images``.
    """
    rows = clean_rows(rows)
    anchor, test = _select(rows, anchor_curve, "alone"), _select(rows, test_curve, eval_test)
    out = []
    if anchor.empty or test.empty or "position" not in test:
        return pd.DataFrame(columns=["position", "component", "bd_pchip", "reason_pchip", "n_images"])
    on = _matrices(anchor, test, list(components), rate)
    for pos, g in test.groupby("position", sort=True):
        m = on(g["image"].unique())
        for comp, bd in zip(components, _figures(m, components, ("pchip",))["pchip"]):
            out.append(
                {
                    "position": int(pos),
                    "component": comp,
                    "bd_pchip": bd.value,
                    "reason_pchip": bd.reason,
                    "n_images": int(m.images.size),
                }
            )
    return pd.DataFrame(out)


def _compare(
    anchor: pd.DataFrame,
    test: pd.DataFrame,
    rate: str,
    comps: list[str],
    bootstrap: int,
    seed: int,
    missing: str = "",
    light: bool = False,
) -> pd.DataFrame:
    """The figures of :func:`bd_between`; ``light``: PCHIP only (no Akima, no cond. only)."""
    nan = float("nan")
    m = None
    n_cond = 0
    if missing:
        figs = {k: [BD(nan, missing)] * len(comps) for k in (*METHODS, "cond")}
    else:
        grids = _matrices(anchor, test, comps, rate)
        m = grids(None)
        figs = _figures(m, comps, methods=("pchip",) if light else METHODS)
        cond_imgs = set(test.loc[test["position"] >= 2, "image"]) if "position" in test else set()
        if light:
            figs["akima"] = figs["cond"] = [BD(nan, "n/a: not computed")] * len(comps)
        elif cond_imgs:
            mc = grids(cond_imgs)
            figs["cond"] = _figures(mc, comps, methods=("pchip",))["pchip"]
            n_cond = mc.images.size
        else:
            figs["cond"] = [BD(nan, "n/a: no conditioned images (position >= 2)")] * len(comps)
    out = pd.DataFrame(
        {
            "component": comps,
            "bd_pchip": [b.value for b in figs["pchip"]],
            "bd_akima": [b.value for b in figs["akima"]],
            "bd_cond_pchip": [b.value for b in figs["cond"]],
            "reason_pchip": [b.reason for b in figs["pchip"]],
            "reason_akima": [b.reason for b in figs["akima"]],
            "reason_cond": [b.reason for b in figs["cond"]],
            "n_images": 0 if m is None else m.images.size,
            "n_cond_images": n_cond,
            "n_lam": 0 if m is None else min(m.lams_a.size, m.lams_t.size),
        }
    )
    if bootstrap > 0:
        low, high = np.full(len(comps), nan), np.full(len(comps), nan)
        k = 0 if m is None else m.images.size
        why = [f"too few eval images for a bootstrap (n={k})"] * len(comps)
        if m is None:
            why = ["no interval: point estimate n/a"] * len(comps)
        if m is not None and k >= MIN_BOOTSTRAP_IMAGES:
            why = [""] * len(comps)
            todo = [b.ok for b in figs["pchip"]]
            low, high, valid = _bootstrap(m, todo, bootstrap, seed)
            for ci in range(len(comps)):
                if not todo[ci]:
                    why[ci] = "no interval: point estimate n/a"
                elif valid[ci] < 0.95:
                    low[ci] = high[ci] = nan
                    why[ci] = f"no interval: {1 - valid[ci]:.0%} of bootstrap resamples n/a"
        out["ci_low"], out["ci_high"] = low, high
        out["significant"] = (out["ci_high"] < 0) | (out["ci_low"] > 0)
        out["reason_ci"] = why
    labels = {
        "reason_pchip": "PCHIP",
        "reason_akima": "Akima",
        "reason_cond": "conditioned-only",
        "reason_ci": "interval",
    }
    if light:
        out = out.drop(columns=["bd_akima", "bd_cond_pchip", "reason_akima", "reason_cond", "n_cond_images"])
    cols = [c for c in labels if c in out]
    out["reason"] = [
        "; ".join(f"{labels[c]} {r}" for c, r in zip(cols, vals, strict=True) if r)
        for vals in zip(*(out[c] for c in cols), strict=True)
    ]
    return out


def _first(s: pd.Series) -> object:
    s = s.dropna()
    return s.iloc[0] if len(s) else np.nan


def bd_table(rows: pd.DataFrame, rate: str = "bpp_real", bootstrap: int = 0, seed: int = 0) -> pd.DataFrame:
    """BD-rate of every conditional curve (and eval variant) against its baseline anchor.

    Args:
        rows: Long rows (failed runs are ignored).
        rate: ``"bpp_real"`` or ``"bpp_est"``.
        bootstrap: Image resamples for 95 % intervals (0 = none); see :func:`bd_between`.
        seed: Seed of the resampling generator (the same for every curve).

    Returns:
        One row per (curve, eval, component): ``curve``, ``anchor_curve``, ``eval``, the
        descriptive columns (dataset, tile, codec, ordering, mixer, sites, chain, seed, steps,
        params, n_eval), the mean of each ``q_*`` column, then the columns of
        :func:`bd_between`. Sorted deterministically.
    """
    rows = clean_rows(rows)
    if rows.empty or "kind" not in rows:
        return pd.DataFrame(columns=["curve", "anchor_curve", "eval", "component"])
    groups = dict(tuple(rows.groupby(["curve", "eval"], sort=False)))
    qcols = sorted(c for c in rows.columns if c.startswith("q_"))
    frames = []
    for (curve, ev), g in sorted(groups.items()):
        if (g["kind"] != "conditional").all():
            continue
        anchor = _first(g["anchor_curve"])
        a = groups.get((anchor, "alone"))
        missing = "" if a is not None else f"n/a: no rows for anchor curve {anchor} (eval alone)"
        bd = _compare(a if a is not None else g.iloc[:0], g, rate, list(COMPONENTS), bootstrap, seed, missing)
        desc: dict[str, object] = {"curve": curve, "anchor_curve": anchor, "eval": ev}
        for col in DESCRIPTIVE:
            if col in g:
                desc[col] = g[col].max() if col in ("n_eval", "params", "steps") else _first(g[col])
        for col in qcols:
            desc[col] = pd.to_numeric(g[col], errors="coerce").mean()
        frames.append(pd.concat([pd.DataFrame([desc] * len(bd)), bd], axis=1))
    if not frames:
        return pd.DataFrame(columns=["curve", "anchor_curve", "eval", "component"])
    out = pd.concat(frames, ignore_index=True)
    labels = ("dataset", "tile", "codec", "ordering", "structure", "mixer", "sites", "chain")
    keys = [c for c in labels if c in out]
    out["_e"] = out["eval"].map(lambda e: EVAL_ORDER.index(e) if e in EVAL_ORDER else len(EVAL_ORDER))
    out["_c"] = out["component"].map(COMPONENTS.index)
    out = out.sort_values([*keys, "_e", "curve", "_c"], kind="stable")
    return out.drop(columns=["_e", "_c"]).reset_index(drop=True)


def paired_rate_change(
    anchor: pd.DataFrame,
    test: pd.DataFrame,
    rate: str = "bpp_real",
    components: Sequence[str] = COMPONENTS,
    bootstrap: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Rate change of ``test`` over ``anchor`` at each shared λ on the same images, averaged over λ.

    BD-rate needs two monotone RD curves that overlap in PSNR; short trainings often give
    neither, and the BD figure is then "n/a". Two evaluations of *one* model (true vs shuffled
    references), or two models of one architecture and budget, can still be compared point by
    point: at each λ, ``100 · (mean rate of test / mean rate of anchor − 1)`` over the common
    images, then the mean over λ. Valid as a saving only while the PSNR hardly moves, so the
    mean and the largest PSNR change come with it (``d_psnr``, ``max_abs_d_psnr``, dB).

    Args:
        anchor: Long rows of the reference (one curve, one eval variant).
        test: Long rows of the test (one curve, one eval variant), the same images.
        rate: ``"bpp_real"`` or ``"bpp_est"``.
        components: Components to compare.
        bootstrap: Image resamples (the same for every λ) for a 95 % interval (0 = none).
        seed: Seed of the resampling generator.

    Returns:
        One row per component: ``component``, ``change`` (%), ``d_psnr``, ``max_abs_d_psnr``,
        ``n_images``, ``n_lam``, ``ci_low``, ``ci_high``, ``significant``, ``reason`` (``""``
        when the figure is a number).
    """
    comps = list(components)
    nan = float("nan")
    out = pd.DataFrame({"component": comps, "change": nan, "d_psnr": nan, "max_abs_d_psnr": nan})
    out["n_images"], out["n_lam"] = 0, 0
    out["ci_low"] = out["ci_high"] = nan
    out["significant"], out["reason"] = False, ""
    if anchor.empty or test.empty:
        out["reason"] = "n/a: no rows to pair"
        return out
    m = _matrices(anchor, test, comps, rate)(None)
    lams = np.intersect1d(m.lams_a, m.lams_t)
    if m.images.size == 0 or lams.size == 0:
        out["reason"] = "n/a: no common images and λ"
        return out
    ia, it = np.searchsorted(m.lams_a, lams), np.searchsorted(m.lams_t, lams)
    ra, rt = m.rate_a[:, ia], m.rate_t[:, it]  # [component, λ, image]
    dp = m.psnr_t[it].mean(-1) - m.psnr_a[ia].mean(-1)
    out["d_psnr"], out["max_abs_d_psnr"] = float(dp.mean()), float(np.abs(dp).max())
    out["n_images"], out["n_lam"] = m.images.size, lams.size
    with np.errstate(invalid="ignore", divide="ignore"):
        out["change"] = 100.0 * (rt.mean(-1) / ra.mean(-1) - 1.0).mean(-1)
    out.loc[~np.isfinite(out["change"]), "reason"] = "n/a: zero anchor rate"
    k = m.images.size
    if bootstrap > 0 and k >= MIN_BOOTSTRAP_IMAGES:
        w = _resample_weights(bootstrap, k, seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = 100.0 * (np.einsum("nk,clk->cnl", w, rt) / np.einsum("nk,clk->cnl", w, ra) - 1.0)
        vals = vals.mean(-1)  # [component, resample]
        ok = np.isfinite(vals).all(axis=1)
        lo, hi = np.full(len(comps), nan), np.full(len(comps), nan)
        lo[ok], hi[ok] = np.percentile(vals[ok], [2.5, 97.5], axis=1)
        out["ci_low"], out["ci_high"] = lo, hi
        out["significant"] = (out["ci_high"] < 0) | (out["ci_low"] > 0)
    return out


def pooled_compare(
    pairs: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
    rate: str = "bpp_real",
    components: Sequence[str] = COMPONENTS,
    bootstrap: int = 0,
    seed: int = 0,
    images: Iterable[int] | None = None,
) -> pd.DataFrame:
    """Test vs anchor pooled over training seeds, with intervals over seeds *and* images.

    ``pairs`` holds one ``(anchor rows, test rows)`` per seed (one curve and eval variant each;
    a shared anchor, such as the baseline, simply repeats). The point figures use the curves
    averaged over seeds and images; the 95 % interval resamples seeds and images together (a
    two-level bootstrap), so it carries the seed spread, not only the choice of images.

    Returns:
        One row per component: ``bd`` (PCHIP BD-rate, %), ``bd_low`` / ``bd_high``, ``bd_reason``;
        ``same_lam`` (rate change at equal λ, mean over λ, %) with ``same_low`` / ``same_high``;
        ``d_psnr`` (dB, test − anchor, mean over λ); ``seed_bd`` (per-seed BD-rates, a list),
        ``n_seeds``, ``n_images``, ``n_lam``.
    """
    comps = list(components)
    empty = pd.DataFrame({"component": comps})
    grids = []
    for a, t in pairs:
        if images is not None:
            keep = set(images)
            a, t = a[a["image"].isin(keep)], t[t["image"].isin(keep)]
        if a.empty or t.empty:
            return empty.assign(bd=np.nan, bd_reason="n/a: no rows to compare", n_seeds=len(pairs))
        grids.append(_matrices(a, t, comps, rate)(None))
    imgs = grids[0].images
    lams = np.intersect1d(grids[0].lams_a, grids[0].lams_t)
    for m in grids[1:]:
        imgs = np.intersect1d(imgs, m.images)
        lams = np.intersect1d(lams, np.intersect1d(m.lams_a, m.lams_t))
    if imgs.size == 0 or lams.size == 0:
        return empty.assign(bd=np.nan, bd_reason="n/a: no common images and λ", n_seeds=len(pairs))

    def take(m: _Matrices) -> tuple[np.ndarray, ...]:
        ia, it = np.searchsorted(m.lams_a, lams), np.searchsorted(m.lams_t, lams)
        ci = np.searchsorted(m.images, imgs)
        return m.rate_a[:, ia][:, :, ci], m.psnr_a[ia][:, ci], m.rate_t[:, it][:, :, ci], m.psnr_t[it][:, ci]

    RA, PA, RT, PT = (np.stack(x) for x in zip(*map(take, grids)))  # [S, C, L, K] / [S, L, K]
    ra, pa, rt, pt = RA.mean((0, 3)), PA.mean((0, 2)), RT.mean((0, 3)), PT.mean((0, 2))
    nan = float("nan")
    out = empty.copy()
    bds = [bd_rate(ra[c], pa, rt[c], pt) for c in range(len(comps))]
    out["bd"] = [b.value for b in bds]
    out["bd_reason"] = [b.reason for b in bds]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["same_lam"] = 100.0 * (rt / ra - 1.0).mean(-1)
    out["d_psnr"] = float((pt - pa).mean())
    out["seed_bd"] = [
        [
            bd_rate(RA[s, c].mean(-1), PA[s].mean(-1), RT[s, c].mean(-1), PT[s].mean(-1)).value
            for s in range(len(grids))
        ]
        for c in range(len(comps))
    ]
    out["n_seeds"], out["n_images"], out["n_lam"] = len(grids), imgs.size, lams.size
    for col in ("bd_low", "bd_high", "same_low", "same_high"):
        out[col] = nan
    if bootstrap > 0 and imgs.size >= MIN_BOOTSTRAP_IMAGES:
        ws = _resample_weights(bootstrap, len(grids), seed)
        wi = _resample_weights(bootstrap, imgs.size, seed + 1)
        pa_b = np.einsum("ns,nk,slk->nl", ws, wi, PA)
        pt_b = np.einsum("ns,nk,slk->nl", ws, wi, PT)
        for c in range(len(comps)):
            ra_b = np.einsum("ns,nk,slk->nl", ws, wi, RA[:, c])
            rt_b = np.einsum("ns,nk,slk->nl", ws, wi, RT[:, c])
            with np.errstate(invalid="ignore", divide="ignore"):
                same = 100.0 * (rt_b / ra_b - 1.0).mean(-1)
            if np.isfinite(same).all():
                out.loc[c, ["same_low", "same_high"]] = np.percentile(same, [2.5, 97.5])
            if bds[c].ok:
                vals = _bd_pchip_batch(ra_b, pa_b, rt_b, pt_b)
                good = vals[np.isfinite(vals)]
                if good.size >= 0.95 * bootstrap:
                    out.loc[c, ["bd_low", "bd_high"]] = np.percentile(good, [2.5, 97.5])
                else:
                    out.loc[c, "bd_reason"] = f"no interval: {1 - good.size / bootstrap:.0%} of resamples n/a"
    return out
