"""Contract tests over every registered codec × mixer × site (small sizes)."""

from __future__ import annotations

import pytest
import torch

from acbench.codecs.base import CodecError, build_codec, load_codec, save_checkpoint
from acbench.registry import CODECS, MIXERS
from acbench.testing import check_codec, check_mixer, small_params

SITE_SETS = [
    ("hyper_analysis", "hyper_synthesis"),
    ("latent_prior",),
    ("hyper_prior",),
    ("hyper_analysis", "hyper_synthesis", "latent_prior", "hyper_prior"),
]


@pytest.mark.parametrize("mixer", MIXERS.names())
def test_mixer_contract(mixer):
    check_mixer(mixer)


@pytest.mark.parametrize("codec", CODECS.names())
@pytest.mark.parametrize("mixer", MIXERS.names())
@pytest.mark.parametrize("sites", SITE_SETS, ids=lambda s: "+".join(s))
def test_codec_contract(codec, mixer, sites):
    check_codec(codec, sites, mixer)


@pytest.mark.parametrize("codec", CODECS.names())
def test_non_multiple_of_stride_is_padded_and_cropped(codec):
    from acbench.evaluate import code_batch

    base = build_codec(codec, small_params(codec)).eval()
    base.update(force=True)
    x = torch.rand(1, 3, 70, 90)
    (c,) = code_batch(base, x, None)
    assert c.x_hat.shape == (3, 70, 90)


@pytest.mark.parametrize("codec", CODECS.names())
def test_reference_of_another_size_is_fitted(codec):
    from acbench.evaluate import code_batch

    p = small_params(codec)
    base = build_codec(codec, p).eval()
    cond = build_codec(
        codec, p, ("hyper_analysis", "hyper_synthesis", "latent_prior", "hyper_prior"), "film"
    ).eval()
    base.update(force=True)
    cond.update(force=True)
    (first,) = code_batch(base, torch.rand(1, 3, 128, 64), None)
    (second,) = code_batch(cond, torch.rand(1, 3, 64, 192), first.ref)
    assert second.x_hat.shape == (3, 64, 192)


def test_unsupported_site_names_supported_ones():
    with pytest.raises(CodecError, match="supports: hyper_analysis"):
        build_codec("mshp", small_params("mshp"), ("nowhere",), "film")


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    a = build_codec("mshp", {"N": 8, "M": 12}, ("hyper_analysis",), "film")
    save_checkpoint(tmp_path / "a.pt", a)
    b = build_codec("mshp", {"N": 8, "M": 16}, ("hyper_analysis",), "film")
    with pytest.raises(CodecError, match="another architecture"):
        load_codec(tmp_path / "a.pt", expect=b.arch())
    model, _ = load_codec(tmp_path / "a.pt")
    assert model.arch() == a.arch()


def test_real_rate_matches_estimate_plus_fixed_overhead():
    """Real bits ≈ estimated bits + a fixed per-string flush cost (measured here)."""
    from acbench.evaluate import code_batch

    torch.manual_seed(0)
    model = build_codec("mshp", {"N": 8, "M": 12}).eval()
    model.update(force=True)
    x = torch.rand(8, 3, 128, 128)
    coded = code_batch(model, x, None)
    est = sum(c.bits_est["y"] for c in coded)
    real = sum(c.bits_real["y"] for c in coded)
    overhead_bits = (real - est) / len(coded)  # one y string per image
    assert 0 <= overhead_bits <= 64, f"per-string overhead {overhead_bits:.1f} bits"
    assert abs(real - est - overhead_bits * len(coded)) <= 0.02 * est


def test_same_seed_same_bytes():
    def once():
        torch.manual_seed(3)
        m = build_codec("mshp", {"N": 8, "M": 12}).eval()
        m.update(force=True)
        return m.compress(torch.rand(2, 3, 64, 64))["strings"]

    assert once() == once()


def test_update_always_rebuilds_stale_cdf_tables(tiny_split):
    """DESIGN trap: compressai's update() without force keeps stale tables once they exist."""
    from acbench.config import TrainConfig
    from acbench.evaluate import code_batch
    from acbench.train import BaselineTask, train

    torch.manual_seed(0)
    model = build_codec("mshp", {"N": 8, "M": 12})
    model.update(force=True)  # tables for the untrained model
    train(
        BaselineTask(model, torch.from_numpy(tiny_split[0].pixels), 0.01),
        TrainConfig(steps=30, batch=4, lr=1e-2),
    )
    model.update()  # acbench's update always forces
    x = torch.from_numpy(tiny_split[1].pixels[:8]).float() / 255
    coded = code_batch(model.eval(), x, None)
    est = sum(c.bits_est["z"] for c in coded)
    real = sum(c.bits_real["z"] for c in coded)
    assert real <= est + 48 * len(coded), f"z: real {real:.0f} bits vs estimated {est:.0f}: stale CDF tables?"


@pytest.mark.parametrize("codec", CODECS.names())
def test_checkpoint_saved_after_update_loads(codec, tmp_path):
    m = build_codec(codec, small_params(codec), ("hyper_prior",), "film")
    m.update(force=True)
    save_checkpoint(tmp_path / "m.pt", m)
    back, _ = load_codec(tmp_path / "m.pt")
    x = torch.rand(1, 3, 64, 64)
    ref = build_codec(codec, small_params(codec)).eval()
    ref.update(force=True)
    r = ref.compress(x)["ref"]
    assert back.eval().compress(x, r)["strings"] == m.eval().compress(x, r)["strings"]
