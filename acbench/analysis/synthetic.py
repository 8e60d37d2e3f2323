"""Synthetic long rows with known savings, for tests, demos and benchmarks of the analysis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from acbench.schema import LABEL_COLUMNS

LAMS = (0.0018, 0.0035, 0.0067, 0.013, 0.025)
SITES = "hyper_analysis,hyper_synthesis"
BUDGET = {"y": 0.03, "z": 0.10}
CAPACITY = {"y": 0.01, "z": 0.03}


def _chains(n: int, length: int) -> list[list[int]]:
    return [list(range(s, min(s + length, n))) for s in range(0, n, length)]


def synthetic_rows(
    n_images: int = 10,
    lams: Sequence[float] = LAMS,
    chains: Sequence[int] = (2, 4),
    orderings: Sequence[str] = ("isomap",),
    mixers: Sequence[str] = ("film",),
    saving: Mapping[str, float] | None = None,
    evals: Sequence[str] = ("chain", "full", "shuffled"),
    dataset: str = "synthetic",
    codec: str = "mshp",
    tile: int = 128,
    steps: int = 1000,
    seed: int = 0,
    controls: bool = False,
    budget: Mapping[str, float] | None = None,
    capacity: Mapping[str, float] | None = None,
    shuffled_keep: float = 0.2,
    noise: float = 0.0,
    seeds: Sequence[int] = (0,),
) -> pd.DataFrame:
    """Long rows of one baseline curve and conditional curves with a known saving.

    Every conditioned image (chain position >= 2) costs ``1 - saving[component]`` times its
    baseline rate at the same PSNR with the first ordering and mixer (each later ordering keeps
    25 % less of it, each later mixer 15 % less, ``zero`` none); shuffled references keep
    ``shuffled_keep`` of the saving, one chain through the whole set a little more.
    Image-to-image variation is lognormal.

    With ``controls`` the rows also hold what the runner adds for fair comparisons: a
    step-matched anchor per chain length (kind ``anchor``, every image ``1 - budget`` times its
    baseline rate), a ``zero``-mixer control per ordering × mixer × chain length (conditioned
    images ``(1 - budget)(1 - capacity)`` times the baseline), the ``matched_curve`` and
    ``control_curve`` columns, and every conditioned image of every conditional curve carries
    the budget and capacity factors too, so that the saving vs baseline splits into known parts.

    Args:
        n_images: Eval images.
        lams: λ list of every curve.
        chains: Trained chain lengths (one curve each per ordering × mixer).
        orderings: Ordering names.
        mixers: Mixer names (``zero`` gets no saving).
        saving: Relative saving of ``y`` and ``z`` on conditioned images due to the neighbour.
        evals: Eval variants of the conditional curves.
        dataset: Dataset name.
        codec: Codec name.
        tile: Tile size in px.
        steps: Training steps.
        seed: Seed of the image variation.
        controls: Also emit step-matched anchors and zero-mixer controls (see above).
        budget: Saving of the step-matched anchor over the baseline (with ``controls``).
        capacity: Saving of the zero-mixer control over the anchor (with ``controls``).
        shuffled_keep: Fraction of ``saving`` kept with shuffled references (0: the reference's
            content is all that helps, e.g. a copy of the image; 1: its content does not
            matter, e.g. independent noise).
        noise: Standard deviation of a lognormal factor on the rates of the conditioned images,
            drawn per curve, eval variant and image (constant over λ): per-image noise that
            differs between evaluations.
        seeds: Training seeds; with several, one curve per seed (``-s<seed>`` appended to its
            id) whose neighbour saving varies by about 10 % from seed to seed.

    Returns:
        Long rows in the schema of ``docs/architecture.md``.
    """
    saving = dict(saving or {"y": 0.04, "z": 0.12})
    budget = dict(budget or BUDGET) if controls else {"y": 0.0, "z": 0.0}
    capacity = dict(capacity or CAPACITY) if controls else {"y": 0.0, "z": 0.0}
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0.0, 0.25, n_images))
    zfrac = np.clip(rng.normal(0.08, 0.02, n_images), 0.02, 0.2)
    offset = rng.normal(0.0, 1.0, n_images)
    labels = rng.integers(0, 3, n_images)
    noise_rng = np.random.default_rng([seed, 1])
    seed_rng = np.random.default_rng([seed, 2])
    seed_gain = {s: 1.0 + (0.1 * seed_rng.normal() if len(seeds) > 1 else 0.0) for s in seeds}
    lams = sorted(lams)
    mid = lams[len(lams) // 2]
    base_curve = f"base-{codec}-{tile}"
    common = {
        "dataset": dataset,
        "tile": tile,
        "codec": codec,
        "steps": steps,
        "n_eval": n_images,
        "error": "",
    }
    no_q = {"q_neighbour_dist": np.nan, "q_random_dist": np.nan, "q_dist_ratio": np.nan}
    no_q["q_same_class"] = np.nan

    def bits(img: int, lam: float, factor: Mapping[str, float]) -> dict[str, tuple[float, float]]:
        total = scale[img] * 0.45 * (lam / mid) ** 0.45
        y, z = total * (1 - zfrac[img]) * factor["y"], total * zfrac[img] * factor["z"]
        real = {"y": y, "z": z, "total": y + z}
        return {c: (0.985 * r, r) for c, r in real.items()}

    def emit(meta: dict, img: int, lam: float, cid: int, pos: int, factor: Mapping[str, float]):
        psnr = 31.0 + 3.2 * np.log2(lam / mid) + offset[img]
        for comp, (est, real) in bits(img, lam, factor).items():
            yield {
                **meta,
                "lam": lam,
                "image": img,
                "label": int(labels[img]),
                "chain_id": cid,
                "position": pos,
                "component": comp,
                "bpp_est": est,
                "bpp_real": real,
                "psnr": psnr,
                "ms_ssim": np.nan,
            }

    def links(anchor: str = "", matched: str = "", control: str = "") -> dict[str, str]:
        out = {"anchor_curve": anchor}
        if controls:
            out.update(matched_curve=matched, control_curve=control)
        return out

    out = []
    one = {"y": 1.0, "z": 1.0}
    for lam in lams:
        meta = {
            "run_id": f"run-base-{lam:g}",
            "curve": base_curve,
            **links(base_curve),
            "kind": "baseline",
            "ordering": "",
            "mixer": "",
            "sites": "",
            "chain": 1,
            "seed": 0,
            "params": 1_000_000,
            "eval": "alone",
            **common,
            **no_q,
        }
        for img in range(n_images):
            out.extend(emit(meta, img, lam, img, 1, one))
    trained = {c: (1 - budget[c]) * (1 - capacity[c]) for c in ("y", "z")}
    if controls:
        for length in chains:
            anchor = f"anchor-{codec}-{tile}-L{length}"
            fac = {c: 1 - budget[c] for c in ("y", "z")}
            for lam in lams:
                meta = {
                    "run_id": f"run-{anchor}-{lam:g}",
                    "curve": anchor,
                    **links(base_curve),
                    "kind": "anchor",
                    "ordering": "",
                    "mixer": "",
                    "sites": "",
                    "chain": 1,
                    "seed": 0,
                    "params": 1_000_000,
                    "eval": "alone",
                    **common,
                    **no_q,
                }
                for img in range(n_images):
                    out.extend(emit(meta, img, lam, img, 1, fac))
    for oi, ordering in enumerate(orderings):
        q = {
            "q_neighbour_dist": 0.6 + 0.1 * oi,
            "q_random_dist": 1.0,
            "q_dist_ratio": 0.6 + 0.1 * oi,
            "q_same_class": 0.7 - 0.1 * oi,
        }
        family: list[tuple[str, int, str]] = []  # (mixer name, mixer index, controlled mixer)
        for mi, mixer in enumerate(mixers):
            family.append((mixer, mi, ""))
        if controls:
            family += [("zero", -1, m) for m in mixers if m != "zero"]
        for mixer, mi, like in family:
            for length in chains:
                for s in seeds:
                    tag = f"-s{s}" if len(seeds) > 1 else ""
                    name = f"zero~{like}" if like else mixer
                    curve = f"{codec}-{ordering}-{name}-L{length}{tag}"
                    control = ""
                    if controls and mixer != "zero":
                        control = f"{codec}-{ordering}-zero~{mixer}-L{length}{tag}"
                    matched = f"anchor-{codec}-{tile}-L{length}" if controls else ""
                    for ev in evals:
                        k = {"chain": 1.0, "full": 1.2, "shuffled": shuffled_keep}.get(ev, 1.0)
                        k *= 0.0 if mixer == "zero" else (1 - 0.25 * oi) * (1 - 0.15 * mi)
                        k *= seed_gain[s]
                        fac = {c: trained[c] * (1 - k * saving[c]) for c in ("y", "z")}
                        jitter = (
                            np.exp(noise_rng.normal(0.0, noise, n_images)) if noise > 0 else np.ones(n_images)
                        )
                        for lam in lams:
                            meta = {
                                "run_id": f"run-{curve}-{lam:g}",
                                "curve": curve,
                                **links(base_curve, matched, control),
                                "kind": "conditional",
                                "ordering": ordering,
                                "mixer": mixer,
                                "sites": SITES,
                                "chain": length,
                                "seed": s,
                                "params": 1_000_000 + 5_000 * length,
                                "eval": ev,
                                **common,
                                **q,
                            }
                            span = n_images if ev == "full" else length
                            for cid, chain in enumerate(_chains(n_images, span)):
                                for pos, img in enumerate(chain, start=1):
                                    f = one
                                    if pos > 1:
                                        f = {c: fac[c] * jitter[img] for c in fac}
                                    out.extend(emit(meta, img, lam, cid, pos, f))
    return pd.DataFrame(out)


def failed_row(rows: pd.DataFrame, curve: str, error: str, lam: float | None = None) -> dict:
    """The one row a failed run leaves (as ``jobs.record_failure``), for a curve of ``rows``.

    Args:
        rows: Rows that hold ``curve`` (its labels are copied).
        curve: The curve whose run failed.
        error: The reason.
        lam: The λ of the failed run (the curve's first λ when ``None``).
    """
    sel = rows[rows["curve"] == curve]
    if sel.empty:
        raise KeyError(f"no rows for curve {curve!r}")
    first = sel.iloc[0]
    lam = float(sel["lam"].min()) if lam is None else lam
    keep = [c for c in LABEL_COLUMNS if c != "lam"]
    row = {c: first[c] for c in keep if c in sel}
    return {"run_id": f"run-{curve}-{lam:g}", **row, "lam": lam, "params": np.nan, "error": error}
