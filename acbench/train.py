"""The one training loop: any codec × mixer, baseline or chains; checkpoint and resume.

Loss = bpp + λ · 255² · MSE (CompressAI's convention), with CompressAI's auxiliary loss for the
entropy bottleneck's quantiles on a second optimiser. On a GPU the transforms run under bf16
autocast (:func:`acbench.device.amp_dtype`); entropy models and the loss stay in float32.
Each step reseeds from ``(seed, step)``, so a run resumed from a checkpoint continues exactly as
an uninterrupted one would.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from acbench.codecs.base import ConditionalCodec, RefState, load_codec
from acbench.config import TrainConfig
from acbench.device import amp_dtype, to_device


class TrainingError(RuntimeError):
    """Training diverged (NaN/inf loss) or cannot continue; the run is recorded as failed."""


def rd_terms(out: dict[str, Any], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(bits per pixel, MSE) of one batch, bpp averaged over images."""
    n, _, h, w = x.shape
    bits = sum(torch.log(lik).sum() for lik in out["likelihoods"].values()) / -math.log(2)
    mse = torch.mean((out["x_hat"] - x) ** 2)
    return bits / (n * h * w), mse


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def to_float(batch: torch.Tensor) -> torch.Tensor:
    return batch.float().div_(255.0)


@dataclass
class BaselineTask:
    """Each image coded alone by an unconditioned codec."""

    model: ConditionalCodec
    pixels: torch.Tensor  # uint8 [N, 3, T, T]
    lam: float

    def trainable(self) -> nn.Module:
        return self.model

    def loss(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        idx = torch.randint(len(self.pixels), (batch,), generator=gen)
        x = to_float(to_device(self.pixels[idx], _device(self.model)))
        bpp, mse = rd_terms(self.model(x), x)
        return bpp + self.lam * 255**2 * mse, {"bpp": bpp, "mse": mse}


@dataclass
class ChainTask:
    """Chains of ``length`` consecutive items of the ordered train split.

    x_1 is coded by ``first`` (the baseline): frozen (default) or trained jointly on the paper's
    Eq. 4, ½R(x_1) + ½R(x_k | x_{k-1}) + λ·D. x_k (k ≥ 2) by ``model`` given the reference state
    of x_{k-1}.
    """

    model: ConditionalCodec
    first: ConditionalCodec
    pixels: torch.Tensor  # uint8 [N, 3, T, T], already in chain order
    lam: float
    length: int
    joint: bool = False

    def __post_init__(self) -> None:
        if len(self.pixels) < self.length:
            raise TrainingError(
                f"{len(self.pixels)} training items cannot make a chain of length {self.length}; "
                "use a shorter --chain or more data"
            )
        if not self.joint:
            self.first.eval().requires_grad_(False)

    def trainable(self) -> nn.Module:
        return nn.ModuleDict({"model": self.model, "first": self.first}) if self.joint else self.model

    def loss(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        start = torch.randint(len(self.pixels) - self.length + 1, (batch,), generator=gen)
        steps = torch.arange(self.length)
        x = to_float(
            to_device(self.pixels[start[:, None] + steps[None]], _device(self.model))
        )  # [B, L, 3, T, T]
        if self.joint:
            out = self.first(x[:, 0])
            bpp1, mse1 = rd_terms(out, x[:, 0])
        else:
            with torch.no_grad():
                out = self.first(x[:, 0])
        ref: RefState = out["ref"]
        bpps, mses = [], []
        for k in range(1, self.length):
            out = self.model(x[:, k], ref)
            bpp, mse = rd_terms(out, x[:, k])
            bpps.append(bpp)
            mses.append(mse)
            ref = out["ref"]
        bpp = torch.stack(bpps).mean()
        mse = torch.stack(mses).mean()
        if self.joint:
            mse = (mse1 + mse * (self.length - 1)) / self.length
            loss = 0.5 * bpp1 + 0.5 * bpp + self.lam * 255**2 * mse
        else:
            loss = bpp + self.lam * 255**2 * mse
        return loss, {"bpp": bpp, "mse": mse}


def _optimizers(
    module: nn.Module, cfg: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
    main = [p for n, p in module.named_parameters() if p.requires_grad and not n.endswith(".quantiles")]
    aux = [p for n, p in module.named_parameters() if p.requires_grad and n.endswith(".quantiles")]
    opt = torch.optim.Adam(main, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux, lr=cfg.aux_lr) if aux else None
    return opt, aux_opt


def _aux_loss(module: nn.Module) -> torch.Tensor:
    return sum(m.aux_loss() for m in module.modules() if isinstance(m, ConditionalCodec))


def train(
    task: BaselineTask | ChainTask,
    cfg: TrainConfig,
    ckpt: Path | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    report: Callable[[int, float], None] | None = None,
    snapshot: tuple[int, Path] | None = None,
) -> dict[str, float]:
    """Train ``task`` for ``cfg.steps`` steps, resuming from ``ckpt`` if it holds a partial run.

    ``snapshot=(step, path)`` also writes the trained module's state dict at that step (the
    shared start of λ fine-tuning).

    Args:
        task: what one step computes.
        cfg: steps, batch, learning rates, clipping, checkpoint interval, seed.
        ckpt: checkpoint file (written atomically every ``cfg.checkpoint_every`` steps and at
            the end).
        progress: called as ``progress(step, steps, logs)`` after every step.
        report: called as ``report(step, loss)`` at every checkpoint (Optuna pruning hook; it
            may raise to stop).

    Returns:
        the last step's logs (``loss``, ``bpp``, ``mse``) and ``resumed_from`` (the step the
        run started from: 0, or the checkpoint's step).
    """
    module = task.trainable()
    module.train()
    if isinstance(task, ChainTask) and not task.joint:
        task.first.eval()
    opt, aux_opt = _optimizers(module, cfg)
    start = 0
    if ckpt is not None and Path(ckpt).exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        module.load_state_dict(state["trainable"])
        opt.load_state_dict(state["opt"])
        if aux_opt is not None and state.get("aux_opt"):
            aux_opt.load_state_dict(state["aux_opt"])
        start = int(state["step"])
    rank, size, ddp, batch = 0, 1, None, cfg.batch
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        from acbench import distributed  # DDP under torchrun: see acbench/distributed.py

        rank, size = distributed.world()
        if size > 1:
            batch = distributed.shard_batch(cfg.batch, size)
            ddp = distributed.wrap(task, module)

    def save(step: int) -> None:
        if ckpt is None or rank != 0:  # rank 0 alone writes checkpoints
            return
        tmp = f"{ckpt}.tmp{os.getpid()}"
        torch.save(
            {
                "trainable": module.state_dict(),
                "opt": opt.state_dict(),
                "aux_opt": aux_opt.state_dict() if aux_opt else None,
                "step": step,
            },
            tmp,
        )
        os.replace(tmp, ckpt)

    dev = _device(module)
    amp = amp_dtype(dev)
    logs: dict[str, float] = {}
    for step in range(start, cfg.steps):
        seed = (cfg.seed * 1_000_003 + step) % 2**63
        if ddp is not None:
            seed = distributed.rank_seed(seed, rank)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss, parts = task.loss(cfg.batch, gen) if ddp is None else ddp(batch, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip > 0:
            nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], cfg.clip)
        opt.step()
        if aux_opt is not None:
            aux_opt.zero_grad(set_to_none=True)
            aux = _aux_loss(module)
            aux.backward()
            if ddp is not None:
                distributed.average_grads(aux_opt.param_groups[0]["params"])
            aux_opt.step()
        done = step + 1
        if ddp is not None:  # every rank, every step: the same figures on each rank
            values = distributed.mean([loss, *parts.values()])
            logs = dict(zip(["loss", *parts], values))
        elif progress is not None or done % cfg.checkpoint_every == 0 or done == cfg.steps:
            logs = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()}}
        if logs and not np.isfinite(logs["loss"]):
            raise TrainingError(f"loss is {logs['loss']} at step {done}; lower the learning rate")
        if snapshot is not None and done == snapshot[0] and rank == 0:
            tmp = f"{snapshot[1]}.tmp{os.getpid()}"
            torch.save(module.state_dict(), tmp)
            os.replace(tmp, snapshot[1])
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save(done)
            if report is not None:
                report(done, logs["loss"])
        if progress is not None:
            progress(done, cfg.steps, logs)
    if ddp is not None:
        distributed.barrier()
    module.eval()
    return {**logs, "resumed_from": start, "amp": str(amp).removeprefix("torch.") if amp else "off"}


def final_weights(ckpt: Path) -> dict[str, torch.Tensor]:
    """The trained module's state dict from a training checkpoint."""
    return torch.load(ckpt, map_location="cpu", weights_only=True)["trainable"]


__all__ = ["BaselineTask", "ChainTask", "TrainingError", "train", "final_weights", "load_codec"]
