"""Rate-distortion plots (as Figure 3 of Xu et al., 2023): one panel per component."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from acbench.analysis.attribution import zero_labels
from acbench.analysis.bdrate import clean_rows, curve_points

PANELS = ("y", "z", "total")


def _curves(rows: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """(label, curve, eval, kind) of each curve to draw, baselines first, in a stable order.

    Step-matched anchors count as baselines (grey, dashed), labelled with the chain lengths of
    the curves they serve; zero-mixer controls are labelled with the mixer they control.
    """
    base = rows[(rows["kind"] == "baseline") & (rows["eval"] == "alone")]
    anchors = rows[(rows["kind"] == "anchor") & (rows["eval"] == "alone")]
    cond = rows[(rows["kind"] == "conditional") & (rows["eval"] == "chain")]
    out = []
    bases = sorted(base["curve"].unique())
    for c in bases:
        steps = base.loc[base["curve"] == c, "steps"].max() if "steps" in base else None
        label = "baseline" if len(bases) == 1 else f"baseline ({steps} steps)"
        out.append((label, c, "alone", "baseline"))
    keyed_anchors = []
    for c in anchors["curve"].unique():
        served = cond.loc[cond["matched_curve"] == c, "chain"] if "matched_curve" in cond else []
        lengths = ", ".join(str(int(v)) for v in sorted(set(served)))
        label = "step-matched anchor" + (f" (L={lengths})" if lengths else f" {c}")
        keyed_anchors.append((label, str(c), "alone", "baseline"))
    out += sorted(keyed_anchors)
    zero = zero_labels(rows)
    keyed = []
    one_site = cond["sites"].nunique() <= 1 if "sites" in cond else True
    for c in cond["curve"].unique():
        r = cond[cond["curve"] == c].iloc[0]
        parts = [str(r["ordering"]), zero.get(str(c), str(r["mixer"]))]
        if not one_site and r.get("sites", ""):
            parts.append(str(r["sites"]))
        label = " · ".join(parts) + f" · L={int(r['chain'])}"
        if "seed" in cond and cond["seed"].nunique() > 1:
            label += f" · seed {r['seed']}"
        keyed.append((label, str(c), "chain", "conditional"))
    return out + sorted(keyed)


def rd_plot(rows: pd.DataFrame, path: str | Path, codec: str, rate: str = "bpp_real") -> Path:
    """Draw rate (log x axis) against PSNR for y, z and total; baseline and conditioned curves.

    Args:
        rows: Long rows (one dataset and tile; failed runs are ignored).
        path: PNG file to write.
        codec: Codec whose curves are drawn.
        rate: ``"bpp_real"`` or ``"bpp_est"``.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib import ticker

    path = Path(path)
    rows = clean_rows(rows)
    rows = rows[rows["codec"] == codec] if "codec" in rows else rows
    curves = _curves(rows)
    n_cond = sum(kind == "conditional" for *_, kind in curves)
    palette = iter(sns.color_palette("colorblind", max(n_cond, 1)))
    greys = iter(sns.color_palette("Greys_r", max(len(curves) - n_cond, 1) + 1))
    colors = [next(greys) if kind == "baseline" else next(palette) for *_, kind in curves]
    with plt.rc_context({"svg.hashsalt": "acbench", "font.size": 8}):
        fig, axes = plt.subplots(1, len(PANELS), figsize=(11, 3.4), dpi=100)
        for ax, comp in zip(axes, PANELS, strict=True):
            for i, (label, curve, ev, kind) in enumerate(curves):
                sel = rows[(rows["curve"] == curve) & (rows["eval"] == ev)]
                pts = curve_points(sel, comp, rate=rate).sort_values("bpp")
                if pts.empty:
                    continue
                base = kind == "baseline"
                ax.plot(
                    pts["bpp"],
                    pts["psnr"],
                    marker="o",
                    ms=3,
                    lw=1.6 if base else 1.0,
                    color=colors[i],
                    ls="--" if base else "-",
                    label=label,
                    zorder=3 if base else 2,
                )
            ax.set_xscale("log")
            # a rate range of less than a decade would get overlapping scientific minor labels
            ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=4))
            ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))
            ax.xaxis.set_minor_locator(ticker.NullLocator())
            ax.set_title(f"{comp}")
            ax.set_xlabel(f"{comp} rate ({rate}, bits per pixel)")
            ax.grid(True, which="both", lw=0.3, alpha=0.5)
        axes[0].set_ylabel("PSNR (dB, RGB)")
        fig.suptitle(f"{codec}: rate-distortion per component")
        fig.tight_layout()
        handles, labels = axes[-1].get_legend_handles_labels()
        if handles:
            fig.legend(
                handles,
                labels,
                loc="upper center",
                ncol=min(len(labels), 3),
                frameon=False,
                bbox_to_anchor=(0.5, 0.0),
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, metadata={"Software": None}, bbox_inches="tight")
        plt.close(fig)
    return path
