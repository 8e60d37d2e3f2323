"""The long rows' columns, spelled once (one row per run × image × component × eval variant).

A leaf module: the store (which columns are ids), the jobs (which labels every row of a run
carries), the analysis (which columns describe a curve) and the synthetic rows of the tests all
read these tuples instead of listing columns of their own.
"""

from __future__ import annotations

#: run and curve ids: hex strings, kept as strings when read back ("12e345678901" is not a number)
ID_COLUMNS = ("run_id", "curve", "anchor_curve", "matched_curve", "control_curve")

#: what a run is: the same on each of its rows (after ``run_id``)
LABEL_COLUMNS = (
    "curve",
    "anchor_curve",
    "matched_curve",
    "control_curve",
    "kind",
    "dataset",
    "tile",
    "codec",
    "ordering",
    "mixer",
    "sites",
    "variant",
    "chain",
    "structure",
    "lam",
    "seed",
    "steps",
)

#: conditional settings that have no column of their own, at their defaults; a run that departs
#: from one says so in its ``variant`` label, the words after each setting
VARIANTS = (
    ("baseline", "frozen", "joint baseline"),
    ("shared_transforms", False, "shared transforms"),
    ("reference", "latents", "reference {}"),
    ("warm_start", True, "cold start"),
)


def variant(record: dict) -> str:
    """The ``variant`` label of a run from its ``config.json`` record: its departures from the
    defaults of :data:`VARIANTS`, joined by ", " ("" for the paper's setup and for baselines)."""
    if record.get("kind") != "conditional":
        return ""
    words = []
    for key, default, text in VARIANTS:
        value = record.get(key, default)
        if value != default:
            words.append(text.format(value))
    return ", ".join(words)


#: when and with what code a run ran (not part of what it measured)
STAMP_COLUMNS = ("code", "date")

#: the trained model: parameters, wall seconds, convergence figure, training threads
MODEL_COLUMNS = ("params", "train_seconds", "convergence", "threads")

#: one coded image
IMAGE_COLUMNS = (
    "eval",
    "image",
    "label",
    "chain_id",
    "position",
    "component",
    "bpp_est",
    "bpp_real",
    "bpp_stream",  # share of its chain's single rANS stream; absent from rows made before it
    "psnr",
    "ms_ssim",
)

#: the columns that describe a curve in tables (beside its ids): its labels but λ, its size, its
#: number of eval images
_CURVE_LABELS = LABEL_COLUMNS[LABEL_COLUMNS.index("dataset") :]
DESCRIPTIVE = (*(c for c in _CURVE_LABELS if c != "lam"), "params", "n_eval")
