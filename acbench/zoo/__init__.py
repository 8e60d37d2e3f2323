"""A small model zoo: converged `cpu`-preset baselines shipped inside the package.

Codec libraries ship pretrained weights; acbench ships the unconditioned references that every
`cpu` curve is compared against, so a demo spends its minutes on the conditional models.

Each shipped model is keyed by the **run id** of the baseline job that trained it (the hash of
its config, plugin versions, results schema and training protocol, :data:`acbench.config.PROTOCOL`):
change any of them and the key no longer matches, so a stale model is never reused; the job
trains instead. A model whose file is missing, truncated, altered (sha256) or stamped with another
run id or protocol is refused with one line naming the problem and the rebuild command, and the
baseline is trained. Each entry keeps the eval rows it produced, so a test can reproduce them.

Rebuild (about 15 min on 2 cores): ``acbench zoo build`` (``--check`` re-evaluates every shipped
model against its rows). ``ACBENCH_NO_ZOO=1`` disables the zoo (the build sets it for itself);
``ACBENCH_ZOO_DIR`` points it at another folder (tests build a tiny zoo there).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
ZOO_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.05)
REBUILD = "acbench zoo build"


class ZooError(ValueError):
    """A shipped model cannot be used; the message says why and how to rebuild."""


def enabled() -> bool:
    return os.environ.get("ACBENCH_NO_ZOO", "") in ("", "0")


def folder() -> Path:
    """Where the zoo lives: the package's own folder unless ``ACBENCH_ZOO_DIR`` says otherwise."""
    return Path(os.environ.get("ACBENCH_ZOO_DIR") or HERE)


def manifest(root: Path | None = None) -> dict[str, Any]:
    """``{"models": {run_id: entry}, ...}``; empty when nothing is shipped."""
    path = (root or folder()) / MANIFEST
    if not path.exists():
        return {"models": {}}
    return json.loads(path.read_text())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checked(run_id: str, root: Path | None = None) -> Path | None:
    """The shipped model file for ``run_id`` after its checks; None when the zoo has no such key.

    Raises:
        ZooError: the entry exists but its file is missing, truncated, altered or stamped with
            another run id or training protocol.
    """
    from acbench.config import PROTOCOL

    root = root or folder()
    entry = manifest(root)["models"].get(run_id)
    if entry is None:
        return None
    path = root / entry["file"]
    where = f"zoo model {run_id} ({path.name})"
    if not path.exists():
        raise ZooError(f"{where} is missing; reinstall acbench or rebuild with `{REBUILD}`")
    if path.stat().st_size != entry["bytes"]:
        raise ZooError(
            f"{where} is truncated or altered ({path.stat().st_size} bytes, {entry['bytes']} expected); "
            f"rebuild with `{REBUILD}`"
        )
    if sha256(path) != entry["sha256"]:
        raise ZooError(f"{where} is damaged (sha256 does not match the manifest); rebuild with `{REBUILD}`")
    import torch

    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a file that matches its hash but does not load: a bad build
        raise ZooError(f"{where} does not load ({type(e).__name__}); rebuild with `{REBUILD}`") from None
    if meta.get("zoo_key") != run_id or meta.get("protocol") != PROTOCOL:
        raise ZooError(
            f"{where} was built for run {meta.get('zoo_key')} under training protocol "
            f"{meta.get('protocol')} (this code: {run_id}, protocol {PROTOCOL}); rebuild with `{REBUILD}`"
        )
    return path


def install(run_id: str, dest: Path, announce: Callable[[], None] | None = None) -> bool:
    """Copy the shipped model for ``run_id`` to ``dest``; False (with one line on stderr) if unusable.

    ``announce`` is called once, before the copy, when there is a usable model.
    """
    if not enabled():
        return False
    try:
        path = checked(run_id)
    except ZooError as e:
        print(f"acbench: {e}; training this baseline instead", file=sys.stderr)
        return False
    if path is None:
        return False
    if announce is not None:
        announce()
    from acbench.store import atomic_write

    atomic_write(dest, lambda tmp: shutil.copyfile(path, tmp))
    return True


def add(
    run_id: str, model: Path, rows: Path, describe: dict[str, Any], root: Path | None = None
) -> dict[str, Any]:
    """Ship ``model`` (a finished baseline run's model.pt) and its rows under ``run_id``."""
    import torch

    from acbench.config import PROTOCOL

    root = root or folder()
    root.mkdir(parents=True, exist_ok=True)
    state = torch.load(model, map_location="cpu", weights_only=True)
    state.update(zoo_key=run_id, protocol=PROTOCOL)
    name = f"{describe['codec']}-{describe['lam']:g}-{run_id}"
    dest = root / f"{name}.pt"
    torch.save(state, dest)
    shutil.copyfile(rows, root / f"{name}.rows.csv")
    entry = {
        "file": dest.name,
        "rows": f"{name}.rows.csv",
        "bytes": dest.stat().st_size,
        "sha256": sha256(dest),
        "protocol": PROTOCOL,
        "convergence": state.get("convergence"),
        "environment": state.get("environment"),
        "train_seconds": state.get("seconds"),
        **describe,
    }
    return entry


def write_manifest(
    entries: dict[str, dict[str, Any]], info: dict[str, Any], root: Path | None = None
) -> None:
    text = json.dumps({**info, "models": dict(sorted(entries.items()))}, indent=1, sort_keys=True)
    ((root or folder()) / MANIFEST).write_text(text + "\n")


def clear(root: Path | None = None) -> None:
    """Remove every shipped model (before a rebuild)."""
    root = root or folder()
    for p in list(root.glob("*.pt")) + list(root.glob("*.rows.csv")):
        p.unlink()
