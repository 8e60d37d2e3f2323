"""Spectral ordering: sort by the Fiedler vector of a sparse kNN graph."""

from __future__ import annotations

import numpy as np

from acbench.orderings.base import KNN, Ordering, chain_blocks, check_features

_DENSE_MAX = 1000  # components up to this size are solved with a dense eigendecomposition


class Spectral(Ordering):
    """Sort items by the Fiedler vector of their kNN graph (spectral seriation).

    The Fiedler vector (the eigenvector of the second-smallest eigenvalue of the graph Laplacian;
    Fiedler 1973) is the smooth 1-D embedding that spectral seriation sorts by (Atkins, Boman &
    Hendrickson 1998); here of the normalised Laplacian (Shi & Malik 2000) of a symmetric kNN graph
    with self-tuning Gaussian weights (Zelnik-Manor & Perona 2004). The graph is sparse, so the
    eigenproblem (ARPACK Lanczos on the deflated normalised adjacency) is about linear in N. A
    disconnected graph is ordered component by component; components are then chained so that
    the end of one is near the start of the next.

    ``place`` gives each new item the kNN-weighted mean position of its nearest train items
    (within the component of the nearest one) and sorts by it.

    Args:
        n_neighbors: kNN-graph degree.
        knn: ``"auto"`` (exact up to 30k items, pynndescent above), ``"exact"`` or ``"approx"``.
        random_state: seed of the eigensolver start vector and of the approximate kNN.
    """

    version = "1"

    def __init__(self, n_neighbors: int = 10, knn: str = "auto", random_state: int = 0) -> None:
        self.n_neighbors = n_neighbors
        self.knn = knn
        self.random_state = random_state

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> Spectral:
        import scipy.sparse as sp
        from scipy.sparse.csgraph import connected_components

        x, _ = check_features(features, labels)
        n = len(x)
        self._check_enough(n, self.n_neighbors)
        self.index_ = KNN(x, self.knn, self.random_state)
        idx, dist = self.index_.graph(self.n_neighbors)
        k = idx.shape[1]
        scale = np.maximum(dist[:, -1].astype(np.float64), 1e-12 * (float(dist.max()) + 1e-30))
        rows = np.repeat(np.arange(n), k)
        cols = idx.ravel()
        w = np.exp(-(dist.ravel().astype(np.float64) ** 2) / (scale[rows] * scale[cols]))
        w = np.maximum(w, 1e-10)  # keep every kNN edge, however far: connectivity is structure
        W = sp.csr_matrix((w, (rows, cols)), shape=(n, n))
        W = W.maximum(W.T).tocsr()
        self.n_components_, comp = connected_components(W, directed=False)
        rng = np.random.default_rng(self.random_state)
        members = np.argsort(comp, kind="stable")
        bounds = np.searchsorted(comp[members], np.arange(self.n_components_ + 1))
        W = W[members][:, members].tocsr()  # components become diagonal blocks: cheap to slice
        blocks = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            m = members[a:b]
            blocks.append(m[_fiedler_order(W[a:b, a:b], rng)] if len(m) > 2 else m)
        self.order_ = chain_blocks(x, blocks, self.random_state)
        self.position_ = np.empty(n)
        self.position_[self.order_] = np.arange(n)
        self.component_ = comp
        return self

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        x, _ = check_features(features, labels)
        idx, dist = self.index_.query(x, self.n_neighbors)
        same = self.component_[idx] == self.component_[idx[:, :1]]
        w = same / (dist.astype(np.float64) + 1e-12)
        pos = (w * self.position_[idx]).sum(axis=1) / w.sum(axis=1)
        return np.argsort(pos, kind="stable")


def _fiedler_order(W, rng: np.random.Generator) -> np.ndarray:
    """Order of one connected component's nodes by its (random-walk) Fiedler vector."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    n = W.shape[0]
    deg = np.asarray(W.sum(axis=1)).ravel()
    dinv = 1.0 / np.sqrt(deg)
    A = sp.diags(dinv) @ W @ sp.diags(dinv)  # normalised adjacency: eigenvalues in [-1, 1]
    top = np.sqrt(deg) / np.linalg.norm(np.sqrt(deg))  # its known top eigenvector (eigenvalue 1)
    if n <= _DENSE_MAX:
        _, vecs = np.linalg.eigh(A.toarray())
        u = vecs[:, -2]
    else:
        # largest eigenvector of I + A with the top one deflated = second of A, i.e. Fiedler's
        op = LinearOperator((n, n), matvec=lambda v: A @ v - top * (top @ v) + v, dtype=np.float64)
        try:
            _, vecs = eigsh(op, k=1, which="LA", tol=1e-6, v0=rng.standard_normal(n))
        except ArpackNoConvergence as e:  # a partly converged vector still orders well
            if e.eigenvectors.shape[1] == 0:
                raise
            vecs = e.eigenvectors
        u = vecs[:, 0]
    f = dinv * u
    f = f if f[np.argmax(np.abs(f))] >= 0 else -f  # the sign of an eigenvector is arbitrary
    return np.argsort(f, kind="stable")
