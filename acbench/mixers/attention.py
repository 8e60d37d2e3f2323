"""A mixer that aligns: windowed cross-attention from ``a`` to ``ref``, then FiLM.

The paper's mixers compare ``a`` with ``ref`` position by position, so a neighbour whose content
sits a few positions away is of little use to them. This one first lets every position of ``a``
pick its best-matching positions of ``ref`` within a window, then mixes as :class:`FiLM` does
with that aligned reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from acbench.mixers.basic import FiLM, Mixer


class Attention(Mixer):
    """Windowed cross-attention from ``a`` to ``ref`` (alignment), then FiLM with the result.

    Each position p of ``a`` attends over the ``window × window`` positions of ``ref`` around p
    (positions outside the frame are masked out)::

        w_o(p)     = softmax_o( q(a)_p · k(ref)_{p+o} / √dim + b_o )
        aligned(p) = Σ_o w_o(p) · ref_{p+o}
        out        = a · (1 + γ(aligned)) + β(aligned)

    q and k are 1×1 projections to ``heads × dim`` channels and ``b`` a learned bias per head
    and offset; head i aligns the i-th of ``heads`` near-equal channel groups of ``ref``. γ, β
    come from the aligned reference as in :class:`~acbench.mixers.basic.FiLM` (a 1×1 conv, or a
    small network with ``hidden``), which it is exactly with ``window = 1``; a window of 7 covers
    the whole 4×4 latent of a 64-px MSHP tile from every position. Stereo and reference-based
    codecs align before mixing (ECSIC, Wödlinger et al., WACV 2024; CLC, AAAI 2025); the
    attention is that of Vaswani et al., "Attention Is All You Need" (NeurIPS 2017), restricted
    to a window as in Ramachandran et al., "Stand-Alone Self-Attention in Vision Models"
    (NeurIPS 2019).

    Args:
        channels: channels of ``a`` and ``ref``.
        window: side of the (odd) search window, in positions.
        heads: attention heads (each picks its own positions for its group of channels).
        dim: query / key channels per head.
        hidden: width of the network computing γ and β (0 = a single 1×1 conv).
    """

    tags = frozenset({"aligns"})

    def __init__(self, channels: int, window: int = 7, heads: int = 1, dim: int = 8, hidden: int = 0) -> None:
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"attention needs an odd window >= 1 (got {window})")
        if not 1 <= heads <= channels or dim < 1:
            raise ValueError(
                f"attention needs 1 <= heads <= channels ({channels}) and dim >= 1 (got {heads}, {dim})"
            )
        self.window, self.heads, self.dim = window, heads, dim
        self.q = nn.Conv2d(channels, heads * dim, 1)
        self.k = nn.Conv2d(channels, heads * dim, 1)
        # q = k at the start: the logits begin as a random-projection correlation of a with ref,
        # so matching content already stands out (independent draws give nothing to learn from)
        with torch.no_grad():
            nn.init.normal_(self.q.weight, std=1 / math.sqrt(channels))
            self.k.weight.copy_(self.q.weight)
            self.q.bias.zero_()
            self.k.bias.zero_()
        n = window * window
        # start with about half the weight on the co-located position (as the position-wise
        # mixers see it), the rest spread over the window until q · k has learned to match
        bias = torch.zeros(heads, n)
        bias[:, n // 2] = math.log(n)
        self.bias = nn.Parameter(bias)
        self.film = FiLM(channels, hidden)

    def identity_init(self) -> None:
        self.film.identity_init()

    def weights(self, a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(batch, heads, window², H·W)``; offsets in row-major order."""
        b, _, h, w = a.shape
        n, r = self.window * self.window, self.window // 2
        q = self.q(a).view(b, self.heads, self.dim, h * w)
        k = F.unfold(self.k(ref), self.window, padding=r).view(b, self.heads, self.dim, n, h * w)
        logits = torch.einsum("bhdp,bhdnp->bhnp", q, k) / math.sqrt(self.dim)
        logits = logits + self.bias.view(1, self.heads, n, 1)
        inside = F.unfold(a.new_ones(1, 1, h, w), self.window, padding=r).view(1, 1, n, h * w) > 0
        return logits.masked_fill(~inside, float("-inf")).softmax(2)

    def align(self, a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """The reference as seen from each position of ``a`` (same shape as ``ref``)."""
        b, c, h, w = ref.shape
        n, r = self.window * self.window, self.window // 2
        v = F.unfold(ref, self.window, padding=r).view(b, c, n, h * w)
        weights = self.weights(a, ref)
        out = torch.cat(
            [
                torch.einsum("bnp,bcnp->bcp", weights[:, i], part)
                for i, part in enumerate(v.tensor_split(self.heads, 1))
            ],
            1,
        ).reshape(b, c, h, w)
        # einsum may hand back a channels-last layout; on a 1×1 map that layout passes for
        # contiguous and would make the next convs (h_s, ...) take another kernel: not bit-exact
        return out.clone(memory_format=torch.contiguous_format)

    def forward(self, a: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.film(a, self.align(a, ref))
