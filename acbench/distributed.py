"""Data-parallel training of one run over several processes (``torchrun``, DDP).

Every rank runs the same planned jobs on the same run store; inside :func:`acbench.train.train`
the trainable module is wrapped in ``DistributedDataParallel`` once ``torch.distributed`` is
initialised: each rank draws its own share of the batch (``batch / world`` images, its own
generator seed), gradients are averaged, and rank 0 alone writes training checkpoints. The
other artefacts of a run (model, rows) come out identical on every rank and are written
atomically. The launcher is its own module, :mod:`acbench.torchrun` (``torchrun ... -m
acbench.torchrun``), so that these helpers, which the training loop imports, import no planner.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def world() -> tuple[int, int]:
    """``(rank, world size)``; ``(0, 1)`` when ``torch.distributed`` is not initialised."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process is rank 0 (or the only process)."""
    return world()[0] == 0


def init(backend: str | None = None) -> tuple[int, int]:
    """Initialise the process group from torchrun's environment (no-op for a single process)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return world()


def shard_batch(batch: int, size: int) -> int:
    """Images per rank for a global ``batch``; it must split evenly (the run id names the
    global batch, so a run means the same on one process or many)."""
    if batch % size:
        raise ValueError(f"batch {batch} does not split over {size} ranks; use a multiple of {size}")
    return batch // size


def rank_seed(seed: int, rank: int) -> int:
    """The step seed of one rank: different batches and quantisation noise per rank."""
    return (seed * 1_000_033 + 7919 * (rank + 1)) % 2**63


class TaskModule(nn.Module):
    """``forward(batch, gen)`` = ``task.loss(batch, gen)``, so that DDP sees the forward pass."""

    def __init__(self, task: Any, module: nn.Module) -> None:
        super().__init__()
        self.net = module
        self._task = [task]  # not a submodule: its modules are ``net``

    def forward(self, batch: int, gen: torch.Generator) -> Any:
        return self._task[0].loss(batch, gen)


def wrap(task: Any, module: nn.Module) -> nn.Module:
    """DDP over the task's loss; the entropy bottleneck's quantiles (trained by the auxiliary
    loss outside the forward pass) are left out and averaged by :func:`average_grads`."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    inner = TaskModule(task, module)
    skip = [f"net.{n}" for n, p in module.named_parameters() if n.endswith(".quantiles")]
    DDP._set_params_and_buffers_to_ignore_for_model(inner, skip)
    return DDP(inner, find_unused_parameters=True, broadcast_buffers=False)


def average_grads(params: Sequence[torch.Tensor]) -> None:
    """All-reduce (mean) the gradients of ``params`` by hand (used for the auxiliary loss)."""
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    i = 0
    for g in grads:
        g.copy_(flat[i : i + g.numel()].view_as(g))
        i += g.numel()


def mean(values: Sequence[torch.Tensor]) -> list[float]:
    """Mean of scalars over ranks (every rank logs the same figures)."""
    import torch.distributed as dist

    t = torch.stack([torch.as_tensor(v).detach().float().reshape(()) for v in values])
    dist.all_reduce(t)
    return (t / dist.get_world_size()).tolist()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
