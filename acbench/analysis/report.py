"""The markdown shown (and written) after ``acbench run``: one section per conditional curve.

A pure function of the rows, as the leaderboards (:mod:`acbench.analysis.leaderboard`, whose
cell helpers it shares).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from acbench.analysis.attribution import (
    COMPARISONS,
    IS_CONTROL,
    NAMES,
    TITLES,
    attribution_sentence,
    attribution_table,
)
from acbench.analysis.bdrate import (
    COMPONENTS,
    EVAL_ORDER,
    bd_table,
    clean_rows,
    curve_points,
)
from acbench.analysis.leaderboard import ATTR_LEGEND, SAME_LAM, _attr_cell, _same_lam_cells, _size_cell
from acbench.analysis.markdown import (
    SIG,
    Footnotes,
    _bd,
    _bd_sig,
    _ci,
    _esc,
    _label,
    _multiset_line,
    _num,
    _tile_note,
    finish_page,
    markdown_table,
)


def _eval_key(e: str) -> int:
    return EVAL_ORDER.index(e) if e in EVAL_ORDER else len(EVAL_ORDER)


def _report_attribution(attr: pd.DataFrame, notes: Footnotes, bootstrap: int) -> str:
    """Run-report block for one curve: component × comparison table, models, the sentence."""
    by = attr.set_index(["comparison", "component"])
    cols: dict[str, list[object]] = {"component": list(COMPONENTS)}
    for which in COMPARISONS:
        cols[TITLES[which] + " ↓"] = [_attr_cell(by.loc[(which, c)], notes, bootstrap) for c in COMPONENTS]
    n = int(pd.to_numeric(attr["n_images"], errors="coerce").fillna(0).max())
    head = (
        f"Attribution (eval `chain`, {n} conditioned images, PCHIP"
        + (f"; 95 % bootstrap interval over eval images, {SIG}: excludes 0" if bootstrap else "")
        + "). "
        + ATTR_LEGEND
    )
    first = attr.iloc[0]
    models = [f"this model {_size_cell(first.get('steps'), first.get('params'))}"]
    for which in ("baseline", "matched", "control"):
        r = by.loc[(which, "total")]
        if r["missing"] == IS_CONTROL:
            continue
        if r["missing"]:
            models.append(_esc(str(r["missing"])))
        else:
            size = _size_cell(r["against_steps"], r["against_params"])
            models.append(f"{NAMES[which]} `{r['against']}` {size}")
    lines = [
        head,
        markdown_table(pd.DataFrame(cols), notes),
        "Models (training steps · parameters): " + "; ".join(models) + ".",
        attribution_sentence(attr, "total"),
    ]
    said = []
    for which in SAME_LAM:
        total, yz, dp = _same_lam_cells(by, which, notes, bootstrap)
        said.append(f"{TITLES[which]} {total}" + (f" % (y / z {yz}), ΔPSNR {dp} dB" if dp else ""))
    lines.append(
        "Same λ, same images (no curve fitting; a saving only where ΔPSNR, the largest |Δ| "
        "over λ in brackets, is near 0): " + "; ".join(said) + "."
    )
    return "\n\n".join(lines)


def run_report(
    rows: pd.DataFrame,
    bootstrap: int = 0,
    seed: int = 0,
    rate: str = "bpp_real",
    curves: Sequence[str] | None = None,
) -> str:
    """The markdown shown (and written) after ``acbench run``.

    For each conditional curve in ``rows``: a BD-rate table (rows: total / y / z; columns:
    PCHIP, Akima and conditioned-only PCHIP for each eval variant), tile size, number of eval
    images, the attribution of the saving (vs baseline, vs the step-matched anchor, vs the
    zero-mixer control, content gain; per component, with intervals), training steps and
    parameters of every model compared, a sentence splitting the saving into training budget,
    capacity and the neighbour's content, the log2(N!)/N multiset figure beside the measured
    saving, and the per-λ points (bpp estimated / real, PSNR) of the baseline and the
    conditioned curve. Failed runs last.

    Args:
        rows: Long rows of the conditional curve, its baseline, its step-matched anchor and its
            zero-mixer control (failed runs included; more curves are fine).
        bootstrap: Image resamples for 95 % intervals (0 = none).
        seed: Seed of the resampling.
        rate: Rate column for the BD-rates (``"bpp_real"`` or ``"bpp_est"``).
        curves: Report only these conditional curves (all in ``rows`` when ``None``); the
            other rows still serve as their baselines and controls.

    Returns:
        Markdown text ending with a newline.
    """
    clean = clean_rows(rows)
    table = bd_table(clean, rate=rate, bootstrap=bootstrap, seed=seed)
    if curves is not None:
        table = table[table["curve"].isin([str(c) for c in curves])]
    attr = attribution_table(rows, rate, bootstrap, seed, curves=table["curve"].unique())
    notes = Footnotes()
    parts = ["# acbench run report"]
    if table.empty:
        parts.append("No conditional curve with results: nothing to compare with the baseline.")
    for curve, t in table.groupby("curve", sort=False):
        head = t.iloc[0]
        evals = sorted(t["eval"].unique(), key=_eval_key)
        parts.append(f"## {_label(head)}")
        n_eval, tile = head.get("n_eval", np.nan), head.get("tile", np.nan)
        parts.append(
            f"Curve `{curve}` against baseline `{head['anchor_curve']}`; dataset "
            f"{head.get('dataset', '?')}, {_num(n_eval)} eval images, {_num(head.get('steps'))} "
            f"steps. {_tile_note(tile)}"
        )
        cols: dict[str, list[object]] = {"component": list(COMPONENTS)}
        for ev in evals:
            e = t[t["eval"] == ev].set_index("component").reindex(list(COMPONENTS))
            cols[f"{ev}: PCHIP ↓"] = [_bd_sig(r) for _, r in e.iterrows()]
            cols[f"{ev}: Akima ↓"] = [_bd(r["bd_akima"], r["reason_akima"]) for _, r in e.iterrows()]
            cols[f"{ev}: cond. only ↓"] = [_bd(r["bd_cond_pchip"], r["reason_cond"]) for _, r in e.iterrows()]
            if bootstrap > 0:
                cols[f"{ev}: 95 % CI"] = [_ci(r, notes) for _, r in e.iterrows()]
        parts.append(markdown_table(pd.DataFrame(cols), notes))
        parts.append(
            f'BD-rate in % vs the baseline ({rate}, negative = saving); "cond. only": images at '
            "chain position >= 2."
            + (
                f" {SIG}: 95 % bootstrap interval ({bootstrap} eval-image resamples) excludes 0."
                if bootstrap > 0
                else ""
            )
        )
        mine = attr[attr["curve"] == curve] if "curve" in attr else attr.iloc[:0]
        if not mine.empty:
            parts.append(_report_attribution(mine, notes, bootstrap))
        parts.append(_points_section(clean, str(curve), str(head["anchor_curve"]), evals, rate))
        ms = _multiset_line(n_eval, tile)
        if ms:
            parts.append(ms)
    if curves is not None and "curve" in rows:  # failures of these curves and their references
        keep = {str(c) for c in curves} | ({str(a) for a in attr["against"]} if len(attr) else set())
        rows = rows[rows["curve"].astype(str).isin(keep)]
    return finish_page(parts, rows, notes)


def _points_section(rows: pd.DataFrame, curve: str, anchor: str, evals: Sequence[str], rate: str) -> str:
    def pts(c: str, ev: str) -> pd.DataFrame:
        sel = rows[(rows["curve"] == c) & (rows["eval"] == ev) & (rows["component"] == "total")]
        est = curve_points(sel, "total", rate="bpp_est").rename(columns={"bpp": "est"})
        real = curve_points(sel, "total", rate="bpp_real")[["lam", "bpp"]]
        both = est.merge(real.rename(columns={"bpp": "real"}), on="lam")
        return both[["lam", "est", "real", "psnr"]]

    base = pts(anchor, "alone")
    out = base.rename(
        columns={"est": "baseline bpp est", "real": "baseline bpp real", "psnr": "baseline PSNR"}
    )
    saving = []
    for ev in evals:
        p = pts(curve, ev)
        out = out.merge(
            p.rename(columns={"est": f"{ev} bpp est", "real": f"{ev} bpp real", "psnr": f"{ev} PSNR"}),
            on="lam",
            how="outer",
        )
        d = out["baseline bpp real"] - out[f"{ev} bpp real"]
        if d.notna().any():
            saving.append(f"{ev} {d.mean():.4f} bpp")
    out = out.sort_values("lam").rename(columns={"lam": "λ"})
    text = "Per-λ points (total, mean over eval images):\n\n" + markdown_table(out)
    if saving:
        text += "\n\nMean measured saving (real bits, total): " + ", ".join(saving) + "."
    return text
