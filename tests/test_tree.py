"""Tree references: the spanning forest, its contract, training paths, evaluation, planning, rows,
leaderboards and archives with ``structure = "tree"``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from acbench.config import Component, ConfigError, override, preset, validate
from acbench.orderings.base import check_ordering
from acbench.orderings.tree import (
    SpanningTree,
    bfs_order,
    chain_parents,
    check_tree,
    cut,
    depths,
    paths,
    units,
)


def _clusters(n: int = 60, dim: int = 8, seed: int = 0, far: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    if far:
        x[n // 2 :] += far  # two clusters no kNN edge joins
    return x


@pytest.mark.parametrize("n", [1, 2, 3, 60, 500])
def test_tree_has_n_minus_roots_edges_and_parents_first(n):
    t = SpanningTree(n_neighbors=5).fit(_clusters(n))
    check_tree(t.parent_, t.order_)
    assert (t.parent_ < 0).sum() == 1  # one component: one root
    assert int((t.parent_ >= 0).sum()) == n - 1


def test_forest_one_root_per_component_rooted_by_the_ranking():
    x = _clusters(60, far=100.0)
    rank = np.random.default_rng(1).permutation(60)
    t = SpanningTree(n_neighbors=4).fit(x, rank=rank)
    check_tree(t.parent_, t.order_)
    roots = np.flatnonzero(t.parent_ < 0)
    assert len(roots) == 2 and int((t.parent_ >= 0).sum()) == 60 - 2
    pos = np.argsort(rank)
    for half in (np.arange(30), np.arange(30, 60)):  # each root: its cluster's first in the ranking
        assert half[np.argmin(pos[half])] in roots
    trees = units(t.parent_, t.order_)
    assert sorted(len(u) for u in trees) == [30, 30]
    assert np.array_equal(np.concatenate(trees), t.order_)  # trees are contiguous in coding order


def test_tree_meets_the_ordering_contract():
    x = _clusters(60)
    check_ordering(SpanningTree(random_state=3), x, None, _clusters(20, seed=5), None)


def test_tree_edges_are_a_minimum_spanning_tree():
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial.distance import cdist

    x = _clusters(40)
    t = SpanningTree(n_neighbors=39).fit(x)  # complete graph: the exact minimum spanning tree
    child = np.flatnonzero(t.parent_ >= 0)
    mine = np.linalg.norm(x[child] - x[t.parent_[child]], axis=1).sum()
    assert mine == pytest.approx(minimum_spanning_tree(cdist(x, x)).sum(), rel=1e-5)


def test_duplicate_features_still_give_a_tree():
    x = np.repeat(_clusters(10), 3, axis=0)
    t = SpanningTree(n_neighbors=4).fit(x)
    check_tree(t.parent_, t.order_)


def test_cut_keeps_paths_within_l_and_parents_first():
    t = SpanningTree().fit(_clusters(200))
    for length in (2, 3, 4):
        short = cut(t.parent_, t.order_, length)
        check_tree(short, t.order_)
        assert depths(short, t.order_).max() == length - 1
        for u in units(short, t.order_):
            assert short[u[0]] == -1 and (short[u[1:]] >= 0).all()  # one root per tree, first


def test_chain_is_the_path_forest():
    order = np.random.default_rng(0).permutation(10)
    p = chain_parents(order, 4)
    check_tree(p, order)
    assert (p < 0).sum() == 3  # chains of 4, 4, 2
    assert [u.tolist() for u in units(p, order)] == [o.tolist() for o in (order[:4], order[4:8], order[8:])]
    assert np.array_equal(bfs_order(p, order), order)
    assert np.array_equal(paths(p, order, 4), np.stack([order[:4], order[4:8]]))


def test_paths_are_root_ward_ancestors():
    t = SpanningTree().fit(_clusters(100))
    w = paths(t.parent_, t.order_, 3)
    assert len(w) == int((depths(t.parent_, t.order_) >= 2).sum())
    assert (t.parent_[w[:, 2]] == w[:, 1]).all() and (t.parent_[w[:, 1]] == w[:, 0]).all()


def test_check_tree_names_the_broken_clause():
    order = np.arange(4)
    with pytest.raises(AssertionError, match="decoded after its child"):
        check_tree(np.array([-1, 2, 0, 1]), order)
    with pytest.raises(AssertionError, match="own parent"):
        check_tree(np.array([-1, 1, 0, 1]), order)
    with pytest.raises(AssertionError, match="not a permutation"):
        check_tree(np.array([-1, 0, 0, 1]), np.array([0, 0, 2, 3]))
    with pytest.raises(ValueError, match="cycle"):
        bfs_order(np.array([-1, 2, 1]))


# -- config, planning, CLI --------------------------------------------------------------------


def test_unknown_structure_is_one_clear_line():
    with pytest.raises(ConfigError, match=r"^structure must be one of chain, tree \(got 'forest'\)$"):
        validate(override(preset("tiny"), "structure", "forest"))
    from acbench.cli import app

    res = CliRunner().invoke(app, ["run", "--preset", "tiny", "--structure", "forest", "--quiet"])
    assert res.exit_code != 0
    assert "structure must be one of chain, tree (got 'forest')" in " ".join(res.output.split())


def test_chain_ids_unchanged_and_tree_is_another_run():
    from acbench.runner import conditional_job, ordering_job, plan

    chain = preset("tiny")
    tree = override(chain, "structure", "tree")
    assert "structure" not in conditional_job(chain, 0.013).payload()
    assert "structure" not in ordering_job(chain).payload()
    assert conditional_job(tree, 0.013).payload()["structure"] == "tree"
    assert conditional_job(tree, 0.013).id != conditional_job(chain, 0.013).id
    assert ordering_job(tree).id != ordering_job(chain).id
    jobs = {j.id: j for j in plan([chain, tree])}
    # baselines and step-matched anchors are shared by chain and tree
    kinds = [j.kind for j in jobs.values()]
    assert kinds.count("baseline") == len(chain.lmbdas)
    assert kinds.count("anchor") == len(chain.lmbdas)
    assert kinds.count("ordering") == 2  # the zero control shares its ordering
    assert kinds.count("conditional") == 4 * len(chain.lmbdas)  # film and zero, chain and tree


def test_structure_is_a_sweep_axis(tmp_path):
    from acbench.grid import sweep_configs

    f = tmp_path / "s.toml"
    f.write_text('preset = "tiny"\n[grid]\nstructure = ["chain", "tree"]\n')
    assert [c.structure for c in sweep_configs(f)] == ["chain", "tree"]


def test_structure_ablation_file_expands():
    from pathlib import Path

    from acbench.grid import sweep_configs

    path = Path(__file__).resolve().parent.parent / "ablations" / "structure.toml"
    cfgs = sweep_configs(path, "tiny", import_plugins=False)
    assert {(c.structure, c.sites) for c in cfgs} == {
        (s, sites)
        for s in ("chain", "tree")
        for sites in (("hyper_analysis", "hyper_synthesis"), ("latent_prior",))
    }
    same = {(c.codec.name, c.mixer.name, c.ordering.name, c.chain) for c in cfgs}
    assert same == {("mshp", "film", "isomap", 4)}


# -- training and evaluation ------------------------------------------------------------------


def _models():
    from acbench.codecs.base import build_codec

    torch.manual_seed(0)
    first = build_codec("mshp", {"N": 8, "M": 12})
    cond = build_codec("mshp", {"N": 8, "M": 12}, ("hyper_analysis", "hyper_synthesis"), "film")
    cond.warm_start(first.state_dict())
    first.update(force=True)
    cond.update(force=True)
    return first, cond


def test_code_tree_of_a_chain_equals_code_chains(tiny_split):
    from acbench.evaluate import code_chains, code_tree

    first, cond = _models()
    px = tiny_split[1].pixels
    order = np.random.default_rng(0).permutation(len(px))
    a = {r[0]: r for r in code_chains(first, cond, px, order, 3, batch=64)}
    b = {r[0]: r for r in code_tree(first, cond, px, chain_parents(order, 3), order, batch=64)}
    assert a.keys() == b.keys()
    for img, (_, cid, pos, c) in a.items():
        _, tid, tpos, t = b[img]
        assert (cid, pos) == (tid, tpos)
        for k in ("y", "z"):
            assert t.bits_est[k] == pytest.approx(c.bits_est[k], rel=1e-4, abs=1e-2)


def test_code_tree_conditions_on_the_parent(tiny_split):
    from acbench.evaluate import code_batch, code_tree

    first, cond = _models()
    px = tiny_split[1].pixels
    t = SpanningTree().fit(px.reshape(len(px), -1).astype(np.float32))
    res = {r[0]: r for r in code_tree(first, cond, px, t.parent_, t.order_, batch=4)}
    assert sorted(res) == list(range(len(px)))
    d = depths(t.parent_, t.order_)
    assert all(res[i][2] == d[i] + 1 for i in res)
    child = int(t.order_[2])  # coded alone, its parent's decoded state as reference: same bits
    parent = int(t.parent_[child])
    x = torch.from_numpy(px[child : child + 1]).float() / 255
    (c,) = code_batch(cond, x, res[parent][3].ref)
    assert c.bits_real == res[child][3].bits_real


def test_tree_training_samples_root_ward_paths(tiny_split):
    from acbench.config import TrainConfig
    from acbench.train import ChainTask, TrainingError, train

    first, cond = _models()
    px = tiny_split[0].pixels
    t = SpanningTree().fit(px.reshape(len(px), -1).astype(np.float32))
    walks = torch.from_numpy(paths(t.parent_, t.order_, 3))
    task = ChainTask(cond, first, torch.from_numpy(px), 0.01, 3, paths=walks)
    logs = train(task, TrainConfig(steps=2, batch=2, checkpoint_every=2))
    assert np.isfinite(logs["loss"])
    with pytest.raises(TrainingError, match="no root-ward path of 3"):
        ChainTask(cond, first, torch.from_numpy(px), 0.01, 3, paths=walks[:0])


# -- end to end: a tiny tree run, its rows, leaderboard and archive --------------------------


@pytest.fixture(scope="module")
def tree_run(tmp_path_factory):
    from acbench.executors import execute
    from acbench.runner import conditional_job, plan

    cfg = dataclasses.replace(
        preset("tiny"), ordering=Component("random"), lmbdas=(0.013,), chain=3, structure="tree"
    )
    root = tmp_path_factory.mktemp("runs")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcomes = execute(plan([cfg], controls=False), root)
    finally:
        torch.set_num_threads(n)
    assert all(o.status == "done" for o in outcomes), [o.reason for o in outcomes]
    return root, conditional_job(cfg, 0.013)


def test_tree_run_rows_say_the_structure(tree_run):
    from acbench.store import Run, read_rows_csv

    root, job = tree_run
    rows = read_rows_csv(Run(root, job.id).rows)
    assert set(rows["structure"]) == {"tree"}
    assert set(rows["eval"]) == {"chain", "full", "shuffled"}
    tree = np.load(Run(root, job.ordering_run).dir / "tree_eval.npy")
    order, parent = tree
    check_tree(parent, order)
    full = rows[(rows["eval"] == "full") & (rows["component"] == "total")]
    assert int((full["position"] == 1).sum()) == int((parent < 0).sum())  # roots: the baseline's
    short = rows[(rows["eval"] == "chain") & (rows["component"] == "total")]
    assert short["position"].max() <= 3
    assert int((short["position"] == 1).sum()) == int((cut(parent, order, 3) < 0).sum())
    # the total counts the parent indices (side information): ⌈log2 tree size⌉ bits per non-root
    from acbench.orderings.tree import side_bits

    px = 64 * 64
    for ev, par in (("chain", cut(parent, order, 3)), ("full", parent)):
        r = rows[rows["eval"] == ev].pivot_table(index="image", columns="component", values="bpp_real")
        got = (r["total"] - r["y"] - r["z"]) * px
        assert np.allclose(got.sort_index().to_numpy(), side_bits(par, order), atol=1e-6)
        assert (side_bits(par, order)[par < 0] == 0).all()


def test_leaderboard_shows_chain_and_tree_side_by_side():
    import pandas as pd

    from acbench.analysis.leaderboard import leaderboard_markdown
    from acbench.analysis.synthetic import synthetic_rows

    rows = synthetic_rows(orderings=("isomap",), mixers=("film",), seed=0, controls=False)
    cond = rows["kind"] == "conditional"
    tree = rows[cond].copy()
    tree["curve"] = tree["curve"] + "-tree"
    tree["run_id"] = tree["run_id"] + "-tree"
    tree["structure"] = "tree"
    both = pd.concat([rows, tree], ignore_index=True)
    text = leaderboard_markdown(both, "acbench leaderboard", "synthetic", bootstrap=0)
    assert "### Chain vs tree (total, %)" in text
    import re

    assert re.search(r"\| ordering +\| structure +\| mixer", text)  # a key column of every table
    # the tree curves are copies of the chain curves: equal side by side, difference 0
    assert re.search(r"\| isomap +\| film +\| \S+ +\| 4 +\| (-?\d+\.\d\d) +\| \1 +\| 0\.00 ", text)
    chain_only = leaderboard_markdown(rows, "acbench leaderboard", "synthetic", bootstrap=0)
    assert "structure" not in chain_only and "Chain vs tree" not in chain_only


def test_tree_archive_round_trip_is_bit_exact(tree_run, tmp_path):
    import skimage.data as d
    from PIL import Image

    from acbench.archive import archive_info, compress_folder, decompress_archive, read_header
    from acbench.archive.format import FORMAT_VERSION
    from acbench.archive.layout import parent_bits

    root, job = tree_run
    src = tmp_path / "src"
    src.mkdir()
    img = d.astronaut()
    for i in range(9):  # overlapping crops: neighbours worth conditioning on
        Image.fromarray(img[16 * i : 16 * i + 64, 8 * i : 8 * i + 80]).save(src / f"c{i}.png")
    arc = tmp_path / "t.acb"
    summary = compress_folder(src, arc, run_dir=root / job.id)
    info = archive_info(arc)
    assert info["structure"] == "tree" and info["version"] == FORMAT_VERSION
    h = read_header(arc)
    sizes = h.header["chains"]
    assert info["parent_bits"] == sum((s - 1) * parent_bits(s) for s in sizes)
    for parents in h.parents():
        assert parents[0] == -1 and all(0 <= p < k for k, p in enumerate(parents) if k)
    out = decompress_archive(arc, tmp_path / "out", runs_root=root)
    assert out["restored"] == 9 and not out["mismatch"] and not out["lost"]
    again = decompress_archive(arc, tmp_path / "out2", runs_root=root)
    assert again["restored"] == 9
    for i in range(9):
        a = (tmp_path / "out" / f"c{i}.png").read_bytes()
        assert a == (tmp_path / "out2" / f"c{i}.png").read_bytes()
    assert summary["bpp_file"] > 0
    # a flipped byte loses its tree (one rANS stream), not the other trees
    big = max(range(len(sizes)), key=lambda c: sizes[c])
    raw = bytearray(arc.read_bytes())
    raw[h.stream_offsets()[big] + 1] ^= 0x10
    bad = tmp_path / "bad.acb"
    bad.write_bytes(bytes(raw))
    res = decompress_archive(bad, tmp_path / "o", runs_root=root, skip_corrupt=True)
    names = h.header["items"]["name"]
    assert {x["name"] for x in res["lost"]} == {names[i] for i in h.chains()[big]}
    assert res["restored"] == 9 - sizes[big]


def test_parents_pack_to_ceil_log2_bits_and_round_trip():
    from acbench.archive import ArchiveError
    from acbench.archive.layout import pack_parents, parent_bits, parents_bytes, unpack_parents

    rng = np.random.default_rng(0)
    for _ in range(20):
        sizes = rng.integers(1, 40, size=rng.integers(1, 8)).tolist()
        trees = [[-1] + [int(rng.integers(0, k)) for k in range(1, s)] for s in sizes]
        data = pack_parents(trees)
        assert len(data) == parents_bytes(sizes) == -(-sum((s - 1) * parent_bits(s) for s in sizes) // 8)
        assert unpack_parents(data, sizes) == trees
    assert pack_parents([[-1, 0, 1, 0]]) == bytes([0b00_01_00_00])  # 2 bits each, MSB first
    with pytest.raises(ArchiveError, match="tree parent 3 of item 2"):
        unpack_parents(bytes([0b00_11_00_00]), [4])
    with pytest.raises(ArchiveError, match="padding bits"):
        unpack_parents(bytes([0b00_01_00_01]), [4])


def test_tree_archive_with_bad_parents_is_refused(tree_run, tmp_path):
    import hashlib

    import skimage.data as d
    from PIL import Image

    from acbench.archive import _PREFIX, ArchiveError, compress_folder, read_header
    from acbench.archive.layout import decode_header, encode_header, parents_bytes

    root, job = tree_run
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        Image.fromarray(d.astronaut()[16 * i : 16 * i + 64, :64]).save(src / f"c{i}.png")
    arc = tmp_path / "t.acb"
    compress_folder(src, arc, run_dir=root / job.id)
    raw = arc.read_bytes()
    magic, ver, flags, hlen = _PREFIX.unpack_from(raw)
    blob, rest = raw[_PREFIX.size : _PREFIX.size + hlen], raw[_PREFIX.size + hlen + 32 :]
    header = decode_header(blob)
    assert header["structure"] == "tree" and encode_header(header) == blob  # bit-exact round trip
    pb = parents_bytes(header["chains"])
    assert pb, "no tree of 2 or more images to forge"
    big = max(range(len(header["chains"])), key=lambda c: header["chains"][c])
    forged = {**header, "parents": [list(p) for p in header["parents"]]}
    forged["parents"][big][1] = 1  # item 1's parent is itself
    chain = dict(header, structure="chain")
    del chain["parents"]
    cases = {
        "tree parent": blob[:-pb] + b"\xff" * pb,  # all ones: item 1's parent >= 1
        "bytes after the tree parents": blob + b"\x00",
        "tree parents": blob[:-1],  # cut inside them
        "tree parent 1 of item 1": encode_header(forged),
        "structure 'forest'": encode_header(dict(header, structure="forest")),
        f"{pb} bytes after the chain order": encode_header(chain) + blob[-pb:],
    }
    for why, hdr in cases.items():
        prefix = _PREFIX.pack(magic, ver, flags, len(hdr))
        (tmp_path / "f.acb").write_bytes(prefix + hdr + hashlib.sha256(prefix + hdr).digest() + rest)
        with pytest.raises(ArchiveError, match="header is malformed") as e:
            read_header(tmp_path / "f.acb")
        assert why in str(e.value) and "\n" not in str(e.value), (why, str(e.value))


def test_oracle_cli_on_a_tree_run(tree_run):
    from acbench.cli import app

    root, job = tree_run
    res = CliRunner().invoke(app, ["oracle", job.id, "--runs", str(root), "--k", "2", "--random-refs", "1"])
    assert res.exit_code == 0, res.output
    names = {line.split()[0] for line in res.output.splitlines()[3:] if line and not line.startswith("(")}
    assert {"oracle_tree", "oracle_chain", "isomap", "isomap+tree", "random"} <= names
    bad = CliRunner().invoke(app, ["oracle", "nope", "--runs", str(root)])
    assert bad.exit_code != 0 and "no such run" in " ".join(bad.output.split())
    base = CliRunner().invoke(app, ["oracle", job.baseline_run, "--runs", str(root)])
    assert base.exit_code != 0 and "the oracle needs a conditional run" in " ".join(base.output.split())
