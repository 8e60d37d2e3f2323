"""(c) Sweep planning: ``runner.plan`` on orderings × mixers × codecs × chains × λ (paper preset)."""

from __future__ import annotations

import contextlib

import benchlib
import pytest


@pytest.fixture(scope="module")
def grid(profile):
    import acbench.runner as runner

    regs, names = benchlib._private_registries(profile.grid)
    with contextlib.ExitStack() as stack:
        for attr in ("ORDERINGS", "MIXERS", "CODECS", "DATASETS"):
            stack.enter_context(benchlib.patched(runner, attr, regs[attr.lower()]))
        configs = benchlib.sweep_configs(profile.grid, names)
        runner.plan(configs)  # imports the plugin modules once
        yield runner, configs
    benchlib._clear_caches(runner)


@pytest.mark.benchmark(group="plan")
def test_plan_cold(benchmark, profile, grid):
    """A sweep plans once per process: every round starts with empty job caches."""
    import acbench.config as config

    runner, configs = grid
    jobs = benchmark.pedantic(
        runner.plan,
        args=(configs,),
        setup=lambda: benchlib._clear_caches(runner, config),
        rounds=profile.plan_rounds,
    )
    kinds = {}
    for j in jobs:
        kinds[j.kind] = kinds.get(j.kind, 0) + 1
    benchmark.extra_info.update({"curves": len(configs), "jobs": len(jobs), **kinds})
    assert kinds["baseline"] < len(configs) * profile.grid[4]  # baselines are shared
