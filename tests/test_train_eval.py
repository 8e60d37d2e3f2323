"""The training loop (resume, NaN) and chain evaluation (real bitstreams)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from acbench.codecs.base import build_codec
from acbench.config import TrainConfig
from acbench.evaluate import chains_of, code_chains
from acbench.train import BaselineTask, ChainTask, TrainingError, train


def _pixels(tiny_split):
    return torch.from_numpy(tiny_split[0].pixels)


def test_interrupted_training_resumes_exactly(tmp_path, tiny_split):
    cfg = TrainConfig(steps=6, batch=2, lr=1e-3, checkpoint_every=2)

    def model():
        torch.manual_seed(0)
        return build_codec("mshp", {"N": 8, "M": 12})

    whole = model()
    train(BaselineTask(whole, _pixels(tiny_split), 0.01), cfg)

    class Stop(Exception):
        pass

    def stop_at_4(step, total, logs):
        if step == 4:
            raise Stop

    first = model()
    with pytest.raises(Stop):
        train(BaselineTask(first, _pixels(tiny_split), 0.01), cfg, tmp_path / "c.pt", stop_at_4)
    assert torch.load(tmp_path / "c.pt", weights_only=True)["step"] == 4
    seen = []
    resumed = model()
    train(
        BaselineTask(resumed, _pixels(tiny_split), 0.01),
        cfg,
        tmp_path / "c.pt",
        lambda step, total, logs: seen.append(step),
    )
    assert seen == [5, 6]  # continued, not restarted
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_nan_loss_is_a_training_error(tiny_split):
    m = build_codec("mshp", {"N": 8, "M": 12})
    with torch.no_grad():
        m.base.g_a[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="loss is nan"):
        train(BaselineTask(m, _pixels(tiny_split), 0.01), TrainConfig(steps=2, batch=2, checkpoint_every=1))


@pytest.mark.parametrize("mixer", ["film", "attention"])  # position-wise and aligning
def test_chain_training_and_decoding_reproduce_reconstructions(tiny_split, mixer):
    torch.manual_seed(0)
    train_set, eval_set = tiny_split
    first = build_codec("mshp", {"N": 8, "M": 12})
    train(BaselineTask(first, torch.from_numpy(train_set.pixels), 0.01), TrainConfig(steps=3, batch=2))
    cond = build_codec("mshp", {"N": 8, "M": 12}, ("hyper_analysis", "hyper_synthesis"), mixer)
    cond.warm_start(first.state_dict())
    train(
        ChainTask(cond, first, torch.from_numpy(train_set.pixels), 0.01, 3),
        TrainConfig(steps=3, batch=2, lr=1e-2),
    )
    first.update(force=True)
    cond.update(force=True)
    order = np.arange(len(eval_set))
    res = code_chains(first, cond, eval_set.pixels, order, 3, batch=4)
    assert sorted(r[0] for r in res) == list(range(len(eval_set)))
    assert {r[2] for r in res} == {1, 2, 3}
    # batched chain coding = coding each chain alone, image by image: same bitstreams and
    # decoded latents; reconstructions equal up to float summation order of the batched conv
    from acbench.evaluate import code_batch

    for ch in chains_of(len(order), 3)[:2]:
        ref = None
        for pos, img in enumerate(ch):
            x = torch.from_numpy(eval_set.pixels[img : img + 1]).float() / 255
            (c,) = code_batch(first if pos == 0 else cond, x, ref)
            ref = c.ref
            mine = next(r[3] for r in res if r[0] == img)
            assert c.bits_real == mine.bits_real
            assert torch.allclose(c.ref.y, mine.ref.y, atol=1e-5)
            assert torch.allclose(c.x_hat, mine.x_hat, atol=1e-5)


def test_chain_shorter_than_data_is_refused(tiny_split):
    m = build_codec("mshp", {"N": 8, "M": 12})
    with pytest.raises(TrainingError, match="cannot make a chain"):
        ChainTask(m, m, torch.from_numpy(tiny_split[0].pixels[:2]), 0.01, 3)


def test_chains_of():
    assert [list(c) for c in chains_of(5, 2)] == [[0, 1], [2, 3], [4]]


def test_train_config_is_a_frozen_value():
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3  # a config is a value: changed only by dataclasses.replace / config.override
    assert hash(cfg) == hash(TrainConfig()) and dataclasses.replace(cfg, steps=3).steps == 3
