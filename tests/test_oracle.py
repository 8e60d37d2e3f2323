"""The rate oracle's graph part (known answers, the exact arborescence) and its report."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from acbench.orderings.oracle import Costs, candidate_pairs, min_arborescence, oracle_chain, oracle_tree
from acbench.orderings.tree import bfs_order, check_tree


def _synthetic(n: int, seed: int = 0, k: int = 4) -> tuple[np.ndarray, Costs]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    ref, item = candidate_pairs(x, k)
    alone = 100 + 10 * rng.random(n)
    bits = alone[item] * (0.5 + 0.1 * np.linalg.norm(x[ref] - x[item], axis=1)) + rng.random(len(ref))
    return x, Costs(n, ref, item, bits, alone)


def _brute_tree(n: int, root: int, src, dst, w) -> float:
    """Cheapest arborescence by trying every choice of one incoming edge per node."""
    ins = [[e for e in range(len(src)) if dst[e] == v and src[e] != v] for v in range(n)]
    best = np.inf
    for pick in itertools.product(*[ins[v] for v in range(n) if v != root]):
        up = {dst[e]: src[e] for e in pick}
        ok = True
        for v in up:  # every node must reach the root
            seen, u = set(), v
            while u != root and ok:
                if u in seen:
                    ok = False
                seen.add(u)
                u = up[u]
        if ok:
            best = min(best, sum(w[e] for e in pick))
    return best


@pytest.mark.parametrize("seed", range(30))
def test_min_arborescence_is_minimal(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 6))
    m = int(rng.integers(n, 3 * n))
    src = np.concatenate([rng.integers(0, n, m), np.zeros(n - 1, dtype=int)])
    dst = np.concatenate([rng.integers(1, n, m), np.arange(1, n)])
    w = np.concatenate([rng.integers(1, 9, m), np.full(n - 1, 20)]).astype(float)
    chosen = min_arborescence(n, 0, src, dst, w)
    parent = np.full(n, -1)
    parent[dst[chosen]] = src[chosen]
    check_tree(np.where(np.arange(n) == 0, -1, parent), bfs_order(np.where(np.arange(n) == 0, -1, parent)))
    assert w[chosen].sum() == pytest.approx(_brute_tree(n, 0, src, dst, w))


def test_unreachable_node_is_an_error():
    with pytest.raises(ValueError, match="not reachable"):
        min_arborescence(3, 0, np.array([0]), np.array([1]), np.array([1.0]))


def test_costs_known_answers():
    c = Costs(3, np.array([0, 1]), np.array([1, 2]), np.array([5.0, 30.0]), np.array([10.0, 10.0, 20.0]))
    assert c.chain([0, 1, 2]) == 10 + 5 + 20  # 1 -> 2 costs more than 2 alone: coded alone
    assert c.chain([0, 1, 2], 2) == 10 + 5 + 20
    assert c.chain([2, 1, 0]) == 20 + 10 + 10  # pairs never measured: alone
    assert c.tree(np.array([-1, 0, 1])) == 35.0
    assert np.array_equal(oracle_tree(c), [-1, 0, -1])


@pytest.mark.parametrize("n", [2, 3, 50, 400])
def test_oracle_structures_are_valid_and_cheapest(n):
    x, c = _synthetic(n)
    chain = oracle_chain(c)
    assert sorted(chain.tolist()) == list(range(n))
    parent = oracle_tree(c)
    check_tree(parent, bfs_order(parent))
    assert c.tree(parent) <= c.chain(chain) + 1e-9  # a path is one of the forests
    if n >= 50:
        from acbench.orderings.greedy import GreedyChain
        from acbench.orderings.tree import SpanningTree

        st = SpanningTree().fit(x)
        assert c.tree(parent) <= c.tree(st.parent_) + 1e-9
        greedy = GreedyChain().fit(x).order_
        assert c.chain(oracle_chain(c, starts=(greedy,))) <= c.chain(greedy) + 1e-9


def test_oracle_report_on_a_tiny_model(tiny_split):
    import torch

    from acbench.codecs.base import build_codec
    from acbench.oracle import oracle_report

    torch.manual_seed(0)
    first = build_codec("mshp", {"N": 8, "M": 12})
    cond = build_codec("mshp", {"N": 8, "M": 12}, ("latent_prior",), "film")
    cond.warm_start(first.state_dict())
    px = tiny_split[1].pixels
    f = px.reshape(len(px), -1).astype(np.float32)
    order = np.arange(len(px))
    rep = oracle_report(first, cond, px, f, {"name": (order, None)}, k=3, length=3, random_refs=2)
    assert set(rep) == {"name", "oracle_chain", "oracle_tree"}
    assert rep["oracle_tree"]["share"] == pytest.approx(1.0) or np.isnan(rep["oracle_tree"]["share"])
    for r in rep.values():
        assert 0 < r["rate"] <= 1 + 1e-9 and 0 < r["rate_L"] <= 1 + 1e-9
        assert rep["oracle_tree"]["rate"] <= r["rate"] + 1e-12  # it searched every measured pair
