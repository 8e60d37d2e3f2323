"""Rate-oracle rates: a trained conditional codec's estimated bits of item j given item i.

For candidate pairs (a kNN graph of the features, :func:`acbench.orderings.oracle.candidate_pairs`)
each pair costs one forward pass of the conditional codec (eval mode: rounding, the estimate of
the rate, no entropy coding), batched; every item is also coded alone by the baseline, which
gives the reference states (the baseline's decoded latents of item i, as for a chain's first
image) and the cost of a root. O(N·k) forward passes in all.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acbench.codecs.base import ConditionalCodec, RefState, pad_to


def _bits(out: dict) -> torch.Tensor:
    return sum(torch.log(v).flatten(1).sum(1) for v in out["likelihoods"].values()) / -math.log(2)


@torch.inference_mode()
def pair_bits(
    first: ConditionalCodec,
    model: ConditionalCodec,
    pixels: np.ndarray,
    ref: np.ndarray,
    item: np.ndarray,
    batch: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """(bits of each ``item`` given ``ref``'s baseline state, bits of every image alone), estimated."""
    if model.reference != "latents":
        raise ValueError(f"the rate oracle takes reference='latents' models (got {model.reference!r})")
    first.eval()
    model.eval()
    dev = next(model.parameters()).device
    n = len(pixels)

    def x_of(idx: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(pixels[idx]).float().div_(255.0).to(dev)
        return pad_to(x, model.stride)[0]

    alone = np.empty(n)
    ys, zs = [], []
    for b0 in range(0, n, batch):
        out = first(x_of(np.arange(b0, min(n, b0 + batch))))
        alone[b0 : b0 + batch] = _bits(out).cpu().numpy()
        ys.append(out["ref"].y)
        zs.append(out["ref"].z)
    states = RefState(torch.cat(ys), torch.cat(zs))
    bits = np.empty(len(item))
    for b0 in range(0, len(item), batch):
        r, j = ref[b0 : b0 + batch], item[b0 : b0 + batch]
        out = model(x_of(j), states.index(torch.from_numpy(np.asarray(r, dtype=np.int64)).to(dev)))
        bits[b0 : b0 + batch] = _bits(out).cpu().numpy()
    return bits, alone


def oracle_report(
    first: ConditionalCodec,
    model: ConditionalCodec,
    pixels: np.ndarray,
    features: np.ndarray,
    structures: dict[str, tuple[np.ndarray, np.ndarray | None]],
    k: int = 5,
    length: int = 4,
    batch: int = 64,
    random_refs: int = 0,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """How close given structures come to the rate oracle of ``model`` on ``pixels``.

    Args:
        first: the baseline (roots, chain starts, reference states).
        model: the trained conditional codec whose estimated rates are the edge weights.
        pixels: uint8 [N, 3, H, W].
        features: [N, D] ordering features (the kNN candidate pairs come from them).
        structures: name → (coding order, parent or ``None`` for a chain along the order).
        k: candidate references per image.
        length: chains of ``length`` / forests cut at depth ``length`` (the ``*_L`` figures).
        random_refs: also this many random references per image as candidates (the oracle is
            optimal only over its candidates; random ones show what feature neighbours miss).
        seed: of the random references.

    Returns:
        name → ``rate`` (bits / bits of every image alone, one chain or the whole forest),
        ``rate_L`` (cut at ``length``), and ``share`` / ``share_L``: the fraction of the oracle
        tree's saving (1 − rate) it reaches. The oracle's own rows are ``oracle_chain`` and
        ``oracle_tree``. Every pair a structure uses is measured (not only the candidates), with
        the reference's *baseline* state (deeper references are the conditional codec's own
        decoded states in real coding: an approximation). As in :class:`Costs`, an image whose
        reference costs more than coding it alone counts as coded alone, for every structure.
    """
    from acbench.orderings.oracle import Costs, candidate_pairs, oracle_chain, oracle_tree
    from acbench.orderings.tree import bfs_order, cut

    n = len(pixels)
    ref, item = candidate_pairs(features, k)
    if random_refs > 0:
        rng = np.random.default_rng(seed)
        other = rng.integers(0, n - 1, size=(n, random_refs))
        other += other >= np.arange(n)[:, None]  # never the image itself
        ref = np.concatenate([ref, other.ravel()])
        item = np.concatenate([item, np.repeat(np.arange(n), random_refs)])
    extra = []
    for order, parent in structures.values():
        if parent is None:
            extra.append(np.stack([order[:-1], order[1:]]))
        else:
            child = np.flatnonzero(parent >= 0)
            extra.append(np.stack([parent[child], child]))
    pairs = np.unique(np.concatenate([np.stack([ref, item]), *extra], axis=1), axis=1)
    bits, alone = pair_bits(first, model, pixels, pairs[0], pairs[1], batch)
    # the oracle searches every measured pair: the candidates and the given structures' pairs,
    # so its tree is never costlier than any given chain or tree
    oracle_costs = Costs(n, pairs[0], pairs[1], bits, alone)
    total = float(alone.sum())
    starts = tuple(np.asarray(o) for o, p in structures.values() if p is None)
    chain = oracle_chain(oracle_costs, starts=starts)
    tree_parent = oracle_tree(oracle_costs)
    # the chain's jumps at dead ends leave the candidates: measure them too (at most N - 1 pairs)
    known = set((pairs[0] * n + pairs[1]).tolist())
    steps = zip(chain[:-1].tolist(), chain[1:].tolist())
    jumps = np.array([(a, b) for a, b in steps if a * n + b not in known])
    if len(jumps):
        more, _ = pair_bits(first, model, pixels, jumps[:, 0], jumps[:, 1], batch)
        pairs = np.concatenate([pairs, jumps.T], axis=1)
        bits = np.concatenate([bits, more])
    costs = Costs(n, pairs[0], pairs[1], bits, alone)
    all_structs = {
        **structures,
        "oracle_chain": (chain, None),
        "oracle_tree": (bfs_order(tree_parent), tree_parent),
    }
    out: dict[str, dict[str, float]] = {}
    for name, (order, parent) in all_structs.items():
        if parent is None:
            full, short = costs.chain(order), costs.chain(order, length)
        else:
            full, short = costs.tree(parent), costs.tree(cut(parent, order, length))
        out[name] = {"rate": full / total, "rate_L": short / total}
    best = 1 - out["oracle_tree"]["rate"]
    best_l = 1 - out["oracle_tree"]["rate_L"]
    for r in out.values():
        r["share"] = (1 - r["rate"]) / best if best > 0 else float("nan")
        r["share_L"] = (1 - r["rate_L"]) / best_l if best_l > 0 else float("nan")
    return out


ORACLE_ORDERINGS = ("random", "isomap", "greedy_chain", "class_label")


def measure_run(
    run_dir: Path,
    k: int = 5,
    random_refs: int = 0,
    orderings: tuple[str, ...] = ORACLE_ORDERINGS,
    batch: int = 64,
) -> dict[str, Any]:
    """:func:`oracle_report` of a finished conditional run on its eval split.

    The run's model and baseline give the rates; its ordering run's features (the same feature
    baseline) give the candidates; each of ``orderings`` is fitted on the train features and
    placed on the eval split as the pipeline does, as a chain and as a spanning tree rooted by it
    (``<name>+tree``). Read-only: nothing is written to the run.

    Returns:
        ``run_id``, ``n_eval``, ``chain`` (L), ``k``, ``random_refs``, ``seconds``, ``failed``
        (ordering → why it could not be fitted) and ``rows`` (structure → figures, as
        :func:`oracle_report`).
    """
    import json
    import time

    from acbench.codecs.base import load_codec
    from acbench.config import DataConfig, from_dict
    from acbench.data.cache import load_splits
    from acbench.features import embed
    from acbench.orderings.tree import SpanningTree
    from acbench.registry import ORDERINGS

    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    if cfg.get("kind") != "conditional":
        raise ValueError(f"{run_dir.name} is a {cfg.get('kind')!r} run; the oracle needs a conditional run")
    root = run_dir.parent
    ocfg = json.loads((root / cfg["ordering_run"] / "config.json").read_text())
    first, _ = load_codec(root / cfg["baseline_run"] / "model.pt")
    if cfg.get("baseline") == "joint":
        first, _ = load_codec(run_dir / "first.pt")
    model, _ = load_codec(run_dir / "model.pt")
    feat = None
    if ocfg.get("feature_baseline"):
        feat, _ = load_codec(root / ocfg["feature_baseline"] / "model.pt")
    train_set, _, eval_set = load_splits(from_dict(DataConfig, cfg["data"]))
    f_train = embed(train_set.pixels, ocfg["features"], feat)
    f_eval = embed(eval_set.pixels, ocfg["features"], feat)
    structures: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    failed = {}
    for name in orderings:
        try:
            est = ORDERINGS.get(name)(random_state=int(cfg.get("seed", 0))).fit(f_train, train_set.labels)
            order = np.asarray(est.place(f_eval, eval_set.labels))
        except Exception as e:  # noqa: BLE001 - e.g. class_label without classes: named, skipped
            failed[name] = f"{type(e).__name__}: {e}"
            continue
        structures[name] = (order, None)
        structures[name + "+tree"] = SpanningTree(random_state=int(cfg.get("seed", 0))).tree(f_eval, order)
    t0 = time.perf_counter()
    rows = oracle_report(
        first, model, eval_set.pixels, f_eval, structures, k, int(cfg["chain"]), batch, random_refs
    )
    return {
        "run_id": run_dir.name,
        "n_eval": len(eval_set),
        "chain": int(cfg["chain"]),
        "k": k,
        "random_refs": random_refs,
        "seconds": time.perf_counter() - t0,
        "failed": failed,
        "rows": rows,
    }


def format_oracle(res: dict[str, Any]) -> str:
    """The table of :func:`measure_run`, best first."""
    lines = [
        f"rate oracle of run {res['run_id']}: {res['n_eval']} eval images, k={res['k']} feature "
        f"neighbours + {res['random_refs']} random references each, L={res['chain']}, "
        f"{res['seconds']:.1f} s",
        "rate: estimated bits / bits of every image alone (one chain or the whole forest); "
        "share: fraction of the oracle tree's saving; _L: chains of L / forests cut at depth L",
        f"{'structure':20s} {'rate':>8s} {'share':>6s} {'rate_L':>8s} {'share_L':>7s}",
    ]
    for name, r in sorted(res["rows"].items(), key=lambda t: t[1]["rate"]):
        lines.append(f"{name:20s} {r['rate']:8.4f} {r['share']:6.2f} {r['rate_L']:8.4f} {r['share_L']:7.2f}")
    lines += [f"({name} skipped: {why})" for name, why in res["failed"].items()]
    return "\n".join(lines)
