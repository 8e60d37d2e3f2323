"""(a) Training throughput: acbench's loop vs a CompressAI ``examples/train.py``-style loop."""

from __future__ import annotations

import benchlib
import pytest


def _per_step(benchmark, profile, steps: int) -> None:
    s = benchmark.stats.stats
    benchmark.extra_info["images_per_s_median"] = steps * profile.batch / s.median


@pytest.mark.benchmark(group="train: 64-px crops, MSHP N=32/M=48, batch 16")
def test_acbench_loop(benchmark, profile, mshp, pixels):
    benchlib.acbench_train_block(mshp, pixels, 2, profile.batch)  # warm
    benchmark.pedantic(
        benchlib.acbench_train_block,
        args=(mshp, pixels, profile.train_steps, profile.batch),
        rounds=profile.rounds,
    )
    _per_step(benchmark, profile, profile.train_steps)


@pytest.mark.benchmark(group="train: 64-px crops, MSHP N=32/M=48, batch 16")
def test_compressai_style_loop(benchmark, profile, mshp, photo_folder):
    """ImageFolder + PIL decode + RandomCrop + ToTensor, DataLoader with 2 workers.

    One round = a fresh epoch: worker start-up and the first batches are in the timed call.
    """
    loop = benchlib.ReferenceLoop(mshp, photo_folder, profile.tile, profile.batch, profile.workers)
    loop(1, 1)  # warm
    benchmark.pedantic(loop, args=(profile.ref_steps, profile.ref_warmup), rounds=profile.rounds)
    _per_step(benchmark, profile, profile.ref_steps + profile.ref_warmup)


@pytest.mark.benchmark(group="train: per-step cost without the codec")
def test_data_pipeline(benchmark, profile, pixels):
    """Reseed, draw indices, gather uint8 tiles, convert to float: one step's data work."""
    benchmark.pedantic(benchlib.data_pipeline_block, args=(pixels, 1, profile.batch), rounds=200)


@pytest.mark.benchmark(group="train: per-step cost without the codec")
def test_loop_with_null_codec(benchmark, profile, pixels):
    """acbench's whole loop around a one-parameter codec: everything the harness adds."""
    null = benchlib.null_codec()
    benchmark.pedantic(benchlib.acbench_train_block, args=(null, pixels, 1, profile.batch), rounds=200)
