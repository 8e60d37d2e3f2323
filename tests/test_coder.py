"""acbench's batched rANS calls give CompressAI's bytes and values, and never use stale tables."""

from __future__ import annotations

import torch

from acbench.codecs import coder
from acbench.codecs.base import build_codec


def _model(seed: int = 0):
    torch.manual_seed(seed)
    m = build_codec("mshp", {"N": 8, "M": 12}).eval()
    with torch.no_grad():  # move the priors off their init so the tables are not trivial
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    m.update(force=True)
    return m


def _latents(m, n=3):
    torch.manual_seed(1)
    x = torch.rand(n, 3, 64, 128)
    with torch.no_grad():
        y = m.base.g_a(x)
        z = m.base.h_a(y)
        z_hat = m.base.entropy_bottleneck.decompress(m.base.entropy_bottleneck.compress(z), z.shape[-2:])
        scales, means = m.base.h_s(z_hat).chunk(2, 1)
    return y, z, scales, means


def test_same_bytes_and_values_as_compressai():
    m = _model()
    y, z, scales, means = _latents(m)
    gc, eb = m.base.gaussian_conditional, m.base.entropy_bottleneck
    idx = gc.build_indexes(scales)
    assert torch.equal(coder.gaussian_indexes(gc, scales), idx)
    ours = coder.compress(gc, y, idx, means)
    assert ours == gc.compress(y, idx, means=means)
    assert torch.equal(coder.decompress(gc, ours, idx, means), gc.decompress(ours, idx, means=means))
    zs = coder.bottleneck_compress(eb, z)
    assert zs == eb.compress(z)
    assert torch.equal(
        coder.bottleneck_decompress(eb, zs, tuple(z.shape[-2:])), eb.decompress(zs, z.shape[-2:])
    )


def test_tables_follow_update_and_load_state_dict():
    m, other = _model(0), _model(1)
    _, z, _, _ = _latents(m)
    eb = m.base.entropy_bottleneck  # its tables depend on the learned prior
    first = coder.bottleneck_compress(eb, z)
    assert coder.tables(eb) is coder.tables(eb)  # cached while the tables live unchanged
    m.load_state_dict(other.state_dict())  # copies other tables into the same buffers
    assert coder.bottleneck_compress(eb, z) == eb.compress(z) != first
    with torch.no_grad():
        eb.quantiles.add_(0.3)
        eb.biases[0].add_(0.5)
    m.update(force=True)  # new table tensors
    assert coder.bottleneck_compress(eb, z) == eb.compress(z)


def test_gaussian_indexes_at_the_table_boundaries():
    gc = _model().base.gaussian_conditional
    table = gc.scale_table
    scales = torch.cat([torch.rand(500) * 3, torch.rand(500) * 100, table, table + 1e-6, table - 1e-6])
    assert torch.equal(coder.gaussian_indexes(gc, scales), gc.build_indexes(scales))
