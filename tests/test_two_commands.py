"""Two ``acbench run`` commands into one output folder at once (the default executor).

Two real processes, released together by a barrier: every run is trained by exactly one of them
(the other waits on the run lock, then finds it done), and every run ends done and readable.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

ARGS = ["run", "--preset", "tiny", "--quiet", "--ordering", "random", "--mixer", "film", "--chain", "2"]


def _command(barrier, out: str, log: str) -> None:
    """One `acbench run` in this process; every job it trains is appended to ``log``."""
    import os

    from typer.main import get_command

    from acbench import jobs
    from acbench.cli import app

    os.environ["ACBENCH_NO_ZOO"] = "1"
    run_job = jobs.run_job

    def logged(job, root, progress=None):
        with open(log, "a") as f:
            f.write(job.id + "\n")
        return run_job(job, root, progress)

    jobs.run_job = logged
    barrier.wait(timeout=120)  # both commands start together
    try:
        get_command(app).main([*ARGS, "--out", out], standalone_mode=False)
    except SystemExit as e:  # the report ends the command with its code
        if e.code:
            raise


@pytest.mark.slow  # two processes, each importing torch and training a tiny curve: ~30 s
def test_two_run_commands_on_one_folder_train_each_run_once(tmp_path):
    from acbench.config import preset
    from acbench.runner import plan
    from acbench.store import Run, load_rows, read_rows_csv

    out = tmp_path / "runs"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [ctx.Process(target=_command, args=(barrier, str(out), str(log))) for log in logs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    assert [p.exitcode for p in procs] == [0, 0]
    trained = [line for log in logs if log.exists() for line in log.read_text().split()]
    assert len(trained) == len(set(trained)), "a run was trained twice"

    from acbench.config import override

    cfg = preset("tiny")
    for key, value in (("ordering", "random"), ("mixer", "film"), ("chain", 2)):
        cfg = override(cfg, key, value)
    jobs = plan([cfg])
    assert set(trained) == {j.id for j in jobs}  # each planned run trained once, by one command
    for j in jobs:
        run = Run(out, j.id)
        assert run.is_done() and run.error() is None, j
        if j.kind != "ordering":
            rows = read_rows_csv(run.rows)
            assert len(rows) and (rows["error"].fillna("") == "").all()
    rows, skipped = load_rows(Path(out))
    assert not skipped and rows["run_id"].nunique() == sum(j.kind != "ordering" for j in jobs)
