"""Executors: local / pool / slurm (submitit's local executor) share planning and the run store."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_search import tiny_configs, warm  # noqa: F401 - the session's warm run store

from acbench.executors import (
    ExecutorError,
    LocalExecutor,
    PoolExecutor,
    SlurmExecutor,
    execute,
    make_executor,
    run_lock,
    waves,
)
from acbench.runner import plan
from acbench.search import trial_rows

KEYS = ["run_id", "eval", "image", "component"]


RUN_STAMPS = ("code", "date", "train_seconds", "threads")  # when and with what it ran, not its result


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values(KEYS).reset_index(drop=True)
    b = b.sort_values(KEYS).reset_index(drop=True)
    assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
    for col in a.columns:
        if col in RUN_STAMPS:
            continue
        if pd.api.types.is_float_dtype(a[col]):
            assert np.allclose(a[col], b[col], rtol=1e-6, equal_nan=True), col
        else:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col


def test_waves_follow_dependencies():
    jobs = plan(tiny_configs(), controls=True)
    kinds = [sorted({j.kind for j in w}) for w in waves(jobs)]
    assert kinds == [["baseline", "ordering"], ["anchor", "conditional"]]  # pixels: no feature baseline
    seen: set[str] = set()
    for w in waves(jobs):
        assert all(d in seen for j in w for d in j.deps)
        seen |= {j.id for j in w}


def test_run_lock_serialises_holders_of_one_run(tmp_path):
    """While one holder has the lock a second cannot take it; it gets it once the first lets go.

    No sleeps: a barrier starts the second holder only once the first is in, and the first
    leaves only when told to.
    """
    import fcntl
    import os

    from acbench.executors import LOCK

    events: list[str] = []
    a_in, release = threading.Barrier(2), threading.Event()

    def first() -> None:
        with run_lock(tmp_path, "abc"):
            events.append("a in")
            a_in.wait(10)
            release.wait(10)
            events.append("a out")

    def second() -> None:
        with run_lock(tmp_path, "abc"):
            events.append("b in")

    a = threading.Thread(target=first)
    a.start()
    a_in.wait(10)
    fd = os.open(tmp_path / "abc" / LOCK, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):  # held: nobody else can take it now
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    b = threading.Thread(target=second)
    b.start()  # blocks in run_lock until the first holder lets go
    release.set()
    a.join(10)
    b.join(10)
    assert events == ["a in", "a out", "b in"]


def test_failed_dependency_fails_dependants_with_its_name(tmp_path):
    cfg = tiny_configs()[0]
    bad = dataclasses.replace(cfg, codec=dataclasses.replace(cfg.codec, params={"N": -1, "M": 12}))
    outs = LocalExecutor().run(plan([bad], False), tmp_path)
    by = {o.job.kind: o for o in outs}
    assert by["baseline"].status == "failed" and by["ordering"].status == "done"
    assert by["conditional"].status == "failed"
    assert by["conditional"].reason.startswith(f"dependency {by['baseline'].job.id} failed")
    rows = trial_rows(tmp_path, [o.job.id for o in outs])
    assert rows["error"].notna().all()  # failures reach the rows (and the leaderboard)


def test_runner_hands_off_to_an_executor(warm, tmp_path):  # noqa: F811
    jobs = plan(tiny_configs(), False)
    seen = []
    outs = execute(jobs, warm, on_outcome=seen.append, executor=LocalExecutor())
    assert [o.status for o in outs] == ["cached"] * len(jobs) and len(seen) == len(jobs)


def test_unknown_executor_is_a_clear_error():
    with pytest.raises(ExecutorError, match="unknown executor 'slrum'; did you mean 'slurm'"):
        make_executor("slrum")
    with pytest.raises(ExecutorError, match="at least 1 worker"):
        PoolExecutor(0)


def test_pool_produces_the_local_rows(warm, tmp_path):  # noqa: F811
    jobs = plan(tiny_configs(), False)
    root = tmp_path / "runs"
    shutil.copytree(warm, root)
    todo = [j for j in jobs if j.kind == "conditional"]
    for j in todo:  # the shared baseline stays cached; its dependants train in the pool
        shutil.rmtree(root / j.id)
    outs = PoolExecutor(2).run(jobs, root)
    assert {o.job.id for o in outs if o.status == "done"} == {j.id for j in todo}
    ids = [j.id for j in jobs]
    _same_rows(trial_rows(root, ids), trial_rows(warm, ids))


@pytest.mark.slow  # submitit subprocesses
def test_slurm_path_through_submitit_local_produces_the_local_rows(warm, tmp_path):  # noqa: F811
    pytest.importorskip("submitit")
    jobs = plan(tiny_configs()[:1], False)
    ex = SlurmExecutor(tmp_path / "slurm", cluster="local", parameters={"timeout_min": 10}, poll=0.2)
    outs = ex.run(jobs, tmp_path / "runs")
    assert [o.status for o in outs] == ["done"] * len(jobs), [o.reason for o in outs]
    ids = [j.id for j in jobs]
    _same_rows(trial_rows(tmp_path / "runs", ids), trial_rows(warm, ids))
    assert list((tmp_path / "slurm").glob("*_log.out"))  # it really went through submitit


@pytest.mark.slow  # a spawned pool and its parent watch: ~12 s
def test_pool_workers_exit_when_the_sweep_is_killed(tmp_path):
    """`kill <sweep pid>` (not its process group) must not leave PoolExecutor's workers training
    unseen: the parent runs a real PoolExecutor whose one job blocks (its worker prints its pid)."""
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "import acbench.jobs as work\n"
        "def stuck(job, root, run, progress):  # the baseline's work, in the spawned worker too\n"
        "    print(os.getpid(), flush=True); time.sleep(120)\n"
        "work._baseline = stuck\n"
        "if __name__ == '__main__':\n"
        "    from acbench.config import preset\n"
        "    from acbench.executors import PoolExecutor\n"
        "    from acbench.runner import baseline_job\n"
        "    cfg = preset('tiny')\n"
        "    PoolExecutor(1).run([baseline_job(cfg, cfg.lmbdas[0])], sys.argv[1])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    parent = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "runs")], stdout=subprocess.PIPE, text=True, env=env
    )
    worker = int(parent.stdout.readline())
    assert worker != parent.pid
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError("the pool worker outlived its parent by 30 s")
