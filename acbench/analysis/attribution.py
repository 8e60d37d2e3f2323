"""Where a saving comes from: training budget, capacity, or the neighbour's content.

"vs baseline" alone misleads (``DESIGN.md``, "Fair anchors and controls"): an under-trained
baseline and extra layers both look like conditioning gains. Each conditional curve (its
``chain`` evaluation) is therefore compared with four references, per component, with a
bootstrap interval over eval images:

- ``baseline``: the paper-style unconditioned codec (``anchor_curve``, each image alone);
- ``matched``: the step-matched unconditioned anchor (``matched_curve``, same training budget);
- ``control``: the same architecture with the ``zero`` mixer (``control_curve``, eval chain);
- ``content``: the same model with shuffled references (eval ``shuffled``): the content gain.

A reference that is missing is named ("no step-matched anchor", "zero control failed: ..."),
never replaced by another one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from acbench.analysis.bdrate import COMPONENTS, _compare, clean_rows, paired_rate_change
from acbench.schema import DESCRIPTIVE

COMPARISONS = ("baseline", "matched", "control", "content")
TITLES = {
    "baseline": "vs baseline",
    "matched": "vs step-matched",
    "control": "vs zero control",
    "content": "content gain",
}
NAMES = {
    "baseline": "baseline",
    "matched": "step-matched anchor",
    "control": "zero control",
    "content": "shuffled-reference evaluation",
}
# What separates consecutive references: baseline → matched → control → shuffled → true.
PARTS = (
    ("training budget", " (step-matched anchor)"),
    ("capacity", " (zero-mixer control)"),
    ("a random reference rather than none", ""),
    ("the neighbour's content", " (shuffled references)"),
)
MAX_REASON = 80
IS_CONTROL = "is the zero control"
# Columns of paired_rate_change kept as paired_<name>: the same-λ comparison beside the BD-rate.
PAIRED = ("change", "d_psnr", "max_abs_d_psnr", "ci_low", "ci_high", "significant", "reason")


def _text(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def _short(reason: str) -> str:
    reason = reason.splitlines()[0] if reason else ""
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def _failures(rows: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """Failed runs per curve: (how many λ failed, the first reason in λ order)."""
    if "error" not in rows or "curve" not in rows:
        return {}
    err = rows["error"].astype(object).where(rows["error"].notna(), "").astype(str).str.strip()
    bad = rows.loc[err != "", ["curve", "lam"]].assign(error=err[err != ""])
    out: dict[str, tuple[int, str]] = {}
    for curve, g in bad.groupby("curve", sort=True):
        g = g.sort_values(["lam", "error"], kind="stable")
        out[str(curve)] = (len(g), str(g["error"].iloc[0]))
    return out


def _missing(
    which: str,
    against: str,
    present: bool,
    failures: Mapping[str, tuple[int, str]],
    is_zero: bool,
    recorded: bool,
) -> tuple[str, str]:
    """(why the reference is missing, a note on partial failure); ``""`` when neither."""
    name = NAMES[which]
    failed = failures.get(against) if against else None
    if which == "content":
        return ("" if present else "no shuffled-reference evaluation"), ""
    if not against:
        if which == "control" and is_zero:
            return IS_CONTROL, ""
        if not recorded:
            return f"no {name} (rows predate controls)", ""
        return f"no {name}", ""
    if not present:
        if failed:
            return f"{name} failed: {_short(failed[1])}", ""
        return f"no {name} (no rows for {against})", ""
    if failed:
        return "", f"{name} failed at {failed[0]} λ ({_short(failed[1])}); BD-rate on the rest"
    return "", ""


def _size(g: pd.DataFrame | None, col: str) -> float:
    if g is None or col not in g:
        return float("nan")
    v = pd.to_numeric(g[col], errors="coerce").max()
    return float(v)


def attribution_table(
    rows: pd.DataFrame,
    rate: str = "bpp_real",
    bootstrap: int = 0,
    seed: int = 0,
    curves: Iterable[str] | None = None,
    images: str = "conditioned",
) -> pd.DataFrame:
    """BD-rate of every conditional curve against each of its four references.

    By default on the conditioned images only (chain position >= 2, the reference on the same
    images): the first image of each chain is coded by the same baseline in the curve, its zero
    control and its shuffled evaluation, but by the better-trained model in the step-matched
    anchor, so on all images "vs step-matched" would charge the conditional model for its
    first images.

    Args:
        rows: Long rows, failed runs included (they name a failed reference).
        rate: ``"bpp_real"`` or ``"bpp_est"``.
        bootstrap: Image resamples for 95 % intervals (0 = none); resampled jointly for both
            curves of a comparison (paired), with the same seed for every comparison.
        seed: Seed of the resampling.
        curves: Only these conditional curves (all when ``None``); the references may be any
            curve of ``rows``.
        images: ``"conditioned"`` (chain position >= 2) or ``"all"`` eval images.

    Returns:
        One row per (curve, comparison, component), comparisons in :data:`COMPARISONS` order:
        ``curve``, ``comparison``, ``against`` (the reference's curve id, ``""`` when none),
        ``eval_against``, the descriptive columns of the curve, ``against_steps``,
        ``against_params``, ``missing`` (which reference is missing and why; ``""`` when
        present), ``note`` (a reference that failed at some λ), then the columns of
        :func:`~acbench.analysis.bdrate.bd_between` (always with ``ci_low``, ``ci_high``,
        ``significant`` and ``reason_ci``; NaN / False / ``""`` without a bootstrap), and the
        same-λ comparison of :func:`~acbench.analysis.bdrate.paired_rate_change` as
        ``paired_change``, ``paired_d_psnr``, ``paired_max_abs_d_psnr``, ``paired_ci_low``,
        ``paired_ci_high``, ``paired_significant`` and ``paired_reason``.
    """
    if images not in ("conditioned", "all"):
        raise ValueError(f"images must be 'conditioned' or 'all', not {images!r}")
    clean = clean_rows(rows)
    cols = ["curve", "comparison", "against", "component", "bd_pchip", "missing", "note"]

    def pick(df: pd.DataFrame, ev: str) -> pd.DataFrame:
        if images == "all" or ev == "alone" or "position" not in df:
            return df
        return df[df["position"] >= 2]

    if clean.empty or "kind" not in clean or "eval" not in clean:
        return pd.DataFrame(columns=cols)
    failures = _failures(rows)
    groups = dict(tuple(clean.groupby(["curve", "eval"], sort=False)))
    cond = clean[(clean["kind"] == "conditional") & (clean["eval"] == "chain")]
    ids = sorted(cond["curve"].astype(str).unique())
    if curves is not None:
        wanted = {str(c) for c in curves}
        ids = [c for c in ids if c in wanted]
    frames = []
    for curve in ids:
        g = pick(groups[(curve, "chain")], "chain")
        desc: dict[str, object] = {}
        for col in DESCRIPTIVE:
            if col in g:
                s = g[col].dropna()
                first = s.iloc[0] if len(s) else np.nan
                desc[col] = g[col].max() if col in ("n_eval", "params", "steps") else first
        is_zero = str(desc.get("mixer", "")) == "zero"
        refs = {
            "baseline": (_text(g["anchor_curve"].iloc[0]), "alone", True),
            "matched": (_link(g, "matched_curve"), "alone", "matched_curve" in g),
            "control": (_link(g, "control_curve"), "chain", "control_curve" in g),
            "content": (curve, "shuffled", True),
        }
        for which in COMPARISONS:
            against, ev, recorded = refs[which]
            a = groups.get((against, ev)) if against else None
            missing, note = _missing(which, against, a is not None, failures, is_zero, recorded)
            if g.empty and not missing:
                missing = "no conditioned images (chain position >= 2)"
            ref = pick(a, ev) if a is not None and not missing else g.iloc[:0]
            comps = list(COMPONENTS)
            bd = _compare(
                ref, g, rate, comps, bootstrap, seed, ("n/a: " + missing) if missing else "", light=True
            )
            if images == "conditioned" and "reason_ci" in bd:
                bd["reason_ci"] = bd["reason_ci"].str.replace(
                    "too few eval images", "too few conditioned eval images"
                )
                bd["reason"] = bd["reason"].str.replace(
                    "too few eval images", "too few conditioned eval images"
                )
            if "ci_low" not in bd:
                bd["ci_low"] = bd["ci_high"] = np.nan
                bd["significant"] = False
                bd["reason_ci"] = ""
            pair = paired_rate_change(ref, g, rate, comps, bootstrap, seed)
            bd = bd.assign(**{f"paired_{c}": pair[c].to_numpy() for c in PAIRED})
            head = {
                "curve": curve,
                "comparison": which,
                "against": against,
                "eval_against": ev,
                **desc,
                "against_steps": _size(a, "steps"),
                "against_params": _size(a, "params"),
                "images": images,
                "missing": missing,
                "note": note,
            }
            frames.append(pd.concat([pd.DataFrame([head] * len(bd)), bd], axis=1))
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)


def _link(g: pd.DataFrame, col: str) -> str:
    if col not in g:
        return ""
    vals = sorted({_text(v) for v in g[col]} - {""})
    return vals[0] if vals else ""


def decompose(values: Mapping[str, float]) -> list[tuple[str, float]]:
    """Split a BD-rate into parts, as differences of BD-rates (approximate).

    With T, M, Z, C the BD-rates vs baseline, step-matched anchor, zero control and shuffled
    references: training budget T − M, capacity M − Z, a random reference rather than none
    Z − C, the neighbour's content C. A missing reference merges the parts on either side of
    it; a missing T starts the split at the first reference there is. BD-rates compose
    multiplicatively and over different PSNR ranges, so the parts add up only approximately.

    Args:
        values: BD-rate (percent) per comparison name; NaN or absent = missing.

    Returns:
        ``[(part, percent), ...]`` in the order above (they sum to the first figure there
        is); empty when there is none.
    """

    def ok(k: str) -> bool:
        v = values.get(k, float("nan"))
        return v is not None and not math.isnan(float(v))

    levels = [(i, float(values[k])) for i, k in enumerate(COMPARISONS) if ok(k)]
    if not levels:
        return []
    levels.append((len(COMPARISONS), 0.0))
    out = []
    for (i, a), (j, b) in zip(levels[:-1], levels[1:], strict=True):
        label = PARTS[i][0] + PARTS[i][1] if j == i + 1 else " + ".join(p[0] for p in PARTS[i:j])
        out.append((label, a - b))
    return out


def _pp(v: float) -> str:
    return f"{round(v, 2) + 0.0:+.2f} %"


def attribution_sentence(table: pd.DataFrame, component: str = "total") -> str:
    """One sentence splitting the saving of one curve (rows of one curve).

    Args:
        table: Rows of :func:`attribution_table` for one curve.
        component: Component to split.

    Returns:
        Markdown text, e.g. "Attribution (total; approximate: ...): of the -6.10 % vs the
        baseline, -4.90 % training budget (step-matched anchor), ..."; references without a
        figure are listed, and the split starts at the first reference with a figure.
    """
    t = table[table["component"] == component].set_index("comparison")
    values = {k: float(t.loc[k, "bd_pchip"]) for k in COMPARISONS if k in t.index}
    if "control" in t.index and t.loc["control", "missing"] == IS_CONTROL:
        values["control"] = 0.0  # a zero-mixer curve against itself
    parts = decompose(values)

    def why(k: str) -> str:
        if k not in t.index:
            return f"{NAMES[k]}: not computed"
        r = t.loc[k]
        if _text(r["missing"]):
            return _text(r["missing"])
        return f"{NAMES[k]}: " + re.sub(r"^n/a:\s*", "", _text(r["reason_pchip"]) or "n/a")

    gaps = [k for k in COMPARISONS if k not in values or math.isnan(values[k])]
    if not parts:
        reasons = "; ".join(why(k) for k in COMPARISONS)
        return f"No attribution ({component}): no BD-rate against any reference ({reasons})."
    start = next(k for k in COMPARISONS if k not in gaps)
    body = ", ".join(f"{_pp(v)} {label}" for label, v in parts)
    text = (
        f"Attribution ({component}; approximate: differences of BD-rates, which do not add "
        f"exactly, no intervals): of the {_pp(values[start])} vs the {NAMES[start]}, {body}."
    )
    if gaps:
        text += " Not separated for lack of a figure: " + "; ".join(why(k) for k in gaps) + "."
    return text


def seed_spread(table: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Spread across seeds of curves that differ only by ``seed``.

    Curves are grouped by their descriptive columns other than ``seed``; a group counts when it
    holds at least two seeds and exactly one curve per seed (otherwise the curves differ by
    something the rows do not name and the group is skipped).

    Args:
        table: :func:`attribution_table` rows.
        keys: Grouping columns (default: dataset, tile, codec, ordering, structure, mixer, sites,
            chain, steps, those present).

    Returns:
        One row per (group, comparison, component): the keys, ``comparison``, ``component``,
        ``n_seeds``, ``n`` (seeds with a figure), ``mean``, ``sd`` (ddof 1), ``min``, ``max``.
    """
    default = ("dataset", "tile", "codec", "ordering", "structure", "mixer", "sites", "chain", "steps")
    keys = [k for k in (keys or default) if k in table]
    cols = [*keys, "comparison", "component", "n_seeds", "n", "mean", "sd", "min", "max"]
    if table.empty or "seed" not in table:
        return pd.DataFrame(columns=cols)
    out = []
    for key, g in table.groupby(keys, sort=True, dropna=False):
        per_seed = g.groupby("seed")["curve"].nunique()
        if len(per_seed) < 2 or (per_seed != 1).any():
            continue
        for (which, comp), h in g.groupby(["comparison", "component"], sort=False):
            v = h["bd_pchip"].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            rec = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
            rec.update(
                comparison=which,
                component=comp,
                n_seeds=len(per_seed),
                n=v.size,
                mean=v.mean() if v.size else np.nan,
                sd=v.std(ddof=1) if v.size > 1 else np.nan,
                min=v.min() if v.size else np.nan,
                max=v.max() if v.size else np.nan,
            )
            out.append(rec)
    return pd.DataFrame(out, columns=cols)


def zero_labels(rows: pd.DataFrame) -> dict[str, str]:
    """Display name of each zero-mixer control's mixer: ``"zero (film)"``.

    Zero controls of different mixers all have mixer ``zero`` in the rows; the curves whose
    ``control_curve`` they are tell them apart.

    Args:
        rows: Long rows (clean).

    Returns:
        ``{control curve id: label}``.
    """
    if "control_curve" not in rows or "kind" not in rows:
        return {}
    cond = rows[(rows["kind"] == "conditional") & (rows["control_curve"] != "")]
    out: dict[str, str] = {}
    for c, g in cond[["control_curve", "mixer"]].drop_duplicates().groupby("control_curve"):
        out[str(c)] = "zero (" + ", ".join(sorted(g["mixer"].astype(str))) + ")"
    return out
