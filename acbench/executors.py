"""Where planned jobs run: in this process, in a process pool, or as SLURM jobs (submitit).

All three take the jobs of :func:`acbench.runner.plan` and the same run store: a job is done
when its run directory says so, whoever ran it. Every job, whatever the executor, goes through
:func:`run_one`: under an exclusive file lock on its run directory (so two processes — two pool
workers, two search workers, two `acbench` commands on one output folder — never train the same
run at once: the second waits, then finds it done, a cache hit), with one dependency rule (a job
runs only when every dependency is done in the store; otherwise it fails naming the first one
that is not). Dependencies (baseline → ordering → anchor / conditional) are respected: the local
executor runs the planned order, the pool starts a job once its dependencies have finished,
SLURM gets the jobs in waves, one wave per dependency depth, and results come back through the
store on the shared filesystem.

Usage::

    from acbench.executors import execute, make_executor
    outcomes = execute(jobs, root)                      # in this process
    outcomes = make_executor("pool", workers=2).run(jobs, root)
    outcomes = make_executor("slurm", folder="runs/slurm", cluster="local").run(jobs, root)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from acbench.job import Job, OnProgress, Outcome
from acbench.store import Run

EXECUTORS = ("local", "pool", "slurm")
LOCK = ".lock"


class ExecutorError(RuntimeError):
    """An executor cannot be built or cannot reach its backend; the message says what to do."""


@contextlib.contextmanager
def run_lock(root: Path, job_id: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``root/job_id/.lock`` (waits while another process holds it).

    The kernel drops the lock when its holder dies, so a killed worker never leaves a stale
    lock. ``flock`` over NFS is emulated with POSIX byte-range locks on Linux (NFSv4: fine).
    """
    d = Path(root) / job_id
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


Lock = Callable[[Path, str], contextlib.AbstractContextManager[Any]]


def run_one(
    job: Job,
    root: Path,
    progress: OnProgress | None = None,
    retry_failed: bool = True,
    failed_deps: Mapping[str, str] | None = None,
    lock: Lock = run_lock,
) -> Outcome:
    """Run one job under its run lock (a cache hit when done); never raises for a job failure.

    The one dependency rule: a dependency listed in ``failed_deps`` or not done in the store fails
    the job, with a reason naming it. A job that failed before stays failed unless
    ``retry_failed``. ``lock`` is :func:`run_lock` except under torchrun (a lock held for the
    whole group of ranks, :mod:`acbench.torchrun`).
    """
    from acbench import jobs as work

    root = Path(root)
    with lock(root, job.id):
        run = Run(root, job.id)
        if run.is_done():
            return Outcome(job, "cached")
        if not retry_failed and (err := run.error()) is not None:
            return Outcome(job, "failed", err)
        bad = {d: r for d, r in (failed_deps or {}).items() if d in job.deps}
        for d in job.deps:
            if d not in bad and not Run(root, d).is_done():
                bad[d] = (Run(root, d).error() or "not done").splitlines()[0]
        if bad:
            dep, why = next(iter(bad.items()))
            reason = f"dependency {dep} failed: {why}"
            try:
                work.record_failure(job, run, reason)
            except Exception:  # noqa: BLE001 - recording must not hide the reason
                run.fail(reason)
            return Outcome(job, "failed", reason)
        try:
            work.run_job(job, root, progress)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # one failing run is recorded; the sweep goes on
            reason = f"{type(e).__name__}: {e}"
            work.record_failure(job, run, reason, traceback.format_exc())
            return Outcome(job, "failed", reason)
        return Outcome(job, "done")


def execute(
    jobs: Sequence[Job],
    root: Path,
    progress: OnProgress | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    retry_failed: bool = True,
    executor: Executor | None = None,
) -> list[Outcome]:
    """Run every job not already done (in this process, or with ``executor``); a failure is
    recorded and the others go on. A job whose dependency failed fails too, naming it."""
    return (executor or LocalExecutor()).run(jobs, root, progress, on_outcome, retry_failed)


def _run_remote(job: Job, root: str, retry_failed: bool) -> tuple[str, str]:
    """Entry of a pool process or a SLURM job: run one job, report ``(status, reason)``."""
    try:
        out = run_one(job, Path(root), None, retry_failed)
    except Exception as e:  # noqa: BLE001 - the lock or the store itself failed
        reason = f"{type(e).__name__}: {e}"
        Run(Path(root), job.id).fail(reason + "\n\n" + traceback.format_exc())
        return "failed", reason
    return out.status, out.reason


def waves(jobs: Sequence[Job]) -> list[list[Job]]:
    """Jobs grouped by dependency depth (dependencies outside ``jobs`` count as done)."""
    ids = {j.id: j for j in jobs}
    depth: dict[str, int] = {}

    def level(j: Job) -> int:
        if j.id not in depth:
            depth[j.id] = 1 + max((level(ids[d]) for d in j.deps if d in ids), default=-1)
        return depth[j.id]

    out: dict[int, list[Job]] = {}
    for j in jobs:
        out.setdefault(level(j), []).append(j)
    return [out[k] for k in sorted(out)]


class Executor(Protocol):
    """Runs planned jobs against a run store and returns one outcome per job."""

    def run(
        self,
        jobs: Sequence[Job],
        root: Path,
        progress: OnProgress | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        retry_failed: bool = True,
    ) -> list[Outcome]: ...


class LocalExecutor:
    """Jobs one after another in this process, in the planned order (progress callbacks see every
    training step): the one sequential loop.

    Args:
        lock: the run lock (:func:`run_lock`; torchrun's entry passes a lock held by rank 0 for
            the whole group).
    """

    name = "local"

    def __init__(self, lock: Lock = run_lock) -> None:
        self.lock = lock

    def run(
        self,
        jobs: Sequence[Job],
        root: Path,
        progress: OnProgress | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        retry_failed: bool = True,
    ) -> list[Outcome]:
        failed: dict[str, str] = {}
        outcomes = []
        for job in jobs:
            out = run_one(job, root, progress, retry_failed, failed, self.lock)
            if out.status == "failed":
                failed[job.id] = out.reason
            outcomes.append(out)
            if on_outcome is not None:
                on_outcome(out)
        return outcomes


def _set_threads(n: int) -> None:
    """Worker initialiser: split the cores between workers. Two processes with all cores each
    busy-wait on each other's OpenMP threads (measured here: 10-25x slower training steps).

    Also watches the parent: a sweep killed without its process group (``kill PID``) would
    otherwise leave its workers training on, unseen, competing with whatever runs next. The
    interrupted job resumes from its checkpoint on the next run.
    """
    import os
    import threading

    import torch

    torch.set_num_threads(n)
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(2.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="acbench-parent-watch").start()


class PoolExecutor:
    """Jobs in ``workers`` processes on this machine; a job starts once its dependencies finish.

    Processes are spawned (not forked: torch and forked threads do not mix), so each pays the
    import of torch once. Training steps are not reported back (``progress`` is not called).
    """

    name = "pool"

    def __init__(self, workers: int = 2) -> None:
        if workers < 1:
            raise ExecutorError(f"a pool needs at least 1 worker (got {workers})")
        self.workers = workers

    def run(
        self,
        jobs: Sequence[Job],
        root: Path,
        progress: OnProgress | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        retry_failed: bool = True,
    ) -> list[Outcome]:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

        ids = {j.id for j in jobs}
        outcomes: dict[str, Outcome] = {}
        pending = list(jobs)
        running: dict[Future, Job] = {}

        def finish(out: Outcome) -> None:
            outcomes[out.job.id] = out
            if on_outcome is not None:
                on_outcome(out)

        import os

        threads = max(1, (os.cpu_count() or 1) // self.workers)  # no oversubscription
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_set_threads, initargs=(threads,)
        ) as pool:
            while pending or running:
                for job in list(pending):
                    deps = [d for d in job.deps if d in ids]
                    if any(d not in outcomes for d in deps):
                        continue
                    pending.remove(job)
                    bad = {d: outcomes[d].reason for d in deps if outcomes[d].status == "failed"}
                    if bad:  # decided here, in order, as the local executor would
                        finish(run_one(job, root, None, retry_failed, bad))
                    else:
                        running[pool.submit(_run_remote, job, str(root), retry_failed)] = job
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = running.pop(fut)
                    try:
                        status, reason = fut.result()
                    except Exception as e:  # noqa: BLE001 - a worker process died
                        status, reason = "failed", f"worker process died: {type(e).__name__}: {e}"
                        Run(root, job.id).fail(reason)
                    finish(Outcome(job, status, reason))
        return [outcomes[j.id] for j in jobs]


class SlurmExecutor:
    """Each job a SLURM job through submitit; results come back through the run store.

    Jobs are submitted in waves by dependency depth (every baseline, then every ordering, then
    the anchors and conditional runs), each wave as one job array. ``cluster="local"`` runs the
    same path with submitit's local executor (subprocesses on this machine), as the tests do.

    Args:
        folder: submitit's log / pickle folder (on the shared filesystem).
        cluster: ``None`` (SLURM if ``sbatch`` is found, else local), ``"slurm"``, ``"local"``
            or ``"debug"`` (in process).
        parameters: submitit parameters for every job (``timeout_min``, ``gpus_per_node``,
            ``cpus_per_task``, ``slurm_partition``, ``mem_gb``, ...).
        poll: seconds between checks of running jobs.
    """

    name = "slurm"

    def __init__(
        self,
        folder: str | Path,
        cluster: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        poll: float = 1.0,
    ) -> None:
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise ExecutorError("the slurm executor needs submitit: pip install submitit") from None
        self.folder = Path(folder)
        self.cluster = cluster
        self.parameters = {"timeout_min": 60, **dict(parameters or {})}
        self.poll = poll

    def _executor(self) -> Any:
        import submitit

        ex = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        try:
            ex.update_parameters(**self.parameters)
        except (TypeError, ValueError) as e:
            raise ExecutorError(f"bad submitit parameter: {e}") from None
        return ex

    def run(
        self,
        jobs: Sequence[Job],
        root: Path,
        progress: OnProgress | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        retry_failed: bool = True,
    ) -> list[Outcome]:
        outcomes: dict[str, Outcome] = {}

        def finish(out: Outcome) -> None:
            outcomes[out.job.id] = out
            if on_outcome is not None:
                on_outcome(out)

        ex = self._executor()
        for wave in waves(jobs):
            todo = []
            for job in wave:
                bad = {
                    d: outcomes[d].reason
                    for d in job.deps
                    if d in outcomes and outcomes[d].status == "failed"
                }
                if Run(root, job.id).is_done():
                    finish(Outcome(job, "cached"))
                elif bad:
                    finish(run_one(job, root, None, retry_failed, bad))
                else:
                    todo.append(job)
            if not todo:
                continue
            with ex.batch():
                handles = [
                    ex.submit(_run_remote, job, str(Path(root).resolve()), retry_failed) for job in todo
                ]
            left = dict(zip(handles, todo))
            while left:
                for h in [h for h in left if h.done()]:
                    job = left.pop(h)
                    finish(self._collect(h, job, root))
                if left:
                    time.sleep(self.poll)
        return [outcomes[j.id] for j in jobs]

    @staticmethod
    def _collect(handle: Any, job: Job, root: Path) -> Outcome:
        run = Run(root, job.id)
        if run.is_done():  # the store is the truth, whatever the scheduler says
            status = "done"
            try:
                status, _ = handle.result()
            except Exception:  # noqa: BLE001
                pass
            return Outcome(job, "cached" if status == "cached" else "done")
        try:
            status, reason = handle.result()
        except Exception as e:  # noqa: BLE001 - killed, timed out, node failure
            last = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            reason = f"slurm job {handle.job_id} failed: {last}"
            run.fail(reason)
            return Outcome(job, "failed", reason)
        if status != "failed":
            reason = f"slurm job {handle.job_id} ended but run {job.id} is not done in the store"
            run.fail(reason)
        return Outcome(job, "failed", reason)


def make_executor(name: str = "local", **options: Any) -> Executor:
    """An executor by name: ``local``, ``pool`` (``workers``) or ``slurm`` (``folder``,
    ``cluster``, ``parameters``)."""
    if name == "local":
        return LocalExecutor()
    if name == "pool":
        return PoolExecutor(int(options.get("workers", 2)))
    if name == "slurm":
        folder = options.get("folder") or Path(options.get("root", "runs")) / "slurm"
        return SlurmExecutor(folder, options.get("cluster"), options.get("parameters"))
    from acbench.suggest import unknown

    raise ExecutorError(unknown("executor", name, EXECUTORS))


def parse_parameters(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings (``--slurm timeout_min=120``) as submitit parameters (JSON values)."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ExecutorError(f"expected key=value, got {pair!r} (e.g. timeout_min=120)")
        k, v = pair.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v.strip()
    return out
