"""Fixtures of the pytest-benchmark suites: ``pytest benchmarks --benchmark-only``.

Each suite times acbench and the code a user would otherwise write, one benchmark per arm in
the same group, so pytest-benchmark's table shows them side by side. The ratios that the
targets refer to come from ``python benchmarks/run_all.py`` (arms interleaved round by round).
``ACBENCH_BENCH_PROFILE=quick`` shrinks every suite to a few seconds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402


@pytest.fixture(scope="session")
def profile() -> benchlib.Profile:
    return benchlib.PROFILES[os.environ.get("ACBENCH_BENCH_PROFILE", "full")]


@pytest.fixture(scope="session")
def pixels(profile):
    """Train tiles of the packaged photos, uint8 [N, 3, T, T] (what acbench's loop samples)."""
    import torch

    from acbench.config import DataConfig
    from acbench.data.cache import load_split

    return torch.from_numpy(load_split(DataConfig(tile=profile.tile))[0].pixels)


@pytest.fixture(scope="session")
def photo_folder(profile, tmp_path_factory) -> Path:
    """PNG crops of the same photos for the CompressAI-style ImageFolder loop."""
    folder = tmp_path_factory.mktemp("photos")
    benchlib.write_photo_pngs(folder, (profile.ref_warmup + profile.ref_steps) * profile.batch, profile.png)
    return folder


@pytest.fixture
def mshp(profile):
    import torch

    from acbench.codecs.base import build_codec

    torch.manual_seed(0)
    return build_codec("mshp", {"N": profile.N, "M": profile.M})
