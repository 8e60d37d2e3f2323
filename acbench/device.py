"""Device choice: a GPU when there is one, without flags (``ACBENCH_DEVICE`` overrides)."""

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
