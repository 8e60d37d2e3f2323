"""Base class of orderings (scikit-learn estimator style) and the helpers they share.

Besides :class:`Ordering`, this module holds what several orderings need: input checks, a kNN
index that is exact (scikit-learn brute force) on small sets and approximate (pynndescent) on
large ones, the nearest-neighbour chain, and :func:`check_ordering`, the contract every
ordering (built-in or third-party) must satisfy.
"""

from __future__ import annotations

import inspect
from array import array
from typing import Any

import numpy as np

EXACT_KNN_MAX = 30_000  # brute-force kNN above this is slower than pynndescent (incl. its JIT)
NUMPY_KNN_MAX = 2048  # below this, plain NumPy beats scikit-learn's per-call thread start-up


class Ordering:
    """Sort items so that neighbours look alike.

    ``__init__`` stores keyword hyper-parameters and does nothing else; :meth:`fit` learns from the
    train features and sets ``order_`` (a permutation of ``range(len(features))``);
    :meth:`place` orders *new* items (the eval split) with the fitted model. Randomness goes
    through ``random_state``. Subclasses set ``version`` (part of every run id: bump it when the
    algorithm changes) and override :meth:`fit` and :meth:`place`.
    """

    version = "1"

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> Ordering:
        raise NotImplementedError

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Permutation of new items, ordered with the fitted model."""
        raise NotImplementedError

    # -- helpers for subclasses ------------------------------------------------------------------
    @property
    def _label(self) -> str:
        return getattr(type(self), "name", type(self).__name__)

    def _check_fitted(self) -> None:
        if not hasattr(self, "order_"):
            raise RuntimeError(f"{self._label} is not fitted; call fit(features) before place()")

    def _check_enough(self, n: int, n_neighbors: int) -> None:
        if n < n_neighbors + 1:
            raise ValueError(
                f"{self._label} needs more items than n_neighbors={n_neighbors}, got {n}; "
                f"lower n_neighbors (e.g. n_neighbors={max(1, n - 1)}) or use more items"
            )


def check_features(features: Any, labels: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate ``features`` [N, D] (finite numbers) and ``labels`` [N]; float32 C-order copy."""
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array [N, D], got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"features must be numeric, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    if labels is None:
        return x, None
    y = np.asarray(labels)
    if y.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},), got {y.shape}")
    return x, y


class KNN:
    """k-nearest-neighbour index: exact below ``exact_max`` items, pynndescent above.

    Args:
        X: float32 [N, D] items to index.
        method: ``"exact"`` (scikit-learn brute force, O(N²) time), ``"approx"`` (pynndescent,
            about O(N log N)) or ``"auto"``.
        random_state: seed of pynndescent.
    """

    def __init__(
        self,
        X: np.ndarray,
        method: str = "auto",
        random_state: int = 0,
        exact_max: int = EXACT_KNN_MAX,
    ) -> None:
        if method not in ("auto", "exact", "approx"):
            raise ValueError(f"knn must be 'auto', 'exact' or 'approx', got {method!r}")
        self.X = X
        self.exact = method == "exact" or (method == "auto" and len(X) <= exact_max)
        self.random_state = random_state
        self._nn: Any = None

    def graph(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest other items of every item: (indices, distances), each [N, k]."""
        n = len(self.X)
        k = min(k, n - 1)
        if self.exact and n <= NUMPY_KNN_MAX:
            self._nn = "numpy"
            return _numpy_knn(self.X, self.X, k, exclude_self=True)
        if self.exact:
            from sklearn.neighbors import NearestNeighbors

            self._nn = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(self.X)
            dist, idx = self._nn.kneighbors()  # without X: each item's own index is left out
            return idx, dist.astype(np.float32)
        from pynndescent import NNDescent

        self._nn = NNDescent(self.X, n_neighbors=k + 1, random_state=self.random_state, verbose=False)
        idx, dist = self._nn.neighbor_graph
        return _drop_self(idx, dist, k)

    def query(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest indexed items of each row of ``Q``: (indices, distances)."""
        k = min(k, len(self.X))
        if self._nn is None:
            self.graph(max(k, 15))
        if self._nn == "numpy":
            return _numpy_knn(Q, self.X, k)
        if self.exact:
            dist, idx = self._nn.kneighbors(Q, n_neighbors=k)
            return idx, dist.astype(np.float32)
        self._nn.prepare()
        idx, dist = self._nn.query(Q, k=k)
        return idx, dist.astype(np.float32)


def _numpy_knn(
    Q: np.ndarray, X: np.ndarray, k: int, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN of the rows of ``Q`` among the rows of ``X`` by brute force, in chunks."""
    sq_x = np.einsum("ij,ij->i", X, X)
    n, m = len(Q), len(X)
    idx = np.empty((n, k), dtype=np.intp)
    dist = np.empty((n, k), dtype=np.float32)
    chunk = max(1, (1 << 22) // m)
    for s in range(0, n, chunk):
        q = Q[s : s + chunk]
        d = sq_x[None, :] - 2 * (q @ X.T) + np.einsum("ij,ij->i", q, q)[:, None]
        if exclude_self:
            d[np.arange(len(q)), np.arange(s, s + len(q))] = np.inf
        if k < m:
            part = np.argpartition(d, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(m), (len(q), 1))
        dp = np.take_along_axis(d, part, axis=1)
        o = np.argsort(dp, axis=1, kind="stable")
        idx[s : s + chunk] = np.take_along_axis(part, o, axis=1)
        dist[s : s + chunk] = np.sqrt(np.maximum(np.take_along_axis(dp, o, axis=1), 0))
    return idx, dist


def _drop_self(idx: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index from a [N, k+1] neighbour table (it may not come first)."""
    n = len(idx)
    is_self = idx == np.arange(n)[:, None]
    # rows without themselves (exact duplicates, or approximate misses) drop their last entry
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    keep = ~is_self
    return idx[keep].reshape(n, k), dist[keep].reshape(n, k).astype(np.float32)


class _Unvisited:
    """Finds the unvisited item nearest to a query: the dead-end step of the nearest-neighbour chain.

    Small sets are searched exhaustively. Large ones use an inverted file (as FAISS's IVF):
    items are bucketed by their nearest of ~√N random centroids, and a query scans the unvisited
    members of the ``n_probe`` non-empty buckets whose centroids are nearest, compacting the
    buckets as it goes, so each search costs about O(√N · D) instead of O(N · D).
    """

    def __init__(
        self,
        X: np.ndarray,
        visited: np.ndarray,
        rng: np.random.Generator,
        n_probe: int,
        exhaustive_max: int = 4096,
    ) -> None:
        self.X, self.visited, self.n_probe = X, visited, n_probe
        n = len(X)
        self.cells: list[np.ndarray] | None = None
        if n > exhaustive_max:
            from sklearn.metrics import pairwise_distances_argmin

            m = int(np.ceil(np.sqrt(n)))
            self.centroids = X[np.sort(rng.choice(n, m, replace=False))]
            cell = pairwise_distances_argmin(X, self.centroids)
            by_cell = np.argsort(cell, kind="stable")
            bounds = np.searchsorted(cell[by_cell], np.arange(m + 1))
            self.cells = [by_cell[bounds[c] : bounds[c + 1]] for c in range(m)]
            self.empty = np.array([len(c) == 0 for c in self.cells])

    def nearest(self, q: np.ndarray) -> int:
        if self.cells is None:
            rest = np.flatnonzero(~self.visited)
            return int(rest[np.argmin(_sqdist(self.X[rest], q))])
        dc = _sqdist(self.centroids, q)
        dc[self.empty] = np.inf
        best, best_d, probed = -1, np.inf, 0
        for c in np.argsort(dc, kind="stable"):
            if self.empty[c]:
                break  # sorted: the rest are empty too
            members = self.cells[c]
            members = members[~self.visited[members]]
            self.cells[c] = members
            if len(members) == 0:
                self.empty[c] = True
                continue
            d = _sqdist(self.X[members], q)
            j = int(np.argmin(d))
            if d[j] < best_d:
                best, best_d = int(members[j]), d[j]
            probed += 1
            if probed >= self.n_probe:
                break
        return best


def _sqdist(A: np.ndarray, q: np.ndarray) -> np.ndarray:
    diff = A - q
    return np.einsum("ij,ij->i", diff, diff)


def nn_chain(
    X: np.ndarray,
    n_neighbors: int = 10,
    *,
    knn: str = "auto",
    random_state: int = 0,
    n_probe: int = 8,
) -> np.ndarray:
    """Nearest-neighbour chain: start at the item farthest from the mean, then always step to the
    nearest unvisited item (the greedy TSP heuristic).

    The next item is looked up in the current item's ``n_neighbors`` nearest neighbours; only when
    all of them are visited (a dead end) is the nearest unvisited item searched globally (see
    :class:`_Unvisited`; exact below 4096 items, an inverted-file search above).

    Returns:
        A permutation of ``range(len(X))``.
    """
    n = len(X)
    if n <= 2:
        return np.arange(n)
    idx, _ = KNN(X, knn, random_state).graph(n_neighbors)
    k = idx.shape[1]
    nbrs = array("q", np.ascontiguousarray(idx, dtype=np.int64).tobytes())  # compact, fast to index
    seen = bytearray(n)
    visited = np.frombuffer(seen, dtype=bool)  # shares memory with ``seen``
    fallback: _Unvisited | None = None
    cur = int(np.argmax(_sqdist(X, X.mean(axis=0))))
    order = np.empty(n, dtype=np.intp)
    order[0] = cur
    seen[cur] = 1
    for step in range(1, n):
        nxt = -1
        for t in range(cur * k, cur * k + k):
            if not seen[nbrs[t]]:
                nxt = nbrs[t]
                break
        if nxt < 0:
            if fallback is None:
                fallback = _Unvisited(X, visited, np.random.default_rng(random_state), n_probe)
            nxt = fallback.nearest(X[cur])
        seen[nxt] = 1
        order[step] = nxt
        cur = nxt
    return order


def chain_blocks(X: np.ndarray, blocks: list[np.ndarray], random_state: int = 0) -> np.ndarray:
    """Concatenate ordered blocks (classes, graph components) so that block ends meet closely.

    Blocks are visited in nearest-neighbour-chain order of their centroids, and each is reversed
    when its last item is nearer than its first to the previous block's last item.
    """
    blocks = [b for b in blocks if len(b)]
    if len(blocks) <= 1:
        return np.concatenate(blocks) if blocks else np.arange(0)
    centroids = np.stack([X[b].mean(axis=0) for b in blocks])
    out: list[np.ndarray] = []
    for i in nn_chain(centroids, 10, random_state=random_state):
        b = blocks[i]
        if out:
            end = X[out[-1][-1]]
            if _sqdist(X[b[[-1]]], end)[0] < _sqdist(X[b[[0]]], end)[0]:
                b = b[::-1]
        out.append(b)
    return np.concatenate(out)


def check_ordering(
    ordering: Ordering,
    features: np.ndarray,
    labels: np.ndarray | None = None,
    new_features: np.ndarray | None = None,
    new_labels: np.ndarray | None = None,
) -> None:
    """The contract of an ordering; raises ``AssertionError`` naming the broken clause.

    Used by acbench's own contract tests and reusable by third-party ordering plugins: ``fit``
    returns ``self`` and sets ``order_`` to a permutation; refitting a clone with the same
    ``random_state`` gives the same order; ``place`` orders disjoint new items as a permutation of
    them, deterministically.
    """
    n = len(features)
    name = type(ordering).__name__
    assert isinstance(getattr(ordering, "version", None), str), f"{name}.version must be a str"
    assert ordering.fit(features, labels) is ordering, f"{name}.fit must return self"
    order = np.asarray(ordering.order_)
    assert order.shape == (n,), f"{name}.order_ has shape {order.shape}, expected ({n},)"
    assert np.array_equal(np.sort(order), np.arange(n)), f"{name}.order_ is not a permutation"
    again = type(ordering)(**ordering.get_params()).fit(features, labels)
    assert np.array_equal(again.order_, order), f"{name} is not deterministic with a fixed seed"
    if new_features is not None:
        m = len(new_features)
        placed = np.asarray(ordering.place(new_features, new_labels))
        assert placed.shape == (m,), f"{name}.place returned shape {placed.shape}, expected ({m},)"
        assert np.array_equal(np.sort(placed), np.arange(m)), f"{name}.place is not a permutation"
        assert np.array_equal(again.place(new_features, new_labels), placed), (
            f"{name}.place is not deterministic with a fixed seed"
        )
