"""A gated mixer: ``a + σ(g(ref)) · h(ref)``."""

from __future__ import annotations

import torch
from torch import nn

from acbench.mixers.basic import Mixer


class Gated(Mixer):
    """Adds a gated projection of the reference to ``a`` (a GRU-style update gate).

    Args:
        channels: channels of ``a`` and ``ref``.
    """

    version = "1"

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gate = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)

    def identity_init(self) -> None:
        with torch.no_grad():
            self.value.weight.zero_()
            self.value.bias.zero_()

    def forward(self, a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return a + torch.sigmoid(self.gate(ref)) * self.value(ref)
