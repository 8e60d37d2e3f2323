"""The training protocol: lr decay, warm-start learning rates, flips/rotations, validation and the
convergence figure, the environment record, group-aware splits and seed replicas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from acbench.codecs.base import build_codec
from acbench.config import DataConfig, TrainConfig, preset
from acbench.data.base import ImageSet
from acbench.data.cache import split
from acbench.train import (
    BaselineTask,
    ChainTask,
    TrainingError,
    _optimizers,
    augment,
    convergence,
    lr_factor,
    rd_terms,
    train,
)


def test_lr_factor_is_a_step_decay_over_the_last_steps():
    cfg = TrainConfig(steps=10, decay_steps=4, decay=0.1)
    assert [lr_factor(s, cfg) for s in range(10)] == [1.0] * 6 + [0.1] * 4
    assert {lr_factor(s, TrainConfig(steps=10)) for s in range(10)} == {1.0}


def test_convergence_figure_known_answers():
    assert convergence([(50, 2.0), (80, 1.0), (100, 0.9)], 100) == pytest.approx(-0.1)
    # the reference is the last validation at or before 80 % of the steps
    assert convergence([(40, 4.0), (70, 2.0), (100, 2.2)], 100) == pytest.approx(0.1)
    assert np.isnan(convergence([(80, 1.0)], 100))  # no validation at the end
    assert np.isnan(convergence([], 100))


def test_augment_applies_one_symmetry_per_chain():
    gen = torch.Generator().manual_seed(0)
    base = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 5, 5)
    x = base[None, None].repeat(64, 3, 1, 1, 1)  # 64 chains of 3 identical images
    y = augment(x, gen)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    variants = {tuple(v.flatten().tolist()) for v in y[:, 0]}
    assert len(variants) == 8  # all 8 symmetries of the square occur, none other
    assert all(sorted(v) == sorted(base.flatten().tolist()) for v in variants)


def test_warm_parameters_train_at_the_scaled_lr():
    model = build_codec("mshp", {"N": 8, "M": 12}, ("latent_prior",), "film")
    warm = model.warm_start(build_codec("mshp", {"N": 8, "M": 12}).state_dict())
    assert warm and not any(n.startswith("mixers.") for n in warm)
    opt, _ = _optimizers(model, TrainConfig(lr=1e-3, warm_lr_scale=0.1), warm)
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs == pytest.approx([1e-4, 1e-3])
    n_warm = sum(p.numel() for g in opt.param_groups if g["lr"] < 5e-4 for p in g["params"])
    named = dict(model.named_parameters())
    assert n_warm == sum(named[n].numel() for n in warm if not n.endswith(".quantiles"))


def _pixels(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 64, 64), generator=g, dtype=torch.uint8)


def test_training_validates_and_records_convergence_and_environment(tmp_path):
    torch.manual_seed(0)
    model = build_codec("mshp", {"N": 8, "M": 12})
    cfg = TrainConfig(steps=10, batch=2, lr=1e-3, checkpoint_every=5, decay_steps=4, augment=True)
    task = BaselineTask(model, _pixels(12), 0.01, augment=True)
    out = train(task, cfg, tmp_path / "ck.pt", val=_pixels(4, 1))
    assert [s for s, _ in out["val"]] == [5, 8, 10]  # checkpoints, 80 % mark, end
    assert out["convergence"] == pytest.approx((out["val"][-1][1] - out["val"][1][1]) / out["val"][1][1])
    env = out["environment"]
    assert env["threads"] == torch.get_num_threads() and env["torch"] == str(torch.__version__)
    assert env["cpu"]


def test_resumed_training_keeps_the_validation_history(tmp_path):
    cfg = TrainConfig(steps=10, batch=2, lr=1e-3, checkpoint_every=5, decay_steps=4)

    class Stop(Exception):
        pass

    def stop_at_5(step: int, loss: float) -> None:
        if step == 5:
            raise Stop

    def task():
        torch.manual_seed(0)
        return BaselineTask(build_codec("mshp", {"N": 8, "M": 12}), _pixels(12), 0.01)

    whole = train(task(), cfg, tmp_path / "a.pt", val=_pixels(4, 1))
    with pytest.raises(Stop):
        train(task(), cfg, tmp_path / "b.pt", report=stop_at_5, val=_pixels(4, 1))
    resumed = train(task(), cfg, tmp_path / "b.pt", val=_pixels(4, 1))
    assert resumed["resumed_from"] == 5
    assert resumed["val"] == whole["val"] and resumed["convergence"] == whole["convergence"]


def test_chain_validation_uses_disjoint_chains_of_held_out_images():
    torch.manual_seed(0)
    first = build_codec("mshp", {"N": 8, "M": 12})
    model = build_codec("mshp", {"N": 8, "M": 12}, ("latent_prior",), "film")
    model.warm_start(first.state_dict())
    task = ChainTask(model, first, _pixels(8), 0.01, 3)
    model.eval()
    v = task.val_loss(_pixels(7, 2))  # two chains of 3; the 7th image is left out
    assert np.isfinite(v) and v == task.val_loss(_pixels(7, 2)[:6])


def test_split_keeps_groups_whole_and_validation_apart():
    n = 120
    labels = np.repeat(np.arange(3), 40)
    groups = np.arange(n) // 8  # sequences of 8
    images = ImageSet(np.zeros((n, 3, 4, 4), np.uint8), labels, [str(i) for i in range(n)], ["a", "b", "c"])
    images.info["groups"] = groups.tolist()
    images.names = [str(i) for i in range(n)]
    train, val, evl = split(images, DataConfig(eval_fraction=0.2, val_fraction=0.2))
    ids = [np.array([int(s) for s in part.names]) for part in (train, val, evl)]
    assert sum(map(len, ids)) == n and not set(ids[0]) & set(ids[1]) and not set(ids[0]) & set(ids[2])
    sides = [set(groups[i]) for i in ids]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]
    assert len(val) > 0 and len(evl) > 0


def test_validation_fraction_leaves_the_eval_split_unchanged():
    labels = np.repeat(np.arange(4), 25)
    images = ImageSet(np.zeros((100, 3, 4, 4), np.uint8), labels, [str(i) for i in range(100)], list("abcd"))
    _, none, evl0 = split(images, DataConfig(val_fraction=0.0))
    train, val, evl1 = split(images, DataConfig(val_fraction=0.1))
    assert len(none) == 0 and evl0.names == evl1.names and len(val) == 8 and len(train) == 72


def test_seed_replicas_share_baselines_and_ordering():
    from acbench.runner import plan

    cfg = dataclasses.replace(preset("tiny"), seeds=3)
    jobs = plan([cfg])
    kinds: dict[str, int] = {}
    for j in jobs:
        kinds[j.kind] = kinds.get(j.kind, 0) + 1
    n_lam = len(cfg.lmbdas)
    assert kinds == {"baseline": n_lam, "ordering": 1, "anchor": 3 * n_lam, "conditional": 2 * 3 * n_lam}
    seeds = {j.train.seed for j in jobs if j.kind == "conditional"}
    assert seeds == {0, 1, 2}


def test_protocol_is_part_of_every_run_id(monkeypatch):
    import acbench.runner as runner

    cfg = preset("tiny")
    before = runner.baseline_job(cfg, cfg.lmbdas[0]).id
    runner.baseline_job.cache_clear()
    monkeypatch.setattr(runner, "PROTOCOL", runner.PROTOCOL + 1)
    try:
        assert runner.baseline_job(cfg, cfg.lmbdas[0]).id != before
    finally:
        runner.baseline_job.cache_clear()


def test_joint_training_fine_tunes_both_codecs_at_the_warm_rate():
    first = build_codec("mshp", {"N": 8, "M": 12})
    model = build_codec("mshp", {"N": 8, "M": 12}, ("latent_prior",), "film")
    warm = model.warm_start(first.state_dict())
    task = ChainTask(model, first, _pixels(6), 0.01, 3, joint=True)
    module, cfg = task.trainable(), TrainConfig(lr=1e-3, warm_lr_scale=0.1)
    opt, _ = _optimizers(module, cfg, task.warm_names(warm))
    slow = {id(p) for g in opt.param_groups if g["lr"] < 5e-4 for p in g["params"]}
    named = {n: p for n, p in module.named_parameters() if not n.endswith(".quantiles")}
    assert all(id(p) in slow for n, p in named.items() if n.startswith("first."))
    assert all(id(named[f"model.{n}"]) in slow for n in warm if not n.endswith(".quantiles"))
    assert not any(id(p) in slow for n, p in named.items() if n.startswith("model.mixers."))
    # names of the bare model do not name the joint module's parameters: refused, not trained fast
    with pytest.raises(TrainingError, match="not in the trained module"):
        _optimizers(module, cfg, warm)


def test_joint_loss_weighs_every_image_of_the_chain_alike():
    torch.manual_seed(0)
    first = build_codec("mshp", {"N": 8, "M": 12})
    model = build_codec("mshp", {"N": 8, "M": 12}, ("latent_prior",), "film")
    model.warm_start(first.state_dict())
    lam, x = 0.01, _pixels(3).float()[None] / 255  # one chain of 3
    task = ChainTask(model, first, _pixels(6), lam, 3, joint=True)
    first.eval(), model.eval()  # deterministic rounding: the same terms twice
    with torch.no_grad():
        loss, _ = task._loss(x)
        out = first(x[:, 0])
        terms = [rd_terms(out, x[:, 0])]
        for k in (1, 2):
            out = model(x[:, k], out["ref"])
            terms.append(rd_terms(out, x[:, k]))
    bpp = sum(t[0] for t in terms) / 3
    mse = sum(t[1] for t in terms) / 3
    assert float(loss) == pytest.approx(float(bpp + lam * 255**2 * mse), rel=1e-5)
