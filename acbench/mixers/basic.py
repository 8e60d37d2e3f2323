"""Built-in mixers: ``nn.Module(channels, **hp)`` with ``forward(a, ref) -> same shape as a``.

Every mixer can be initialised to pass ``a`` through unchanged and ignore ``ref``
(:meth:`identity_init`), so a conditional codec warm-started from the baseline starts out as
exactly the baseline.
"""

from __future__ import annotations

import torch
from torch import nn


class Mixer(nn.Module):
    """Base class; subclasses set ``version`` and implement :meth:`identity_init`.

    ``tags`` name properties shown in reports: ``"aligns"`` for a mixer that matches each
    position with other positions of the reference (the built-ins here compare position by
    position).
    """

    version = "1"
    uses_reference = True
    tags: frozenset[str] = frozenset()

    def identity_init(self) -> None:
        raise NotImplementedError


class Conv1x1(Mixer):
    """Concatenate ``a`` and ``ref`` along channels, then a 1×1 conv 2C → C.

    The mixer of "Revisiting Associative Compression: I Can't Believe It's Not Better"
    (Xu, Muckley, Dubois, Ullrich, 2023).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, channels, 1)

    def identity_init(self) -> None:
        c = self.conv.out_channels
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, :c, 0, 0] = torch.eye(c)
            self.conv.bias.zero_()

    def forward(self, a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([a, ref], dim=1))


class FiLM(Mixer):
    """Feature-wise linear modulation: ``a · (1 + γ(ref)) + β(ref)``, γ, β per channel and pixel.

    Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer" (AAAI 2018).

    Args:
        channels: channels of ``a`` and ``ref``.
        hidden: width of the small network computing γ and β (0 = a single 1×1 conv).
    """

    def __init__(self, channels: int, hidden: int = 0) -> None:
        super().__init__()
        if hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Conv2d(channels, hidden, 1), nn.GELU(), nn.Conv2d(hidden, 2 * channels, 1)
            )
        else:
            self.net = nn.Conv2d(channels, 2 * channels, 1)

    def identity_init(self) -> None:
        last = self.net[-1] if isinstance(self.net, nn.Sequential) else self.net
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()

    def forward(self, a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.net(ref).chunk(2, dim=1)
        return a * (1 + gamma) + beta


class DeepConv(Mixer):
    """Several 3×3 convs with a nonlinearity over ``[a, ref]``, added to ``a`` (residual).

    Args:
        channels: channels of ``a`` and ``ref``.
        depth: number of 3×3 conv layers (≥ 1).
        width: hidden width (0 = ``channels``).
    """

    def __init__(self, channels: int, depth: int = 3, width: int = 0) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"deep_conv needs depth >= 1 (got {depth})")
        width = width or channels
        layers: list[nn.Module] = []
        cin = 2 * channels
        for i in range(depth):
            cout = channels if i == depth - 1 else width
            layers.append(nn.Conv2d(cin, cout, 3, padding=1))
            if i < depth - 1:
                layers.append(nn.LeakyReLU(inplace=True))
            cin = cout
        self.net = nn.Sequential(*layers)

    def identity_init(self) -> None:
        with torch.no_grad():
            self.net[-1].weight.zero_()
            self.net[-1].bias.zero_()

    def forward(self, a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return a + self.net(torch.cat([a, ref], dim=1))


class Zero(Mixer):
    """Capacity-matched control: the ``like`` mixer fed an all-zero reference.

    Same architecture and parameter count as the mixer it mimics, but no information about the
    neighbour: the sanity check of Xu et al. (2023), appendix C. Trained, it must land on the
    baseline's rates (up to noise and the extra training).

    Args:
        channels: channels of ``a``.
        like: the mixer whose capacity to copy.
        **hp: that mixer's hyper-parameters.
    """

    uses_reference = False

    def __init__(self, channels: int, like: str = "film", **hp: object) -> None:
        super().__init__()
        from acbench.registry import MIXERS

        if like == "zero":
            raise ValueError("zero mixer: `like` must name another mixer, e.g. like='film'")
        self.like = like
        self.inner = MIXERS.get(like)(channels, **hp)

    def identity_init(self) -> None:
        self.inner.identity_init()

    def forward(self, a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.inner(a, torch.zeros_like(ref))
