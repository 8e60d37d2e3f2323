"""``torchrun``'s entry: one curve or a sweep with every run's training data-parallel (DDP).

Launch::

    torchrun --nproc_per_node 4 -m acbench.torchrun --preset paper --set ordering=isomap \\
        --set mixer=film --out runs
    torchrun --nproc_per_node 4 -m acbench.torchrun --sweep ablations/mixers.toml --out runs

Backend: NCCL when CUDA is available, gloo otherwise (``--backend`` to choose). Every rank runs
the same planned jobs on the same run store through the one sequential loop
(:class:`acbench.executors.LocalExecutor`); the DDP helpers are :mod:`acbench.distributed`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from acbench import distributed
from acbench.executors import LocalExecutor, execute, run_lock


@contextlib.contextmanager
def group_lock(root: Path, job_id: str) -> Iterator[None]:
    """The run lock held by rank 0 for the whole group of ranks.

    Every rank must enter every training together (their gradients are all-reduced), so the
    ranks cannot each take the lock: rank 0 takes it and the others wait at a barrier; they all
    decide whether the run is done only once rank 0 holds it (so they decide the same), and
    rank 0 lets it go after every rank has finished the job.
    """
    if distributed.is_main():
        with run_lock(root, job_id):
            distributed.barrier()
            try:
                yield
            finally:
                distributed.barrier()
    else:
        distributed.barrier()
        try:
            yield
        finally:
            distributed.barrier()


def main(argv: Sequence[str] | None = None) -> int:
    """``torchrun --nproc_per_node N -m acbench.torchrun [options]``: train and evaluate
    one curve (``--preset``/``--set``) or a sweep file (``--sweep``) with every run's training
    data-parallel over the ranks."""
    from acbench.config import apply_overrides, preset, validate
    from acbench.grid import sweep_configs
    from acbench.runner import plan

    ap = argparse.ArgumentParser(prog="torchrun ... -m acbench.torchrun", description=main.__doc__)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="key=value override")
    ap.add_argument("--sweep", type=Path, help="a sweep file instead of one curve")
    ap.add_argument("--out", type=Path, default=Path("runs"))
    ap.add_argument("--no-controls", dest="controls", action="store_false")
    ap.add_argument("--backend", choices=("nccl", "gloo"))
    args = ap.parse_args(argv)
    rank, size = distributed.init(args.backend)
    if args.sweep:
        configs = sweep_configs(args.sweep, args.preset if "--preset" in (argv or sys.argv) else None)
    else:
        configs = [validate(apply_overrides(preset(args.preset), args.sets))]
    jobs = plan(configs, args.controls)

    def say(out: Any) -> None:
        if rank == 0:
            print(f"{out.status:6} {out.job.kind:11} {out.job.id} {out.reason}", flush=True)

    outcomes = execute(jobs, args.out, None, say, executor=LocalExecutor(lock=group_lock))
    distributed.barrier()
    if size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return int(any(o.status == "failed" for o in outcomes))


if __name__ == "__main__":
    sys.exit(main())
