"""Export curves in CompressAI's results format, for plotting beside published codecs."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from acbench.analysis.bdrate import clean_rows


def compressai_json(
    rows: pd.DataFrame,
    curve: str,
    eval: str | None = None,  # noqa: A002
    rate: str = "bpp_real",
    component: str = "total",
) -> dict[str, Any]:
    """One curve as CompressAI's ``results`` JSON (as ``compressai.utils.eval_model`` writes).

    Args:
        rows: Long rows (failed runs are ignored).
        curve: ``curve`` id.
        eval: Eval variant; ``"alone"`` for a baseline, ``"chain"`` for a conditional curve
            when ``None``.
        rate: ``"bpp_real"`` or ``"bpp_est"``.
        component: Rate component (``"total"`` matches CompressAI's ``bpp``).

    Returns:
        ``{"name", "description", "results": {"bpp", "psnr-rgb", "ms-ssim-rgb", "lmbda"}}``,
        lists sorted by λ, means over eval images; a missing MS-SSIM is ``None``.
    """
    rows = clean_rows(rows)
    sel = rows[rows["curve"] == curve]
    if sel.empty:
        raise KeyError(f"no rows for curve {curve!r}")
    first = sel.iloc[0]
    kind = str(first.get("kind", ""))
    if eval is None:
        eval = "alone" if kind == "baseline" else "chain"
    sel = sel[(sel["eval"] == eval) & (sel["component"] == component)]
    agg = sel.groupby("lam", sort=True).agg(
        bpp=(rate, "mean"), psnr=("psnr", "mean"), msssim=("ms_ssim", "mean")
    )

    def clean(xs: pd.Series) -> list[float | None]:
        return [None if math.isnan(float(v)) else float(v) for v in xs]

    if kind == "baseline":
        name = f"{first.get('codec', '')} (baseline)"
    else:
        parts = (first.get(k, "") for k in ("codec", "ordering", "mixer"))
        name = " ".join(str(p) for p in parts) + f" L={first.get('chain', '')}"
    desc = (
        f"acbench curve {curve}, eval {eval}, dataset {first.get('dataset', '')}, "
        f"{first.get('tile', '')}-px tiles, sites {first.get('sites', '') or 'none'}, "
        f"rate {rate} ({component})"
    )
    return {
        "name": name,
        "description": desc,
        "results": {
            "bpp": clean(agg["bpp"]),
            "psnr-rgb": clean(agg["psnr"]),
            "ms-ssim-rgb": clean(agg["msssim"]),
            "lmbda": [float(v) for v in agg.index],
        },
    }
