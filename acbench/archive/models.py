"""Archives, models (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acbench.archive.format import SHA_HEX, ArchiveError


@dataclass
class ModelFile:
    """One checkpoint: its identity in the archive and where its bytes come from."""

    role: str  # "first" | "conditional"
    run_id: str
    file: str  # file name inside its run directory
    sha256: str
    size: int
    arch: dict[str, Any]
    path: str | None = None  # on disk
    archive: tuple[str, int, int] | None = None  # (archive path, absolute offset, length)

    def entry(self, embedded: tuple[int, int] | None) -> dict[str, Any]:
        e = {"run_id": self.run_id, "file": self.file, "sha256": self.sha256[:SHA_HEX], "bytes": self.size}
        return {**e, "embedded": list(embedded)} if embedded else e

    def read(self) -> bytes:
        if self.path is not None:
            return Path(self.path).read_bytes()
        assert self.archive is not None
        apath, off, n = self.archive
        with open(apath, "rb") as f:
            f.seek(off)
            return f.read(n)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_bytes(data: bytes, label: str):
    """A codec from checkpoint bytes (``weights_only=True``: a checkpoint cannot run code)."""
    import pickle

    from acbench.codecs.base import CodecError, load_codec

    try:
        model, _ = load_codec(io.BytesIO(data))
    except CodecError as e:
        raise ArchiveError(f"{label}: {e}") from None
    except (pickle.UnpicklingError, RuntimeError, KeyError, TypeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ArchiveError(
            f"{label}: not a loadable acbench checkpoint ({first}). Checkpoints are loaded with "
            "torch.load(weights_only=True), so files that need arbitrary code to load are refused; "
            "use the model.pt written by `acbench run`"
        ) from None
    model.eval()
    model.update(force=True)
    return model


def _load_model(mf: ModelFile, label: str):
    try:
        data = mf.read()
    except OSError as e:
        raise ArchiveError(f"{label}: cannot read {mf.path or 'the embedded model'} ({e})") from None
    if _sha256(data) != mf.sha256:
        where = mf.path or "embedded in the archive"
        raise ArchiveError(
            f"{label} ({where}) changed: sha256 {_sha256(data)[:16]}…, expected {mf.sha256[:16]}…; "
            "it must not change while it is being used"
        )
    return _load_bytes(data, label)


@dataclass
class RunInfo:
    """What a conditional run directory says about compressing with it."""

    run_id: str
    dir: Path
    config: dict[str, Any]
    first: ModelFile
    conditional: ModelFile
    chain: int
    ordering: dict[str, Any]
    features: str
    tile: int
    seed: int
    codecs: tuple[Any, Any]  # (first, conditional), loaded and updated
    structure: str = "chain"  # or "tree": each image conditioned on its spanning-forest parent


def _model_file(path: Path, role: str, run_id: str) -> tuple[ModelFile, Any]:
    if not path.is_file():
        raise ArchiveError(f"{role} model {path} not found; finish the run first (acbench run ...)")
    data = path.read_bytes()
    model = _load_bytes(data, f"{role} model {path}")
    return ModelFile(role, run_id, path.name, _sha256(data), len(data), model.arch(), str(path)), model


def open_run(run_dir: Path | None = None, model: Path | None = None) -> RunInfo:
    """The conditional run to compress with: ``run_dir`` (``runs/<id>``) or its ``model.pt``.

    The baseline of a ``frozen`` run is found beside the run (``<runs>/<baseline_run>/model.pt``).
    """
    if run_dir is None and model is None:
        raise ArchiveError("no model given: pass --run RUN_ID (a conditional run) or --model PATH")
    cond_path: Path | None = None
    if model is not None:
        model = Path(model)
        if model.is_dir():
            run_dir = model
        elif model.is_file():
            run_dir, cond_path = model.parent, model
        else:
            raise ArchiveError(f"--model {model}: no such file or run directory")
    assert run_dir is not None
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise ArchiveError(
            f"{run_dir} is not a run directory (no config.json); pass a conditional run's directory "
            "or its model.pt (see the run ids under runs/)"
        )
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ArchiveError(f"{cfg_path}: unreadable ({e})") from None
    if cfg.get("kind") != "conditional":
        raise ArchiveError(
            f"run {run_dir.name} is a {cfg.get('kind', 'unknown')!r} run; compressing needs a "
            "conditional run (its id is in the report of `acbench run`)"
        )
    run_id = run_dir.name
    cond, cond_model = _model_file(cond_path or run_dir / "model.pt", "conditional", run_id)
    if cfg.get("baseline") == "joint":
        first, first_model = _model_file(run_dir / "first.pt", "first", run_id)
    else:
        base_id = cfg.get("baseline_run")
        if not base_id:
            raise ArchiveError(f"{cfg_path} names no baseline_run; rerun `acbench run` to repair it")
        first, first_model = _model_file(run_dir.parent / base_id / "model.pt", "first", base_id)
    if first.arch.get("sites"):
        raise ArchiveError(f"first-image model {first.path} is conditional; it must be a baseline")
    if not cond.arch.get("sites"):
        raise ArchiveError(f"model {cond.path} is unconditioned; pass a conditional run's model")
    features = cfg.get("features")
    if features is None:  # the ordering run records it
        try:
            features = json.loads((run_dir.parent / cfg["ordering_run"] / "config.json").read_text())[
                "features"
            ]
        except (OSError, KeyError, json.JSONDecodeError, TypeError):
            features = "hyper"
    return RunInfo(
        run_id,
        run_dir,
        cfg,
        first,
        cond,
        int(cfg.get("chain", 2)),
        dict(cfg.get("ordering") or {"name": "random", "params": {}}),
        str(features),
        int((cfg.get("data") or {}).get("tile", 64)),
        int(cfg.get("seed", 0)),
        (first_model, cond_model),
        str(cfg.get("structure", "chain")),
    )
