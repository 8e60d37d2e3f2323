"""Optuna studies on top of the runner: every trial is a planned curve, so repeats are cache hits.

A search file is a sweep file (``preset``, ``lmbdas``, ``[set]``, ``[presets.<name>]``) with a
search space instead of a grid, an objective, and optionally a pruner and a sampler::

    preset = "cpu"
    name = "mixers-and-orderings"            # study name (default: the file's stem)

    [space]
    chain = {int = [2, 6]}
    "train.lr" = {float = [1e-4, 3e-3], log = true}
    sites = {choices = [["hyper_analysis", "hyper_synthesis"], ["latent_prior"]]}

    [space.ordering]
    choices = ["isomap", "random", "umap"]
    params.umap.n_neighbors = {int = [5, 50], log = true}   # sampled only when umap is chosen

    [space.mixer]
    choices = ["conv1x1", "film", {name = "deep_conv", depth = 2}]
    params.deep_conv.width = {choices = [32, 64]}

    [objective]
    metric = "bd_rate"      # bd_rate (vs the anchor, over the λ list) | rd_loss (at one λ)
    component = "total"     # total | y | z
    eval = "chain"          # chain | full
    rate = "bpp_real"       # bpp_real | bpp_est
    conditioned = false     # bd_rate on the conditioned images only (chain position >= 2)
    against = "baseline"    # baseline | matched (step-matched anchor) | zero (zero-mixer control)
    lam = 0.0067            # rd_loss: which λ (default: the middle one)
    cost = ""               # "" | "seconds" | "steps_params": a second objective (multi-objective)

    [pruner]
    kind = "median"         # median | hyperband | none; other keys go to the Optuna pruner
    n_startup_trials = 4

    [sampler]
    kind = "tpe"            # tpe | random | nsga2; other keys go to the Optuna sampler
    seed = 0

Space entries: ``{choices = [...]}`` (a bare list is the same), ``{int = [lo, hi]}`` or
``{float = [lo, hi]}`` with optional ``log`` and ``step``. Keys are config keys (dotted keys
reach nested fields and plugin parameters, ``"mixer.depth"``); ``ordering``, ``mixer`` and
``codec`` take plugin names or tables (name + fixed parameters) and a ``params.<name>`` table of
parameters sampled only when that plugin is chosen (Optuna name ``mixer:deep_conv.width``).

Each trial runs :func:`acbench.runner.plan` + an executor on the shared run store; its curve id,
anchor curve and run ids are trial user attributes, so trials join to the long rows. Training
losses at every checkpoint are reported to the pruner (single objective, local executor).

The package, one module per part: ``base`` (shared constants and errors), ``space`` (search
space), ``objective`` (objective, pruner, sampler), ``files`` (search files), ``storage``
(storage and study), ``trial`` (one trial), ``study`` (running studies), ``report`` (report).
Every public name is importable from here.
"""

from __future__ import annotations

from acbench.search.base import (  # noqa: F401 - also imported from here
    AGAINST,
    COMPONENT_KEYS,
    COMPONENTS,
    COSTS,
    EVALS,
    METRICS,
    OBJECTIVE_ATTR,
    PRUNERS,
    RATES,
    SAMPLERS,
    TOP_KEYS,
    SearchError,
    TrialFailed,
    _Prune,
)
from acbench.search.files import SearchSpec, load_search
from acbench.search.objective import Objective, make_pruner, make_sampler, parse_objective
from acbench.search.report import report
from acbench.search.space import ComponentParam, Param, Space, check_space, configure, parse_space
from acbench.search.storage import default_storage, mask, open_storage, open_study
from acbench.search.study import SearchOptions, _optimize, run_search, shares  # noqa: F401 - also imported from here
from acbench.search.trial import TrialRunner, bd_value, cost_value, rd_loss, trial_rows

__all__ = [
    "AGAINST",
    "COMPONENTS",
    "COMPONENT_KEYS",
    "COSTS",
    "ComponentParam",
    "EVALS",
    "METRICS",
    "OBJECTIVE_ATTR",
    "Objective",
    "PRUNERS",
    "Param",
    "RATES",
    "SAMPLERS",
    "SearchError",
    "SearchOptions",
    "SearchSpec",
    "Space",
    "TOP_KEYS",
    "TrialFailed",
    "TrialRunner",
    "bd_value",
    "check_space",
    "configure",
    "cost_value",
    "default_storage",
    "load_search",
    "make_pruner",
    "make_sampler",
    "mask",
    "open_storage",
    "open_study",
    "parse_objective",
    "parse_space",
    "rd_loss",
    "report",
    "run_search",
    "shares",
    "trial_rows",
]
