"""Rate-oracle rates: a trained conditional codec's estimated bits of item j given item i.

For candidate pairs (a kNN graph of the features, :func:`acbench.orderings.oracle.candidate_pairs`)
each pair costs one forward pass of the conditional codec (eval mode: rounding, the estimate of
the rate, no entropy coding), batched; every item is also coded alone by the baseline, which
gives the reference states (the baseline's decoded latents of item i, as for a chain's first
image) and the cost of a root. O(N·k) forward passes in all.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from acbench.codecs.base import ConditionalCodec, RefState, pad_to


def _bits(out: dict) -> torch.Tensor:
    return sum(torch.log(v).flatten(1).sum(1) for v in out["likelihoods"].values()) / -math.log(2)


@torch.inference_mode()
def pair_bits(
    first: ConditionalCodec,
    model: ConditionalCodec,
    pixels: np.ndarray,
    ref: np.ndarray,
    item: np.ndarray,
    batch: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """(bits of each ``item`` given ``ref``'s baseline state, bits of every image alone), estimated."""
    if model.reference != "latents":
        raise ValueError(f"the rate oracle takes reference='latents' models (got {model.reference!r})")
    first.eval()
    model.eval()
    dev = next(model.parameters()).device
    n = len(pixels)

    def x_of(idx: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(pixels[idx]).float().div_(255.0).to(dev)
        return pad_to(x, model.stride)[0]

    alone = np.empty(n)
    ys, zs = [], []
    for b0 in range(0, n, batch):
        out = first(x_of(np.arange(b0, min(n, b0 + batch))))
        alone[b0 : b0 + batch] = _bits(out).cpu().numpy()
        ys.append(out["ref"].y)
        zs.append(out["ref"].z)
    states = RefState(torch.cat(ys), torch.cat(zs))
    bits = np.empty(len(item))
    for b0 in range(0, len(item), batch):
        r, j = ref[b0 : b0 + batch], item[b0 : b0 + batch]
        out = model(x_of(j), states.index(torch.from_numpy(np.asarray(r, dtype=np.int64)).to(dev)))
        bits[b0 : b0 + batch] = _bits(out).cpu().numpy()
    return bits, alone
