"""Searches: storage and study (see :mod:`acbench.search`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from acbench.search.base import OBJECTIVE_ATTR, SearchError
from acbench.search.files import SearchSpec
from acbench.search.objective import Objective, make_pruner, make_sampler


def mask(url: str) -> str:
    """The storage URL with its password hidden."""
    import re

    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def default_storage(root: Path) -> str:
    return f"sqlite:///{Path(root).resolve() / 'optuna.db'}"


def open_storage(
    url: str | None,
    root: Path,
    heartbeat: int = 60,
    grace: int | None = None,
    max_retry: int | None = 3,
) -> Any:
    """An Optuna storage: an RDB URL (SQLite default, PostgreSQL, MySQL) with heartbeats and the
    stale-trial retry callback, or a journal file (``*.journal`` / ``journal:PATH``).

    Raises:
        SearchError: the storage cannot be reached or opened (one line, password hidden).
    """
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    url = url or default_storage(root)
    journal = url.startswith("journal:") or url.endswith((".journal", ".log"))
    try:
        if journal:
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            path = Path(url.removeprefix("journal:"))
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        if "://" not in url:
            raise SearchError(
                f"storage {url!r} is neither a URL (sqlite:///path.db, postgresql://user@host/db) "
                "nor a journal file (*.journal)"
            )
        engine: dict[str, Any] = {}
        if url.startswith("sqlite"):
            engine = {"connect_args": {"timeout": 60}}
            db = url.split(":///", 1)[-1]
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
        elif url.startswith("postgresql"):
            engine = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat,
                grace_period=grace or 2 * heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry),
            )
    except SearchError:
        raise
    except ImportError as e:
        cause = getattr(e, "__cause__", None) or e
        raise SearchError(
            f"cannot open storage {mask(url)}: {cause} (for PostgreSQL: pip install 'psycopg[binary]')"
        ) from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy / driver errors: one line, no traceback
        orig = getattr(e, "orig", None) or e
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        raise SearchError(f"cannot open storage {mask(url)}: {first}") from None


def open_study(
    spec: SearchSpec, storage: Any, name: str | None = None, worker: int = 0, pruner: str | None = None
) -> Any:
    """Create or load the study; refuse one that exists with another objective or direction."""
    import optuna

    name = name or spec.name
    want = spec.objective.identity()
    try:
        existing = optuna.study.get_all_study_names(storage)
    except Exception as e:  # noqa: BLE001
        raise SearchError(f"cannot read studies from the storage: {str(e).splitlines()[0]}") from None
    if name in existing:
        old = optuna.load_study(study_name=name, storage=storage)
        have = old.user_attrs.get(OBJECTIVE_ATTR)
        dirs = [d.name.lower() for d in old.directions]
        if (have is not None and have != want) or dirs != want["directions"]:
            what = (
                Objective(**{k: v for k, v in have.items() if k != "directions"}).describe()
                if have
                else f"directions {dirs}"
            )
            raise SearchError(
                f"study {name!r} already exists with objective {what}; this search asks for "
                f"{spec.objective.describe()}. Use another --study name, or the same objective"
            )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=spec.objective.directions,
        sampler=make_sampler(spec.sampler, worker, bool(spec.objective.cost), spec.source),
        pruner=make_pruner(spec.pruner, pruner, spec.source),
        load_if_exists=True,
    )
    if OBJECTIVE_ATTR not in study.user_attrs:
        study.set_user_attr(OBJECTIVE_ATTR, want)
        study.set_user_attr("acbench.search_file", spec.source)
    return study
