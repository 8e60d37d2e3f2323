"""Markdown from long rows: the report after ``acbench run`` and the per-dataset leaderboards.

Everything here is a pure function of the rows (plus the command that regenerates it), so the
same rows always give byte-identical markdown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from acbench.analysis.answer import (
    ablation_answer,
    answer_block,
    contrast_markdown,
    contrast_rows,
    seed_groups,
    unconverged,
)
from acbench.analysis.attribution import (
    COMPARISONS,
    NAMES,
    TITLES,
    attribution_table,
    seed_spread,
    zero_labels,
)
from acbench.analysis.bdrate import (
    BD,
    COMPONENTS,
    bd_by_position,
    bd_table,
    clean_rows,
)
from acbench.analysis.markdown import (  # noqa: F401  (re-exported: the page helpers)
    HEADER,
    HYPER_MIN_TILE,
    HYPER_STRIDE,
    SIG,
    Footnotes,
    _bd,
    _bd_sig,
    _cell,
    _ci,
    _esc,
    _failed,
    _failed_section,
    _first,
    _label,
    _multiset_line,
    _num,
    _pct,
    _tile_note,
    finish_page,
    markdown_table,
)
from acbench.registry import MIXERS


def _aligns(mixer: object) -> bool:
    """Whether a mixer matches each position with other positions of the reference before mixing
    (its registry tag ``aligns``, read without importing the plugin)."""
    name = str(mixer)
    return name in MIXERS and "aligns" in (MIXERS.declared_tags(name) or ())


def _mark_aligned(recs: list[dict[str, object]]) -> list[dict[str, object]]:
    """An ``aligned`` column after ``mixer`` (yes / no), on pages that hold an aligning mixer;
    pages without one keep their layout."""
    if not any(_aligns(r.get("mixer")) for r in recs):
        return recs
    out = []
    for r in recs:
        new: dict[str, object] = {}
        for k, v in r.items():
            new[k] = v
            if k == "mixer":
                new["aligned"] = "yes" if _aligns(v) else "no"
        out.append(new)
    return out


def _r2(v: float) -> str:
    return f"{round(float(v), 2) + 0.0:.2f}"


def _attr_cell(r: pd.Series, notes: Footnotes, bootstrap: int, ci: bool = True, unit: bool = True) -> str:
    """One attribution figure: "-2.26 %* [-3.51, -0.94]", "n/a[^k]", or the missing reference."""
    if r["missing"]:
        return _esc(str(r["missing"]))
    if math.isnan(r["bd_pchip"]):
        text = "n/a" + notes.ref(str(r["reason_pchip"]) or "not available")
    else:
        text = _r2(r["bd_pchip"]) + (" %" if unit else "") + (SIG if bool(r["significant"]) else "")
        if bootstrap > 0 and ci:
            if math.isnan(r["ci_low"]):
                text += " (no CI" + notes.ref(str(r["reason_ci"]) or "no interval") + ")"
            else:
                text += f" [{_r2(r['ci_low'])}, {_r2(r['ci_high'])}]"
    if r["note"]:
        text += notes.ref(str(r["note"]))
    return text


def _same_lam_cells(by: pd.DataFrame, which: str, notes: Footnotes, bootstrap: int) -> tuple[str, str, str]:
    """Same-λ change of one comparison: (total with interval, "y / z", "ΔPSNR (max |Δ|)")."""
    t = by.loc[(which, "total")]
    if t["missing"]:
        return _esc(str(t["missing"])), "", ""

    def cell(r: pd.Series, ci: bool) -> str:
        if math.isnan(r["paired_change"]):
            return "n/a" + notes.ref(str(r["paired_reason"]) or "not available")
        text = _r2(r["paired_change"]) + (SIG if ci and bool(r["paired_significant"]) else "")
        if ci and bootstrap > 0 and not math.isnan(r["paired_ci_low"]):
            text += f" [{_r2(r['paired_ci_low'])}, {_r2(r['paired_ci_high'])}]"
        return text

    yz = " / ".join(cell(by.loc[(which, c)], ci=False) for c in ("y", "z"))
    dp = (
        ""
        if math.isnan(t["paired_d_psnr"])
        else f"{round(t['paired_d_psnr'], 3) + 0.0:+.3f} ({t['paired_max_abs_d_psnr']:.3f})"
    )
    return cell(t, ci=True), yz, dp


def _pair_cell(by: pd.DataFrame, which: str, notes: Footnotes, bootstrap: int) -> str:
    """y and z of one comparison, "-1.94* / -6.56*" (the missing reference named once)."""
    y, z = by.loc[(which, "y")], by.loc[(which, "z")]
    if y["missing"]:
        return _esc(str(y["missing"]))
    return " / ".join(_attr_cell(x, notes, bootstrap, ci=False, unit=False) for x in (y, z))


def _size_cell(steps: object, params: object) -> str:
    def fmt(v: object) -> str:
        try:
            f = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return "n/a"
        return "n/a" if math.isnan(f) else f"{int(f):,}"

    return f"{fmt(steps)} · {fmt(params)}"


def _relabel(table: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    if table.empty or not labels or "mixer" not in table:
        return table
    table = table.copy()
    zero = (table["mixer"] == "zero") & table["curve"].isin(list(labels))
    table.loc[zero, "mixer"] = table.loc[zero, "curve"].map(labels)
    return table


ATTR_LEGEND = (
    "BD-rate in % (PCHIP; negative = saving) of each curve's `chain` evaluation on its "
    "conditioned images (chain position >= 2; each reference on the same images) against: "
    "**vs baseline** the paper-style unconditioned codec; **vs step-matched** an unconditioned "
    "codec with the same training budget; **vs zero control** the same architecture with the "
    "`zero` mixer (reference ignored); **content gain** the same model with shuffled "
    "references (each reference a random other eval image): what the neighbour's content is "
    "worth. A missing reference is named, never replaced by the baseline."
)


SAME_LAM = ("content", "control")
SAME_LAM_LEGEND = (
    "BD-rate needs monotone RD curves that overlap in PSNR, which short trainings often fail to "
    "give (the n/a above). Two evaluations of one model (true vs shuffled references), or two "
    "models of one architecture and budget (vs the zero control), can still be compared point "
    "by point: each cell is the rate change in % of the `chain` evaluation on its conditioned "
    "images against the reference at the same λ on the same images, averaged over λ "
    "(negative = saving), with a 95 % interval over eval images for the total. "
    "ΔPSNR: the mean PSNR change in dB (the largest |Δ| over λ in brackets): the rate change "
    "is a saving only where the PSNR hardly moves."
)


def _attr_keys(attr: pd.DataFrame) -> list[str]:
    keys = _row_keys(attr)
    keys = [*keys[:3], "chain", *keys[3:]]
    if (attr.groupby(keys, dropna=False)["curve"].nunique() > 1).any():
        keys.append("curve")  # curves the named columns do not tell apart
    return keys


def _attribution_section(attr: pd.DataFrame, notes: Footnotes, bootstrap: int) -> str:
    """Attribution tables (total with intervals; y / z; models) and the spread across seeds."""
    keys = _attr_keys(attr)
    heads = {"chain": "L"}
    total, yz, models, same = [], [], [], []
    for key, g in attr.groupby(keys, sort=True, dropna=False):
        rec = {heads.get(k, k): (f"`{v}`" if k == "curve" else v) for k, v in zip(keys, key, strict=True)}
        by = g.set_index(["comparison", "component"])
        t, p, m, s = dict(rec), dict(rec), dict(rec), dict(rec)
        for which in COMPARISONS:
            t[TITLES[which] + " ↓"] = _attr_cell(by.loc[(which, "total")], notes, bootstrap)
            p[TITLES[which] + " ↓"] = _pair_cell(by, which, notes, bootstrap)
        for which in SAME_LAM:
            cells = _same_lam_cells(by, which, notes, bootstrap)
            for head, c in zip((" total ↓", " y / z ↓", " ΔPSNR dB"), cells, strict=True):
                s[TITLES[which] + head] = c
        first = g.iloc[0]
        m["model"] = _size_cell(first.get("steps"), first.get("params"))
        for which in ("baseline", "matched", "control"):
            r = by.loc[(which, "total")]
            m[NAMES[which]] = (
                _esc(str(r["missing"]))
                if r["missing"]
                else _size_cell(r["against_steps"], r["against_params"])
            )
        total.append(t)
        yz.append(p)
        models.append(m)
        same.append(s)
    ci = f" [95 % interval, {bootstrap} resamples of eval images]" if bootstrap > 0 else ""
    parts = [
        "### Attribution: where the saving comes from (total)",
        ATTR_LEGEND,
        f"Cells: BD-rate{ci}" + (f"; {SIG}: the interval excludes 0." if bootstrap > 0 else "."),
        markdown_table(pd.DataFrame(_mark_aligned(total)), notes),
        "### Attribution per component (y / z)",
        markdown_table(pd.DataFrame(_mark_aligned(yz)), notes),
        "### Same λ, same images: content gain and zero control without curve fitting",
        SAME_LAM_LEGEND,
        markdown_table(pd.DataFrame(_mark_aligned(same)), notes),
        "### Models compared (training steps · parameters)",
        markdown_table(pd.DataFrame(_mark_aligned(models)), notes),
    ]
    spread = _seed_section(attr, notes)
    if spread:
        parts.append(spread)
    return "\n\n".join(parts)


def _spread_cell(r: pd.Series) -> str:
    if r["n"] == 0:
        return "n/a"
    if r["n"] == 1:
        text = _r2(r["mean"])
    else:
        text = f"{_r2(r['mean'])} ± {_r2(r['sd'])} ({_r2(r['min'])} to {_r2(r['max'])})"
    if r["n"] < r["n_seeds"]:
        text += f", {int(r['n'])} of {int(r['n_seeds'])} seeds"
    return text


def _seed_section(attr: pd.DataFrame, notes: Footnotes) -> str:
    sp = seed_spread(attr)
    sp = sp[sp["component"] == "total"]
    if sp.empty:
        return ""
    keys = [k for k in ("ordering", "mixer", "sites", "chain") if k in sp]
    if _trees(sp):
        keys.insert(1, "structure")
    if "steps" in sp and sp.groupby(keys)["steps"].nunique().gt(1).any():
        keys.append("steps")
    out = []
    for key, g in sp.groupby(keys, sort=True, dropna=False):
        rec: dict[str, object] = {("L" if k == "chain" else k): v for k, v in zip(keys, key, strict=True)}
        rec["seeds"] = int(g["n_seeds"].max())
        for which in COMPARISONS:
            h = g[g["comparison"] == which]
            rec[TITLES[which] + " ↓"] = _spread_cell(h.iloc[0]) if len(h) else "n/a"
        out.append(rec)
    return (
        "### Spread across seeds (total)\n\n"
        "Curves that differ only by their training seed: mean ± sd (min to max) of the "
        "BD-rates above, in %.\n\n" + markdown_table(pd.DataFrame(_mark_aligned(out)), notes)
    )


def _slug(s: object) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(s)).strip("-") or "x"


def _codec_section(
    table: pd.DataFrame,
    attr: pd.DataFrame,
    codec: str,
    tile: object,
    plot: str | None,
    notes: Footnotes,
    bootstrap: int,
    rows: pd.DataFrame,
) -> str:
    parts = [f"## {codec} · {_num(tile)}-px tiles"]
    n_eval = table["n_eval"].max() if "n_eval" in table else np.nan
    line = _tile_note(tile) + f" N = {_num(n_eval)} eval images."
    ms = _multiset_line(n_eval, tile)
    parts.append(line + (" " + ms if ms else ""))
    main = table[table["eval"] == "chain"]
    if not main.empty:
        parts.append("### Chains of the trained length (eval `chain`), PCHIP")
        parts.append(_main_table(main, notes))
        quality = _quality_lines(main, attr)
        if quality:
            parts.append(quality)
    structures = _structure_section(main, attr)
    if structures:
        parts.append(structures)
    if not attr.empty:
        parts.append(_attribution_section(attr, notes, bootstrap))
    positions = _position_section(rows, main, notes)
    if positions:
        parts.append(positions)
    if plot:
        parts.append(f"![RD curves of {codec}]({plot})")
    parts.append("### All figures (% for total / y / z)")
    parts.append(_details_table(table, notes))
    return "\n\n".join(parts)


def spearman(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Spearman ρ and its two-sided p-value, exact (every permutation) for up to 8 pairs.

    SciPy's p-value comes from a t approximation that says p = 0 for a perfect ρ on 3 points;
    exactly, 2 of the 6 orders of 3 points give |ρ| = 1, so p = 1/3.
    """
    from itertools import permutations

    from scipy.stats import rankdata, spearmanr

    rho, pval = spearmanr(a, b)
    n = len(a)
    if n <= 8 and not math.isnan(rho):
        ra, rb = rankdata(a), rankdata(b)
        ra, rb = ra - ra.mean(), rb - rb.mean()
        norm = math.sqrt((ra**2).sum() * (rb**2).sum())
        perms = np.array(list(permutations(rb)))
        rhos = perms @ ra / norm
        pval = float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))
    return float(rho), float(pval)


def _quality_lines(main: pd.DataFrame, attr: pd.DataFrame) -> str:
    """Does ordering quality predict the saving? Spearman ρ over orderings of one model family.

    For each (mixer, sites, L) with at least 3 orderings: ρ between ``q_dist_ratio`` (neighbour /
    random distance on the eval chains; lower = closer neighbours) and the total BD-rate vs the
    baseline, and the content gain (true vs shuffled references; BD-rate and same-λ change) where
    the attribution has it. ρ > 0: orderings with closer neighbours save more.
    """
    if "q_dist_ratio" not in main:
        return ""
    tot = main[(main["component"] == "total") & ~main["mixer"].astype(str).str.startswith("zero")]
    content = pd.DataFrame()
    if not attr.empty and "comparison" in attr:
        content = attr[(attr["comparison"] == "content") & (attr["component"] == "total")]
    lines = []
    family = ["mixer", "sites", "chain", *(["structure"] if "structure" in tot else [])]
    for key, g in tot.groupby(family, sort=True):
        mixer, sites, length = key[:3]
        tree = ", tree" if len(key) > 3 and key[3] == "tree" else ""
        g = g.dropna(subset=["q_dist_ratio"]).drop_duplicates("ordering")
        if g["ordering"].nunique() < 3:
            continue
        targets = [("BD-rate vs baseline", g.set_index("ordering")["bd_pchip"].dropna())]
        if not content.empty:
            c = content[
                (content["mixer"] == mixer) & (content["sites"] == sites) & (content["chain"] == length)
            ]
            if len(key) > 3 and "structure" in c:
                c = c[c["structure"] == key[3]]
            for col, name in (("bd_pchip", "content gain"), ("paired_change", "content gain at the same λ")):
                if col in c:
                    t = c.dropna(subset=[col]).drop_duplicates("ordering").set_index("ordering")[col]
                    targets.append((name, t))
        q = g.set_index("ordering")["q_dist_ratio"]
        said = []
        for name, t in targets:
            common = sorted(set(q.index) & set(t.index))
            a, b = q[common].to_numpy(), t[common].to_numpy()
            if len(common) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
                continue
            rho, pval = spearman(a, b)
            if not math.isnan(rho):
                said.append(f"with the {name} ρ = {rho:+.2f} (p = {pval:.2g}, {len(common)} orderings)")
        if said:
            lines.append(
                f"Ordering quality vs saving ({mixer}, {sites}, L={_num(length)}{tree}): Spearman ρ of "
                f"q_dist_ratio {'; '.join(said)}. ρ > 0: orderings with closer neighbours save more."
            )
    return "\n\n".join(lines)


def _position_section(rows: pd.DataFrame, main: pd.DataFrame, notes: Footnotes) -> str:
    """BD-rate vs the baseline at each chain position (eval ``chain``), total / y / z."""
    if main.empty or "position" not in rows:
        return ""
    keys = _row_keys(main)
    longest = int(main["chain"].max())
    out = []
    clean = clean_rows(rows)  # once: the convergence check below reads it for every curve
    for _, r in main[main["component"] == "total"].sort_values([*keys, "chain"]).iterrows():
        by = bd_by_position(rows, r["curve"], r["anchor_curve"])
        if by.empty:
            continue
        why = unconverged(clean, [str(r["anchor_curve"])])
        if why:  # no figure against a baseline that has not converged
            by = by.assign(bd_pchip=np.nan, reason_pchip=why)
        rec: dict[str, object] = {k: r[k] for k in keys}
        rec["L"] = _num(r["chain"])
        for k in range(2, longest + 1):
            at = by[by["position"] == k].set_index("component").reindex(list(COMPONENTS))
            cells = [_bd(v, why) for v, why in zip(at["bd_pchip"], at["reason_pchip"].fillna(""))]
            rec[f"k={k}"] = _triple(cells, notes) if k <= int(r["chain"]) else ""
        out.append(rec)
    if not out:
        return ""
    return (
        "### Along the chain: BD-rate vs baseline at chain position k (eval `chain`, % total / y / z)\n\n"
        "Position 1 is the baseline's image; each column compares the k-th images of the chains "
        "with the baseline on the same images.\n\n" + markdown_table(pd.DataFrame(_mark_aligned(out)), notes)
    )


def _trees(table: pd.DataFrame) -> bool:
    """Whether any curve uses tree references (the structure column is shown only then)."""
    return "structure" in table and bool((table["structure"].fillna("chain") != "chain").any())


def _structure_section(main: pd.DataFrame, attr: pd.DataFrame) -> str:
    """Chain vs tree side by side: the same ordering, mixer, sites and L with both structures.

    Cells: mean over the curves (seeds) of the total BD-rate vs the baseline (PCHIP, eval
    ``chain``: chains of L, or the forest cut at depth L) and of the content gain (true vs
    shuffled references), and tree minus chain.
    """
    if main.empty or not _trees(main):
        return ""
    keys = ["ordering", "mixer", "sites", "chain"]
    tot = main[(main["component"] == "total") & ~main["mixer"].astype(str).str.startswith("zero")]
    content = pd.DataFrame()
    if not attr.empty and "comparison" in attr and "structure" in attr:
        content = attr[(attr["comparison"] == "content") & (attr["component"] == "total")]

    def mean(t: pd.DataFrame, col: str) -> float:
        v = pd.to_numeric(t[col], errors="coerce").dropna() if col in t else pd.Series(dtype=float)
        return float(v.mean()) if len(v) else math.nan

    def cell(v: float) -> str:
        return "n/a" if math.isnan(v) else _r2(v)

    out = []
    for key, g in tot.groupby(keys, sort=True):
        if set(g["structure"]) < {"chain", "tree"}:
            continue
        rec: dict[str, object] = {("L" if k == "chain" else k): v for k, v in zip(keys, key, strict=True)}
        figs = {}
        for s in ("chain", "tree"):
            figs[s] = mean(g[g["structure"] == s], "bd_pchip")
            c = content
            for k, v in zip(keys, key, strict=True):
                c = c[c[k] == v] if len(c) else c
            figs[s + " content"] = mean(c[c["structure"] == s], "bd_pchip") if len(c) else math.nan
        rec["chain ↓"], rec["tree ↓"] = cell(figs["chain"]), cell(figs["tree"])
        rec["tree − chain ↓"] = cell(figs["tree"] - figs["chain"])
        rec["content gain chain ↓"] = cell(figs["chain content"])
        rec["content gain tree ↓"] = cell(figs["tree content"])
        out.append(rec)
    if not out:
        return ""
    return (
        "### Chain vs tree (total, %)\n\n"
        "BD-rate vs the baseline (PCHIP) of the same configuration with chain references "
        "(x_k given x_{k-1}) and tree references (each image given its parent in the minimum "
        "spanning forest of the ordering features, cut at depth L), mean over seeds; content gain: "
        "true vs shuffled references.\n\n" + markdown_table(pd.DataFrame(out))
    )


def _row_keys(table: pd.DataFrame) -> list[str]:
    keys = ["ordering", "structure", "mixer", "sites"] if _trees(table) else ["ordering", "mixer", "sites"]
    if "variant" in table and (table["variant"].astype(str) != "").any():
        keys.append("variant")
    for extra in ("steps", "seed"):
        if extra in table:
            per = table.groupby(keys + ["chain"])[extra].nunique()
            if (per > 1).any():
                keys.append(extra)
    return keys


def _main_table(main: pd.DataFrame, notes: Footnotes) -> str:
    keys = _row_keys(main)
    chains = sorted(main["chain"].unique())
    qcols = {
        c: h for c, h in (("q_dist_ratio", "q_dist_ratio ↓"), ("q_same_class", "q_same_class ↑")) if c in main
    }
    out = []
    for key, g in main.groupby(keys, sort=True):
        rec: dict[str, object] = dict(zip(keys, key, strict=True))
        for q, head in qcols.items():
            v = g[q].mean()
            rec[head] = "n/a" if math.isnan(v) else f"{v:.3f}"
        for length in chains:
            for comp in COMPONENTS:
                cells = g[(g["chain"] == length) & (g["component"] == comp)].sort_values("curve")
                col = f"L={_num(length)} {comp} ↓"
                if cells.empty:
                    rec[col] = ""
                    continue
                vals = [_cell(_bd_sig(r), notes) for _, r in cells.iterrows()]
                rec[col] = " / ".join(vals)
        out.append(rec)
    return markdown_table(pd.DataFrame(_mark_aligned(out)), notes)


def _triple(cells: Sequence[object], notes: Footnotes) -> str:
    out = []
    for c in cells:
        if isinstance(c, BD) and not c.ok:
            out.append("n/a" + notes.ref(c.reason))
        else:
            out.append((_pct(c.value) if isinstance(c, BD) else str(c)).replace(" %", ""))
    return " / ".join(out)


def _details_table(table: pd.DataFrame, notes: Footnotes) -> str:
    out = []
    ci = "ci_low" in table
    trees = _trees(table)
    for (_, _), g in table.groupby(["curve", "eval"], sort=False):
        g = g.set_index("component").reindex(list(COMPONENTS))
        r = g.iloc[0]
        rec: dict[str, object] = {
            "ordering": r["ordering"],
            "mixer": r["mixer"],
            "sites": r["sites"],
            "L": r["chain"],
            **({"structure": r["structure"]} if trees else {}),
            "eval": r["eval"],
            "PCHIP ↓": _triple([_bd_sig(x) for _, x in g.iterrows()], notes),
            "Akima ↓": _triple([_bd(x["bd_akima"], x["reason_akima"]) for _, x in g.iterrows()], notes),
            "cond. only ↓": _triple(
                [_bd(x["bd_cond_pchip"], x["reason_cond"]) for _, x in g.iterrows()], notes
            ),
        }
        if ci:
            rec["95 % CI (total)"] = _ci(g.loc["total"], notes)
        rec["steps"] = r.get("steps", np.nan)
        rec["params"] = r.get("params", np.nan)
        rec["curve"] = f"`{r['curve']}`"
        out.append(rec)
    return markdown_table(pd.DataFrame(_mark_aligned(out)), notes)


def _provenance(rows: pd.DataFrame) -> str:
    """Which code version made the rows, and when (from the rows' ``code`` / ``date`` columns)."""
    out = []
    for col, label in (("code", "code"), ("date", "runs finished")):
        if col in rows:
            vals = sorted(str(v) for v in rows[col].dropna().unique() if str(v))
            if vals:
                out.append(f"{label}: " + (", ".join(f"`{v}`" for v in vals) if col == "code" else vals[0]))
                if col == "date" and len(vals) > 1:
                    out[-1] += f" to {vals[-1]}"
    return "Provenance: " + " · ".join(out) + "." if out else ""


@dataclass(frozen=True)
class LeaderboardTables:
    """What a leaderboard page shows, computed once from the rows (rendered by
    :func:`render_leaderboard`): the BD-rate table and the attribution table (zero controls
    relabelled), and the multi-seed configurations answered first."""

    rows: pd.DataFrame  # as given: failed runs included (listed, not compared)
    clean: pd.DataFrame  # the rows that compare
    table: pd.DataFrame  # bd_table: curve × eval × component
    attr: pd.DataFrame  # attribution_table: curve × comparison × component
    seed_groups: list[list[str]]  # curves trained with several seeds, one list per configuration
    bootstrap: int
    seed: int
    rate: str


def compute_leaderboard(
    rows: pd.DataFrame, bootstrap: int = 1000, seed: int = 0, rate: str = "bpp_real"
) -> LeaderboardTables:
    """The tables of one dataset's leaderboard (no markdown)."""
    clean = clean_rows(rows)
    labels = zero_labels(clean)
    table = _relabel(bd_table(clean, rate=rate, bootstrap=bootstrap, seed=seed), labels)
    attr = _relabel(attribution_table(rows, rate, bootstrap, seed), labels)
    table, attr = _withhold_unconverged(clean, table, attr)
    return LeaderboardTables(rows, clean, table, attr, list(seed_groups(rows)), bootstrap, seed, rate)


def _withhold_unconverged(
    clean: pd.DataFrame, table: pd.DataFrame, attr: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """No figure against a baseline that has not converged: its cells become n/a with the reason
    (:func:`~acbench.analysis.answer.unconverged`)."""
    if table.empty or "anchor_curve" not in table:
        return table, attr
    bad = {str(a): unconverged(clean, [str(a)]) for a in table["anchor_curve"].unique()}
    bad = {a: why for a, why in bad.items() if why}
    if not bad:
        return table, attr
    table, attr = table.copy(), attr.copy()
    m = table["anchor_curve"].astype(str).isin(bad)
    why = table.loc[m, "anchor_curve"].astype(str).map(bad)
    for col, reason in (
        ("bd_pchip", "reason_pchip"),
        ("bd_akima", "reason_akima"),
        ("bd_cond_pchip", "reason_cond"),
    ):
        if col in table:
            table.loc[m, col] = np.nan
            table.loc[m, reason] = why
    if len(attr) and "against" in attr:
        a = (attr["comparison"] == "baseline") & attr["against"].astype(str).isin(bad)
        why = attr.loc[a, "against"].astype(str).map(bad)
        for col in ("bd_pchip", "ci_low", "ci_high", "paired_change", "paired_ci_low", "paired_ci_high"):
            if col in attr:
                attr.loc[a, col] = np.nan
        for col in ("reason_pchip", "paired_reason"):
            if col in attr:
                attr.loc[a, col] = why
        if "significant" in attr:
            attr.loc[a, "significant"] = False
        if "paired_significant" in attr:
            attr.loc[a, "paired_significant"] = False
    return table, attr


def leaderboard_markdown(
    rows: pd.DataFrame,
    command: str,
    dataset: str,
    bootstrap: int = 1000,
    seed: int = 0,
    rate: str = "bpp_real",
    plots: dict[tuple[str, str], str] | None = None,
    csv_name: str | None = None,
    date: str | None = None,
    title: str | None = None,
    about: Sequence[str] = (),
) -> str:
    """The leaderboard markdown of one dataset (see :func:`write_leaderboard`)."""
    tables = compute_leaderboard(rows, bootstrap, seed, rate)
    return render_leaderboard(tables, command, dataset, plots, csv_name, date, title, about)


def render_leaderboard(
    tables: LeaderboardTables,
    command: str,
    dataset: str,
    plots: dict[tuple[str, str], str] | None = None,
    csv_name: str | None = None,
    date: str | None = None,
    title: str | None = None,
    about: Sequence[str] = (),
) -> str:
    """The markdown page of computed tables (a pure function: same tables, same bytes)."""
    rows, clean, table, attr = tables.rows, tables.clean, tables.table, tables.attr
    bootstrap, seed, rate = tables.bootstrap, tables.seed, tables.rate
    notes = Footnotes()
    parts = [HEADER, f"# {title or 'Leaderboard'}: {dataset}", *about]
    source = "real bitstreams" if rate == "bpp_real" else rate
    intro = (
        f"BD-rate in % against the unconditioned codec (same λ list, same eval images, each "
        f"coded alone), PCHIP over mean PSNR, rates from {source}; "
        'negative = saving (↓ better). "cond. only": conditioned images (chain position >= 2) '
        "against the baseline on the same images. The attribution tables hold each curve "
        "against fair references too (a step-matched anchor, a zero-mixer control, shuffled "
        "references), so that a saving can be told apart from training budget and capacity."
    )
    if bootstrap > 0:
        intro += (
            f" {SIG}: the 95 % bootstrap interval ({bootstrap} resamples of eval images, "
            f"seed {seed}) excludes 0."
        )
    parts.append(intro)
    regen = f"Regenerate: `{command}`"
    if csv_name:
        regen += f" · rows used: [{csv_name}]({csv_name})"
    if date:
        regen += f" · generated {date}"
    parts.append(regen)
    provenance = _provenance(rows)
    if provenance:
        parts.append(provenance)
    groups = tables.seed_groups  # configurations trained with several seeds: their answer first
    if len(groups) >= 2:
        parts.append(f"## Answer\n\n{ablation_answer(rows, groups, bootstrap, rate)}")
        parts.append("## Each configuration")
    for group in groups:
        head = clean[clean["curve"] == group[0]].iloc[0]
        level = "###" if len(groups) >= 2 else "## Answer:"
        parts.append(f"{level} {_label(head)}\n\n{answer_block(rows, group, bootstrap, rate)}")
    if table.empty:
        parts.append("No conditional curve with results yet.")
        table = table.assign(codec=[], tile=[])
    for (codec, tile), t in table.groupby(["codec", "tile"], sort=True):
        plot = (plots or {}).get((str(codec), _num(tile)))
        a = attr[(attr["codec"] == codec) & (attr["tile"] == tile)] if len(attr) else attr
        mine = clean[(clean["codec"] == codec) & (clean["tile"] == tile)]
        parts.append(_codec_section(t, a, str(codec), tile, plot, notes, bootstrap, mine))
    return finish_page(parts, rows, notes)


def write_leaderboard(
    rows: pd.DataFrame,
    out_dir: str | Path,
    command: str,
    dataset: str | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    rate: str = "bpp_real",
    plots: bool = True,
    date: str | None = None,
    title: str | None = None,
    about: Sequence[str] = (),
) -> list[Path]:
    """Write ``<dataset>.md``, ``<dataset>_rows.csv.gz`` and RD plots for each dataset.

    Args:
        rows: Long rows (any number of datasets; failed runs are listed, not compared).
        out_dir: The leaderboards folder.
        command: The exact command that regenerates these files (printed in the markdown).
        dataset: Only this dataset (all datasets in ``rows`` when ``None``).
        bootstrap: Image resamples for the 95 % intervals (0 = none).
        seed: Seed of the resampling.
        rate: Rate column for the BD-rates.
        plots: Also draw the RD plots (PNG, one per codec and tile).
        date: Printed when given; never taken from the clock, so output is reproducible.
        title: The heading before the dataset name (default "Leaderboard").
        about: Paragraphs printed under the heading (the question, the preset).

    Returns:
        The paths written (markdown first).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if "dataset" not in rows:
        raise ValueError("rows have no 'dataset' column")
    names = [dataset] if dataset is not None else sorted(rows["dataset"].dropna().astype(str).unique())
    written: list[Path] = []
    for name in names:
        sub = rows[rows["dataset"].astype(str) == str(name)]
        slug = _slug(name)
        pngs: dict[tuple[str, str], str] = {}
        pre: list[Path] = []
        if plots:
            from acbench.analysis.plots import rd_plot

            clean = clean_rows(sub)
            if "codec" in clean and "tile" in clean and "component" in clean:
                for (codec, tile), g in clean.groupby(["codec", "tile"], sort=True):
                    if "kind" not in g or not (g["kind"] == "conditional").any():
                        continue
                    path = out_dir / f"{slug}_{_slug(codec)}_{_num(tile)}px_rd.png"
                    rd_plot(g, path, str(codec))
                    pngs[(str(codec), _num(tile))] = path.name
                    pre.append(path)
        csv = out_dir / f"{slug}_rows.csv.gz"
        _write_rows(sub, csv)
        md = out_dir / f"{slug}.md"
        text = leaderboard_markdown(
            sub, command, str(name), bootstrap, seed, rate, pngs, csv.name, date, title, about
        )
        md.write_text(text, encoding="utf-8")
        written += [md, csv, *pre]
    return written


def write_contrast(
    rows: pd.DataFrame, out_dir: str | Path, command: str, bootstrap: int = 1000
) -> list[Path]:
    """Write ``content.md`` (:func:`~acbench.analysis.answer.contrast_markdown`) and the rows it
    reads, ``content_rows.csv.gz``, from which it rebuilds byte for byte."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sub = contrast_rows(rows)
    csv = out_dir / "content_rows.csv.gz"
    _write_rows(sub, csv)
    md = out_dir / "content.md"
    md.write_text(contrast_markdown(sub, command, bootstrap), encoding="utf-8")
    return [md, csv]


def _write_rows(rows: pd.DataFrame, csv: Path) -> None:
    keys = [c for c in ("curve", "eval", "lam", "image", "component", "run_id") if c in rows]
    # gzip (with no timestamp) keeps committed rows ~15x smaller and the file reproducible
    rows.sort_values(keys, kind="stable").to_csv(
        csv, index=False, lineterminator="\n", compression={"method": "gzip", "mtime": 0}
    )
