"""Run directories: config.json, checkpoint.pt, rows.csv and a ``done`` marker written last.

A run directory is named by its run id. Writes are atomic (temp file, then ``os.replace``), so an
interrupted process never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acbench.config import SCHEMA
from acbench.schema import ID_COLUMNS, variant  # ids stay strings when rows are read back


class StoreError(OSError):
    """The output folder cannot be used; the message says why and what to do."""


def check_writable(root: Path, create: bool = True) -> Path:
    """Create ``root`` if needed and check that it is a writable folder.

    With ``create=False`` nothing is created: the check writes a probe file into ``root`` or, if it
    does not exist yet, into its nearest existing parent (cheap: the CLI calls it first thing).
    """
    root = Path(root)
    target = root
    if not create:
        while not target.exists() and target.parent != target:
            target = target.parent
        if not target.is_dir():
            raise StoreError(f"output folder {root}: {target} is a file; choose another with --out")
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True)
        probe = target / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise StoreError(
            f"output folder {root} is not writable ({e.strerror}); choose another with --out"
        ) from None
    return root


#: temporaries of atomic writes in a run dir: ``checkpoint.pt.tmp<PID>``, ``.config.json.tmp<PID>``,
#: ``.rows.tmp<PID>.csv``, ...; a process killed mid-write (kill -9) leaves them behind
TEMPORARY = re.compile(r"\.tmp(\d+)(\.csv)?$")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (one of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries in ``folder`` whose writing process is dead; return them.

    Only this folder's own files are looked at, and a file whose PID is alive (this process,
    or another one still writing) is kept.
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = TEMPORARY.search(p.name)
        if m is None or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
            continue
        try:
            if p.is_file() and not p.is_symlink():
                p.unlink()
                removed.append(p)
        except OSError:
            pass
    return removed


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], Any]) -> None:
    """Write ``path`` through a temporary beside it, then ``os.replace``: a reader (or a process
    killed mid-write) never sees half a file. The one place acbench writes a file this way.

    Args:
        content: text, bytes, or a function that writes the temporary path it is given
            (``lambda tmp: torch.save(state, tmp)``).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")  # a TEMPORARY name: swept if orphaned
    try:
        if isinstance(content, str):
            tmp.write_text(content)
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            content(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class Run:
    """One run directory."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.id = run_id
        self.dir = Path(root) / run_id

    @property
    def ckpt(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def model(self) -> Path:
        return self.dir / "model.pt"

    @property
    def rows(self) -> Path:
        return self.dir / "rows.csv"

    def is_done(self) -> bool:
        return (self.dir / "done").exists()

    def error(self) -> str | None:
        p = self.dir / "error.txt"
        return p.read_text() if p.exists() else None

    def start(self, config: dict[str, Any]) -> None:
        """Begin (or resume) the run: stale temporaries of killed processes are removed first."""
        self.dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.dir)
        (self.dir / "error.txt").unlink(missing_ok=True)
        atomic_write(
            self.dir / "config.json",
            json.dumps({"schema": SCHEMA, **config}, indent=1, sort_keys=True, default=str),
        )

    def fail(self, reason: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.dir / "error.txt", reason)

    def finish(self, rows: Any = None, meta: dict[str, Any] | None = None) -> None:
        if rows is not None:
            atomic_write(self.rows, lambda tmp: rows.to_csv(tmp, index=False))
        if meta is not None:
            atomic_write(self.dir / "meta.json", json.dumps(meta, indent=1, sort_keys=True, default=str))
        atomic_write(self.dir / "done", "")

    def meta(self) -> dict[str, Any]:
        p = self.dir / "meta.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def config(self) -> dict[str, Any]:
        return json.loads((self.dir / "config.json").read_text())


def load_rows(root: Path) -> tuple[Any, list[str]]:
    """All rows of all finished runs under ``root`` as one long DataFrame.

    A failed run contributes one row whose ``error`` says why (leaderboards list it).

    Returns:
        ``(rows, skipped)``: runs from another schema version are not mixed in; their ids are
        returned in ``skipped`` with the reason.
    """
    import pandas as pd

    frames, skipped = [], []
    for cfg in sorted(Path(root).glob("*/config.json")):
        d = cfg.parent
        try:
            record = json.loads(cfg.read_text())
            schema = record.get("schema")
        except json.JSONDecodeError:
            skipped.append(f"{d.name}: unreadable config.json")
            continue
        if schema != SCHEMA:
            skipped.append(f"{d.name}: results schema {schema}, this acbench reads {SCHEMA}")
            continue
        finished = (d / "done").exists() or (d / "error.txt").exists()
        if finished and (d / "rows.csv").exists():
            frame = read_rows_csv(d / "rows.csv")
            if "variant" not in frame:  # runs finished before rows carried it: from their config
                frame.insert(min(len(frame.columns), 12), "variant", variant(record))
            frames.append(frame)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return rows, skipped


def read_rows_csv(path: Path) -> Any:
    """Long rows from a CSV (or ``.csv.gz``), ids kept as strings, empty cells as NaN (as written)."""
    import pandas as pd

    return pd.read_csv(
        path,
        keep_default_na=False,
        na_values=[""],
        dtype={c: str for c in ID_COLUMNS},
        low_memory=False,
        float_precision="round_trip",  # the default parser can be 1 ulp off: rebuilt CSVs must match
    )
