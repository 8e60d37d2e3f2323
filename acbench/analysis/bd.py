"""Bjøntegaard delta rate of two RD curves: the numerics (no rows, no tables).

Point estimates use the ``bjontegaard`` package (PCHIP, the video-coding standard, and Akima as a
robustness check); :func:`_bd_pchip_batch` is an equivalent vectorised PCHIP, so that 1000
bootstrap resamples take milliseconds. A curve pair that cannot give a trustworthy number gives
``nan`` and a reason instead. The long-row tables built on it are :mod:`acbench.analysis.bdrate`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

MIN_POINTS = 4
MIN_OVERLAP = 0.5
METHODS = ("pchip", "akima")


class BD(NamedTuple):
    """A BD-rate in percent (negative = saving), or ``nan`` with the reason why not."""

    value: float
    reason: str = ""

    @property
    def ok(self) -> bool:
        """Whether the figure is a number."""
        return not math.isnan(self.value)


def multiset_bits(n: int) -> float:
    """Bits per image that any order-agnostic coder of ``n`` images could save: log2(n!)/n."""
    if n <= 1:
        return 0.0
    return math.lgamma(n + 1) / math.log(2) / n


def multiset_bpp(n: int, pixels: int) -> float:
    """:func:`multiset_bits` in bits per pixel of images of ``pixels`` pixels."""
    return multiset_bits(n) / pixels


def _check(rate_a: np.ndarray, psnr_a: np.ndarray, rate_t: np.ndarray, psnr_t: np.ndarray) -> str:
    n = min(len(rate_a), len(rate_t))
    if n < MIN_POINTS:
        return f"n/a: needs >= {MIN_POINTS} points (got {n})"
    for r, p in ((rate_a, psnr_a), (rate_t, psnr_t)):
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(p)) and np.all(r > 0)):
            return "n/a: non-finite or non-positive rates"
        if np.any(np.diff(r) <= 0) or np.any(np.diff(p) <= 0):
            return "n/a: rates not increasing with PSNR"
    lo, hi = max(psnr_a[0], psnr_t[0]), min(psnr_a[-1], psnr_t[-1])
    smaller = min(psnr_a[-1] - psnr_a[0], psnr_t[-1] - psnr_t[0])
    overlap = max(hi - lo, 0.0) / smaller
    if overlap < MIN_OVERLAP:
        return f"n/a: PSNR ranges overlap {overlap:.0%} < {MIN_OVERLAP:.0%}"
    return ""


def _sorted(rate: Sequence[float], psnr: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r, p = np.asarray(rate, dtype=float), np.asarray(psnr, dtype=float)
    if len(r) != len(p):
        raise ValueError(f"{len(r)} rates but {len(p)} PSNR values")
    i = np.argsort(r, kind="stable")
    return r[i], p[i]


def bd_rate(
    rate_anchor: Sequence[float],
    psnr_anchor: Sequence[float],
    rate_test: Sequence[float],
    psnr_test: Sequence[float],
    method: str = "pchip",
) -> BD:
    """Bjøntegaard delta rate of a test curve against an anchor curve.

    Args:
        rate_anchor: Anchor rates (bpp), any order.
        psnr_anchor: Anchor PSNR (dB), same order as ``rate_anchor``.
        rate_test: Test rates (bpp).
        psnr_test: Test PSNR (dB).
        method: ``"pchip"`` or ``"akima"`` interpolation of log-rate over PSNR.

    Returns:
        The average rate difference in percent over the common PSNR interval (negative =
        saving), or ``nan`` with a reason when either curve has fewer than ``MIN_POINTS``
        points, is not monotone, or the PSNR ranges overlap less than ``MIN_OVERLAP`` of the
        smaller range.
    """
    if method not in METHODS:
        raise ValueError(f"unknown BD method {method!r}; use one of {', '.join(METHODS)}")
    ra, pa = _sorted(rate_anchor, psnr_anchor)
    rt, pt = _sorted(rate_test, psnr_test)
    reason = _check(ra, pa, rt, pt)
    if reason:
        return BD(float("nan"), reason)
    import bjontegaard

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = bjontegaard.bd_rate(
            ra, pa, rt, pt, method=method, require_matching_points=False, min_overlap=0.0
        )
    return BD(float(value), "")


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """PCHIP derivatives at the points, as SciPy's ``PchipInterpolator``; rows are curves."""
    h = np.diff(x, axis=-1)
    m = np.diff(y, axis=-1) / h
    d = np.zeros_like(y)
    if x.shape[-1] == 2:
        d[..., 0] = d[..., 1] = m[..., 0]
        return d
    w1 = 2 * h[..., 1:] + h[..., :-1]
    w2 = h[..., 1:] + 2 * h[..., :-1]
    m0, m1 = m[..., :-1], m[..., 1:]
    same = (np.sign(m0) * np.sign(m1)) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harm = (w1 + w2) / (w1 / m0 + w2 / m1)
    d[..., 1:-1] = np.where(same, harm, 0.0)

    def edge(h0: np.ndarray, h1: np.ndarray, m0: np.ndarray, m1: np.ndarray) -> np.ndarray:
        e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        e = np.where(np.sign(e) != np.sign(m0), 0.0, e)
        flip = (np.sign(m0) != np.sign(m1)) & (np.abs(e) > 3 * np.abs(m0))
        return np.where(flip, 3 * m0, e)

    d[..., 0] = edge(h[..., 0], h[..., 1], m[..., 0], m[..., 1])
    d[..., -1] = edge(h[..., -1], h[..., -2], m[..., -1], m[..., -2])
    return d


def _pchip_integral(x: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """∫_lo^hi of the PCHIP interpolant through each row of (x, y); lo, hi within the range."""
    d = _pchip_slopes(x, y)
    h = np.diff(x, axis=-1)
    m = np.diff(y, axis=-1) / h
    c0, c1 = y[..., :-1], d[..., :-1]
    c2 = (3 * m - 2 * d[..., :-1] - d[..., 1:]) / h
    c3 = (d[..., :-1] + d[..., 1:] - 2 * m) / h**2

    def prim(t: np.ndarray, k: np.ndarray) -> np.ndarray:
        pick = lambda c: np.take_along_axis(c, k[..., None], axis=-1)[..., 0]  # noqa: E731
        a, b, c, e = pick(c0), pick(c1), pick(c2), pick(c3)
        return t * (a + t * (b / 2 + t * (c / 3 + t * e / 4)))

    seg = h * (c0 + h * (c1 / 2 + h * (c2 / 3 + h * c3 / 4)))
    cum = np.concatenate([np.zeros(seg.shape[:-1] + (1,)), np.cumsum(seg, axis=-1)], axis=-1)

    def antider(v: np.ndarray) -> np.ndarray:
        k = np.clip((x[..., 1:-1] <= v[..., None]).sum(-1), 0, h.shape[-1] - 1)
        xk = np.take_along_axis(x, k[..., None], axis=-1)[..., 0]
        ck = np.take_along_axis(cum, k[..., None], axis=-1)[..., 0]
        return ck + prim(v - xk, k)

    return antider(hi) - antider(lo)


def _bd_pchip_batch(ra: np.ndarray, pa: np.ndarray, rt: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Vectorised PCHIP BD-rate of rows of curves ``[B, n]``; ``nan`` where _check would fail."""

    def order(r: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.argsort(r, axis=-1, kind="stable")
        return np.take_along_axis(r, i, -1), np.take_along_axis(p, i, -1)

    ra, pa = order(ra, pa)
    rt, pt = order(rt, pt)
    ok = np.ones(ra.shape[0], dtype=bool)
    for r, p in ((ra, pa), (rt, pt)):
        ok &= np.all(r > 0, -1) & np.all(np.diff(r, axis=-1) > 0, -1)
        ok &= np.all(np.diff(p, axis=-1) > 0, -1)
    lo = np.maximum(pa[:, 0], pt[:, 0])
    hi = np.minimum(pa[:, -1], pt[:, -1])
    smaller = np.minimum(pa[:, -1] - pa[:, 0], pt[:, -1] - pt[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        ok &= np.maximum(hi - lo, 0) / smaller >= MIN_OVERLAP
    out = np.full(ra.shape[0], np.nan)
    if not ok.any():
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        ia = _pchip_integral(pa[ok], np.log10(ra[ok]), lo[ok], hi[ok])
        it = _pchip_integral(pt[ok], np.log10(rt[ok]), lo[ok], hi[ok])
    out[ok] = (10 ** ((it - ia) / (hi[ok] - lo[ok])) - 1) * 100
    return out
