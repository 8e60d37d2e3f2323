"""Rate-oracle structures: a chain and a forest over a trained codec's own conditional rates.

Feature distances are a proxy for what the codec pays. Given, for candidate pairs ``(i, j)``, the
estimated bits of item ``j`` coded with item ``i``'s decoded state as reference (``bits``), and
each item's bits coded alone by the baseline (``alone``), the cost of a structure is the sum over
items of their bits given their reference (``alone`` for a root / a chain start, and for any
pair outside the candidates). This module finds cheap structures for those costs; the
rates come from :mod:`acbench.oracle` (O(N·k) forward passes over kNN candidate pairs).

- :func:`oracle_chain`: a path (greedy by saving, then windowed asymmetric 2-opt);
- :func:`oracle_tree`: the minimum arborescence (Edmonds 1967) of the candidate graph plus a
  virtual root joined to every item at its ``alone`` cost: the cheapest forest for that model,
  roots coded by the baseline. Exact; networkx's implementation (imported only here).

Both are upper bounds on what that model can save with any feature ordering of the same
candidate pairs (the tree exactly, the chain heuristically).
"""

from __future__ import annotations

import numpy as np

from acbench.orderings.base import KNN


def candidate_pairs(
    features: np.ndarray, k: int = 5, knn: str = "auto", random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(ref, item)`` pairs: every item with each of its ``k`` nearest neighbours as reference."""
    idx, _ = KNN(np.ascontiguousarray(features, dtype=np.float32), knn, random_state).graph(k)
    item = np.repeat(np.arange(len(idx)), idx.shape[1])
    return idx.ravel().astype(np.int64), item


class Costs:
    """Look-up of ``c(i -> j)``: bits of ``j`` given ``i`` for candidate pairs, else ``alone[j]``.

    A reference that costs more than coding alone is never taken: the item is coded alone there
    (a chain or tree starts anew), so ``c(i -> j) <= alone[j]`` always.
    """

    def __init__(self, n: int, ref: np.ndarray, item: np.ndarray, bits: np.ndarray, alone: np.ndarray):
        self.n = n
        key = np.asarray(ref, dtype=np.int64) * n + np.asarray(item, dtype=np.int64)
        o = np.argsort(key, kind="stable")
        self.key, self.bits = key[o], np.asarray(bits, dtype=np.float64)[o]
        self.alone = np.asarray(alone, dtype=np.float64)

    def __call__(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
        q = i * self.n + j
        at = np.minimum(np.searchsorted(self.key, q), len(self.key) - 1)
        hit = self.key[at] == q if len(self.key) else np.zeros(q.shape, dtype=bool)
        return np.where(hit, np.minimum(self.bits[at], self.alone[j]), self.alone[j])

    def chain(self, order: np.ndarray, length: int = 0) -> float:
        """Total bits of ``order`` coded in chains of ``length`` (0: one chain through all)."""
        o = np.asarray(order, dtype=np.int64)
        c = np.concatenate([self.alone[o[:1]], self(o[:-1], o[1:])])
        if length > 0:
            c[::length] = self.alone[o[::length]]
        return float(c.sum())

    def tree(self, parent: np.ndarray) -> float:
        """Total bits of a forest (roots alone)."""
        p = np.asarray(parent, dtype=np.int64)
        child = np.flatnonzero(p >= 0)
        roots = np.flatnonzero(p < 0)
        return float(self.alone[roots].sum() + self(p[child], child).sum())


def oracle_chain(
    costs: Costs, window: int = 8, passes: int = 5, starts: tuple[np.ndarray, ...] = ()
) -> np.ndarray:
    """A cheap path: greedy by saving, then windowed 2-opt for asymmetric costs; with ``starts``
    (other paths, e.g. feature orderings' chains) each is improved the same way and the cheapest
    path wins, so the result is never costlier than any of them.

    Greedy: starting from the reference with the largest saving on any item, the walk steps to
    the unvisited candidate with the largest saving ``alone[j] - c(cur -> j)``; at a dead end it
    jumps to the unvisited item with the largest best incoming saving. 2-opt reverses segments of
    at most ``window`` items when that lowers the path cost, with every edge inside the segment
    re-costed in its new direction (O(1) per move from prefix sums).
    """
    n = costs.n
    if n <= 1:
        return np.arange(n)
    ref = costs.key // n
    item = costs.key % n
    saving = costs.alone[item] - costs.bits
    out_o = np.lexsort((-saving, ref))  # each reference's candidates, largest saving first
    out_ref, out_item, out_save = ref[out_o], item[out_o], saving[out_o]
    start = np.searchsorted(out_ref, np.arange(n + 1))
    best_in = np.full(n, -np.inf)
    np.maximum.at(best_in, item, saving)
    jump = np.argsort(-best_in, kind="stable")
    seen = np.zeros(n, dtype=bool)
    order = np.empty(n, dtype=np.int64)
    cur = int(np.argmax([out_save[start[i]] if start[i] < start[i + 1] else -np.inf for i in range(n)]))
    jp = 0
    for step in range(n):
        order[step] = cur
        seen[cur] = True
        if step == n - 1:
            break
        nxt = -1
        for t in range(start[cur], start[cur + 1]):
            if not seen[out_item[t]] and out_save[t] > 0:
                nxt = int(out_item[t])
                break
        if nxt < 0:
            while seen[jump[jp]]:
                jp += 1
            nxt = int(jump[jp])
        cur = nxt
    paths = [two_opt_asym(costs, p, window, passes) for p in (order, *starts)]
    return min(paths, key=costs.chain)


def two_opt_asym(costs: Costs, order: np.ndarray, window: int = 8, passes: int = 5) -> np.ndarray:
    """Windowed 2-opt on an open path with asymmetric edge costs (see :func:`oracle_chain`)."""
    p = np.array(order, dtype=np.int64)
    n = len(p)
    if n < 3:
        return p
    for _ in range(passes):
        f = costs(p[:-1], p[1:])  # f[k]: edge k -> k+1
        r = costs(p[1:], p[:-1])  # r[k]: the same edge reversed
        F = np.concatenate([[0.0], np.cumsum(f)])
        R = np.concatenate([[0.0], np.cumsum(r)])
        first = costs.alone[p[0]]
        gains = []
        for m in range(1, min(window, n - 1) + 1):  # reverse p[i+1 .. i+m], i from -1 (the start)
            i = np.arange(-1, n - 1 - m)
            j = i + m
            a, b = i + 1, j  # the reversed segment
            inner_old = F[b] - F[a]  # edges a..b-1 forward
            inner_new = R[b] - R[a]  # the same edges reversed
            left_old = np.where(i >= 0, f[np.maximum(i, 0)], first)
            left_new = np.where(i >= 0, costs(p[np.maximum(i, 0)], p[b]), costs.alone[p[b]])
            has_right = j + 1 <= n - 1
            jr = np.minimum(j, n - 2)
            right_old = np.where(has_right, f[jr], 0.0)
            right_new = np.where(has_right, costs(p[a], p[np.minimum(j + 1, n - 1)]), 0.0)
            gain = (left_old + inner_old + right_old) - (left_new + inner_new + right_new)
            gains.append((gain, i, j))
        cand = sorted(
            ((float(g[t]), int(i[t]), int(j[t])) for g, i, j in gains for t in np.flatnonzero(g > 1e-9)),
            reverse=True,
        )
        if not cand:
            break
        used = np.zeros(n + 2, dtype=bool)
        moved = 0
        for _, i, j in cand:  # non-overlapping improving moves, largest gain first
            if used[i + 1 : j + 3].any():
                continue
            used[i + 1 : j + 3] = True
            p[i + 1 : j + 1] = p[i + 1 : j + 1][::-1].copy()
            moved += 1
        if moved == 0:
            break
    return p


def oracle_tree(costs: Costs) -> np.ndarray:
    """The minimum arborescence of the candidate graph with a virtual root (roots coded alone):
    the parent of every item, ``-1`` for a root."""
    n = costs.n
    ref, item = costs.key // n, costs.key % n
    keep = costs.bits < costs.alone[item]  # an edge costlier than coding alone is never used
    src = np.concatenate([np.full(n, n), ref[keep]])
    dst = np.concatenate([np.arange(n), item[keep]])
    w = np.concatenate([costs.alone, costs.bits[keep]])
    chosen = min_arborescence(n + 1, n, src, dst, w)
    parent = np.full(n, -1, dtype=np.int64)
    real = src[chosen] != n
    parent[dst[chosen][real]] = src[chosen][real]
    return parent


def min_arborescence(n: int, root: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Edge indices of a minimum spanning arborescence rooted at ``root``: Edmonds' algorithm
    in Tarjan's O(E log V) form (Tarjan 1977; Gabow et al. 1986), with a skew heap of incoming
    edges per node (lazy weight offsets) and a union-find with rollback to expand the cycles.
    Every node must be reachable from ``root``; a ``ValueError`` says when one is not.
    """
    # a heap node: [weight, tail, head, edge id, left, right, pending offset]
    heap: list[list | None] = [None] * n
    for e, (a, b, x) in enumerate(
        zip(np.asarray(src).tolist(), np.asarray(dst).tolist(), np.asarray(w).tolist())
    ):
        if a != b and b != root:
            heap[b] = _merge(heap[b], [x, a, b, e, None, None, 0.0])
    uf = _RollbackUF(n)
    seen = [-1] * n
    seen[root] = root
    chosen: list[list | None] = [None] * n  # the edge entering each (super)node
    cycles = []
    for s0 in range(n):
        u, path, queue = s0, [], []
        while seen[u] < 0:
            top = heap[u]
            if top is None:
                raise ValueError(f"node {u} is not reachable from the root")
            _prop(top)
            edge = top[:4]
            top[6] -= edge[0]  # the heap's other edges now cost what they save over this one
            heap[u] = _pop(top)
            queue.append(edge)
            path.append(u)
            seen[u] = s0
            u = uf.find(edge[1])
            if seen[u] == s0:  # a cycle: contract it into one node
                cyc, end, t = None, len(queue), uf.time()
                while True:
                    v = path.pop()
                    cyc = _merge(cyc, heap[v])
                    if not uf.join(u, v):
                        break
                u = uf.find(u)
                heap[u], seen[u] = cyc, -1
                cycles.append((u, t, queue[len(path) : end]))
                del queue[len(path) :]
        for edge in queue:
            chosen[uf.find(edge[2])] = edge
    for u, t, comp in reversed(cycles):  # expand: the entering edge replaces its cycle edge
        uf.rollback(t)
        entering = chosen[u]
        for edge in comp:
            chosen[uf.find(edge[2])] = edge
        chosen[uf.find(entering[2])] = entering
    return np.array([chosen[v][3] for v in range(n) if v != root], dtype=np.int64)


def _prop(h: list) -> None:
    if h[6]:
        h[0] += h[6]
        for c in (h[4], h[5]):
            if c is not None:
                c[6] += h[6]
        h[6] = 0.0


def _merge(a: list | None, b: list | None) -> list | None:
    """Skew-heap merge (iterative: top-down along the right spines, swapping children)."""
    if a is None or b is None:
        return a if b is None else b
    _prop(a)
    _prop(b)
    if a[0] > b[0]:
        a, b = b, a
    root = a
    while True:
        other = a[5]
        a[5] = a[4]
        if other is None:
            a[4] = b
            return root
        _prop(other)
        if other[0] > b[0]:
            other, b = b, other
        a[4] = other
        a = other


def _pop(h: list) -> list | None:
    _prop(h)
    return _merge(h[4], h[5])


class _RollbackUF:
    """Union-find by size without path compression, so unions can be undone."""

    def __init__(self, n: int) -> None:
        self.e = [-1] * n
        self.hist: list[tuple[int, int]] = []

    def find(self, x: int) -> int:
        e = self.e
        while e[x] >= 0:
            x = e[x]
        return x

    def time(self) -> int:
        return len(self.hist)

    def rollback(self, t: int) -> None:
        while len(self.hist) > t:
            i, v = self.hist.pop()
            self.e[i] = v

    def join(self, a: int, b: int) -> bool:
        a, b = self.find(a), self.find(b)
        if a == b:
            return False
        if self.e[a] > self.e[b]:
            a, b = b, a
        self.hist += [(a, self.e[a]), (b, self.e[b])]
        self.e[a] += self.e[b]
        self.e[b] = a
        return True
