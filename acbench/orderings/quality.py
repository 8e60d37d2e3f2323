"""How well an ordering puts alike items next to each other (goes into every run's rows)."""

from __future__ import annotations

import numpy as np

_CHUNK = 1 << 16
_RANDOM_PAIRS_MIN = 10_000


def ordering_quality(
    features: np.ndarray, order: np.ndarray, labels: np.ndarray | None = None, seed: int = 0
) -> dict[str, float]:
    """Neighbour distance vs random-pair distance, and the same-class rate, of an ordering.

    Args:
        features: [N, D] the features the ordering was computed on (or any other embedding).
        order: a permutation of ``range(N)``.
        labels: [N] class of each item, or None.
        seed: seed of the random pairs.

    Returns:
        ``q_neighbour_dist``: mean Euclidean distance between consecutive items;
        ``q_random_dist``: mean distance between random pairs of distinct items (all pairs when
        there are at most 10k of them, else max(N - 1, 10k) pairs drawn with the seed, so O(N));
        ``q_dist_ratio``: neighbour / random (lower is better; about 1 for a random order);
        ``q_same_class``: fraction of consecutive pairs with equal labels (NaN without labels).
        Distances are NaN with fewer than 2 items.
    """
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array [N, D], got shape {x.shape}")
    n = len(x)
    o = np.asarray(order)
    if o.shape != (n,) or not np.array_equal(np.sort(o), np.arange(n)):
        raise ValueError(f"order must be a permutation of range({n})")
    nan = float("nan")
    if n < 2:
        return {"q_neighbour_dist": nan, "q_random_dist": nan, "q_dist_ratio": nan, "q_same_class": nan}
    neighbour = _mean_dist(x, o[:-1], o[1:])
    if n * (n - 1) // 2 <= _RANDOM_PAIRS_MIN:
        a, b = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        m = max(n - 1, _RANDOM_PAIRS_MIN)
        a = rng.integers(0, n, m)
        b = (a + rng.integers(1, n, m)) % n  # never equal to a
    rand = _mean_dist(x, a, b)
    same = nan
    if labels is not None:
        y = np.asarray(labels)
        if y.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {y.shape}")
        same = float(np.mean(y[o[:-1]] == y[o[1:]]))
    return {
        "q_neighbour_dist": neighbour,
        "q_random_dist": rand,
        "q_dist_ratio": neighbour / rand if rand > 0 else nan,
        "q_same_class": same,
    }


def _mean_dist(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for s in range(0, len(a), _CHUNK):
        diff = x[a[s : s + _CHUNK]].astype(np.float64) - x[b[s : s + _CHUNK]]
        total += float(np.sqrt(np.einsum("ij,ij->i", diff, diff)).sum())
    return total / len(a)


def edge_quality(
    features: np.ndarray, parent: np.ndarray, labels: np.ndarray | None = None, seed: int = 0
) -> dict[str, float]:
    """:func:`ordering_quality` of a forest: its edges (item, parent) in place of consecutive pairs.

    ``q_neighbour_dist`` is then the mean distance of an item to its parent and ``q_same_class``
    the fraction of edges within a class; the random-pair distance is the same as an ordering's.
    """
    x = np.asarray(features)
    p = np.asarray(parent)
    n = len(x)
    q = ordering_quality(x, np.arange(n), labels, seed)
    child = np.flatnonzero(p >= 0)
    if len(child) == 0:
        return {
            **q,
            "q_neighbour_dist": float("nan"),
            "q_dist_ratio": float("nan"),
            "q_same_class": float("nan"),
        }
    neighbour = _mean_dist(x, child, p[child])
    rand = q["q_random_dist"]
    same = (
        float("nan")
        if labels is None
        else float(np.mean(np.asarray(labels)[child] == np.asarray(labels)[p[child]]))
    )
    return {
        "q_neighbour_dist": neighbour,
        "q_random_dist": rand,
        "q_dist_ratio": neighbour / rand if rand > 0 else float("nan"),
        "q_same_class": same,
    }
