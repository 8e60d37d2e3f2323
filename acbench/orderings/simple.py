"""Reference orderings: a seeded random permutation, and grouping by class label."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from acbench.orderings.base import Ordering, chain_blocks, check_features, nn_chain
from acbench.registry import ORDERINGS


class RandomOrdering(Ordering):
    """A seeded random permutation: the control every ordering must beat.

    With random neighbours, conditioning can only exploit what all images share (Graves et al.,
    "Associative Compression Networks", 2018, use the same control), so the gap between this and
    another ordering measures what that ordering's neighbours add.

    Args:
        random_state: seed; ``place`` uses an independent stream of the same seed.
    """

    version = "1"

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> RandomOrdering:
        x, _ = check_features(features, labels)
        self.order_ = np.random.default_rng([self.random_state, 0]).permutation(len(x))
        return self

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        x, _ = check_features(features, labels)
        return np.random.default_rng([self.random_state, 1]).permutation(len(x))


class ClassLabel(Ordering):
    """Group items by class label, then order each class with a secondary ordering.

    An oracle-style ordering: neighbours share a class (e.g. an ImageNet synset) whenever the
    labels allow it, as when a dataset is stored class by class. Within a class, items are
    ordered by ``within`` (default the nearest-neighbour chain); classes are concatenated in
    nearest-neighbour-chain order of their centroids, each turned so that its first item is near
    the previous class's last one. Classes too small for the secondary ordering's neighbour count
    are ordered by an exact nearest-neighbour chain.

    ``place`` does the same on the new items with their labels; without labels each new item is
    assigned the class of its nearest train-class centroid.

    Args:
        within: registered name of the secondary ordering (not ``class_label``).
        within_params: keyword hyper-parameters of the secondary ordering.
        random_state: seed passed to the secondary ordering.
    """

    version = "1"

    def __init__(
        self,
        within: str = "greedy_chain",
        within_params: dict[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.within = within
        self.within_params = within_params
        self.random_state = random_state

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> ClassLabel:
        x, y = check_features(features, labels)
        classes = np.unique(y) if y is not None else np.arange(0)
        if len(classes) < 2:
            got = "no labels" if y is None else "a single class"
            raise ValueError(
                f"class_label needs labelled data with at least 2 classes, got {got}; use a "
                f"labelled dataset (e.g. a folder with one subfolder per class, or fashion_mnist) "
                f"or another ordering (e.g. greedy_chain)"
            )
        if self.within == "class_label":
            raise ValueError("class_label cannot order classes with class_label; pick another")
        ORDERINGS.check(self.within)
        self.classes_ = classes
        self.centroids_ = np.stack([x[y == c].mean(axis=0) for c in classes])
        self.models_: dict[Any, Ordering] = {}
        self.order_ = self._order(x, y, fitting=True)
        return self

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        x, y = check_features(features, labels)
        if y is None:
            from sklearn.metrics import pairwise_distances_argmin

            y = self.classes_[pairwise_distances_argmin(x, self.centroids_)]
        return self._order(x, y, fitting=False)

    def _order(self, x: np.ndarray, y: np.ndarray, fitting: bool) -> np.ndarray:
        blocks = []
        for c in np.unique(y):
            members = np.flatnonzero(y == c)
            key = c.item() if hasattr(c, "item") else c
            blocks.append(members[self._order_class(x[members], key, fitting)])
        return chain_blocks(x, blocks, self.random_state)

    def _order_class(self, xc: np.ndarray, key: Any, fitting: bool) -> np.ndarray:
        factory = ORDERINGS.get(self.within)
        params = dict(self.within_params or {})
        params.setdefault("random_state", self.random_state)
        k = params.get("n_neighbors", _default(factory, "n_neighbors"))
        if k is not None and len(xc) <= max(int(k), 3):
            return nn_chain(xc, n_neighbors=len(xc))  # too small for the secondary ordering
        if not fitting and key in self.models_:
            return np.asarray(self.models_[key].place(xc))
        model = factory(**params).fit(xc)
        if fitting:
            self.models_[key] = model
        return np.asarray(model.order_)


def _default(factory: Any, name: str) -> Any:
    p = inspect.signature(factory).parameters.get(name)
    return None if p is None or p.default is inspect.Parameter.empty else p.default


class Stored(Ordering):
    """The dataset's own order, as stored: frames of a video, pages of a scan, sequences built so.

    The ordering of the positive control (``shifted``), whose tiles are stored so that each one
    shares most of its content with the one before it; a feature ordering would have to find
    that again.

    Args:
        random_state: unused (kept for the ordering contract).
    """

    version = "1"

    def __init__(self, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> Stored:
        x, _ = check_features(features, labels)
        self.order_ = np.arange(len(x))
        return self

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        self._check_fitted()
        x, _ = check_features(features, labels)
        return np.arange(len(x))
