"""Contract checks shipped with the package, so third-party plugins can run the same tests.

Each function raises ``AssertionError`` with a message naming what broke. The test suite
parametrizes them over every registered plugin, so a new plugin is tested the moment it
registers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SMALL_CODEC = {"mshp": {"N": 8, "M": 12}, "elic": {"N": 16, "M": 32}}


def small_params(codec: str) -> dict[str, Any]:
    """Small hyper-parameters for a codec in tests (third-party codecs use their defaults)."""
    return dict(SMALL_CODEC.get(codec, {}))


def check_mixer(name: str, channels: int = 6) -> None:
    """Shape contract, exact identity initialisation and memory layout (a 1×1 map too) of a mixer."""
    import torch

    from acbench.registry import MIXERS

    m = MIXERS.get(name)(channels)
    a, ref = torch.randn(2, channels, 5, 7), torch.randn(2, channels, 5, 7)
    out = m(a, ref)
    assert out.shape == a.shape, f"mixer {name}: output {tuple(out.shape)} != input {tuple(a.shape)}"
    m.identity_init()
    assert torch.equal(m(a, ref), a), f"mixer {name}: identity_init() does not pass `a` through exactly"
    # a 1×1 map (MSHP's z of a 64-px tile): a channels-last result passes for contiguous there,
    # and the convs after the mixer would then take another kernel and lose bit-exactness
    a1, ref1 = torch.randn(2, channels, 1, 1), torch.randn(2, channels, 1, 1)
    out = m(a1, ref1)
    assert torch.equal(out, a1) and out.stride() == a1.stride(), (
        f"mixer {name}: on a 1×1 map the output has strides {out.stride()}, not {a1.stride()}"
    )


def check_codec(
    codec: str, sites: tuple[str, ...], mixer: str, size: tuple[int, int] = (64, 64), seed: int = 0
) -> None:
    """Forward shapes and keys; compress → decompress exactness; identity warm start; rates."""
    import torch

    from acbench.codecs.base import build_codec
    from acbench.evaluate import code_batch

    torch.manual_seed(seed)
    params = small_params(codec)
    base = build_codec(codec, params).eval()
    cond = build_codec(codec, params, sites, mixer).eval()
    x = torch.rand(2, 3, *size)
    base.update(force=True)
    first = base.compress(x, need_x_hat=True)
    out = cond(x, first["ref"])
    assert out["x_hat"].shape == x.shape, f"{codec}: x_hat shape {tuple(out['x_hat'].shape)}"
    assert set(out["likelihoods"]) == {"y", "z"}, f"{codec}: likelihood keys {set(out['likelihoods'])}"
    # a trained-looking (non-identity) conditional model: perturb mixers
    with torch.no_grad():
        for p in cond.mixers.parameters():
            p.add_(0.01 * torch.randn_like(p))
    cond.update(force=True)
    enc = cond.compress(x, first["ref"], need_x_hat=True)
    dec = cond.decompress(enc["strings"], enc["shape"], first["ref"])
    assert torch.equal(enc["x_hat"], dec["x_hat"]), f"{codec}/{mixer}@{sites}: decode differs from encode"
    assert torch.equal(enc["ref"].y, dec["ref"].y) and torch.equal(enc["ref"].z, dec["ref"].z), (
        f"{codec}/{mixer}@{sites}: decoder's reference state differs from the encoder's"
    )
    # identity: warm-started from the baseline with identity mixers → exactly the baseline
    if "hyper_prior" not in sites:
        cond.warm_start(base.state_dict())
        cond.update(force=True)
        enc = cond.compress(x, first["ref"], need_x_hat=True)
        assert enc["strings"] == first["strings"], (
            f"{codec}/{mixer}@{sites}: identity start changes bitstreams"
        )
        assert torch.equal(enc["x_hat"], first["x_hat"]), (
            f"{codec}/{mixer}@{sites}: identity start changes x_hat"
        )
    coded = code_batch(cond, x, first["ref"])
    assert len(coded) == 2 and all(np.isfinite(c.bits_est["y"]) for c in coded)
    # single streams: two images per stream (first, then conditioned), decoded image by image
    from acbench.codecs import coder

    encs = coder.stream_encoders(2)
    a = base.compress(x, need_x_hat=True, streams=encs)
    b = cond.compress(x, a["ref"], need_x_hat=True, streams=encs)
    assert a["strings"] == first["strings"], f"{codec}: streams change the per-image strings"
    decs = coder.stream_decoders([e.flush() for e in encs])
    da = base.decompress(None, a["shape"], None, streams=decs)
    db = cond.decompress(None, b["shape"], da["ref"], streams=decs)
    assert torch.equal(da["x_hat"], a["x_hat"]) and torch.equal(db["x_hat"], b["x_hat"]), (
        f"{codec}/{mixer}@{sites}: decoding a single stream differs from encoding"
    )


def check_ordering(name: str, n: int = 60, dim: int = 8, seed: int = 0) -> None:
    """Permutation, determinism, fit/place on disjoint splits, quality report."""
    from acbench.orderings.quality import ordering_quality
    from acbench.registry import ORDERINGS

    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (3, dim))
    labels = np.repeat(np.arange(3), n // 3)
    feats = centers[labels] + rng.normal(0, 1, (len(labels), dim))
    cls = ORDERINGS.get(name)
    a = cls(random_state=seed).fit(feats[::2], labels[::2])
    b = cls(random_state=seed).fit(feats[::2], labels[::2])
    k = len(feats[::2])
    assert sorted(a.order_) == list(range(k)), f"ordering {name}: order_ is not a permutation"
    assert list(a.order_) == list(b.order_), f"ordering {name}: not deterministic with a fixed seed"
    placed = a.place(feats[1::2], labels[1::2])
    assert sorted(placed) == list(range(len(feats[1::2]))), f"ordering {name}: place() is not a permutation"
    q = ordering_quality(feats[::2], np.asarray(a.order_), labels[::2])
    assert np.isfinite(q["q_neighbour_dist"]), f"ordering {name}: quality report not computed"
