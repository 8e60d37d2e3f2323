"""1-D UMAP ordering (umap-learn)."""

from __future__ import annotations

import warnings

import numpy as np

from acbench.orderings.base import Ordering, check_features

SPECTRAL_INIT_MAX = 5000  # 1-D spectral initialisation is very slow on large graphs


class UMAP1D(Ordering):
    """Sort items by a 1-D UMAP embedding (McInnes, Healy & Melville 2018, umap-learn).

    The UMAP alternative to the paper's 1-D Isomap (Xu et al. 2023): it keeps local
    neighbourhoods rather than global geodesic distances. With a fixed ``random_state`` UMAP runs
    single-threaded (its price for reproducibility), and its spectral initialisation is very slow
    in 1-D at ~100k items, so ``init="auto"`` uses spectral initialisation up to 5000 items and
    PCA above.

    ``place`` sorts new items by UMAP's ``transform``.

    Args:
        n_neighbors: UMAP's neighbourhood size.
        min_dist: UMAP's minimum distance between embedded points.
        init: ``"auto"``, or any umap-learn ``init`` (``"spectral"``, ``"pca"``, ``"random"``).
        n_epochs: optimisation epochs (None = umap-learn's default: 500 up to 10k items, else 200).
        random_state: seed.
    """

    version = "1"

    def __init__(
        self,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        init: str = "auto",
        n_epochs: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.init = init
        self.n_epochs = n_epochs
        self.random_state = random_state

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> UMAP1D:
        x, _ = check_features(features, labels)
        n = len(x)
        self._check_enough(n, max(self.n_neighbors, 2))
        init = self.init
        if init == "auto":
            init = "spectral" if n <= SPECTRAL_INIT_MAX else "pca"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "n_jobs overridden by random_state", disconnected
            import umap

            self.model_ = umap.UMAP(
                n_components=1,
                n_neighbors=self.n_neighbors,
                min_dist=self.min_dist,
                init=init,
                n_epochs=self.n_epochs,
                random_state=self.random_state,
            ).fit(x)
        self.embedding_ = self.model_.embedding_[:, 0]
        self.order_ = np.argsort(self.embedding_, kind="stable")
        return self

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        x, _ = check_features(features, labels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            emb = self.model_.transform(x)[:, 0]
        return np.argsort(emb, kind="stable")
