"""The positive control, tiny: where the neighbour is the same photo 4 px to the left, the content
gain (true vs shuffled references, same model, same λ) must be large and significant; a zero
control must find none. If this fails, a conditioning path is broken."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from acbench.analysis.bdrate import clean_rows, pooled_compare
from acbench.cli import app
from acbench.config import DataConfig
from acbench.data.cache import load_splits

SHIFTED = ["--dataset", "shifted", "--set", 'data.params={"max_per_photo": 4}', "--set", "data.max_items=0"]


def test_shifted_sequences_overlap_and_never_straddle_the_split():
    train, val, evl = load_splits(DataConfig(name="shifted", tile=64, params={"max_per_photo": 4}))
    seq = lambda names: {n.rsplit("+", 1)[0] for n in names}  # noqa: E731
    assert not seq(train.names) & seq(evl.names) and not seq(val.names) & seq(evl.names)
    a, b = evl.pixels[0].astype(int), evl.pixels[1].astype(int)  # consecutive tiles of one sequence
    assert np.array_equal(a[:, :, 4:], b[:, :, :-4])


@pytest.mark.slow  # 150-step baselines: minutes
def test_positive_control_finds_a_large_content_gain(tmp_path, monkeypatch):
    monkeypatch.setenv("ACBENCH_NO_ZOO", "1")
    args = [
        "run",
        "--preset",
        "tiny",
        *SHIFTED,
        "--ordering",
        "stored",
        "--features",
        "pixels",
        "--mixer",
        "conv1x1",
        "--sites",
        "latent_prior",
        "--chain",
        "2",
        "--lmbda",
        "0.013",
        "--lmbda",
        "0.05",
        "--set",
        "baseline_train.steps=100",
        "--set",
        "baseline_train.decay_steps=50",
        "--set",
        "train.steps=100",
        "--set",
        "train.decay_steps=50",
        "--set",
        "train.batch=8",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "The neighbour's content saves" in res.output and "at the same λ" in res.output
    from acbench.store import load_rows

    rows = clean_rows(load_rows(tmp_path)[0])
    cond = rows[(rows["kind"] == "conditional") & (rows["mixer"] == "conv1x1")]
    curve = cond["curve"].iloc[0]
    images = sorted(set(cond.loc[cond["position"] >= 2, "image"]))
    pick = lambda c, ev: rows[(rows["curve"] == c) & (rows["eval"] == ev)]  # noqa: E731
    gain = pooled_compare([(pick(curve, "shuffled"), pick(curve, "chain"))], bootstrap=200, images=images)
    total = gain.set_index("component").loc["total"]
    assert total["same_lam"] < -5 and total["same_high"] < 0, gain
    zero = rows[(rows["kind"] == "conditional") & (rows["mixer"] == "zero")]["curve"].iloc[0]
    nothing = pooled_compare([(pick(zero, "shuffled"), pick(zero, "chain"))], images=images)
    assert abs(nothing.set_index("component").loc["total", "same_lam"]) < 1e-9  # reference ignored
