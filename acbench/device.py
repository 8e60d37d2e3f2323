"""Device choice: a GPU when there is one, without flags (``ACBENCH_DEVICE`` overrides);
mixed precision (bf16 transforms) on GPUs that support it (``ACBENCH_AMP`` overrides)."""

from __future__ import annotations

import os

import torch


def pick(name: str | None = None) -> torch.device:
    """``cuda`` when available, else ``cpu``; ``name`` or ``$ACBENCH_DEVICE`` choose explicitly.

    Encode and decode must run on the same kind of device (CompressAI's rANS tables are not
    portable across floating-point implementations), so archives record where they were coded.
    """
    name = name or os.environ.get("ACBENCH_DEVICE", "auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"ACBENCH_DEVICE={name} but no CUDA device is available; use cpu or auto")
    return dev


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a CPU batch, through pinned memory with a non-blocking copy on CUDA."""
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch


AMP_MODES = ("auto", "bf16", "off")


def amp_dtype(device: torch.device, mode: str | None = None) -> torch.dtype | None:
    """The autocast dtype for training on ``device``, or ``None`` for plain float32.

    ``auto`` (default; ``$ACBENCH_AMP`` or ``mode`` choose explicitly): bf16 on a CUDA device
    that supports it, float32 elsewhere (on CPUs without AMX, bf16 convolutions run ~10x
    slower: measured here). Only the transforms run in bf16; the entropy models and the rate
    term stay in float32 (see :func:`acbench.codecs.base.entropy_fp32`). Like the device, this
    is an execution choice, not part of the run id; the model file records it.
    """
    mode = mode or os.environ.get("ACBENCH_AMP", "auto")
    if mode not in AMP_MODES:
        raise RuntimeError(f"ACBENCH_AMP={mode!r} is not one of {', '.join(AMP_MODES)}")
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None
