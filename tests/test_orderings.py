"""Orderings: the contract over every registered ordering, known answers, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from acbench.orderings.base import _Unvisited, check_features, check_ordering, nn_chain
from acbench.orderings.greedy import two_opt
from acbench.orderings.quality import ordering_quality
from acbench.registry import ORDERINGS

NAMES = ORDERINGS.names()
# umap's fits take seconds each: its fitting tests run in the slow tier (make test-slow)
FITS = [pytest.param(n, marks=pytest.mark.slow) if n == "umap" else n for n in NAMES]
QUALITY_KEYS = {"q_neighbour_dist", "q_random_dist", "q_dist_ratio", "q_same_class"}


def clustered(n: int, dim: int = 16, clusters: int = 4, seed: int = 0, spread: float = 6.0):
    """Gaussian clusters with a 2-D structure each; the cluster is the label."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * spread
    basis = rng.normal(size=(clusters, 2, dim))
    y = rng.integers(0, clusters, n)
    z = rng.normal(size=(n, 2))
    x = centres[y] + np.einsum("nk,nkd->nd", z, basis[y]) + rng.normal(size=(n, dim)) * 0.2
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def split():
    x, y = clustered(200)
    return x[:160], y[:160], x[160:], y[160:]


def _tile_features() -> tuple[np.ndarray, np.ndarray]:
    """8x8-downsampled 32-px tiles of three scikit-image photos (pixel features), photo = label."""
    import skimage.data
    from skimage.transform import downscale_local_mean

    from acbench.data.base import tiles_of

    feats, labels = [], []
    for label, name in enumerate(("astronaut", "chelsea", "coffee")):
        for t in tiles_of(getattr(skimage.data, name)(), 32):
            feats.append(downscale_local_mean(t.astype(np.float32), (1, 4, 4)).ravel())
            labels.append(label)
    return np.stack(feats), np.asarray(labels)


# -- the contract, for every registered ordering --------------------------------------------------
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "umap" else n for n in NAMES]
)  # umap: numba compiles on first use, ~17 s
def test_contract(name, split):
    x, y, x_new, y_new = split
    check_ordering(ORDERINGS.get(name)(random_state=3), x, y, x_new, y_new)


@pytest.mark.parametrize("name", FITS)
def test_quality_report(name, split):
    x, y, _, _ = split
    q = ordering_quality(x, ORDERINGS.get(name)().fit(x, y).order_, y)
    assert set(q) == QUALITY_KEYS
    assert all(np.isfinite(v) for v in q.values())
    assert 0 <= q["q_same_class"] <= 1
    if name not in ("random", "stored"):  # every feature ordering beats random on clustered data
        assert q["q_dist_ratio"] < 0.9


@pytest.mark.parametrize("name", FITS)
@pytest.mark.parametrize("m", [1, 2, 3])
def test_place_tiny_eval_split(name, split, m):
    x, y, x_new, y_new = split
    placed = ORDERINGS.get(name)().fit(x, y).place(x_new[:m], y_new[:m])
    assert sorted(placed.tolist()) == list(range(m))


@pytest.mark.parametrize("name", NAMES)
def test_place_before_fit_is_an_error(name, split):
    with pytest.raises(RuntimeError, match="not fitted"):
        ORDERINGS.get(name)().place(split[0])


@pytest.mark.parametrize("name", [n for n in NAMES if "n_neighbors" in ORDERINGS.get(n)().get_params()])
def test_fewer_items_than_neighbours(name):
    x, y = clustered(6)
    with pytest.raises(ValueError, match="n_neighbors"):
        ORDERINGS.get(name)(n_neighbors=10).fit(x, y)


@pytest.mark.parametrize("name", NAMES)
def test_bad_features(name):
    with pytest.raises(ValueError, match="NaN"):
        ORDERINGS.get(name)().fit(np.full((30, 4), np.nan), np.arange(30) % 2)
    with pytest.raises(ValueError, match="2-D"):
        ORDERINGS.get(name)().fit(np.zeros(30), np.arange(30) % 2)


# -- what each ordering must achieve ---------------------------------------------------------------
def test_class_label_keeps_classes_together():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 8)).astype(np.float32)
    y = rng.integers(0, 3, 600)  # labels unrelated to the features: only the labels can group
    model = ORDERINGS.get("class_label")().fit(x, y)
    assert ordering_quality(x, model.order_, y)["q_same_class"] >= 0.99
    x_new, y_new = rng.normal(size=(300, 8)), rng.integers(0, 3, 300)
    assert ordering_quality(x_new, model.place(x_new, y_new), y_new)["q_same_class"] >= 0.99


def test_class_label_needs_two_classes():
    x, _ = clustered(50)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ORDERINGS.get("class_label")().fit(x, None)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ORDERINGS.get("class_label")().fit(x, np.zeros(50, int))


def test_class_label_place_without_labels_uses_nearest_class(split):
    x, y, x_new, _ = split
    placed = ORDERINGS.get("class_label")().fit(x, y).place(x_new)
    assert sorted(placed.tolist()) == list(range(len(x_new)))


def test_class_label_rejects_unknown_within(split):
    with pytest.raises(KeyError, match="greedy_chain"):
        ORDERINGS.get("class_label")(within="greedy_chian").fit(split[0], split[1])


@pytest.mark.parametrize("features", ["clustered", "photo_tiles"])
def test_greedy_chain_has_closest_neighbours(features):
    x, y = clustered(400, clusters=8, spread=3.0) if features == "clustered" else _tile_features()
    dist = {
        name: ordering_quality(x, ORDERINGS.get(name)().fit(x, y).order_, y)["q_neighbour_dist"]
        for name in ("greedy_chain", "isomap", "random")
    }
    assert dist["greedy_chain"] < dist["isomap"] < dist["random"]


def test_random_orderings_differ_by_seed(split):
    a = ORDERINGS.get("random")(random_state=0).fit(split[0]).order_
    b = ORDERINGS.get("random")(random_state=1).fit(split[0]).order_
    assert not np.array_equal(a, b)


def test_isomap_landmarks_above_max_exact():
    x, y = clustered(300)
    model = ORDERINGS.get("isomap")(max_exact=100).fit(x, y)
    assert len(model.landmark_index_) == 100
    assert sorted(model.order_.tolist()) == list(range(300))
    forced = ORDERINGS.get("isomap")(landmarks=120, max_exact=10_000).fit(x, y)
    assert len(forced.landmark_index_) == 120
    assert ordering_quality(x, forced.order_, y)["q_dist_ratio"] < 0.9


def test_isomap_exact_refused_above_max_exact_names_landmarks():
    x, _ = clustered(150)
    with pytest.raises(ValueError, match="landmarks"):
        ORDERINGS.get("isomap")(landmarks=0, max_exact=100).fit(x)


def test_disconnected_knn_graph():
    x, y = clustered(200, clusters=5, spread=100.0)  # far-apart clusters: one component each
    iso = ORDERINGS.get("isomap")().fit(x, y)
    assert iso.graph_components_ == 5
    spec = ORDERINGS.get("spectral")().fit(x, y)
    assert spec.n_components_ == 5
    for model in (iso, spec):
        assert sorted(model.order_.tolist()) == list(range(200))
    # components are ordered one after another: 4 class changes along the chain
    assert np.count_nonzero(np.diff(y[spec.order_])) == 4


def test_duplicate_features():
    x = np.repeat(clustered(20)[0], 5, axis=0)  # every item five times
    for name in ("greedy_chain", "spectral", "isomap"):
        order = ORDERINGS.get(name)().fit(x).order_
        assert sorted(order.tolist()) == list(range(100))
    chain = ORDERINGS.get("greedy_chain")().fit(x).order_
    assert (
        ordering_quality(x, chain)["q_neighbour_dist"]
        < ordering_quality(x, np.arange(100))["q_neighbour_dist"]
    )


# -- building blocks -------------------------------------------------------------------------------
def test_two_opt_uncrosses_a_path():
    x = np.arange(8, dtype=np.float32)[:, None]
    assert two_opt(x, np.array([0, 1, 2, 5, 4, 3, 6, 7])).tolist() == list(range(8))
    assert two_opt(x, np.array([0, 1, 6, 5, 4, 3, 2, 7]), window=10).tolist() == list(range(8))


def test_nn_chain_on_a_line_is_sorted():
    x = np.random.default_rng(0).permutation(50).astype(np.float32)[:, None]
    order = nn_chain(x, 3)
    assert np.all(np.abs(np.diff(x[order, 0])) == 1)


def test_dead_end_search_is_exact_when_probing_every_cell():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 4)).astype(np.float32)
    visited = rng.random(5000) < 0.7
    index = _Unvisited(x, visited, rng, n_probe=10_000)
    assert index.cells is not None  # the inverted-file path, not the exhaustive one
    for q in x[:20]:
        rest = np.flatnonzero(~visited)
        assert index.nearest(q) == rest[np.argmin(((x[rest] - q) ** 2).sum(1))]


def test_quality_known_answer():
    x = np.arange(10, dtype=float)[:, None]
    q = ordering_quality(x, np.arange(10), labels=np.array([0] * 5 + [1] * 5))
    assert q["q_neighbour_dist"] == pytest.approx(1.0)
    assert q["q_random_dist"] == pytest.approx(11 / 3)  # mean |i - j| over all pairs
    assert q["q_dist_ratio"] == pytest.approx(3 / 11)
    assert q["q_same_class"] == pytest.approx(8 / 9)
    assert np.isnan(ordering_quality(x, np.arange(10))["q_same_class"])


def test_quality_sampled_is_close_to_exact():
    x, _ = clustered(3000)
    q = ordering_quality(x, np.arange(3000))
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 3000, (2, 200_000))
    keep = a != b
    exact = np.linalg.norm(x[a[keep]] - x[b[keep]], axis=1).mean()
    assert q["q_random_dist"] == pytest.approx(exact, rel=0.03)
    assert q["q_random_dist"] == ordering_quality(x, np.arange(3000))["q_random_dist"]  # seeded


def test_quality_rejects_non_permutations():
    with pytest.raises(ValueError, match="permutation"):
        ordering_quality(np.zeros((3, 2)), np.array([0, 0, 1]))
    assert np.isnan(ordering_quality(np.zeros((1, 2)), np.array([0]))["q_dist_ratio"])


def test_check_features_labels_shape():
    with pytest.raises(ValueError, match="labels"):
        check_features(np.zeros((4, 2)), np.zeros(3))
