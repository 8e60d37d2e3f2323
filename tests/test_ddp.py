"""Data-parallel training on the CPU: gloo, 2 processes, the tiny codec."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acbench.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
CFG = TrainConfig(steps=3, batch=4, lr=1e-3, checkpoint_every=1, seed=0)


def _pixels() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (12, 3, 64, 64), generator=g, dtype=torch.uint8)


def _model():
    from acbench.codecs.base import build_codec

    torch.manual_seed(0)
    return build_codec("mshp", {"N": 8, "M": 12})


def _rank(rank: int, size: int, init: str, out: str) -> None:
    import torch.distributed as dist

    from acbench import distributed
    from acbench.train import BaselineTask, ChainTask, train

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=size)
    try:
        assert distributed.world() == (rank, size)
        model = _model()
        seen = []
        logs = train(
            BaselineTask(model, _pixels(), 0.01),
            CFG,
            Path(out) / f"ckpt{rank}.pt",
            lambda s, t, logs: seen.append(logs["loss"]),
        )
        cond = _model()  # a chain task: the conditional model after a frozen first codec
        train(ChainTask(cond, _model(), _pixels(), 0.01, 3), CFG)
        torch.save(
            {"state": model.state_dict(), "cond": cond.state_dict(), "logs": logs, "seen": seen},
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def _spawn(tmp_path: Path) -> list[dict]:
    import torch.multiprocessing as mp

    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_rank, args=(2, init, str(tmp_path)), nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.slow  # two gloo ranks: ~12 s
def test_two_gloo_ranks_train_one_model(tmp_path):
    r0, r1 = _spawn(tmp_path)
    for part in ("state", "cond"):  # gradients (and aux gradients) averaged: same weights
        for k, v in r0[part].items():
            assert torch.equal(v, r1[part][k]), (part, k)
    assert r0["seen"] == r1["seen"] and len(r0["seen"]) == CFG.steps  # same (averaged) losses
    assert all(torch.isfinite(torch.tensor(r0["seen"])))
    assert (tmp_path / "ckpt0.pt").exists() and not (tmp_path / "ckpt1.pt").exists()  # rank 0 writes
    assert torch.load(tmp_path / "ckpt0.pt", weights_only=True)["step"] == CFG.steps

    from acbench.train import BaselineTask, train

    single = _model()
    train(BaselineTask(single, _pixels(), 0.01), CFG)
    moved = [k for k, v in single.state_dict().items() if not torch.equal(v, r0["state"][k])]
    assert moved  # ranks drew their own half-batches: not the single-process run


def test_uneven_batch_is_refused():
    from acbench.distributed import shard_batch

    assert shard_batch(8, 2) == 4
    with pytest.raises(ValueError, match="does not split over 3 ranks"):
        shard_batch(8, 3)


def test_single_process_is_untouched(tmp_path):
    from acbench import distributed

    assert distributed.world() == (0, 1) and distributed.is_main()
    assert distributed.init() == (0, 1)  # no WORLD_SIZE: nothing to initialise


@pytest.mark.slow
def test_torchrun_entry_point(tmp_path):
    """`torchrun --nproc_per_node 2 -m acbench.torchrun` trains and evaluates a tiny curve."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
        "-m", "acbench.torchrun", "--preset", "tiny", "--no-controls", "--out", str(tmp_path / "runs"),
        "--set", "ordering=random", "--set", "features=pixels", "--set", "lmbdas=0.0067",
        "--set", "chain=2", "--set", "data.max_items=24", "--set", "train.steps=2",
        "--set", "baseline_train.steps=2",
    ]  # fmt: skip
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    from acbench.store import load_rows

    rows, _ = load_rows(tmp_path / "runs")
    assert set(rows["kind"]) == {"baseline", "conditional"}
    assert rows["error"].isna().all()
