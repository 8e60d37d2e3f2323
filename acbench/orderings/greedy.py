"""Nearest-neighbour chain (greedy TSP) ordering, optionally improved by windowed 2-opt."""

from __future__ import annotations

import numpy as np

from acbench.orderings.base import Ordering, check_features, nn_chain


class GreedyChain(Ordering):
    """Chain each item to its nearest unvisited neighbour; optionally polish with 2-opt.

    Associative compression codes each item given the previous one, so the quantity to minimise
    is the distance between consecutive items: the path version of the travelling-salesman
    problem. This ordering optimises it directly with the nearest-neighbour heuristic (Rosenkrantz,
    Stearns & Lewis 1977) on a kNN graph, where the 1-D projections of the paper (Isomap, Xu et
    al. 2023, appendix B) only do so indirectly; then 2-opt moves (Croes 1958) whose reversed
    segment is at most ``window`` items long remove crossings, each pass costing O(N · window · D).

    ``place`` orders new items by themselves with the same algorithm (they are chained among
    each other, not to the train items).

    Args:
        n_neighbors: kNN-graph degree; the result does not depend on it except through the
            dead-end search (see :func:`acbench.orderings.base.nn_chain`), only the speed does.
        two_opt: apply windowed 2-opt after the chain.
        window: longest segment a 2-opt move reverses.
        passes: at most this many 2-opt passes (each applies every non-overlapping improving move).
        knn: ``"auto"`` (exact up to 30k items, pynndescent above), ``"exact"`` or ``"approx"``.
        random_state: seed of the approximate kNN and of the dead-end search index.
    """

    version = "1"

    def __init__(
        self,
        n_neighbors: int = 10,
        two_opt: bool = True,
        window: int = 50,
        passes: int = 5,
        knn: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.two_opt = two_opt
        self.window = window
        self.passes = passes
        self.knn = knn
        self.random_state = random_state

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> GreedyChain:
        x, _ = check_features(features, labels)
        self._check_enough(len(x), self.n_neighbors)
        self.order_ = self._order(x)
        return self

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        x, _ = check_features(features, labels)
        return self._order(x)

    def _order(self, x: np.ndarray) -> np.ndarray:
        order = nn_chain(x, self.n_neighbors, knn=self.knn, random_state=self.random_state)
        if self.two_opt:
            order = two_opt(x, order, self.window, self.passes)
        return order


def two_opt(x: np.ndarray, order: np.ndarray, window: int = 50, passes: int = 5) -> np.ndarray:
    """Improve an open path by 2-opt moves that reverse segments of at most ``window`` items.

    A move (i, j) reverses ``order[i+1 .. j]``, replacing edges (i, i+1) and (j, j+1) by (i, j)
    and (i+1, j+1). Each pass scores every move with j - i ≤ ``window`` in O(N · window · D)
    vectorised work, keeps each position's best move, and applies the improving moves greedily
    by gain as long as they do not overlap; it stops early when a pass finds no gain.
    """
    p = np.array(order, dtype=np.intp)
    n = len(p)
    if n < 4 or window < 2:
        return p
    window = min(window, n - 2)
    for _ in range(passes):
        edge = np.empty(n - 1)  # edge[i] joins positions i and i+1
        for s in range(0, n - 1, _CHUNK):
            y = x[p[s : min(n, s + _CHUNK + 1)]]
            edge[s : s + len(y) - 1] = np.sqrt(_rowdist2(y[:-1], y[1:]))
        tol = 1e-6 * (float(edge.mean()) + 1e-30)
        best_gain = np.zeros(n)
        best_m = np.zeros(n, dtype=np.intp)
        for s in range(0, n - 3, _CHUNK):  # positions i in [s, e), in chunks to bound memory
            e = min(s + _CHUNK, n - 3)
            y = x[p[s : min(n, e + window + 1)]]  # rows s .. e + window
            for m in range(2, window + 1):
                hi = min(e, n - 1 - m)  # moves (i, i+m) need i + m + 1 <= n - 1
                if hi <= s:
                    break
                ln = hi - s
                d = np.sqrt(_rowdist2(y[: ln + 1], y[m : m + ln + 1]))  # |y_i - y_{i+m}|
                gain = edge[s:hi] + edge[s + m : hi + m] - d[:-1] - d[1:]
                better = gain > best_gain[s:hi]
                best_gain[s:hi][better] = gain[better]
                best_m[s:hi][better] = m
        cand = np.flatnonzero(best_gain > tol)
        if len(cand) == 0:
            break
        cand = cand[np.argsort(-best_gain[cand], kind="stable")]
        used = np.zeros(n + 1, dtype=bool)
        moved = 0
        for i in cand.tolist():
            j = i + int(best_m[i])
            if used[i : j + 2].any():
                continue
            used[i : j + 2] = True
            p[i + 1 : j + 1] = p[i + 1 : j + 1][::-1].copy()
            moved += 1
        if moved == 0:
            break
    return p


_CHUNK = 1 << 16


def _rowdist2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    diff = a - b
    return np.einsum("ij,ij->i", diff, diff, dtype=np.float64)
