"""The answer to "does the neighbour pay?" for one configuration trained with several seeds.

One sentence first, then one small table: BD-rate of the conditioned chain against the baseline,
the step-matched anchor, the zero-mixer control and the same models with shuffled references
(the neighbour's content), per component, pooled over seeds with 95 % intervals that resample
seeds and eval images together; the same-λ rate change beside it. Then what the references are
worth: baseline PSNR per λ, convergence figures, and the step-matched anchor's gain over the
baseline (near 0 when the baseline has converged). All on the conditioned images (chain
position >= 2), the only ones the neighbour can change.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from acbench.analysis.bdrate import clean_rows, pooled_compare
from acbench.analysis.markdown import (
    _failed_section,
    _label,
    _multiset_line,
    _num,
    _tile_note,
    markdown_table,
)

COMPARISONS = (
    ("content", "the neighbour's content (vs the same models, shuffled references)"),
    ("zero", "vs the zero-mixer control (same architecture, reference ignored)"),
    ("matched", "vs the step-matched anchor (unconditioned, same training)"),
    ("baseline", "vs the baseline (paper-style)"),
)


def _pct(v: float, lo: float = math.nan, hi: float = math.nan, signed: bool = True) -> str:
    if not np.isfinite(v):
        return "n/a"
    text = f"{v:+.2f} %" if signed else f"{v:.2f} %"
    if np.isfinite(lo) and np.isfinite(hi):
        star = "*" if hi < 0 or lo > 0 else ""
        text += f" [{lo:+.2f}, {hi:+.2f}]{star}" if signed else f" [{lo:.2f}, {hi:.2f}]{star}"
    return text


def comparisons(
    rows: pd.DataFrame, tests: Sequence[str], rate: str = "bpp_real", bootstrap: int = 1000, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """:func:`pooled_compare` of the seeds' curves ``tests`` against each reference.

    Returns:
        ``{"content" | "zero" | "matched" | "baseline": table}`` for the references present.
    """
    clean = clean_rows(rows)
    tests = [str(t) for t in tests]
    chain = clean[clean["curve"].astype(str).isin(tests) & (clean["eval"] == "chain")]
    cond = sorted(set(chain.loc[chain["position"] >= 2, "image"])) if "position" in chain else None

    def side(curve: str, ev: str) -> pd.DataFrame:
        return clean[(clean["curve"].astype(str) == str(curve)) & (clean["eval"] == ev)]

    out: dict[str, pd.DataFrame] = {}
    firsts = [chain[chain["curve"].astype(str) == t].iloc[0] for t in tests if (chain["curve"] == t).any()]
    if not firsts:
        return out
    refs = {
        "content": [(side(t, "shuffled"), side(t, "chain")) for t in tests],
        "zero": [(side(r["control_curve"], "chain"), side(r["curve"], "chain")) for r in firsts],
        "matched": [(side(r["matched_curve"], "alone"), side(r["curve"], "chain")) for r in firsts],
        "baseline": [(side(r["anchor_curve"], "alone"), side(r["curve"], "chain")) for r in firsts],
    }
    if unconverged(clean, [str(r["anchor_curve"]) for r in firsts]):
        del refs["baseline"]  # a figure against an unconverged baseline is training budget
    for key, pairs in refs.items():
        if all(not a.empty and not t.empty for a, t in pairs):
            out[key] = pooled_compare(pairs, rate, bootstrap=bootstrap, seed=seed, images=cond)
    return out


#: a baseline whose validation loss still changes by more than this over the last 20 % of its
#: training has not converged: answers give no figure against it
CONVERGED = 0.05


def unconverged(rows: pd.DataFrame, baselines: Sequence[str]) -> str:
    """Why figures against these baseline curves are withheld ("" when they have converged)."""
    if "convergence" not in rows:
        return ""
    sel = rows[rows["curve"].astype(str).isin([str(b) for b in baselines]) & (rows["eval"] == "alone")]
    conv = pd.to_numeric(sel["convergence"], errors="coerce").dropna()
    if conv.empty or conv.abs().max() <= CONVERGED:
        return ""
    return (
        f"n/a: baseline not converged (validation loss still changes by {100 * conv.min():+.1f} % "
        f"over its last 20 % of training; converged: within ±{100 * CONVERGED:.0f} %)"
    )


def _vs_baseline(rows: pd.DataFrame, fig: pd.DataFrame | None, head: pd.Series) -> str:
    """The vs-baseline cell: the figure, or why it is withheld."""
    if fig is None:
        why = unconverged(clean_rows(rows), [str(head.get("anchor_curve", ""))])
        return "n/a (baseline not converged)" if why else "n/a"
    return _fmt(_total(fig))


def reference_line(rows: pd.DataFrame, tests: Sequence[str]) -> str:
    """Baseline PSNR per λ, its convergence figures, and the step-matched anchor's gain over it."""
    clean = clean_rows(rows)
    first = clean[clean["curve"].astype(str).isin([str(t) for t in tests])].iloc[0]
    tot = clean[clean["component"] == "total"]
    base = tot[(tot["curve"] == first["anchor_curve"]) & (tot["eval"] == "alone")]
    if base.empty:
        return ""
    pts = base.groupby("lam").agg(psnr=("psnr", "mean"), bpp=("bpp_real", "mean"))
    text = "Baseline (each image alone): " + ", ".join(
        f"λ {lam:g}: {r.psnr:.2f} dB at {r.bpp:.4f} bpp" for lam, r in pts.iterrows()
    )
    if "convergence" in base:
        conv = base.groupby("lam")["convergence"].first().to_numpy(dtype=float)
        if np.isfinite(conv).any():
            text += (
                f". Convergence (validation loss change over the last 20 % of training): "
                f"{100 * np.nanmin(conv):+.2f} … {100 * np.nanmax(conv):+.2f} %"
            )
    matched = [c for c in clean.loc[clean["curve"].astype(str).isin(tests), "matched_curve"].unique() if c]
    anchors = tot[tot["curve"].isin(matched) & (tot["eval"] == "alone")]
    if not anchors.empty:
        gain = anchors.groupby(["curve", "lam"])["psnr"].mean().groupby("lam").mean() - pts["psnr"]
        gain = gain.dropna()
        verdict = "met: the baseline has converged" if gain.abs().max() <= 0.1 else "not met"
        text += (
            f". The step-matched anchor (the baseline trained on for the conditional budget) gains "
            f"{gain.mean():+.3f} dB over it (per λ {', '.join(f'{v:+.3f}' for v in gain)}; "
            f"target ≤ 0.1 dB at every λ: {verdict})"
        )
    return text + "."


SEED_GROUP = (
    "dataset",
    "tile",
    "codec",
    "ordering",
    "structure",
    "mixer",
    "sites",
    "variant",
    "chain",
    "steps",
)


def seed_groups(rows: pd.DataFrame) -> list[list[str]]:
    """Conditional curves (not zero controls) that differ only by their training seed, where a
    configuration has at least two seeds; each group's curves in seed order."""
    clean = clean_rows(rows)
    cond = (
        clean[(clean.get("kind") == "conditional") & (clean["mixer"] != "zero")] if "kind" in clean else clean
    )
    if cond.empty or "seed" not in cond:
        return []
    keys = [k for k in SEED_GROUP if k in cond]
    groups = []
    for _, g in cond.groupby(keys, sort=True, dropna=False):
        per_seed = g.groupby("seed")["curve"].unique()
        if len(per_seed) >= 2 and all(len(c) == 1 for c in per_seed):
            groups.append([str(c[0]) for c in per_seed])
    return groups


def answer_block(
    rows: pd.DataFrame, tests: Sequence[str], bootstrap: int = 1000, rate: str = "bpp_real"
) -> str:
    """The sentence and the table for one configuration's seed curves (markdown, no heading)."""
    tests = [str(t) for t in tests]
    clean = clean_rows(rows)
    mine = clean[clean["curve"].astype(str).isin(tests)]
    seeds = sorted(mine["seed"].unique().tolist()) if "seed" in mine else []
    figs = comparisons(rows, tests, rate, bootstrap)
    n_cond = int(next(iter(figs.values()))["n_images"].iloc[0]) if figs else 0
    parts = [_sentence(figs, len(seeds), n_cond)]
    table = {"comparison": [], "total": [], "y": [], "z": [], "same λ (total)": [], "ΔPSNR": []}
    notes: dict[str, list[str]] = {}  # reason -> the cells it explains (numbered in order)
    for key, label in COMPARISONS:
        if key not in figs:
            continue
        f = figs[key].set_index("component")
        table["comparison"].append(label)
        for comp in ("total", "y", "z"):
            r = f.loc[comp]
            cell = _pct(r["bd"], r.get("bd_low", math.nan), r.get("bd_high", math.nan))
            if r.get("bd_reason"):
                reason = str(r["bd_reason"]).removeprefix("n/a: ")
                notes.setdefault(reason, []).append(f"{key} {comp}")
                cell += f" ({list(notes).index(reason) + 1})"
            table[comp].append(cell)
        r = f.loc["total"]
        table["same λ (total)"].append(
            _pct(r["same_lam"], r.get("same_low", math.nan), r.get("same_high", math.nan))
        )
        table["ΔPSNR"].append(f"{r['d_psnr']:+.3f} dB")
    parts.append(markdown_table(pd.DataFrame(table)))
    parts.append(
        f"BD-rate (PCHIP, {rate}, %; negative = saving) of the conditioned chain on its conditioned "
        f"images (position >= 2), pooled over {len(seeds)} training seed(s) ({', '.join(map(str, seeds))}); "
        '[95 % interval resampling seeds and images together], * = excludes 0. "same λ": the rate '
        "change at equal λ on the same images (no curve fitting; a saving where ΔPSNR is near 0)."
        + "".join(f" ({i}) {reason}." for i, reason in enumerate(notes, 1))
    )
    if "content" in figs:
        spread = figs["content"].set_index("component").loc["total", "seed_bd"]
        parts.append(
            "Seed spread of the content gain (total, BD-rate per seed): "
            + ", ".join(f"seed {s}: {_pct(v)}" for s, v in zip(seeds, spread))
            + "."
        )
    why = unconverged(clean, [str(a) for a in mine["anchor_curve"].unique()])
    if why:
        parts.append(f"Against the baseline: {why}; the step-matched anchor is the reference to read.")
    along = position_content(rows, tests, rate, bootstrap)
    if along:
        parts.append(along)
    ref = reference_line(rows, tests)
    if ref:
        parts.append(ref)
    return "\n\n".join(parts)


def position_content(
    rows: pd.DataFrame, tests: Sequence[str], rate: str = "bpp_real", bootstrap: int = 1000
) -> str:
    """The neighbour's content at each chain position k >= 2 (true vs shuffled references on the
    images at position k, seeds pooled), total / y / z: where along the chain it pays, and z
    beside the paper's figure. Empty for chains of 2 (the answer's table says it all)."""
    clean = clean_rows(rows)
    tests = [str(t) for t in tests]
    mine = clean[clean["curve"].astype(str).isin(tests)]
    chain = mine[mine["eval"] == "chain"]
    if "position" not in chain or chain["position"].max() < 3:
        return ""
    table: dict[str, list[str]] = {"position": [], "images": [], "total": [], "y": [], "z": []}
    for k in sorted(int(p) for p in chain["position"].unique() if p >= 2):
        images = sorted(set(chain.loc[chain["position"] == k, "image"]))
        pairs = [
            (
                mine[(mine["curve"].astype(str) == t) & (mine["eval"] == "shuffled")],
                chain[chain["curve"].astype(str) == t],
            )
            for t in tests
        ]
        fig = pooled_compare(pairs, rate, bootstrap=bootstrap, images=images)
        table["position"].append(f"k={k}")
        table["images"].append(str(len(images)))
        for comp in ("total", "y", "z"):
            table[comp].append(_fmt(_total(fig, comp)))
    return (
        "The neighbour's content along the chain (true vs shuffled references on the images at "
        "position k, BD-rate %, [95 % interval over seeds and images]; a figure without one: too "
        "many resamples gave no BD-rate):\n\n" + markdown_table(pd.DataFrame(table))
    )


def answer_report(
    rows: pd.DataFrame, tests: Sequence[str], bootstrap: int = 1000, rate: str = "bpp_real"
) -> str:
    """The markdown that ``acbench run`` prints: the answer sentence, the table, the references."""
    tests = [str(t) for t in tests]
    parts = ["# acbench run report"]
    clean = clean_rows(rows)
    mine = clean[clean["curve"].astype(str).isin(tests)]
    if mine.empty:
        parts.append("No conditional curve with results: nothing to compare.")
        failed = _failed_section(rows)
        return "\n\n".join(parts + ([failed] if failed else [])) + "\n"
    head = mine.iloc[0]
    parts.append(f"## {_label(head)}")
    parts.append(answer_block(rows, tests, bootstrap, rate))
    parts.append(_points(clean, tests, str(head["anchor_curve"])))
    n_eval = int(head.get("n_eval", 0))
    parts.append(f"Dataset {head.get('dataset', '?')}, {n_eval} eval images. {_tile_note(head.get('tile'))}")
    ms = _multiset_line(head.get("n_eval", math.nan), head.get("tile", math.nan))
    if ms:
        parts.append(ms)
    keep = set(tests) | {
        str(c) for c in mine[["anchor_curve", "matched_curve", "control_curve"]].stack().unique()
    }
    failed = _failed_section(rows[rows["curve"].astype(str).isin(keep)]) if "curve" in rows else ""
    if failed:
        parts.append(failed)
    return "\n\n".join(p for p in parts if p) + "\n"


def _sentence(figs: dict[str, pd.DataFrame], n_seeds: int, n_cond: int) -> str:
    def total(key: str) -> str:
        if key not in figs:
            return "not measured"
        r = figs[key].set_index("component").loc["total"]
        return _pct(r["bd"], r.get("bd_low", math.nan), r.get("bd_high", math.nan))

    if "content" not in figs:
        return "No answer: the shuffled-reference evaluation is missing (see the failed runs)."
    r = figs["content"].set_index("component").loc["total"]
    value, lo, hi, how = r["bd"], r.get("bd_low", math.nan), r.get("bd_high", math.nan), "BD-rate"
    if not np.isfinite(value) and np.isfinite(r.get("same_lam", math.nan)):  # e.g. fewer than 4 λ
        value, lo, hi = r["same_lam"], r.get("same_low", math.nan), r.get("same_high", math.nan)
        how = f"rate change at the same λ ({r['bd_reason'].removeprefix('n/a: ')} for a BD-rate)"
    if not np.isfinite(value):
        verdict = f"could not be measured ({r['bd_reason']})"
    elif np.isfinite(lo) and hi < 0:
        verdict = f"saves {_pct(-value, -hi, -lo, signed=False)} of the total rate"
    elif np.isfinite(lo) and lo > 0:
        verdict = f"costs {_pct(value, lo, hi)} of the total rate"
    elif np.isfinite(lo):
        verdict = (
            f"changes the total rate by {_pct(value, lo, hi)}, an interval that includes 0: no saving shown"
        )
    else:
        verdict = f"changes the total rate by {_pct(value)} (no interval: {r['bd_reason']}): no saving shown"
    return (
        f"**The neighbour's content {verdict}** (true vs shuffled references, {how} on {n_cond} "
        f"conditioned eval images, {n_seeds} seed(s), 95 % interval over seeds and images); "
        f"against a step-matched anchor {total('matched')}; against the zero-mixer control "
        f"{total('zero')}; against the baseline {total('baseline')}."
    )


def _points(clean: pd.DataFrame, tests: Sequence[str], baseline: str) -> str:
    """Per-λ points (total; mean over eval images and seeds) of the baseline and the chain."""
    tot = clean[clean["component"] == "total"]
    cols = {}
    base = tot[(tot["curve"] == baseline) & (tot["eval"] == "alone")]
    cols["baseline"] = base.groupby("lam").agg(bpp=("bpp_real", "mean"), psnr=("psnr", "mean"))
    for ev in ("chain", "shuffled"):
        sel = tot[tot["curve"].astype(str).isin(tests) & (tot["eval"] == ev)]
        cols[ev] = sel.groupby("lam").agg(bpp=("bpp_real", "mean"), psnr=("psnr", "mean"))
    lams = sorted(set().union(*[set(c.index) for c in cols.values()]))
    table = {"λ": [f"{lam:g}" for lam in lams]}
    for name, c in cols.items():
        c = c.reindex(lams)
        table[f"{name} bpp"] = [f"{v:.4f}" for v in c["bpp"]]
        table[f"{name} PSNR"] = [f"{v:.2f}" for v in c["psnr"]]
    return "Per-λ points (total, real bits; mean over all eval images and seeds):\n\n" + markdown_table(
        pd.DataFrame(table)
    )


def _option_keys(heads: list[pd.Series]) -> list[str]:
    """The seed-group keys whose values tell the configurations apart."""
    keys = [k for k in SEED_GROUP if len({str(h.get(k, "")) for h in heads}) > 1]
    others = [k for k in keys if k != "variant"]
    if (
        "variant" in keys
        and others
        and len({tuple(str(h.get(k, "")) for k in others) for h in heads}) == len(heads)
    ):
        keys = others  # the other keys already tell the configurations apart
    return keys


def _option(h: pd.Series, key: str) -> str:
    return f"{key} {h.get(key, '') or '—'}" if key != "variant" else str(h.get(key) or "default")


def _option_labels(heads: list[pd.Series]) -> list[str]:
    """What tells the configurations apart: the seed-group keys that vary among them."""
    keys = _option_keys(heads)
    if not keys:
        return [_label(h) for h in heads]
    return [" · ".join(_option(h, k) for k in keys) for h in heads]


#: at most this many one-option pairs are compared head to head on a page (each is bootstrapped)
MAX_PAIRS = 12


def option_pairs(
    rows: pd.DataFrame, groups: Sequence[Sequence[str]], rate: str = "bpp_real", bootstrap: int = 1000
) -> str:
    """Every two configurations that differ in one option only, head to head: the ablation's own
    question (frozen vs joint at each chain length, shared vs separate transforms per mixer, ...).

    A markdown table (the option, the two values, what the pair shares, the second value's coded
    chain against the first's on the same images with its 95 % interval) and its note; "" when no
    two configurations differ in one option, or more than :data:`MAX_PAIRS` pairs do.
    """
    clean = clean_rows(rows)
    groups = [[str(c) for c in g] for g in groups]
    heads = [clean[clean["curve"].astype(str) == g[0]].iloc[0] for g in groups]
    keys = _option_keys(heads)
    values = [{k: _option(h, k) for k in keys} for h in heads]
    pairs = []
    for i, j in itertools.combinations(range(len(groups)), 2):
        differ = [k for k in keys if values[i][k] != values[j][k]]
        if len(differ) == 1:
            pairs.append((i, j, differ[0]))
    pairs.sort(key=lambda p: keys.index(p[2]))  # one option's pairs together
    if not pairs or len(pairs) > MAX_PAIRS:
        return ""
    table: dict[str, list[str]] = {"option": [], "against": [], "where": [], "head to head (total)": []}
    for i, j, k in pairs:
        h2h = head_to_head(rows, groups[i], groups[j], rate, bootstrap)
        table["option"].append(values[j][k])
        table["against"].append(values[i][k])
        table["where"].append(" · ".join(values[i][o] for o in keys if o != k) or "—")
        table["head to head (total)"].append(_fmt(h2h))
    note = (
        "Each line: the first option's coded chains against the second's, on the same eval images "
        "(the conditioned ones both share, or all when their chains differ), seeds paired; BD-rate "
        "of the total, %, negative = the first option codes smaller, [95 % interval over seeds and "
        'images], * = excludes 0. The two share everything else ("where").'
    )
    return markdown_table(pd.DataFrame(table)) + "\n\n" + note


def _total(fig: pd.DataFrame | None, comp: str = "total") -> tuple[float, float, float, str]:
    """(value, low, high, how) of one component: the BD-rate, or the same-λ change without one."""
    if fig is None:
        return math.nan, math.nan, math.nan, ""
    r = fig.set_index("component").loc[comp]
    if np.isfinite(r["bd"]):
        return float(r["bd"]), float(r.get("bd_low", math.nan)), float(r.get("bd_high", math.nan)), ""
    return (
        float(r["same_lam"]),
        float(r.get("same_low", math.nan)),
        float(r.get("same_high", math.nan)),
        " (same λ)",
    )


def _fmt(t: tuple[float, float, float, str]) -> str:
    return _pct(*t[:3]) + t[3]


def _significant(t: tuple[float, float, float, str]) -> bool:
    return bool(np.isfinite(t[1]) and (t[2] < 0 or t[1] > 0))


def ablation_answer(
    rows: pd.DataFrame, groups: Sequence[Sequence[str]], bootstrap: int = 1000, rate: str = "bpp_real"
) -> str:
    """Which of several configurations (each trained with several seeds) uses the neighbour best.

    Two or three sentences, then one table with a line per configuration: the neighbour's content
    (true vs shuffled references), the zero-mixer control, the step-matched anchor and the
    baseline, BD-rate of the total with 95 % intervals over seeds and images (y and z of the
    content gain beside it), best first. The winner is compared head to head with the runner-up
    (the two conditioned chains on the same images, seeds paired), and the winner's saving over
    the baseline is attributed to training budget, capacity or the neighbour's content.
    """
    clean = clean_rows(rows)
    groups = [[str(c) for c in g] for g in groups]
    heads = [clean[clean["curve"].astype(str) == g[0]].iloc[0] for g in groups]
    labels = _option_labels(heads)
    figs = [comparisons(rows, g, rate, bootstrap) for g in groups]
    content = [_total(f.get("content")) for f in figs]
    order = sorted(range(len(groups)), key=lambda i: (not np.isfinite(content[i][0]), content[i][0]))
    table: dict[str, list[str]] = {
        k: []
        for k in (
            "configuration",
            "content gain (total)",
            "content y",
            "content z",
            "vs zero control",
            "vs step-matched",
            "vs baseline",
            "seeds",
        )
    }
    for i in order:
        f = figs[i]
        table["configuration"].append(labels[i])
        table["content gain (total)"].append(_fmt(content[i]))
        table["content y"].append(_fmt(_total(f.get("content"), "y")))
        table["content z"].append(_fmt(_total(f.get("content"), "z")))
        table["vs zero control"].append(_fmt(_total(f.get("zero"))))
        table["vs step-matched"].append(_fmt(_total(f.get("matched"))))
        table["vs baseline"].append(_vs_baseline(rows, f.get("baseline"), heads[i]))
        seeds = clean.loc[clean["curve"].astype(str).isin(groups[i]), "seed"].unique()
        table["seeds"].append(str(len(seeds)))
    best, runner = order[0], order[1]
    sentences = []
    if _significant(content[best]) and content[best][0] < 0:
        sentences.append(
            f"**{labels[best]} uses the neighbour best: its content saves "
            f"{_pct(-content[best][0], -content[best][2], -content[best][1], signed=False)}"
            f"{content[best][3]} of the total rate** (true vs shuffled references, BD-rate, "
            "95 % interval over seeds and images)"
        )
    else:
        finite = [c[0] for c in content if np.isfinite(c[0])] or [math.nan]
        lo, hi = min(finite), max(finite)
        sentences.append(
            f"**No configuration shows a content gain whose interval excludes 0** (true vs shuffled "
            f"references, BD-rate of the total; {_pct(lo, signed=True)} … {_pct(hi)} over the "
            f"{len(groups)} configurations); the best, {labels[best]}, {_fmt(content[best])}"
        )
    matched_best = _total(figs[best].get("matched"))
    if np.isfinite(matched_best[0]):
        net = "a net saving" if _significant(matched_best) and matched_best[0] < 0 else "no net saving shown"
        sentences[-1] += (
            f"; against the step-matched anchor (the unconditioned codec trained as long) it is "
            f"{_fmt(matched_best)}: {net}"
        )
    h2h = head_to_head(rows, groups[runner], groups[best], rate, bootstrap)
    sentences[-1] += (
        f"; next {labels[runner]}, {_fmt(content[runner])}. Head to head, {labels[best]}'s coded "
        f"chain costs {_fmt(h2h)} against {labels[runner]}'s on the same images "
        + ("(a difference)." if _significant(h2h) else "(no difference shown).")
    )
    base = [_total(f.get("baseline")) for f in figs]
    top = min(
        (i for i in range(len(groups)) if np.isfinite(base[i][0])), key=lambda i: base[i][0], default=None
    )
    if top is not None:
        matched, zero = _total(figs[top].get("matched")), _total(figs[top].get("zero"))
        verdict = ""
        if not np.isfinite(matched[0]) and not np.isfinite(zero[0]):
            sentences.append(
                f"The largest saving against the baseline is {labels[top]}'s {_fmt(base[top])}; run "
                "without the step-matched anchor and zero control, this page cannot split it into "
                "training budget, capacity and content."
            )
        elif _significant(zero) and zero[0] < 0:
            verdict = "the neighbour's content is part of it"
        elif _significant(matched) and matched[0] < 0:
            verdict = "it is capacity (extra layers), not the neighbour"
        else:
            verdict = "it is training budget, not the neighbour"
        if np.isfinite(matched[0]) or np.isfinite(zero[0]):
            sentences.append(
                f"Of the largest saving against the baseline, {labels[top]}'s {_fmt(base[top])}, "
                f"{_fmt(matched)} remains against the step-matched anchor (the rest is training budget) "
                f"and {_fmt(zero)} against the zero-mixer control (the rest is capacity): {verdict}."
            )
    note = (
        "Each line pools a configuration's training seeds; BD-rate (PCHIP, real bits, %; negative = "
        "saving) of the conditioned chain on its conditioned images against each reference, "
        '[95 % interval resampling seeds and images], * = excludes 0; "(same λ)": the rate change '
        "at equal λ where a BD-rate cannot be had. Best content gain first. The head-to-head figure "
        "compares the two configurations' chain evaluations directly (conditioned images both share, "
        "or all eval images when their chains differ). A figure without an interval: too many "
        "resamples gave no BD-rate."
    )
    why = unconverged(clean, [str(h.get("anchor_curve", "")) for h in heads])
    if why:
        note += f" Against the baseline: {why}."
    out = " ".join(sentences) + "\n\n" + markdown_table(pd.DataFrame(table)) + "\n\n" + note
    pairs = option_pairs(rows, groups, rate, bootstrap)
    if pairs:
        out += "\n\n**Option against option** (configurations that differ in one option only):\n\n" + pairs
    return out


def head_to_head(
    rows: pd.DataFrame,
    anchor: Sequence[str],
    test: Sequence[str],
    rate: str = "bpp_real",
    bootstrap: int = 1000,
) -> tuple[float, float, float, str]:
    """BD-rate of one configuration's chain evaluation against another's, seeds paired in order,
    on the conditioned images both share (all eval images where their chains differ)."""
    clean = clean_rows(rows)
    chain = clean[clean["eval"] == "chain"]

    def side(curve: str) -> pd.DataFrame:
        return chain[chain["curve"].astype(str) == str(curve)]

    def conditioned(curves: Sequence[str]) -> set:
        sel = chain[chain["curve"].astype(str).isin([str(c) for c in curves])]
        return set(sel.loc[sel["position"] >= 2, "image"]) if "position" in sel else set()

    ca, ct = conditioned(anchor), conditioned(test)
    images = sorted(ca) if ca and ca == ct else None
    pairs = [(side(a), side(t)) for a, t in zip(anchor, test)]
    return _total(pooled_compare(pairs, rate, bootstrap=bootstrap, images=images))


def contrast_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows a contrast page needs: the chain and shuffled evaluations of every configuration
    trained with several seeds, and the evaluations of the references they are compared with."""
    keys = [c for c in ("run_id", "eval", "image", "component") if c in rows]
    rows = rows.drop_duplicates(subset=keys) if keys else rows  # pages share curves
    clean = clean_rows(rows)
    tests = {c for g in seed_groups(rows) for c in g}
    mine = clean[clean["curve"].astype(str).isin(tests)]
    refs = {str(c) for c in mine[["anchor_curve", "matched_curve", "control_curve"]].stack().unique() if c}
    keep = (clean["curve"].astype(str).isin(tests) & clean["eval"].isin(["chain", "shuffled"])) | (
        clean["curve"].astype(str).isin(refs) & clean["eval"].isin(["chain", "alone"])
    )
    cols = [c for c in rows.columns if c not in CONTRAST_DROPS]
    return rows.loc[keep[keep].index, cols]


#: columns a contrast page does not read (keeps its committed rows small)
CONTRAST_DROPS = (
    "bpp_est",
    "bpp_stream",
    "ms_ssim",
    "label",
    "code",
    "date",
    "params",
    "train_seconds",
    "threads",
    "q_dist_ratio",
    "q_neighbour_dist",
    "q_random_dist",
    "q_same_class",
    "n_eval",
)


def contrast_markdown(rows: pd.DataFrame, command: str, bootstrap: int = 1000, rate: str = "bpp_real") -> str:
    """One page: the neighbour's content on every dataset in ``rows``, positive control beside real
    data, so that "it is not better" can be told to be a property of the data or of the method."""
    clean = clean_rows(rows)
    groups = seed_groups(rows)
    lines = []
    best: dict[str, tuple[float, str, str]] = {}
    pairs: dict[str, list[tuple[str, str]]] = {}  # one configuration (ordering aside) on several datasets
    for g in groups:
        head = clean[clean["curve"].astype(str) == g[0]].iloc[0]
        figs = comparisons(rows, g, rate, bootstrap)
        content = _total(figs.get("content"))
        n = int(figs["content"]["n_images"].iloc[0]) if "content" in figs else 0
        dataset = str(head["dataset"])
        label = _label(head)
        lines.append(
            {
                "dataset": dataset,
                "tile": f"{_num(head.get('tile', ''))} px",
                "configuration": label,
                "content gain (total)": _fmt(content),
                "content y": _fmt(_total(figs.get("content"), "y")),
                "content z": _fmt(_total(figs.get("content"), "z")),
                "vs zero control": _fmt(_total(figs.get("zero"))),
                "vs baseline": _vs_baseline(rows, figs.get("baseline"), head),
                "seeds": str(len(g)),
                "images": str(n),
                "_v": content[0],
            }
        )
        words = [str(head.get(k, "")) for k in ("codec", "mixer", "sites", "variant") if head.get(k, "")]
        key = " · ".join(words) + f" · L={_num(head.get('chain', ''))}"
        where = f"{_num(head.get('tile', ''))} px, {head.get('ordering', '')}"
        pairs.setdefault(key, []).append((dataset, f"{dataset} ({where}) {_fmt(content)}"))
        if np.isfinite(content[0]) and (dataset not in best or content[0] < best[dataset][0]):
            best[dataset] = (content[0], label, _fmt(content))
    table = pd.DataFrame(lines).sort_values(["dataset", "_v"], kind="stable") if lines else pd.DataFrame()
    said = []
    for dataset, (_, label, fig) in sorted(best.items()):
        said.append(f"on **{dataset}** the best is {label}: {fig}")
    parts = [
        HEADER_CONTRAST,
        "# The neighbour's content: positive control beside real data",
        "The content gain of each configuration trained with several seeds (the same models coding "
        "their chains with true vs shuffled references; BD-rate of the conditioned images, %, "
        "negative = saving, [95 % interval over seeds and images], * = excludes 0), per dataset. "
        "A dataset whose neighbours certainly share content (`shifted`: each tile its neighbour "
        "moved 4 px) shows what the method can find; the others show what it finds.",
        f"Regenerate: `{command}`",
        ("Best content gain per dataset: " + "; ".join(said) + ".")
        if said
        else "No configuration with seeds.",
    ]
    shared = [
        f"{key}: " + ", ".join(text for _, text in v)
        for key, v in sorted(pairs.items())
        if len({d for d, _ in v}) > 1
    ]
    if shared:
        parts.append("The same configuration on several datasets: " + "; ".join(shared) + ".")
    if not table.empty:
        parts.append(markdown_table(table.drop(columns="_v")))
    parts.append(
        '"(same λ)": the rate change at equal λ where a BD-rate cannot be had. "vs zero control": '
        "the same architecture fed an all-zero reference (the conservative figure: a model trained "
        "on true neighbours is misled by a random one, so shuffled references can overstate the "
        "neighbour's worth). Each configuration's own page holds its step-matched anchor and tables."
    )
    return "\n\n".join(parts) + "\n"


HEADER_CONTRAST = "<!-- generated by acbench leaderboard --contrast; do not edit by hand -->"
