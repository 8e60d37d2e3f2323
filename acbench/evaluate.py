"""Chain evaluation with the real entropy coder (CompressAI's rANS); per-image long rows.

Chains are consecutive blocks of the eval ordering. Position 1 is coded by the baseline, every
later position by the conditional codec given the *decoded* state of its predecessor. All
chains of one length are coded together, one position at a time, as a batch: the coder is
called once per position instead of once per image. Reconstructions and PSNR come from the
decoder, never from the encoder.

Two real rates per image. ``bpp_real``: the image's own strings (one rANS stream per image and
component, each with its flush). ``bpp_stream``: every chain coded as one rANS stream
(:mod:`acbench.codecs.coder`, one flush per chain, as ``acbench compress`` writes it), its bits
shared out to the chain's images — each image's estimate plus an equal share of the stream's
excess over the chain's estimate (the flush, and the coder's small loss), split between y and z
in proportion to their estimates — so that the shares of a chain sum to its stream exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from acbench.codecs import coder
from acbench.codecs.base import ConditionalCodec, RefState, pad_to


@dataclass
class Coded:
    """One image as coded: rates (bits), decoded image and the decoder's reference state."""

    bits_est: dict[str, float]
    bits_real: dict[str, float]
    x_hat: torch.Tensor  # [3, H, W] in [0, 1], cropped
    ref: RefState
    bits_stream: dict[str, float] | None = None  # its share of its chain's single stream


def _psnr(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    a = (x * 255).round()
    b = (x_hat.clamp(0, 1) * 255).round()
    mse = torch.mean((a - b) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def _ms_ssim(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    if min(x.shape[-2:]) <= 160:  # 5 scales of an 11-px window need more than 160 px
        return float("nan")
    from pytorch_msssim import ms_ssim

    return float(ms_ssim(x[None], x_hat.clamp(0, 1)[None], data_range=1.0))


def _bits(lik: torch.Tensor) -> torch.Tensor:
    return torch.log(lik).flatten(1).sum(1) / -math.log(2)


def code_batch(
    model: ConditionalCodec,
    x: torch.Tensor,
    ref: RefState | None,
    need_x_hat: bool = False,
    streams: Sequence[Any] | None = None,
) -> list[Coded]:
    """Encode and decode a batch of same-size images (each given its own reference); each
    image's symbols are also appended to ``streams[i]`` when given."""
    xp, (h, w) = pad_to(x.to(next(model.parameters()).device), model.stride)
    enc = model.compress(xp, ref, need_x_hat=need_x_hat, streams=streams)
    dec = model.decompress(enc["strings"], enc["shape"], ref)
    est = {k: _bits(v) for k, v in enc["likelihoods"].items()}
    out = []
    for i in range(len(x)):
        out.append(
            Coded(
                bits_est={k: float(v[i]) for k, v in est.items()},
                bits_real={k: 8.0 * len(enc["strings"][k][i]) for k in ("y", "z")},
                x_hat=dec["x_hat"][i, :, :h, :w].cpu(),
                ref=dec["ref"].row(i),
            )
        )
    return out


def stream_shares(est: Sequence[dict[str, float]], stream_bits: float) -> list[dict[str, float]]:
    """A chain's single-stream bits shared out to its images (``est``: their estimated bits per
    component): each image gets its estimate plus an equal share of the excess, split between
    components in proportion to their estimates. The shares sum to ``stream_bits``."""
    excess = (stream_bits - sum(sum(e.values()) for e in est)) / len(est)
    out = []
    for e in est:
        tot = sum(e.values())
        out.append({k: v + excess * (v / tot if tot > 0 else 1 / len(e)) for k, v in e.items()})
    return out


def _stack_refs(refs: list[RefState]) -> RefState:
    x_hats = [r.x_hat for r in refs]
    return RefState(
        torch.cat([r.y for r in refs]),
        torch.cat([r.z for r in refs]),
        None if any(x is None for x in x_hats) else torch.cat(x_hats),
    )


def _shuffled(imgs: np.ndarray, n: int, rng: np.random.Generator, states: dict[int, RefState]) -> RefState:
    """The states of a random *other* image for each of ``imgs`` (the swapped-reference control)."""
    others = []
    for img in imgs:
        j = int(rng.integers(n - 1))
        j = j + 1 if j >= img else j  # any image but itself
        others.append(states[j])
    return _stack_refs(others)


def chains_of(n: int, length: int) -> list[np.ndarray]:
    """Positions 0..n-1 cut into consecutive chains of ``length`` (the last may be shorter)."""
    return [np.arange(s, min(s + length, n)) for s in range(0, n, length)]


@torch.inference_mode()
def code_chains(
    first: ConditionalCodec,
    model: ConditionalCodec | None,
    pixels: np.ndarray,
    order: np.ndarray,
    length: int,
    batch: int = 64,
    shuffle_from: dict[int, RefState] | None = None,
    seed: int = 0,
) -> list[tuple[int, int, int, Coded]]:
    """Code the eval images in chains of ``length`` along ``order``.

    Args:
        first: the baseline, codes position 1.
        model: the conditional codec (``None`` with ``length == 1``: each image alone).
        pixels: uint8 [N, 3, H, W] eval images.
        order: the eval ordering (a permutation of ``range(N)``).
        length: chain length (``len(order)`` for one chain through the whole set).
        batch: chains coded together.
        shuffle_from: when given, each conditioned image's reference is replaced by the decoded
            state of a random *other* image (the "swapped reference" control); maps image index
            → its state in the true-reference coding.
        seed: for the shuffled references.

    Returns:
        ``(image, chain_id, position, Coded)`` for every image.
    """
    first.eval()
    if model is not None:
        model.eval()
    need_x_hat = model is not None and model.reference == "reconstruction"
    rng = np.random.default_rng(seed)
    chains = chains_of(len(order), length)
    results: list[tuple[int, int, int, Coded]] = []
    groups: dict[int, list[int]] = {}
    for cid, ch in enumerate(chains):
        groups.setdefault(len(ch), []).append(cid)
    for glen, cids in sorted(groups.items()):
        for b0 in range(0, len(cids), batch):
            ids = cids[b0 : b0 + batch]
            imgs = np.stack([order[chains[c]] for c in ids])  # [b, glen]
            ref: RefState | None = None
            streams = coder.stream_encoders(len(ids))  # one rANS stream per chain
            start = len(results)
            for pos in range(glen):
                x = torch.from_numpy(pixels[imgs[:, pos]]).float().div_(255.0)
                if pos == 0:
                    coded = code_batch(first, x, None, need_x_hat=need_x_hat, streams=streams)
                else:
                    if shuffle_from is not None:
                        ref = _shuffled(imgs[:, pos], len(order), rng, shuffle_from)
                    coded = code_batch(model, x, ref, need_x_hat=need_x_hat, streams=streams)
                for i, c in enumerate(coded):
                    results.append((int(imgs[i, pos]), ids[i], pos + 1, c))
                ref = _stack_refs([c.ref for c in coded])
            # results[start:] is position-major: chain i's images sit at i, i + len(ids), ...
            for i, enc in enumerate(streams):
                mine = [results[j][3] for j in range(start + i, len(results), len(ids))]
                shares = stream_shares([c.bits_est for c in mine], 8.0 * len(enc.flush()))
                for c, sh in zip(mine, shares, strict=True):
                    c.bits_stream = sh
    return results


@torch.inference_mode()
def code_tree(
    first: ConditionalCodec,
    model: ConditionalCodec,
    pixels: np.ndarray,
    parent: np.ndarray,
    order: np.ndarray,
    batch: int = 64,
    shuffle_from: dict[int, RefState] | None = None,
    seed: int = 0,
) -> list[tuple[int, int, int, Coded]]:
    """Code the eval images along a forest: roots by the baseline, every other image by the
    conditional codec given the *decoded* state of its parent.

    Images are coded level by level (all images of one depth together, ``batch`` at a time), so a
    parent is always decoded before its children; each tree is also one rANS stream
    (``bits_stream``, shared out as :func:`code_chains` does), its images in coding order. A
    chain is the forest :func:`acbench.orderings.tree.chain_parents`.

    Args:
        first: the baseline, codes the roots.
        model: the conditional codec.
        pixels: uint8 [N, 3, H, W] eval images.
        parent: parent of each image (``-1``: a root).
        order: a coding order (parents first); it numbers the trees (``chain_id``).
        batch: images coded together.
        shuffle_from: as in :func:`code_chains`: each conditioned image's reference is the state
            of a random *other* image in the true-reference coding.
        seed: for the shuffled references.

    Returns:
        ``(image, tree_id, depth + 1, Coded)`` for every image (the position of a chain).
    """
    from acbench.orderings.tree import depths, units

    first.eval()
    model.eval()
    need_x_hat = model.reference == "reconstruction"
    rng = np.random.default_rng(seed)
    parent = np.asarray(parent, dtype=np.int64)
    trees = units(parent, order)
    tree_id = np.empty(len(parent), dtype=np.int64)
    for tid, unit in enumerate(trees):
        tree_id[unit] = tid
    depth = depths(parent, order)
    streams = coder.stream_encoders(len(trees))  # one rANS stream per tree, in coding order
    mine: list[list[Coded]] = [[] for _ in trees]
    results: list[tuple[int, int, int, Coded]] = []
    states: dict[int, RefState] = {}
    for d in range(int(depth.max()) + 1 if len(depth) else 0):
        level = np.asarray(order)[depth[np.asarray(order)] == d]
        now: dict[int, RefState] = {}
        for b0 in range(0, len(level), batch):
            imgs = level[b0 : b0 + batch]
            x = torch.from_numpy(pixels[imgs]).float().div_(255.0)
            sinks = [streams[t] for t in tree_id[imgs].tolist()]
            if d == 0:
                coded = code_batch(first, x, None, need_x_hat=need_x_hat, streams=sinks)
            else:
                if shuffle_from is not None:
                    ref = _shuffled(imgs, len(parent), rng, shuffle_from)
                else:
                    ref = _stack_refs([states[int(p)] for p in parent[imgs]])
                coded = code_batch(model, x, ref, need_x_hat=need_x_hat, streams=sinks)
            for img, c in zip(imgs.tolist(), coded):
                results.append((img, int(tree_id[img]), d + 1, c))
                mine[tree_id[img]].append(c)
                now[img] = c.ref
        states = now
    for enc, coded_tree in zip(streams, mine, strict=True):
        shares = stream_shares([c.bits_est for c in coded_tree], 8.0 * len(enc.flush()))
        for c, sh in zip(coded_tree, shares, strict=True):
            c.bits_stream = sh
    return results


def rows_of(
    results: list[tuple[int, int, int, Coded]],
    pixels: np.ndarray,
    labels: np.ndarray,
    side: np.ndarray | None = None,
) -> list[dict]:
    """Long rows (one per image × component) from coded images.

    ``side``: bits of side information per image (a tree's parent indices,
    :func:`acbench.orderings.tree.side_bits`), added to the ``total`` component's rates (real,
    estimated and single-stream).
    """
    rows = []
    for img, cid, pos, c in results:
        x = torch.from_numpy(pixels[img]).float().div_(255.0)
        h, w = x.shape[-2:]
        psnr, msssim = _psnr(x, c.x_hat), _ms_ssim(x, c.x_hat)
        for comp in ("y", "z", "total"):
            extra = float(side[img]) if side is not None and comp == "total" else 0.0
            est = sum(c.bits_est.values()) + extra if comp == "total" else c.bits_est[comp]
            real = sum(c.bits_real.values()) + extra if comp == "total" else c.bits_real[comp]
            stream = {}
            if c.bits_stream is not None:
                bits = sum(c.bits_stream.values()) + extra if comp == "total" else c.bits_stream[comp]
                stream = {"bpp_stream": bits / (h * w)}
            rows.append(
                {
                    "image": img,
                    "label": int(labels[img]),
                    "chain_id": cid,
                    "position": pos,
                    "component": comp,
                    "bpp_est": est / (h * w),
                    "bpp_real": real / (h * w),
                    **stream,
                    "psnr": psnr,
                    "ms_ssim": msssim,
                }
            )
    return rows
