"""Embed a dataset for ordering: the baseline's h_a(g_a(x)) (the paper, App. B), y, or pixels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from acbench.codecs.base import ConditionalCodec, pad_to


@torch.inference_mode()
def embed(
    pixels: np.ndarray, source: str, codec: ConditionalCodec | None = None, batch: int = 64
) -> np.ndarray:
    """Feature matrix [N, D] (float32) of uint8 images [N, 3, H, W].

    Args:
        source: ``hyper`` (z = h_a(g_a(x)), as Xu et al. 2023, App. B), ``y`` (latents, pooled
            to at most 4×4 positions) or ``pixels`` (16×16 area-downsampled RGB).
        codec: the trained baseline (needed for ``hyper`` and ``y``).
    """
    out = []
    for i in range(0, len(pixels), batch):
        x = torch.from_numpy(pixels[i : i + batch]).float().div_(255.0)
        if source == "pixels":
            f = F.adaptive_avg_pool2d(x, 16)
        else:
            if codec is None:
                raise ValueError(f"features={source!r} need a trained baseline codec")
            codec.eval()
            y, z = codec.analyse(pad_to(x, codec.stride)[0])
            f = (
                z
                if source == "hyper"
                else F.adaptive_avg_pool2d(y, (min(4, y.shape[-2]), min(4, y.shape[-1])))
            )
        out.append(f.flatten(1).float().numpy())
    return np.concatenate(out).astype(np.float32)
