"""Archives, decompress (the format: :mod:`acbench.archive`)."""

from __future__ import annotations

import hashlib
import time
import zlib
from pathlib import Path
from typing import Any

from acbench.archive.coding import _Coder, _run_chains, decode_chain
from acbench.archive.format import ArchiveError, Progress, _pix_crc32, _platform
from acbench.archive.models import ModelFile, _load_model, _sha256
from acbench.archive.names import _targets
from acbench.archive.read import _Archive, read_header


def _candidates(
    e: dict[str, Any], role: str, model: Path | None, runs_root: Path | None
) -> list[tuple[Path, bool]]:
    """Where a checkpoint may lie, each with whether the place is specifically its own (a hash
    mismatch there is reported; elsewhere it only means "not this file")."""
    run_id, file = e["run_id"], e["file"]
    out: list[tuple[Path, bool]] = []
    if model is not None:
        m = Path(model)
        if m.is_file():
            out += [
                (m, role == "conditional"),
                (m.parent / file, m.parent.name == run_id),
                (m.parent.parent / run_id / file, True),
            ]
        elif m.is_dir():
            out += [(m / file, m.name == run_id), (m.parent / run_id / file, True), (m / run_id / file, True)]
        else:
            raise ArchiveError(f"--model {m}: no such file or folder")
    if runs_root is not None:
        out.append((Path(runs_root) / run_id / file, True))
    return out


def _find_models(
    arc: _Archive, model: Path | None, runs_root: Path | None
) -> tuple[ModelFile, ModelFile, list[str]]:
    """The two checkpoints, matched by sha256 (its first 64 bits: the header keeps those):
    embedded, then ``model``, then ``runs_root``."""
    h = arc.header
    out, notes = [], []
    for role in ("first", "conditional"):
        e = h["model"][role]
        need = f"{role} model of run {e['run_id']} ({e['file']}, sha256 {e['sha256'][:12]}…)"
        damaged = ""
        if e.get("embedded"):
            off, n = e["embedded"]
            where = (str(arc.path), arc.payload_start + off, n)
            mf = ModelFile(role, e["run_id"], e["file"], e["sha256"], e["bytes"], {}, archive=where)
            if off + n > arc.file_size - arc.payload_start:
                damaged = "truncated: the archive ends inside it"
            elif not (got := _sha256(mf.read())).startswith(e["sha256"]):
                damaged = f"its sha256 {got[:12]}… does not match the {e['sha256'][:12]}… recorded"
            else:
                mf.sha256 = got
                out.append(mf)
                continue
            notes.append(
                f"the embedded copy of the {role} model is damaged ({damaged}); the identical model "
                "was found on disk and used"
            )
        found, mismatched, seen = None, [], set()
        for p, specific in _candidates(e, role, model, runs_root):
            if not p.is_file() or p.resolve() in seen:
                continue
            seen.add(p.resolve())
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            if digest.startswith(e["sha256"]):
                found = ModelFile(role, e["run_id"], e["file"], digest, p.stat().st_size, {}, str(p))
                break
            if specific:
                mismatched.append(f"{p} (sha256 {digest[:12]}…)")
        if found is None:
            if damaged:
                raise ArchiveError(
                    f"the archive's embedded copy of the {role} model is damaged ({damaged}), and the "
                    f"intact {need} was not found on disk"
                    + (f" ({', '.join(mismatched)} differs)" if mismatched else "")
                    + ". Re-copy the archive from its source, or pass --model RUN_DIR of that run"
                )
            if mismatched:
                raise ArchiveError(
                    f"model hash mismatch: the archive needs the {need}, but "
                    f"{', '.join(mismatched)} differs — the run was retrained or is another run. "
                    "Pass the exact model the archive was made with (--model), or compress with "
                    "--embed-model"
                )
            raise ArchiveError(
                f"model not found: the archive needs the {need}. Pass --model RUN_DIR (or its "
                "model.pt), --runs ROOT holding that run, or compress with --embed-model"
            )
        out.append(found)
    return out[0], out[1], notes


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ArchiveError(f"{out_dir} is a file; give a folder for the images")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ArchiveError(
            f"{out_dir} already has files; pass --overwrite to write into it (files with the "
            "archive's names are replaced) or choose an empty folder"
        )


def decompress_archive(
    path: Path,
    out_dir: Path,
    overwrite: bool = False,
    skip_corrupt: bool = False,
    model: Path | None = None,
    runs_root: Path | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Restore every image of an archive under its relative name, as PNG.

    Args:
        path: the archive.
        out_dir: output folder (created; must be empty unless ``overwrite``).
        overwrite: write into a folder that already has files.
        skip_corrupt: restore what can be restored when chain streams are corrupt or truncated
            (a damaged stream loses its whole chain); otherwise fail before writing.
        model: the conditional run's directory or a checkpoint file (needed unless the archive
            embeds its model); checkpoints are matched by sha256.
        runs_root: a runs folder holding the runs named in the archive.
        jobs: chains decoded in parallel processes.
        progress: ``progress(label, done, total, logs)``.

    Returns:
        summary: ``images``, ``restored``, ``lost`` (``[{name, reason}]``), ``mismatch``
        (every image's name when the decoded pixels differ from the encoder's — another CPU
        type or torch version; they are written; the archive has one reconstruction checksum),
        ``warnings`` (lines to show), ``out_dir``, ``seconds``.
        :func:`format_restored` prints it.

    Raises:
        ArchiveError: bad archive, model, names or output folder; corrupt items without
        ``skip_corrupt``.
    """
    t0 = time.perf_counter()
    if jobs < 1:
        raise ArchiveError(f"jobs must be >= 1 (got {jobs})")
    arc = read_header(Path(path))
    h, it = arc.header, arc.header["items"]
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)
    targets = _targets(out_dir, it["name"])
    first, cond, notes = _find_models(arc, model, runs_root)
    # integrity first, so that a bad archive fails before anything is written
    offsets = arc.stream_offsets()
    chains = arc.chains()
    bad: dict[int, str] = {}  # chain -> why its stream cannot be decoded
    with open(arc.path, "rb") as f:
        for c, off in enumerate(offsets):
            n = h["streams"][c]
            if off + n > arc.file_size:
                bad[c] = "truncated: the archive ends inside its chain's stream"
                continue
            f.seek(off)
            if zlib.crc32(f.read(n)) != h["stream_crc32"][c]:
                bad[c] = "chain stream checksum mismatch"
    lost: list[dict[str, str]] = []
    trees = arc.parents()
    for c, ch in enumerate(chains):
        if c in bad:
            lost.append({"name": it["name"][ch[0]], "reason": bad[c]})
            lost += [
                {"name": it["name"][i], "reason": f"depends on {it['name'][ch[0]]} (same chain)"}
                for i in ch[1:]
            ]
    if bad and not skip_corrupt:
        size_note = ""
        if arc.file_size < arc.payload_start + h["payload_bytes"]:
            size_note = (
                f"the archive is truncated ({arc.file_size} of "
                f"{arc.payload_start + h['payload_bytes']} bytes); "
            )
        shown = "; ".join(f"{x['name']}: {x['reason']}" for x in lost[:5])
        more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
        raise ArchiveError(
            f"{arc.path}: {size_note}{len(lost)} of {arc.n} images cannot be restored — {shown}{more}. "
            f"Pass --skip-corrupt to restore the other {arc.n - len(lost)}, or re-copy the archive"
        )
    coder = _Coder(_load_model(first, "first-image model"), _load_model(cond, "conditional model"))
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks, sizes = [], []
    for c, ch in enumerate(chains):
        recs = [
            {
                "name": it["name"][i],
                "w": it["w"][i],
                "h": it["h"][i],
                "shape": it["shape"][i],
                "target": str(targets[i]),
            }
            for i in ch
        ]
        stream = (offsets[c], h["streams"][c], h["stream_crc32"][c])
        tasks.append((str(arc.path), recs, stream, trees[c]))
        sizes.append(len(ch))
    results = _run_chains(decode_chain, tasks, sizes, jobs, coder, (first, cond), progress, "decompress")
    lost, restored = [], 0
    for (_, recs, *_), (res, _) in zip(tasks, results, strict=True):
        for r, (status, detail) in zip(recs, res):
            if status == "ok":
                restored += 1
            else:
                lost.append({"name": r["name"], "reason": detail})
    warnings = list(notes)
    # one reconstruction check for the whole archive: it needs every chain decoded
    mismatch: list[str] = []
    if lost:
        warnings.append(
            "the decoded pixels could not be checked against the encoder's: the archive's one "
            "reconstruction checksum covers every chain, and some were lost"
        )
    elif _pix_crc32([pix for _, pix in results]) != h["pix_crc32"]:
        mismatch = [it["name"][i] for ch in chains for i in ch]
    if arc.trailing:
        warnings.append(
            f"{arc.trailing:,} byte(s) after the archive's end were ignored (appended by a copy or "
            "another program?); every image is checksummed, so what was restored is intact"
        )
    coder_info = h.get("coder", {})
    here = _platform()
    if mismatch:
        diff = {
            k: (coder_info.get(k), here[k])
            for k in ("torch", "compressai", "machine", "cpu_capability")
            if coder_info.get(k) != here[k]
        }
        warnings.append(
            f"the decoded pixels differ from the encoder's (the archive's reconstruction checksum "
            f"does not match; all {len(mismatch)} images were written and are suspect); decode on the "
            f"kind of machine that encoded (archive vs here: {diff or 'same'})"
        )
    if lost:
        warnings.append(
            f"{len(lost)} image(s) not restored: "
            + "; ".join(f"{x['name']}: {x['reason']}" for x in lost[:5])
        )
    return {
        "archive": str(arc.path),
        "out_dir": str(out_dir),
        "images": arc.n,
        "restored": restored,
        "lost": lost,
        "mismatch": mismatch,
        "warnings": warnings,
        "seconds": time.perf_counter() - t0,
    }
