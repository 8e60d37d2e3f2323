"""(b) Chain coding: ``code_chains`` (batched) vs compressai's per-image compress/decompress."""

from __future__ import annotations

import numpy as np
import pytest
import torch

GROUP = "coding: eval tiles, each image alone, encode + decode"


@pytest.fixture(scope="module")
def coded_setup(profile):
    from acbench.codecs.base import build_codec
    from acbench.config import DataConfig
    from acbench.data.cache import load_split

    pixels = load_split(DataConfig(tile=profile.tile))[1].pixels[: profile.code_images or None]
    torch.manual_seed(0)
    model = build_codec("mshp", {"N": profile.N, "M": profile.M})
    model.update(force=True)
    model.eval()
    return model, pixels


@pytest.mark.benchmark(group=GROUP)
def test_code_chains(benchmark, profile, coded_setup):
    from acbench.evaluate import code_chains

    model, pixels = coded_setup
    order = np.arange(len(pixels))
    res = benchmark.pedantic(
        code_chains,
        args=(model, None, pixels, order, 1),
        kwargs={"batch": profile.code_batch},
        rounds=profile.rounds,
        warmup_rounds=1,
    )
    assert len(res) == len(pixels)
    benchmark.extra_info["images_per_s_median"] = len(pixels) / benchmark.stats.stats.median


@pytest.mark.benchmark(group=GROUP)
def test_compressai_per_image(benchmark, profile, coded_setup):
    model, pixels = coded_setup
    base = model.base

    def loop() -> None:
        with torch.no_grad():
            for i in range(len(pixels)):
                x = torch.from_numpy(pixels[i : i + 1]).float().div(255)
                out = base.compress(x)
                base.decompress(out["strings"], out["shape"])

    benchmark.pedantic(loop, rounds=profile.rounds, warmup_rounds=1)
    benchmark.extra_info["images_per_s_median"] = len(pixels) / benchmark.stats.stats.median
