"""Searches: shared constants and errors (see :mod:`acbench.search`)."""

from __future__ import annotations

TOP_KEYS = {
    "preset", "presets", "lmbdas", "set", "name", "description",
    "space", "objective", "pruner", "sampler", "controls",
}  # fmt: skip
COMPONENT_KEYS = ("codec", "ordering", "mixer")
METRICS = ("bd_rate", "rd_loss", "same_lam")
COMPONENTS = ("total", "y", "z")
EVALS = ("chain", "full")
RATES = ("bpp_real", "bpp_est")
AGAINST = ("baseline", "matched", "zero", "shuffled")  # shuffled: the neighbour's content
SPLITS = ("", "half")  # half: select on even-numbered eval images, report on odd-numbered ones
COSTS = ("", "seconds", "steps_params")
PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "random", "nsga2")
OBJECTIVE_ATTR = "acbench.objective"


class SearchError(ValueError):
    """A search file, storage or study cannot be used; the message names the fix."""


class TrialFailed(Exception):
    """A trial produced no objective value (a run failed, or BD-rate is n/a); it is marked failed."""


class _Prune(BaseException):
    """Raised from the progress hook; a BaseException so that the runner does not record it as
    a failed run (the checkpoint is kept and a later trial with the same config resumes it)."""
