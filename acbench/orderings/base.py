"""Base class of orderings (scikit-learn estimator style)."""

from __future__ import annotations

from typing import Any

import numpy as np


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
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> Ordering:
        raise NotImplementedError

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Permutation of new items, ordered with the fitted model."""
        raise NotImplementedError
