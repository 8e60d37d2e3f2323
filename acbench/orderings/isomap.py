"""1-D Isomap ordering, as the paper; a landmark variant above a size."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any

import numpy as np

from acbench.orderings.base import Ordering, check_features

DEFAULT_LANDMARKS = 2000


class Isomap1D(Ordering):
    """Sort items by their 1-D Isomap embedding (the paper's ordering).

    Xu et al., "Revisiting Associative Compression: I Can't Believe It's Not Better" (ICML 2023
    workshop), appendix B: embed the features with Isomap (Tenenbaum, de Silva & Langford 2000)
    into one dimension and sort by it. Exact Isomap keeps several dense N × N matrices (~2.4 GB at
    10k items), so above ``max_exact`` items it is fitted on ``landmarks`` random items and the
    rest are embedded with Isomap's out-of-sample extension (geodesic distances through their
    kNN among the landmarks; in the spirit of landmark Isomap, de Silva & Tenenbaum 2003), which
    is linear in N. A disconnected kNN graph is completed by scikit-learn (shortest links between
    components); ``graph_components_`` records how many components there were.

    ``place`` sorts new items by the same out-of-sample embedding.

    Args:
        n_neighbors: kNN-graph degree.
        landmarks: ``None`` = exact Isomap up to ``max_exact`` items, 2000 landmarks (at most
            ``max_exact``) above;
            ``0`` = always exact (refused above ``max_exact``); ``L > 0`` = fit on ``L`` random
            landmarks whenever there are more than ``L`` items.
        max_exact: most items exact Isomap is run on.
        random_state: seed of the landmark sample and of the eigensolver.
    """

    version = "1"

    def __init__(
        self,
        n_neighbors: int = 10,
        landmarks: int | None = None,
        max_exact: int = 8000,
        random_state: int = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.landmarks = landmarks
        self.max_exact = max_exact
        self.random_state = random_state

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> Isomap1D:
        from sklearn.manifold import Isomap

        x, _ = check_features(features, labels)
        n = len(x)
        self._check_enough(n, self.n_neighbors)
        n_land = self._n_landmarks(n)
        if n_land:
            rng = np.random.default_rng(self.random_state)
            fit_idx = np.sort(rng.choice(n, n_land, replace=False))
        else:
            fit_idx = np.arange(n)
        self.landmark_index_ = fit_idx if n_land else None
        model = Isomap(n_neighbors=min(self.n_neighbors, len(fit_idx) - 1), n_components=1)
        with _quiet(), _seeded_global_rng(self.random_state):
            model.fit(x[fit_idx])
        self.model_ = model
        self.graph_components_ = _n_components(model)
        emb = model.embedding_[:, 0] if not n_land else self._embed(x)
        self.embedding_ = emb
        self.order_ = np.argsort(emb, kind="stable")
        return self

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        x, _ = check_features(features, labels)
        return np.argsort(self._embed(x), kind="stable")

    def _n_landmarks(self, n: int) -> int:
        if self.landmarks is None:
            return min(DEFAULT_LANDMARKS, self.max_exact) if n > self.max_exact else 0
        if self.landmarks == 0:
            if n > self.max_exact:
                gb = 4 * 8 * n * n / 1e9
                raise ValueError(
                    f"isomap: exact Isomap on {n} items needs ~{gb:.0f} GB (dense N x N "
                    f"matrices) and is refused above max_exact={self.max_exact}; use the landmark "
                    f"variant (landmarks=None for automatic, or e.g. landmarks=2000), or raise "
                    f"max_exact if you have the memory"
                )
            return 0
        if self.landmarks < self.n_neighbors + 1:
            raise ValueError(f"isomap: landmarks={self.landmarks} must exceed n_neighbors={self.n_neighbors}")
        return self.landmarks if n > self.landmarks else 0

    def _embed(self, x: np.ndarray) -> np.ndarray:
        """Isomap's out-of-sample embedding (scikit-learn's ``transform``), in bounded chunks."""
        model = self.model_
        geo = model.dist_matrix_  # geodesic distances between the fitted items
        n_fit = geo.shape[0]
        k = model.n_neighbors
        chunk = max(1, (1 << 23) // n_fit)
        out = np.empty(len(x))
        for s in range(0, len(x), chunk):
            dist, idx = model.nbrs_.kneighbors(x[s : s + chunk], n_neighbors=k)
            g = geo[idx[:, 0]] + dist[:, :1]
            for j in range(1, k):
                np.minimum(g, geo[idx[:, j]] + dist[:, j : j + 1], out=g)
            g **= 2
            g *= -0.5
            out[s : s + chunk] = model.kernel_pca_.transform(g)[:, 0]
        return out


def _n_components(model: Any) -> int:
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import kneighbors_graph

    graph = kneighbors_graph(model.nbrs_, model.n_neighbors, mode="connectivity")
    return int(connected_components(graph, directed=False)[0])


@contextmanager
def _quiet():
    """scikit-learn warns once per component pair when it completes a disconnected graph."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*connected components.*")
        warnings.filterwarnings("ignore", message=".*sparsity structure.*")
        yield


@contextmanager
def _seeded_global_rng(seed: int):
    """Isomap's ARPACK start vector comes from NumPy's global RNG (it takes no random_state)."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)
