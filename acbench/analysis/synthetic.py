"""Synthetic long rows with known savings, for tests, demos and benchmarks of the analysis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

LAMS = (0.0018, 0.0035, 0.0067, 0.013, 0.025)
SITES = "hyper_analysis,hyper_synthesis"


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
) -> pd.DataFrame:
    """Long rows of one baseline curve and conditional curves with a known saving.

    Every conditioned image (chain position >= 2) costs ``1 - saving[component]`` times its
    baseline rate at the same PSNR with the first ordering and mixer (each later ordering keeps
    25 % less of it, each later mixer 15 % less, ``zero`` none); shuffled references keep a
    fifth of the saving, one chain through the whole set a little more. Image-to-image
    variation is lognormal.

    Args:
        n_images: Eval images.
        lams: λ list of every curve.
        chains: Trained chain lengths (one curve each per ordering × mixer).
        orderings: Ordering names.
        mixers: Mixer names (``zero`` gets no saving).
        saving: Relative saving of ``y`` and ``z`` on conditioned images.
        evals: Eval variants of the conditional curves.
        dataset: Dataset name.
        codec: Codec name.
        tile: Tile size in px.
        steps: Training steps.
        seed: Seed of the image variation.

    Returns:
        Long rows in the schema of ``docs/architecture.md``.
    """
    saving = dict(saving or {"y": 0.04, "z": 0.12})
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0.0, 0.25, n_images))
    zfrac = np.clip(rng.normal(0.08, 0.02, n_images), 0.02, 0.2)
    offset = rng.normal(0.0, 1.0, n_images)
    labels = rng.integers(0, 3, n_images)
    lams = sorted(lams)
    mid = lams[len(lams) // 2]
    base_curve = f"base-{codec}-{tile}"
    common = {
        "dataset": dataset,
        "tile": tile,
        "codec": codec,
        "seed": 0,
        "steps": steps,
        "n_eval": n_images,
        "error": "",
    }

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

    out = []
    one = {"y": 1.0, "z": 1.0}
    for lam in lams:
        meta = {
            "run_id": f"run-base-{lam:g}",
            "curve": base_curve,
            "anchor_curve": base_curve,
            "kind": "baseline",
            "ordering": "",
            "mixer": "",
            "sites": "",
            "chain": 1,
            "params": 1_000_000,
            "eval": "alone",
            **common,
            "q_neighbour_dist": np.nan,
            "q_random_dist": np.nan,
            "q_dist_ratio": np.nan,
            "q_same_class": np.nan,
        }
        for img in range(n_images):
            out.extend(emit(meta, img, lam, img, 1, one))
    for oi, ordering in enumerate(orderings):
        q = {
            "q_neighbour_dist": 0.6 + 0.1 * oi,
            "q_random_dist": 1.0,
            "q_dist_ratio": 0.6 + 0.1 * oi,
            "q_same_class": 0.7 - 0.1 * oi,
        }
        for mi, mixer in enumerate(mixers):
            for length in chains:
                curve = f"{codec}-{ordering}-{mixer}-L{length}"
                for ev in evals:
                    k = {"chain": 1.0, "full": 1.2, "shuffled": 0.2}.get(ev, 1.0)
                    k *= 0.0 if mixer == "zero" else (1 - 0.25 * oi) * (1 - 0.15 * mi)
                    fac = {c: 1 - k * saving[c] for c in ("y", "z")}
                    for lam in lams:
                        meta = {
                            "run_id": f"run-{curve}-{lam:g}",
                            "curve": curve,
                            "anchor_curve": base_curve,
                            "kind": "conditional",
                            "ordering": ordering,
                            "mixer": mixer,
                            "sites": SITES,
                            "chain": length,
                            "params": 1_000_000 + 5_000 * length,
                            "eval": ev,
                            **common,
                            **q,
                        }
                        span = n_images if ev == "full" else length
                        for cid, chain in enumerate(_chains(n_images, span)):
                            for pos, img in enumerate(chain, start=1):
                                f = one if pos == 1 else fac
                                out.extend(emit(meta, img, lam, cid, pos, f))
    return pd.DataFrame(out)
