"""Shared fixtures: a per-session dataset cache and the tiny preset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("ACBENCH_CACHE", str(Path(__file__).resolve().parent.parent / ".cache" / "test-data"))


@pytest.fixture(scope="session")
def tiny_cfg():
    from acbench.config import preset

    return preset("tiny")


@pytest.fixture(scope="session")
def tiny_split(tiny_cfg):
    from acbench.data.cache import load_split

    return load_split(tiny_cfg.data)
