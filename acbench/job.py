"""The shared types of planning and execution: jobs, outcomes and progress events.

A leaf module: it imports nothing of acbench, so the planner (:mod:`acbench.runner`), the work of
each job (:mod:`acbench.jobs`), the executors, the search and the CLI all import it and none of
them imports another to get these types.

Four kinds of job, each a frozen dataclass whose fields are everything that defines its result.
A job's id is the hash of those fields (:func:`run_id` of :meth:`Job.payload`), the name of its
run directory:

- :class:`BaselineJob`: the unconditioned codec at one λ (the BD-rate anchor);
- :class:`AnchorJob`: the step-matched anchor (the unconditioned codec given the conditional
  model's training budget);
- :class:`OrderingJob`: one ordering fitted on the train split and placed on the eval split;
- :class:`ConditionalJob`: the conditional codec at one λ on chains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # annotations only: this module imports nothing of acbench at run time
    from acbench.config import Component, DataConfig, TrainConfig

SCHEMA = 1  # bump when the meaning of stored rows changes; older run folders are then reported


def to_dict(obj: Any) -> Any:
    """Plain JSON-able structure of a config value (dataclasses, mappings, sequences)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_dict(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    return str(obj)


def run_id(payload: Mapping[str, Any]) -> str:
    """sha256 of canonical JSON (with the results schema) → 12 hex chars."""
    blob = json.dumps({"schema": SCHEMA, **payload}, sort_keys=True, default=_json_default)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


#: payload keys that differ between the λ of one curve (left out of the curve id)
PER_LAMBDA = ("lam", "eval_batch", "baseline_run", "init_run")


@dataclass(frozen=True, eq=False, kw_only=True)
class Job:
    """One unit of work. Subclasses add the fields that define the result; two jobs with the
    same fields are the same job (same :attr:`id`, same run directory).

    ``anchor_curve``, ``matched_curve`` and ``control_curve`` name the curves this job's rows are
    compared with (the baseline, the step-matched anchor and the zero-mixer control); they are
    labels of the rows, not part of the id.
    """

    kind: ClassVar[str] = ""
    versions: Mapping[str, str] = field(default_factory=dict)
    anchor_curve: str = ""
    matched_curve: str = ""
    control_curve: str = ""

    #: fields that are metadata, not part of the payload
    _META: ClassVar[tuple[str, ...]] = ("anchor_curve", "matched_curve", "control_curve")
    #: payload keys left out when empty (absent from older payloads: run ids must not change)
    _OPTIONAL: ClassVar[tuple[str, ...]] = ()
    #: payload keys left out at these values (added after runs existed: their ids must not change)
    _DEFAULTS: ClassVar[Mapping[str, Any]] = {}

    def payload(self) -> dict[str, Any]:
        """Everything that defines the result, as plain JSON-able values (the run id's input)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name in self._META:
                continue
            v = getattr(self, f.name)
            if f.name in self._OPTIONAL and not v:
                continue
            if f.name in self._DEFAULTS and v == self._DEFAULTS[f.name]:
                continue
            out[f.name] = to_dict(v)
        return out

    @cached_property
    def id(self) -> str:
        """The run id: hash of the kind and the payload."""
        return run_id({"kind": self.kind, **self.payload()})

    @cached_property
    def curve(self) -> str:
        """Id of the curve (the payload without what differs between λ); '' for an ordering."""
        body = {k: v for k, v in self.payload().items() if k not in PER_LAMBDA}
        return run_id({"kind": self.kind, **body})

    @property
    def deps(self) -> tuple[str, ...]:
        """Run ids that must be done before this job starts."""
        return ()

    def record(self) -> dict[str, Any]:
        """What the run directory's ``config.json`` holds (besides the schema)."""
        return {"kind": self.kind, **self.payload(), "curve": self.curve, "anchor_curve": self.anchor_curve}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id})"


@dataclass(frozen=True, eq=False, kw_only=True)
class BaselineJob(Job):
    """The unconditioned codec at ``lam``; with ``lambda_finetune``, every λ but the feature λ
    fine-tunes from the feature λ's pretraining (``init_run``)."""

    kind: ClassVar[str] = "baseline"
    _OPTIONAL: ClassVar[tuple[str, ...]] = ("lambda_finetune", "init_run")
    data: DataConfig
    codec: Component
    train: TrainConfig
    lam: float
    eval_batch: int
    lambda_finetune: int = 0
    init_run: str = ""

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.init_run,) if self.init_run else ()


@dataclass(frozen=True, eq=False, kw_only=True)
class AnchorJob(Job):
    """The step-matched anchor: the unconditioned codec trained like the conditional model."""

    kind: ClassVar[str] = "anchor"
    data: DataConfig
    codec: Component
    train: TrainConfig
    warm_start: bool
    baseline_curve: str
    lam: float
    baseline_run: str
    eval_batch: int

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.baseline_run,)


@dataclass(frozen=True, eq=False, kw_only=True)
class OrderingJob(Job):
    """An ordering fitted on the train features (of ``feature_baseline``, or pixels); with
    ``structure = "tree"`` also the spanning forests of both splits, rooted by the ordering."""

    kind: ClassVar[str] = "ordering"
    _DEFAULTS: ClassVar[Mapping[str, Any]] = {"structure": "chain"}
    data: DataConfig
    ordering: Component
    features: str
    feature_baseline: str | None
    seed: int
    structure: str = "chain"

    @cached_property
    def curve(self) -> str:
        return ""

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.feature_baseline,) if self.feature_baseline else ()


@dataclass(frozen=True, eq=False, kw_only=True)
class ConditionalJob(Job):
    """The conditional codec at ``lam``, trained on chains of ``chain`` images (with ``structure =
    "tree"``: on root-ward paths of ``chain`` images of the spanning forest)."""

    kind: ClassVar[str] = "conditional"
    _DEFAULTS: ClassVar[Mapping[str, Any]] = {"structure": "chain"}
    data: DataConfig
    codec: Component
    mixer: Component
    ordering: Component
    sites: tuple[str, ...]
    chain: int
    train: TrainConfig
    reference: str
    baseline: str
    warm_start: bool
    shared_transforms: bool
    ordering_run: str
    baseline_train: TrainConfig
    seed: int
    lam: float
    baseline_run: str
    eval_batch: int
    structure: str = "chain"

    @property
    def deps(self) -> tuple[str, ...]:
        return (self.ordering_run, self.baseline_run)


KINDS: dict[str, type[Job]] = {k.kind: k for k in (BaselineJob, AnchorJob, OrderingJob, ConditionalJob)}


@dataclass(frozen=True)
class Outcome:
    """What became of a job: ``done`` (ran here), ``cached`` (done before) or ``failed``."""

    job: Job
    status: str
    reason: str = ""


@dataclass(frozen=True)
class Progress:
    """One progress event of a job: ``phase`` (``train``, ``evaluate``, ``fit``, ``zoo``) at
    ``step`` of ``total``, with the step's logged figures (``loss``, ``bpp``, ...)."""

    job: Job
    phase: str
    step: int = 0
    total: int = 1
    logs: Mapping[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """A short line for a display, e.g. ``train conditional λ=0.004``."""
        lam = getattr(self.job, "lam", None)
        what = self.job.kind if lam is None else f"{self.job.kind} λ={lam}"
        if isinstance(self.job, OrderingJob):
            what = f"ordering {self.job.ordering.name}"
        return f"{self.phase} {what}"


#: a progress callback: called with every :class:`Progress` event of the jobs it watches
OnProgress = Callable[[Progress], None]
