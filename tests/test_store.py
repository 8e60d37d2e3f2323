"""Run directories: leftovers of killed processes, and failure records next to finished runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from acbench.store import Run, load_rows, pid_alive, remove_stale_temporaries


@pytest.fixture(scope="module")
def tiny_job():
    from acbench.config import preset
    from acbench.runner import baseline_job

    cfg = preset("tiny")
    return baseline_job(cfg, cfg.lmbdas[0])


def _killed_writer(folder, name: str) -> int:
    """A process that writes ``<name><its PID>`` as an atomic write does, then is killed (-9)."""
    code = (
        "import os, sys, time; from pathlib import Path; "
        f"p = Path(sys.argv[1]) / ('{name}' + str(os.getpid())); p.write_bytes(b'half a checkpoint'); "
        "print(p, flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the file is written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.pid


def test_kill_9_temporaries_are_removed_by_the_next_run_of_that_dir(tmp_path, tiny_job):
    from acbench.executors import execute

    run = Run(tmp_path, tiny_job.id)
    run.dir.mkdir(parents=True)
    dead = _killed_writer(run.dir, "checkpoint.pt.tmp")
    assert not pid_alive(dead)
    stale = [run.dir / f"checkpoint.pt.tmp{dead}", run.dir / f".config.json.tmp{dead}"]
    stale.append(run.dir / f".rows.tmp{dead}.csv")
    for p in stale[1:]:
        p.write_text("left by a killed process")
    assert stale[0].read_bytes() == b"half a checkpoint"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = run.dir / f"model.pt.tmp{sleeper.pid}"  # a process still writing: kept
        live.write_text("being written")
        other = tmp_path / "other-run"
        other.mkdir()
        (other / f"checkpoint.pt.tmp{dead}").write_text("another run's")  # not this run's dir
        (out,) = execute([tiny_job], tmp_path)
        assert out.status == "done", out.reason
        assert not any(p.exists() for p in stale)
        assert live.exists() and (other / f"checkpoint.pt.tmp{dead}").exists()
        assert run.is_done() and run.model.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_remove_stale_temporaries_keeps_results_and_own_files(tmp_path):
    for name in ("checkpoint.pt", "rows.csv", "config.json", "done", "notes.tmp", f"x.tmp{os.getpid()}"):
        (tmp_path / name).write_text("x")
    assert remove_stale_temporaries(tmp_path) == []
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_failure_record_never_replaces_a_finished_runs_rows(tmp_path, tiny_job):
    """Two commands on one output folder: one finished the run, the other records a failure."""
    from acbench.config import preset
    from acbench.executors import execute
    from acbench.jobs import record_failure
    from acbench.runner import baseline_job

    (out,) = execute([tiny_job], tmp_path)
    assert out.status == "done", out.reason
    run = Run(tmp_path, tiny_job.id)
    rows = run.rows.read_bytes()
    record_failure(tiny_job, run, "RuntimeError: the other command's attempt failed", "trace")
    assert run.rows.read_bytes() == rows and run.error() is None
    # finished, its ``done`` marker not yet written (the other command is between the two writes)
    (run.dir / "done").unlink()
    record_failure(tiny_job, run, "RuntimeError: the other command's attempt failed")
    assert run.rows.read_bytes() == rows and run.error() is None
    (run.dir / "done").write_text("")
    table, _ = load_rows(tmp_path)
    assert len(table) > 1 and table["error"].isna().all()
    # an unfinished run does get its failure record, and a later failure replaces an earlier one
    cfg = preset("tiny")
    other_job = baseline_job(cfg, cfg.lmbdas[1])
    other = Run(tmp_path, other_job.id)
    record_failure(other_job, other, "ValueError: first")
    record_failure(other_job, other, "ValueError: second")
    assert other.error() == "ValueError: second"
    assert "ValueError: second" in other.rows.read_text() and "first" not in other.rows.read_text()
    assert not list(other.dir.glob(".rows.tmp*"))


def test_pid_alive():
    assert pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    deadline = time.time() + 5
    while pid_alive(proc.pid) and time.time() < deadline:  # reaped: gone at once
        time.sleep(0.01)
    assert not pid_alive(proc.pid)
    assert not pid_alive(0) and not pid_alive(-1)
