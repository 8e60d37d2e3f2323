"""The one training loop: any codec × mixer, baseline or chains; checkpoint and resume.

Loss = bpp + λ · 255² · MSE (CompressAI's convention), with CompressAI's auxiliary loss for the
entropy bottleneck's quantiles on a second optimiser. On a GPU the transforms run under bf16
autocast (:func:`acbench.device.amp_dtype`); entropy models and the loss stay in float32.
Each step reseeds from ``(seed, step)``, so a run resumed from a checkpoint continues exactly as
an uninterrupted one would.

The protocol that makes a trained model a reference worth comparing against: a step decay of
the learning rate for the last ``decay_steps`` steps, warm-started weights at a fraction of the
learning rate of new ones (mixers), optional flips / rotations, and a validation loss on images
never trained on, from which the *convergence figure* is taken: the relative change of the
validation loss over the last 20 % of training (near 0: converged; stored in every model).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from acbench.codecs.base import ConditionalCodec, RefState, load_codec
from acbench.config import TrainConfig
from acbench.device import amp_dtype, to_device
from acbench.store import atomic_write


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


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One random flip / 90-degree rotation per sample (the 8 symmetries of a square).

    ``x`` is ``[B, ..., H, W]``; a chain ``[B, L, 3, T, T]`` gets one transform for all its images,
    so neighbours stay neighbours.
    """
    codes = torch.randint(8, (len(x),), generator=gen).tolist()
    out = []
    for xi, c in zip(x, codes):
        if c & 4:
            xi = xi.transpose(-1, -2)
        if c & 2:
            xi = xi.flip(-1)
        if c & 1:
            xi = xi.flip(-2)
        out.append(xi)
    return torch.stack(out)


def environment() -> dict[str, Any]:
    """What can change floating-point sums between two trainings of one config."""
    return {
        "threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "platform": platform.platform(terse=True),
    }


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The learning-rate multiplier at ``step`` (0-based): ``decay`` for the last decay_steps."""
    return cfg.decay if cfg.decay_steps and step >= cfg.steps - cfg.decay_steps else 1.0


def convergence(history: list[tuple[int, float]], steps: int) -> float:
    """Relative change of the validation loss over the last 20 % of training (NaN if unknown).

    ``(loss(end) - loss(at 80 %)) / loss(at 80 %)``, with the loss at 80 % taken at the last
    validation at or before that step.
    """
    if not history or history[-1][0] != steps:
        return float("nan")
    mark = steps - steps // 5
    before = [v for s, v in history if s <= mark]
    if not before or steps // 5 == 0:
        return float("nan")
    return (history[-1][1] - before[-1]) / abs(before[-1])


def _batched_mean(
    items: torch.Tensor, batch: int, device: torch.device, loss: Callable[[torch.Tensor], torch.Tensor]
) -> float:
    """Mean over uint8 ``items`` of a per-batch mean ``loss``, weighted by batch size (NaN if none)."""
    total, n = 0.0, 0
    for i in range(0, len(items), batch):
        x = to_float(to_device(items[i : i + batch], device))
        total += float(loss(x)) * len(x)
        n += len(x)
    return total / n if n else float("nan")


@dataclass
class BaselineTask:
    """Each image coded alone by an unconditioned codec."""

    model: ConditionalCodec
    pixels: torch.Tensor  # uint8 [N, 3, T, T]
    lam: float
    augment: bool = False

    def trainable(self) -> nn.Module:
        return self.model

    def loss(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        idx = torch.randint(len(self.pixels), (batch,), generator=gen)
        x = self.pixels[idx]
        if self.augment:
            x = augment(x, gen)
        x = to_float(to_device(x, _device(self.model)))
        bpp, mse = rd_terms(self.model(x), x)
        return bpp + self.lam * 255**2 * mse, {"bpp": bpp, "mse": mse}

    @torch.no_grad()
    def val_loss(self, pixels: torch.Tensor, batch: int = 64) -> float:
        """The RD loss on held-out images (eval mode: rounding, not noise)."""

        def loss(x: torch.Tensor) -> torch.Tensor:
            bpp, mse = rd_terms(self.model(x), x)
            return bpp + self.lam * 255**2 * mse

        return _batched_mean(pixels, batch, _device(self.model), loss)


@dataclass
class ChainTask:
    """Chains of ``length`` consecutive items of the ordered train split, or given ``paths``.

    x_1 is coded by ``first`` (the baseline): frozen (default) or trained jointly on the paper's
    Eq. 4, ½R(x_1) + ½R(x_2 | x_1) + λ·D, for a chain of L: the mean rate of its L images
    (x_1's and each conditioned one's weighted alike, as they are in D) + λ·D. x_k (k ≥ 2) by
    ``model`` given the reference state of x_{k-1}. With ``paths`` (``[P, length]`` item
    indices, e.g. the root-ward paths of a spanning tree, :func:`acbench.orderings.tree.paths`)
    each sample is one of those rows instead of a window of consecutive items.
    """

    model: ConditionalCodec
    first: ConditionalCodec
    pixels: torch.Tensor  # uint8 [N, 3, T, T], already in chain order (any order with ``paths``)
    lam: float
    length: int
    joint: bool = False
    augment: bool = False
    paths: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.paths is not None and len(self.paths) == 0:
            raise TrainingError(
                f"the tree has no root-ward path of {self.length} training items (it is too shallow); "
                "use a shorter --chain or more data"
            )
        if len(self.pixels) < self.length:
            raise TrainingError(
                f"{len(self.pixels)} training items cannot make a chain of length {self.length}; "
                "use a shorter --chain or more data"
            )
        if not self.joint:
            self.first.eval().requires_grad_(False)

    def trainable(self) -> nn.Module:
        return nn.ModuleDict({"model": self.model, "first": self.first}) if self.joint else self.model

    def warm_names(self, warm: Collection[str]) -> set[str]:
        """``warm`` (names in ``model``) as names in :meth:`trainable`; jointly, every parameter of
        ``first`` too: it starts from the converged baseline and fine-tunes at the warm rate."""
        if not self.joint:
            return set(warm)
        return {f"model.{n}" for n in warm} | {f"first.{n}" for n, _ in self.first.named_parameters()}

    def loss(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        if self.paths is not None:
            x = self.pixels[self.paths[torch.randint(len(self.paths), (batch,), generator=gen)]]
        else:
            start = torch.randint(len(self.pixels) - self.length + 1, (batch,), generator=gen)
            steps = torch.arange(self.length)
            x = self.pixels[start[:, None] + steps[None]]  # [B, L, 3, T, T]
        if self.augment:
            x = augment(x, gen)
        return self._loss(to_float(to_device(x, _device(self.model))))

    @torch.no_grad()
    def val_loss(self, pixels: torch.Tensor, batch: int = 16) -> float:
        """The chain loss on held-out images in their stored order (consecutive, disjoint chains)."""
        n = len(pixels) // self.length * self.length
        chains = pixels[:n].reshape(-1, self.length, *pixels.shape[1:])
        return _batched_mean(chains, batch, _device(self.model), lambda x: self._loss(x)[0])

    def _loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
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
        if self.joint:  # every image of the chain weighs alike in R and in D
            bpp = (bpp1 + bpp * (self.length - 1)) / self.length
            mse = (mse1 + mse * (self.length - 1)) / self.length
            loss = bpp + self.lam * 255**2 * mse
        else:
            loss = bpp + self.lam * 255**2 * mse
        return loss, {"bpp": bpp, "mse": mse}


def _optimizers(
    module: nn.Module, cfg: TrainConfig, warm: Collection[str] = ()
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
    """Adam on the main parameters (warm-started ones at ``lr * warm_lr_scale``), Adam on quantiles.

    Each group's ``base_lr`` is what the schedule multiplies.
    """
    unknown = sorted(set(warm) - {n for n, _ in module.named_parameters()})
    if unknown:  # names from another namespace would silently train at the full rate
        raise TrainingError(
            f"{len(unknown)} warm-started parameter name(s) are not in the trained module "
            f"(e.g. {unknown[0]!r}): map them to its names"
        )
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    main = [(n, p) for n, p in named if not n.endswith(".quantiles")]
    aux = [p for n, p in named if n.endswith(".quantiles")]
    groups = [
        {"params": [p for n, p in main if n not in warm], "base_lr": cfg.lr},
        {"params": [p for n, p in main if n in warm], "base_lr": cfg.lr * cfg.warm_lr_scale},
    ]
    groups = [g for g in groups if g["params"]]
    for g in groups:
        g["lr"] = g["base_lr"]
    opt = torch.optim.Adam(groups, lr=cfg.lr)
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
    val: torch.Tensor | None = None,
    warm: Collection[str] = (),
) -> dict[str, Any]:
    """Train ``task`` for ``cfg.steps`` steps, resuming from ``ckpt`` if it holds a partial run.

    ``snapshot=(step, path)`` also writes the trained module's state dict at that step (the
    shared start of λ fine-tuning). ``val`` (uint8 held-out images) is scored at every
    checkpoint, at 80 % of the steps and at the end; ``warm`` names the parameters that train at
    ``lr * cfg.warm_lr_scale``.

    Args:
        task: what one step computes.
        cfg: steps, batch, learning rates, clipping, checkpoint interval, seed.
        ckpt: checkpoint file (written atomically every ``cfg.checkpoint_every`` steps and at
            the end).
        progress: called as ``progress(step, steps, logs)`` after every step.
        report: called as ``report(step, loss)`` at every checkpoint (Optuna pruning hook; it
            may raise to stop).

    Returns:
        the last step's logs (``loss``, ``bpp``, ``mse``), ``resumed_from`` (the step the run
        started from: 0, or the checkpoint's step), ``val`` (``[(step, loss)]``),
        ``convergence`` (see :func:`convergence`) and ``environment``.
    """
    module = task.trainable()

    def train_mode() -> None:
        module.train()
        if isinstance(task, ChainTask) and not task.joint:
            task.first.eval()

    train_mode()
    opt, aux_opt = _optimizers(module, cfg, task.warm_names(warm) if isinstance(task, ChainTask) else warm)
    start = 0
    history: list[tuple[int, float]] = []
    if ckpt is not None and Path(ckpt).exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        module.load_state_dict(state["trainable"])
        opt.load_state_dict(state["opt"])
        if aux_opt is not None and state.get("aux_opt"):
            aux_opt.load_state_dict(state["aux_opt"])
        start = int(state["step"])
        history = [(int(a), float(b)) for a, b in state.get("val", [])]
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
        state = {
            "trainable": module.state_dict(),
            "opt": opt.state_dict(),
            "aux_opt": aux_opt.state_dict() if aux_opt else None,
            "step": step,
            "val": history,
        }
        atomic_write(ckpt, lambda tmp: torch.save(state, tmp))

    def validate(step: int) -> None:
        if val is None or len(val) == 0 or rank != 0:
            return
        module.eval()
        history.append((step, task.val_loss(val)))
        train_mode()

    mark = cfg.steps - cfg.steps // 5  # the convergence figure's reference step
    dev = _device(module)
    amp = amp_dtype(dev)
    logs: dict[str, float] = {}
    for step in range(start, cfg.steps):
        factor = lr_factor(step, cfg)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * factor
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
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.clip)
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
            atomic_write(snapshot[1], lambda tmp: torch.save(module.state_dict(), tmp))
        if done % cfg.checkpoint_every == 0 or done in (mark, cfg.steps):
            validate(done)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save(done)
            if report is not None:
                report(done, logs["loss"])
        if progress is not None:
            progress(done, cfg.steps, logs)
    if ddp is not None:
        distributed.barrier()
    module.eval()
    return {
        **logs,
        "resumed_from": start,
        "amp": str(amp).removeprefix("torch.") if amp else "off",
        "val": history,
        "convergence": convergence(history, cfg.steps),
        "environment": environment(),
    }


__all__ = ["BaselineTask", "ChainTask", "TrainingError", "train", "load_codec", "convergence"]
