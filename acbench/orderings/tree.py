"""Tree references: a rooted minimum spanning forest over the ordering features.

A chain conditions every image on the one before it in a 1-D ordering, which gives many images a
poor predecessor (chain starts, jumps between clusters). A tree conditions each image on its
*parent*, its nearest already-decoded neighbour in a minimum spanning tree (Kruskal 1956; as in
graph-based set compression, e.g. Chen et al., "Compression of image sets", and the minimum
spanning tree orderings of Associative Compression Networks, Graves et al. 2018).

A structure is two arrays over ``N`` items: ``parent`` (``-1`` for a root, coded by the baseline)
and a coding ``order`` (a permutation in which every parent comes before its children). A chain
of length ``L`` is the special case :func:`chain_parents`. The helpers here are NumPy/SciPy only:

- :class:`SpanningTree`: the forest (an :class:`~acbench.orderings.base.Ordering`, so it meets
  the ordering contract: ``order_`` is its breadth-first coding order);
- :func:`cut`: re-root every node whose depth is a multiple of ``L`` (every path from a root then
  has at most ``L`` images, as a chain of the trained length);
- :func:`units`: the subtrees, each decodable without the others (archive and evaluation units);
- :func:`paths`: the root-ward paths of ``L`` images that training samples;
- :func:`check_tree`: the contract (``N − roots`` edges, parents decoded first).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from acbench.orderings.base import KNN, Ordering, check_features


class SpanningTree(Ordering):
    """Minimum spanning forest of the symmetric kNN graph of the features, coded breadth-first.

    The kNN graph keeps the cost O(N·k) (approximate kNN above 30k items, see
    :class:`~acbench.orderings.base.KNN`); when it is disconnected the result is a forest, one
    root per component. ``rank`` (e.g. an ordering's ``order_``) picks each component's root (its
    first item in the ranking) and the order of siblings; without it, the lowest index is the root
    and siblings follow their index.

    ``place`` builds the forest of new items among themselves (as :class:`GreedyChain` orders
    them), and :meth:`tree` returns it with the parents.

    Args:
        n_neighbors: kNN-graph degree (more: fewer components, a closer-to-exact tree).
        knn: ``"auto"`` (exact up to 30k items, pynndescent above), ``"exact"`` or ``"approx"``.
        random_state: seed of the approximate kNN.
    """

    version = "1"
    name = "tree"

    def __init__(self, n_neighbors: int = 10, knn: str = "auto", random_state: int = 0) -> None:
        self.n_neighbors = n_neighbors
        self.knn = knn
        self.random_state = random_state

    def fit(
        self, features: np.ndarray, labels: np.ndarray | None = None, rank: np.ndarray | None = None
    ) -> SpanningTree:
        self.order_, self.parent_ = self.tree(features, rank)
        return self

    def place(
        self, features: np.ndarray, labels: np.ndarray | None = None, rank: np.ndarray | None = None
    ) -> np.ndarray:
        self._check_fitted()
        return self.tree(features, rank)[0]

    def tree(self, features: np.ndarray, rank: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(coding order, parent) of the forest over ``features``."""
        x, _ = check_features(features)
        parent = spanning_forest(x, rank, self.n_neighbors, self.knn, self.random_state)
        return bfs_order(parent, rank), parent


def spanning_forest(
    x: np.ndarray,
    rank: np.ndarray | None = None,
    n_neighbors: int = 10,
    knn: str = "auto",
    random_state: int = 0,
) -> np.ndarray:
    """Parent of every item (``-1``: a root) in the minimum spanning forest of the kNN graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    n = len(x)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    pos = _positions(rank, n)
    if n == 1:
        return np.full(1, -1, dtype=np.int64)
    idx, dist = KNN(x, knn, random_state).graph(max(1, min(n_neighbors, n - 1)))
    rows = np.repeat(np.arange(n), idx.shape[1])
    # csgraph drops zero weights (duplicate items): keep them as the smallest positive weight
    w = np.maximum(dist.astype(np.float64).ravel(), np.finfo(np.float64).tiny)
    g = coo_matrix((w, (rows, idx.ravel())), shape=(n, n)).tocsr()
    g = g.maximum(g.T)
    t = minimum_spanning_tree(g).tocoo()
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(t.row.tolist(), t.col.tolist()):
        adj[a].append(b)
        adj[b].append(a)
    parent = np.full(n, -2, dtype=np.int64)
    for root in np.argsort(pos, kind="stable").tolist():  # the first item of each component roots it
        if parent[root] != -2:
            continue
        parent[root] = -1
        queue = deque([root])
        while queue:
            u = queue.popleft()
            for v in adj[u]:
                if parent[v] == -2:
                    parent[v] = u
                    queue.append(v)
    return parent


def _positions(rank: np.ndarray | None, n: int) -> np.ndarray:
    """Position of each item in ``rank`` (a permutation), or its index without one."""
    if rank is None:
        return np.arange(n)
    r = np.asarray(rank)
    if r.shape != (n,) or not np.array_equal(np.sort(r), np.arange(n)):
        raise ValueError(f"rank must be a permutation of range({n})")
    pos = np.empty(n, dtype=np.int64)
    pos[r] = np.arange(n)
    return pos


def _children(parent: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(roots, child lists as CSR: start offsets, children), everything sorted by ``pos``."""
    n = len(parent)
    by_pos = np.argsort(pos, kind="stable")
    p = parent[by_pos]
    roots = by_pos[p < 0]
    kids = by_pos[p >= 0]
    kp = parent[kids]
    kids = kids[np.argsort(kp, kind="stable")]  # grouped by parent, each group still by pos
    start = np.searchsorted(np.sort(kp), np.arange(n + 1))
    return roots, start, kids


def bfs_order(parent: np.ndarray, rank: np.ndarray | None = None) -> np.ndarray:
    """Breadth-first coding order of a forest: roots by ``rank``, each tree level by level.

    Trees follow one another (the first root's tree entirely, then the next), so each tree's
    items are contiguous; within a tree every parent precedes its children.
    """
    parent = np.asarray(parent, dtype=np.int64)
    n = len(parent)
    roots, start, kids = _children(parent, _positions(rank, n))
    order = np.empty(n, dtype=np.int64)
    k = 0
    for r in roots.tolist():
        order[k] = r
        head, k = k, k + 1
        while head < k:
            u = int(order[head])
            head += 1
            c = kids[start[u] : start[u + 1]]
            order[k : k + len(c)] = c
            k += len(c)
    if k != n:
        raise ValueError("parent has a cycle: not every item is reachable from a root")
    return order


def depths(parent: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Depth of every item (roots 0), computed along a coding order (parents first)."""
    parent = np.asarray(parent, dtype=np.int64)
    depth = np.zeros(len(parent), dtype=np.int64)
    for u in np.asarray(order).tolist():
        p = parent[u]
        depth[u] = 0 if p < 0 else depth[p] + 1
    return depth


def chain_parents(order: np.ndarray, length: int) -> np.ndarray:
    """The chain structure as parents: consecutive items of ``order`` in chains of ``length``."""
    order = np.asarray(order, dtype=np.int64)
    parent = np.full(len(order), -1, dtype=np.int64)
    k = np.arange(1, len(order))
    k = k[k % length != 0]
    parent[order[k]] = order[k - 1]
    return parent


def cut(parent: np.ndarray, order: np.ndarray, length: int) -> np.ndarray:
    """Parents with every item at a depth that is a multiple of ``length`` made a root.

    Every path from a root then holds at most ``length`` items, as a chain of that length does;
    ``order`` stays a valid coding order. ``length <= 0`` keeps the forest as it is.
    """
    parent = np.array(parent, dtype=np.int64)
    if length > 0:
        parent[depths(parent, order) % length == 0] = -1
    return parent


def units(parent: np.ndarray, order: np.ndarray) -> list[np.ndarray]:
    """The trees of a forest, each in coding order (roots in the order they are coded)."""
    parent = np.asarray(parent, dtype=np.int64)
    order = np.asarray(order, dtype=np.int64)
    root = np.empty(len(parent), dtype=np.int64)
    for u in order.tolist():
        p = parent[u]
        root[u] = u if p < 0 else root[p]
    r = root[order]
    first = {}
    for i, x in enumerate(r.tolist()):
        first.setdefault(x, i)
    key = np.array([first[x] for x in r.tolist()], dtype=np.int64)
    grouped = order[np.argsort(key, kind="stable")]
    bounds = np.flatnonzero(np.diff(np.sort(key))) + 1
    return np.split(grouped, bounds)


def index_bits(size: int) -> int:
    """Bits of one stored parent index in a tree of ``size`` items: ⌈log2 size⌉."""
    return max(0, (int(size) - 1).bit_length())


def side_bits(parent: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Side information of a forest per item: its parent's index within its tree, ⌈log2 S⌉ bits
    for a non-root of a tree of S items (what an archive stores), 0 for a root."""
    parent = np.asarray(parent, dtype=np.int64)
    out = np.zeros(len(parent))
    for unit in units(parent, order):
        out[unit[1:]] = index_bits(len(unit))
    return out


def paths(parent: np.ndarray, order: np.ndarray, length: int) -> np.ndarray:
    """Every root-ward path of ``length`` items, ``[P, length]`` (ancestor first, item last).

    One per item at depth ``>= length - 1``: its ``length - 1`` nearest ancestors and itself,
    what a chain of ``length`` is in a tree.
    """
    parent = np.asarray(parent, dtype=np.int64)
    d = depths(parent, order)
    ends = np.asarray(order, dtype=np.int64)
    ends = ends[d[ends] >= length - 1]
    out = np.empty((len(ends), length), dtype=np.int64)
    cur = ends
    for k in range(length - 1, -1, -1):
        out[:, k] = cur
        cur = parent[cur]
    return out


def check_tree(parent: np.ndarray, order: np.ndarray) -> None:
    """The contract of a structure; raises ``AssertionError`` naming the broken clause.

    ``order`` is a permutation; every parent is ``-1`` or another item; every non-root's parent
    comes before it in ``order`` (so the decoder holds the parent's state, and there is no
    cycle); the forest has ``N − roots`` edges.
    """
    parent = np.asarray(parent)
    order = np.asarray(order)
    n = len(parent)
    assert order.shape == (n,), f"order has shape {order.shape}, expected ({n},)"
    assert np.array_equal(np.sort(order), np.arange(n)), "order is not a permutation"
    assert ((parent >= -1) & (parent < n)).all(), "a parent index is out of range"
    assert (parent != np.arange(n)).all(), "an item is its own parent"
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    child = np.flatnonzero(parent >= 0)
    assert (pos[parent[child]] < pos[child]).all(), "a parent is decoded after its child"
    roots = int((parent < 0).sum())
    assert n == 0 or roots >= 1, "a non-empty forest needs a root"
    assert len(child) == n - roots, f"{len(child)} edges, expected N - roots = {n - roots}"
