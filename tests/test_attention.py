"""The `attention` mixer aligns: a reference shifted by a few positions is still of use to it.

The shape, identity and codec contracts run for it with every other mixer (tests/test_codecs.py,
tests/test_elic.py); here: what sets it apart from the position-wise mixers.
"""

from __future__ import annotations

import pytest
import torch

from acbench.registry import MIXERS

SHIFT = (1, 2)  # ref at p holds the content of a at p + SHIFT


def _shifted(seed: int, channels: int = 16, size: int = 8, batch: int = 16, noise: float = 0.5):
    """``(a, ref, target)``: a noisy view of a random map, the map shifted by SHIFT, the map.

    No position-wise function of (a, ref) beats ~noise² / (1 + noise²) = 0.2 per element on the
    target; a mixer that finds where the content went in ref can get it exactly.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size + 4, size + 4, generator=g)
    target = x[..., 2:-2, 2:-2]
    ref = x[..., 2 + SHIFT[0] : 2 + SHIFT[0] + size, 2 + SHIFT[1] : 2 + SHIFT[1] + size]
    return target + noise * torch.randn(target.shape, generator=g), ref, target


def _interior(t: torch.Tensor) -> torch.Tensor:
    """Positions whose match lies inside the reference's frame."""
    return t[..., 2:-2, 2:-2]


def _mse(out: torch.Tensor, target: torch.Tensor) -> float:
    return float((_interior(out - target) ** 2).mean())


def test_exact_weights_recover_the_shift_that_no_position_wise_map_can():
    c = 32
    a, ref, target = _shifted(0, channels=c)
    m = MIXERS.get("attention")(c, window=5, dim=c)
    with torch.no_grad():  # q · k = 10 a_p · ref_{p+o}; out = aligned (γ = -1, β = aligned)
        eye = torch.eye(c).view(c, c, 1, 1)
        m.q.weight.copy_(10 * eye)
        m.k.weight.copy_(eye)
        m.q.bias.zero_()
        m.k.bias.zero_()
        m.bias.zero_()
        m.film.net.weight.zero_()
        m.film.net.weight[c:, :, 0, 0] = torch.eye(c)
        m.film.net.bias.zero_()
        m.film.net.bias[:c] = -1
        out = m(a, ref)
        best = m.weights(a, ref).argmax(2).view(a.shape[0], *a.shape[2:])
    # row-major offset of -SHIFT in a 5×5 window (centre 2, 2)
    assert (_interior(best) == (2 - SHIFT[0]) * 5 + (2 - SHIFT[1])).all()
    assert _mse(out, target) < 0.01
    # the best 1×1 linear map of [a, ref] (what conv1x1 can be) stays near the noise floor
    feats = torch.cat([a, ref, torch.ones_like(a[:, :1])], 1).permute(0, 2, 3, 1).reshape(-1, 2 * c + 1)
    w = torch.linalg.lstsq(feats, target.permute(0, 2, 3, 1).reshape(-1, c)).solution
    linear = (feats @ w).view(a.shape[0], *a.shape[2:], c).permute(0, 3, 1, 2)
    assert _mse(linear, target) > 0.15


def _fit(name: str, steps: int = 150, **hp) -> float:
    torch.manual_seed(0)
    m = MIXERS.get(name)(16, **hp)
    m.identity_init()  # as in a conditional codec warm-started from its baseline
    opt = torch.optim.Adam(m.parameters(), 2e-2)
    for step in range(steps):
        a, ref, target = _shifted(step, batch=8)
        loss = ((m(a, ref) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        a, ref, target = _shifted(10_000)
        return _mse(m(a, ref), target)


def test_attention_learns_a_shift_that_position_wise_mixers_cannot():
    """Same data, steps and optimiser: only the aligning mixer gets below the noise floor."""
    errs = {
        name: _fit(name, **hp) for name, hp in (("conv1x1", {}), ("film", {}), ("attention", {"window": 5}))
    }
    assert min(errs["conv1x1"], errs["film"]) > 0.18, errs
    assert errs["attention"] < 0.7 * min(errs["conv1x1"], errs["film"]), errs


def test_window_1_is_film():
    torch.manual_seed(0)
    m, f = MIXERS.get("attention")(6, window=1), MIXERS.get("film")(6)
    f.load_state_dict(m.film.state_dict())
    a, ref = torch.randn(2, 6, 5, 7), torch.randn(2, 6, 5, 7)
    assert torch.equal(m(a, ref), f(a, ref))


def test_window_7_sees_a_whole_4x4_latent_and_nothing_outside_the_frame():
    torch.manual_seed(0)
    m = MIXERS.get("attention")(8, heads=2)
    a, ref = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    w = m.weights(a, ref)
    assert w.shape == (2, 2, 49, 16)
    assert ((w > 0).sum(2) == 16).all()  # every position weighs all 16 reference positions
    assert torch.allclose(w.sum(2), torch.ones(2, 2, 16))
    assert m(a, ref).shape == a.shape and m.align(a, ref).shape == ref.shape


@pytest.mark.parametrize("hp", [{"window": 4}, {"window": 0}, {"heads": 0}, {"dim": 0}])
def test_bad_hyper_parameters_are_refused(hp):
    with pytest.raises(ValueError, match="attention needs"):
        MIXERS.get("attention")(8, **hp)


def test_tags_say_which_mixers_align():
    assert MIXERS.declared_tags("attention") == frozenset({"aligns"})
    assert all(MIXERS.declared_tags(n) == frozenset() for n in ("conv1x1", "film", "deep_conv", "zero"))
