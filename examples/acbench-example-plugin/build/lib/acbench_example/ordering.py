"""Order images by mean feature value (a deliberately simple ordering)."""

from __future__ import annotations

import numpy as np

from acbench.orderings.base import Ordering


class Brightness(Ordering):
    """Sort by the mean of the features (for pixel features: brightness)."""

    version = "1"

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> Brightness:
        self.order_ = np.argsort(features.mean(axis=1), kind="stable")
        return self

    def place(self, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return np.argsort(features.mean(axis=1), kind="stable")
