"""Dataset archives: ``acbench compress`` / ``decompress`` / ``info``.

A folder of images is ordered with a conditional run's ordering, cut into chains of the run's
chain length, and coded with real entropy coding: position 1 of each chain by the run's baseline
(``first.pt`` for ``joint`` runs, else the baseline run's ``model.pt``), later positions by the
conditional codec given the decoded state of the previous image. The result is one file.

File layout (integers little-endian)::

    magic      8 bytes   b"\\x89ACB\\r\\n\\x1a\\n"   (PNG-style: catches text-mode mangling)
    version    u16       format version; a reader refuses versions newer than its own
    flags      u16       reserved, 0
    hlen       u64       length of the header
    header     hlen      zlib-compressed UTF-8 JSON (see below)
    digest     32 bytes  sha256 of everything before it (magic .. header)
    payload              embedded checkpoints (optional), then every item's bitstreams

The header holds the model identity (run id, and per checkpoint its run id, file name, sha256,
size and, with ``embed_model``, where its bytes lie in the payload), the coder's platform (torch,
compressai, CPU type), the ordering used (informational: the decoder needs only the chain
structure), the chain lengths with one crc32 per chain of the encoder's 8-bit reconstructions,
totals for ``info`` (estimated bits, PSNR, and the baseline-alone estimate and real size), and
one column per item field: output name, original name, PIL mode, width, height, byte length of
each stream and crc32 of the item's coded bytes. Items are stored chain after chain, so offsets
and chain membership follow from the lengths. The header's size counts in the file's bpp, so it
is columnar and compressed, statistics are totals rather than per image, the original name is
stored only as the suffix that differs, the z grid only when it is not the padded size over the
stride, and checksums as hex strings: what is left is mostly the names and the per-item crc32.

Decisions, and why:

- **Bit-exactness.** CPU convolutions give slightly different floats for different batch sizes
  and for different intra-op thread counts (measured here: x̂ differs by ~1e-8 between 1 and 2
  threads), and a decoder whose entropy parameters differ from the encoder's can pick another
  scale-table index and decode garbage. So both sides code each chain image by image (batch 1)
  with ``torch.set_num_threads(1)``; parallelism comes from coding chains in separate processes
  (``jobs``; a fork server imports torch once, where the platform has one, else ``spawn``), which
  changes nothing in the bytes: an archive is identical for any ``jobs``. The
  crc32 of the encoder's reconstruction lets the decoder *detect* drift (another CPU type or
  torch version: the header records both) instead of silently writing wrong pixels; one per
  chain suffices, as drift in one image carries on down its chain.
- **Streaming.** Each chain is coded into its own temporary file (memory: the models plus one
  chain per process); the header (which needs every length) is written first, then the chain
  files are appended, and the archive is moved into place atomically (disk: twice the archive,
  briefly). The header comes first so that a truncated archive still says what it held and its
  complete items can be restored. Per-item metadata (about a hundred bytes each) stays in memory.
- **Checksums.** crc32 per item (corruption, not tampering: an attacker rewrites both), sha256
  over the header and of each checkpoint (identity). A corrupt item loses itself *and every later
  item of its chain* (each is decoded from its predecessor's state); ``skip_corrupt`` restores
  all others and names the lost ones with the reason. An embedded checkpoint whose hash does
  not match is reported as damaged (the identical file on disk is used if there is one). Bytes
  after the archive's end (an append, a concatenation) are ignored with a warning giving their
  count: they belong to no item.
- **Lossy.** What decompressing restores is the codec's reconstruction, not the original pixels
  (bit-exact with the encoder's, as the per-chain checksum verifies); ``compress`` reports the
  PSNR of every image against its original (mean and lowest), ``info`` the mean recorded then.
- **Untrusted archives.** Every name is checked before anything is written: relative POSIX paths
  only (no ``..``, no absolute path, no backslash or drive), the target resolved inside the
  output folder (a symlinked sub-folder pointing elsewhere is refused), an existing symlink at
  the target is refused, and files are written to a temporary name and ``os.replace``-d.
  Checkpoints (from disk or embedded) are hashed, then loaded from those same bytes with
  ``torch.load(weights_only=True)``, so a pickle that would run code is refused, not executed.
- **Images.** Any size and any PIL mode: converted with :func:`to_rgb_uint8` after applying the
  EXIF orientation (PNG keeps no orientation tag); alpha is dropped, animations give their
  first frame; greyscale and palette images are coded (and restored) as RGB — the header keeps
  the original mode. Sizes are padded to the codec stride (:func:`pad_to`) and cropped back.
  ``jobs`` processes never see more than one chain each. Output is always PNG: ``a/b.jpg`` →
  ``a/b.png``; when two inputs would land on one name (``b.jpg`` and ``b.png``, or names that
  differ only in case), an existing ``.png`` keeps its name and the other becomes ``b.jpg.png``.
- **Ordering.** The images are embedded with the first-image codec (the run's ``features``:
  ``hyper``, ``y`` or ``pixels``). When they all share one size of at most 512×512 px they are
  embedded as they are; otherwise every image's centre square is resized to the run's tile size
  (≥ the stride), so features have one dimension and large photos cost little; the features
  come from a baseline forward pass in batches (they need no bit-exactness). The run's ordering
  type is then fitted with the run's parameters (``random_state`` = the run's seed) on these
  features, with the class folder as label as the folder dataset finds it (the top-level
  sub-folder, or the one below split folders such as ``train/``, ``val/``). The fitted order is cut
  into chains of the run's ``chain`` length. If the ordering cannot be fitted (e.g. fewer images
  than its neighbourhood size), the name order is used and the summary says so.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import shutil
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

MAGIC = b"\x89ACB\r\n\x1a\n"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sHHQ")  # magic, version, flags, header length
_DIGEST = 32
MAX_HEADER = 1 << 30  # compressed and decompressed header bound (bytes)
MAX_SIDE = 1 << 16
SUFFIX = ".acb"

Progress = Callable[[str, int, int, dict[str, float]], None]  # progress(label, done, total, logs)


class ArchiveError(ValueError):
    """An archive cannot be written or read as asked; the message names the problem and the fix."""


# --------------------------------------------------------------------------------------------
# Models


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
        return {
            "run_id": self.run_id,
            "file": self.file,
            "sha256": self.sha256,
            "bytes": self.size,
            "embedded": list(embedded) if embedded else None,
        }

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
    )


# --------------------------------------------------------------------------------------------
# Images


def _image_exts() -> set[str]:
    from PIL import Image

    Image.init()
    return {e.lower() for e, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def scan(src: Path) -> list[str]:
    """Relative POSIX names of the image files under ``src`` (sorted; hidden entries skipped)."""
    exts = _image_exts()
    found = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or os.path.splitext(f)[1].lower() not in exts:
                continue
            found.append(
                PurePosixPath(Path(root).relative_to(src).as_posix(), f).as_posix().removeprefix("./")
            )
    return found


def output_names(srcs: list[str]) -> list[str]:
    """PNG output name per input; collisions (also case-only ones) resolved deterministically."""
    out: list[str | None] = [None] * len(srcs)
    taken: set[str] = set()

    def claim(i: int, name: str) -> None:
        stem, k = name[:-4], 2
        while name.casefold() in taken:
            name, k = f"{stem}~{k}.png", k + 1
        taken.add(name.casefold())
        out[i] = name

    for i, s in enumerate(srcs):  # files that already are .png keep their names
        if s.lower().endswith(".png"):
            claim(i, s[:-4] + ".png")
    for i, s in enumerate(srcs):
        if out[i] is None:
            p = PurePosixPath(s)
            want = p.with_suffix(".png").as_posix()
            claim(i, want if want.casefold() not in taken else s + ".png")
    return [o for o in out if o is not None]


def read_image(path: Path) -> tuple[np.ndarray, str]:
    """HxWx3 uint8 pixels (EXIF orientation applied) and the original PIL mode."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from acbench.data.base import to_rgb_uint8

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            if mode in ("L", "LA", "RGB", "RGBA", "F") or mode.startswith("I;16"):
                a = np.asarray(im)
                if a.dtype.kind == "u" and a.dtype.itemsize == 2:
                    a = a.astype(np.uint16)
            elif mode == "I":
                a = np.asarray(im)
                a = np.clip(a, 0, 65535).astype(np.uint16) if a.max() > 255 else a.astype(np.uint8)
            else:  # palette, 1-bit, CMYK, YCbCr, LAB, premultiplied ...
                has_alpha = "A" in mode or "transparency" in im.info
                a = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as e:
        raise ArchiveError(f"{path}: cannot read this image ({e}); remove or convert it") from None
    return to_rgb_uint8(a), mode


def _size(path: Path) -> tuple[int, int]:
    """(H, W) after EXIF orientation, from the file's header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated by 90°
                w, h = h, w
    except Exception as e:
        raise ArchiveError(f"{path}: cannot read this image ({e}); remove or convert it") from None
    return h, w


def _thumb(a: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    h, w = a.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(a[top : top + s, left : left + s])
    return np.asarray(
        im.resize((side, side), Image.Resampling.BOX if s >= side else Image.Resampling.BICUBIC)
    )


def _chw(a: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float().div_(255.0)


def _to_uint8(x_hat: Any) -> np.ndarray:
    """[3, H, W] float in [0, 1] → HxWx3 uint8, rounded as evaluation's PSNR rounds."""
    import torch

    return (x_hat.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


# --------------------------------------------------------------------------------------------
# Names and targets (untrusted on decode)


def check_name(name: Any) -> str:
    """``name`` if it is a safe relative POSIX path ending in ``.png``, else :class:`ArchiveError`."""
    if not isinstance(name, str) or not name:
        raise ArchiveError(f"archive item name {name!r} is not a file name; the archive is not trustworthy")
    bad = None
    parts = name.split("/")
    if "\\" in name or "\x00" in name or any(ord(c) < 32 for c in name):
        bad = "contains a backslash or control character"
    elif name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        bad = "is an absolute path"
    elif any(p in ("", ".", "..") for p in parts):
        bad = "has an empty, '.' or '..' component"
    elif not name.lower().endswith(".png"):
        bad = "does not end in .png"
    if bad:
        raise ArchiveError(
            f"archive item name {name!r} {bad}: it could write outside the output folder, so the "
            "archive is refused; only decompress archives from sources you trust"
        )
    return name


def _targets(out_dir: Path, names: list[str]) -> list[Path]:
    """Output paths, each checked to stay inside ``out_dir`` (symlinks resolved)."""
    root = out_dir.resolve()
    seen: set[str] = set()
    paths = []
    for name in names:
        check_name(name)
        if name.casefold() in seen:
            raise ArchiveError(f"archive names {name!r} twice; the archive is malformed and refused")
        seen.add(name.casefold())
        target = out_dir / name
        for parent in list(target.parents)[: name.count("/")]:  # sub-folders named by the archive
            if parent.exists() and not parent.is_dir():
                raise ArchiveError(f"{parent} is a file, but the archive needs a folder there; move it away")
        if target.is_symlink():
            raise ArchiveError(
                f"{target} is a symbolic link; refusing to write through it. Remove it or choose "
                "an empty output folder"
            )
        if target.is_dir():
            raise ArchiveError(
                f"{target} is a folder, but the archive has an image of that name; move it away"
            )
        if not target.resolve().is_relative_to(root):
            raise ArchiveError(
                f"{name!r} would be written to {target.resolve()}, outside {root} (a symbolic link "
                "on the way points elsewhere); remove the link or choose an empty output folder"
            )
        paths.append(target)
    return paths


def _write_png(path: Path, a: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    Image.fromarray(a).save(tmp, format="PNG")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Coding (one chain, batch 1, one thread) — shared by the in-process path and worker processes


@contextmanager
def _one_thread() -> Iterator[None]:
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@dataclass
class _Coder:
    first: Any
    conditional: Any


_WORKER: dict[str, _Coder] = {}


def _init_worker(first: ModelFile, cond: ModelFile) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER["coder"] = _Coder(_load_model(first, "first-image model"), _load_model(cond, "conditional model"))


def _bits(lik) -> float:
    import torch

    return float(torch.log(lik).sum() / -math.log(2))


def encode_chain(
    coder: _Coder,
    src: str,
    items: list[str],
    path: str,
    baseline: bool,
    tick: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Code one chain into ``path``; one record per item (in chain order)."""
    import torch

    from acbench.codecs.base import pad_to

    recs = []
    ref, pix = None, 0
    with open(path, "wb") as f, torch.inference_mode():
        for pos, rel in enumerate(items):
            a, mode = read_image(Path(src) / rel)
            h, w = a.shape[:2]
            if max(h, w) > MAX_SIDE:
                raise ArchiveError(f"{rel}: {w}x{h} px is larger than {MAX_SIDE} px a side; downscale it")
            model = coder.first if pos == 0 else coder.conditional
            xp, _ = pad_to(_chw(a), model.stride)
            enc = model.compress(xp, ref, need_x_hat=True)
            keys = sorted(enc["strings"])
            blobs = [bytes(enc["strings"][k][0]) for k in keys]
            data = b"".join(blobs)
            f.write(data)
            rec_px = _to_uint8(enc["x_hat"][0, :, :h, :w])
            bits = sum(_bits(v) for v in enc["likelihoods"].values())
            if pos == 0 or not baseline:
                base_bits, base_bytes = (bits, len(data)) if pos == 0 else (None, None)
            else:
                b = coder.first.compress(xp)
                base_bits = sum(_bits(v) for v in b["likelihoods"].values())
                base_bytes = sum(len(b["strings"][k][0]) for k in b["strings"])
            pix = zlib.crc32(rec_px.tobytes(), pix)
            recs.append(
                {
                    "src": rel,
                    "mode": mode,
                    "w": w,
                    "h": h,
                    "shape": [int(s) for s in enc["shape"]],
                    "keys": keys,
                    "len": [len(x) for x in blobs],
                    "crc32": zlib.crc32(data),
                    "chain_pix_crc32": pix,  # running: the last item's covers the chain
                    "psnr": _psnr(a, rec_px),
                    "bits_est": bits,
                    "base_bits_est": base_bits,
                    "base_bytes": base_bytes,
                }
            )
            ref = enc["ref"]
            if tick:
                tick()
    return recs


def decode_chain(
    coder: _Coder,
    archive: str,
    items: list[dict[str, Any]],
    pix_crc32: int,
    tick: Callable[[], None] | None = None,
) -> list[tuple[str, str]]:
    """Decode the items of one chain (stopping at the first bad one); ``(status, detail)`` each.

    ``items`` carry ``name``, ``offset``, ``len``, ``keys``, ``crc32``, ``w``, ``h``, ``shape``
    and ``target``; ``pix_crc32`` is the crc32 of the encoder's reconstructions of the whole
    chain. Status: ``ok``, ``mismatch`` (written, but the chain's pixels differ from the
    encoder's), ``corrupt`` / ``failed`` (not written), ``lost`` (an earlier item failed).
    """
    import torch

    out: list[tuple[str, str]] = []
    ref, pix = None, 0
    with open(archive, "rb") as f, torch.inference_mode():
        for pos, it in enumerate(items):
            if out and out[-1][0] in ("corrupt", "failed", "lost"):
                out.append(("lost", f"depends on {items[pos - 1]['name']} (same chain)"))
                continue
            f.seek(it["offset"])
            data = f.read(sum(it["len"]))
            if len(data) < sum(it["len"]):
                out.append(("corrupt", "truncated: the archive ends inside its bitstream"))
                continue
            if zlib.crc32(data) != it["crc32"]:
                out.append(("corrupt", "bitstream checksum mismatch"))
                continue
            strings, o = {}, 0
            for k, n in zip(it["keys"], it["len"]):
                strings[k] = [data[o : o + n]]
                o += n
            model = coder.first if pos == 0 else coder.conditional
            try:
                dec = model.decompress(strings, tuple(it["shape"]), ref)
                px = _to_uint8(dec["x_hat"][0, :, : it["h"], : it["w"]])
            except Exception as e:  # a crc-valid but undecodable stream (wrong model, forged file)
                out.append(("failed", f"decoding failed ({type(e).__name__}: {e})"))
                continue
            _write_png(Path(it["target"]), px)
            ref = dec["ref"]
            pix = zlib.crc32(px.tobytes(), pix)
            out.append(("ok", ""))
            if tick:
                tick()
    if all(st == "ok" for st, _ in out) and pix != pix_crc32:
        out = [("mismatch", "decoded pixels of its chain differ from the encoder's")] * len(out)
    return out


def _in_worker(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(_WORKER["coder"], *args)


def _run_chains(
    fn: Callable[..., Any],
    tasks: list[tuple[Any, ...]],
    sizes: list[int],
    jobs: int,
    coder: _Coder,
    models: tuple[ModelFile, ModelFile],
    progress: Progress | None,
    label: str,
) -> list[Any]:
    """``fn(coder, *task)`` for every chain: in this process, or in ``jobs`` spawned processes."""
    total, done = sum(sizes), 0
    results: list[Any] = [None] * len(tasks)

    def report(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(label, done, total, {})

    if progress:
        progress(label, 0, total, {})
    if jobs <= 1 or len(tasks) <= 1:
        with _one_thread():
            for i, t in enumerate(tasks):
                results[i] = fn(coder, *t, lambda: report(1))
        return results
    import multiprocessing as mp
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # Not fork: forking after torch's thread pools started can hang. A fork server imports torch
    # and compressai once, so each worker starts in a fraction of the seconds spawn would take.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["acbench.archive", "compressai.models"])
    else:
        ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(
        min(jobs, len(tasks)), mp_context=ctx, initializer=_init_worker, initargs=models
    ) as ex:
        futs = {ex.submit(_in_worker, fn, *t): i for i, t in enumerate(tasks)}
        pending = set(futs)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in finished:
                    results[futs[fut]] = fut.result()
                    report(sizes[futs[fut]])
        except BrokenProcessPool:
            raise ArchiveError(
                "a worker process died (out of memory, or a calling script without "
                "`if __name__ == '__main__':`, which spawned workers need); retry with jobs=1"
            ) from None
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise
    return results


# --------------------------------------------------------------------------------------------
# Compress


def _features(
    src: Path, names: list[str], run: RunInfo, codec: Any, progress: Progress | None
) -> tuple[np.ndarray, str]:
    """Ordering features of every image, a batch of at most ~1 Mpx at a time (memory: one batch)."""
    from acbench.features import embed

    sizes = [_size(src / rel) for rel in names]
    same = len(set(sizes)) == 1 and sizes[0][0] * sizes[0][1] <= 512 * 512
    side = None if same else max(run.tile, codec.stride)
    px = side * side if side else sizes[0][0] * sizes[0][1]
    batch = max(1, min(32, (1 << 20) // px))
    feats = []
    with _one_thread():  # small convs: one thread is faster than contended several
        for b0 in range(0, len(names), batch):
            chunk = []
            for rel in names[b0 : b0 + batch]:
                a, _ = read_image(src / rel)
                if side:
                    a = _thumb(a, side)
                chunk.append(a.transpose(2, 0, 1))
            feats.append(embed(np.ascontiguousarray(np.stack(chunk)), run.features, codec, batch))
            if progress:
                progress("embed", min(b0 + batch, len(names)), len(names), {})
    return np.concatenate(feats), (f"{side}x{side} centre thumbnails" if side else "native size")


def _order(feats: np.ndarray, labels: np.ndarray, run: RunInfo) -> tuple[np.ndarray, str]:
    from acbench.registry import ORDERINGS, UnknownPluginError

    n = len(feats)
    name = run.ordering.get("name", "random")
    if n < 3:
        return np.arange(n), "fewer than 3 images: name order"
    try:
        cls = ORDERINGS.get(name)
    except (UnknownPluginError, ImportError) as e:
        raise ArchiveError(
            f"the run's ordering {name!r} cannot be used here ({e}); install the plugin that provides it"
        ) from None
    try:
        est = cls(**{"random_state": run.seed, **dict(run.ordering.get("params") or {})}).fit(feats, labels)
        order = np.asarray(est.order_, dtype=np.int64)
        if sorted(order.tolist()) != list(range(n)):
            raise ValueError("order_ is not a permutation of the images")
    except Exception as e:  # a plugin failing on an unusual folder must not block compression
        return np.arange(n), f"{name} failed on these {n} images ({type(e).__name__}: {e}); name order used"
    return order, ""


def compress_folder(
    src: Path,
    out: Path,
    run_dir: Path | None = None,
    model: Path | None = None,
    embed_model: bool = False,
    jobs: int = 1,
    overwrite: bool = False,
    progress: Progress | None = None,
    baseline_estimate: bool = True,
) -> dict[str, Any]:
    """Compress every image under ``src`` (nested folders too) into the archive ``out``.

    Args:
        src: folder of images (any size, any PIL-readable format).
        out: archive file to write (``.acb`` by convention).
        run_dir: a conditional run directory (``runs/<run id>``).
        model: alternatively, the run's ``model.pt`` (its folder is the run directory).
        embed_model: store both checkpoints in the archive (decoding then needs nothing else).
        jobs: chains coded in parallel processes (the archive's bytes do not depend on it).
        overwrite: replace an existing ``out``.
        progress: ``progress(label, done, total, logs)`` (the runner's signature).
        baseline_estimate: also code every conditioned image alone with the baseline, for the
            "vs baseline" figures in the summary and ``info`` (about 1.4× the coding time).

    Returns:
        summary: :func:`archive_info` of the new archive without its ``items`` — ``images``,
        ``chains``, ``bytes`` (file size), ``bpp_file`` (file size × 8 / pixels, overheads
        included), ``bpp_streams``, ``bpp_est`` (the model's estimate), ``bpp_baseline_est`` /
        ``bpp_baseline_real`` (each image alone with the baseline), ``overhead_bytes``,
        ``model_bytes``, ``psnr_mean``, ``ordering`` — plus ``psnr_min`` / ``psnr_min_name`` (the
        image farthest from its original), ``archive``, ``run_id``, ``note``
        (non-empty when the ordering fell back to name order) and ``seconds``.
        :func:`format_info` prints it.

    Raises:
        ArchiveError: bad folder, output, run or image; the message says what to do.
    """
    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ArchiveError(f"{src}: not a folder; pass a folder of images")
    if out.is_dir():
        raise ArchiveError(f"{out} is a folder; give the archive's file name (e.g. {out / 'data.acb'})")
    if out.exists() and not overwrite:
        raise ArchiveError(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise ArchiveError(f"{out.parent}: no such folder for the archive; create it first")
    if jobs < 1:
        raise ArchiveError(f"jobs must be >= 1 (got {jobs})")
    run = open_run(run_dir, model)
    coder = _Coder(*run.codecs)
    names = scan(src)
    if not names:
        raise ArchiveError(f"no images under {src} (looked for {', '.join(sorted(_image_exts())[:8])}, ...)")
    outs = output_names(names)
    for o in outs:
        try:
            check_name(o)
        except ArchiveError:
            raise ArchiveError(f"{o!r}: this file name cannot be stored portably; rename it") from None
    feats, how = _features(src, names, run, coder.first, progress)
    from acbench.data.folder import class_of

    labels = np.unique(class_of(names), return_inverse=True)[1]
    order, note = _order(feats, labels, run)
    from acbench.evaluate import chains_of

    chains = [order[c].tolist() for c in chains_of(len(order), run.chain)]
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tasks = [
            (str(src), [names[i] for i in ch], str(tmpdir / f"{cid}.bin"), baseline_estimate)
            for cid, ch in enumerate(chains)
        ]
        recs = _run_chains(
            encode_chain,
            tasks,
            [len(c) for c in chains],
            jobs,
            coder,
            (run.first, run.conditional),
            progress,
            "compress",
        )
        _write_archive(out, run, chains, outs, recs, [t[2] for t in tasks], embed_model, how, note)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    summary = {k: v for k, v in archive_info(out).items() if k != "items"}
    worst = min(
        ((r["psnr"], outs[i]) for ch, rs in zip(chains, recs) for i, r in zip(ch, rs)),
        key=lambda t: t[0],
    )
    return {
        **summary,
        "psnr_min": worst[0],
        "psnr_min_name": worst[1],
        "archive": str(out),
        "run_id": run.run_id,
        "note": note,
        "seconds": time.perf_counter() - t0,
    }


def _platform() -> dict[str, Any]:
    import compressai
    import torch

    return {
        "torch": torch.__version__,
        "compressai": compressai.__version__,
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "batch": 1,
        "threads": 1,
        "device": "cpu",
    }


_COLS = ("mode", "w", "h", "len")


def _pack_items(flat: list[dict[str, Any]], names: list[str], stride: int) -> dict[str, Any]:
    """Column layout of the item table, made small: per-item overhead counts in the file's bpp.

    ``src`` is ``None`` when it equals the output name and only its suffix (``".jpg"``) when it
    differs from it only there; ``shape`` is left out when every z grid is the padded size over
    ``stride``; the checksums are one hex string.
    """
    items: dict[str, Any] = {c: [r[c] for r in flat] for c in _COLS}
    items["name"] = names
    src = []
    for r, n in zip(flat, names, strict=True):
        s = r["src"]
        tail = s[len(n) - 4 :] if s.startswith(n[:-4]) else None
        if s == n:
            src.append(None)
        elif tail is not None and "/" not in tail and (tail == "" or tail.startswith(".")):
            src.append(tail)
        else:
            src.append(s)
    items["src"] = src
    if any(r["shape"] != [-(-r["h"] // stride), -(-r["w"] // stride)] for r in flat):
        items["shape"] = [r["shape"] for r in flat]
    items["crc32"] = "".join(f"{r['crc32']:08x}" for r in flat)
    return items


def _unpack_items(it: dict[str, Any], stride: int) -> dict[str, Any]:
    """Inverse of :func:`_pack_items` (on a structurally checked table)."""
    n = len(it["name"])
    out = dict(it)
    out["src"] = [
        n_ if s is None else (n_[:-4] + s if (s == "" or (s.startswith(".") and "/" not in s)) else s)
        for s, n_ in zip(it["src"], it["name"], strict=True)
    ]
    if "shape" not in it:
        out["shape"] = [[-(-h // stride), -(-w // stride)] for w, h in zip(it["w"], it["h"], strict=True)]
    out["crc32"] = _unhex(it["crc32"], n, "item column 'crc32'")
    return out


def _unhex(hx: Any, n: int, what: str) -> list[int]:
    if not (isinstance(hx, str) and len(hx) == 8 * n):
        raise _malformed(what)
    try:
        return [int(hx[8 * i : 8 * i + 8], 16) for i in range(n)]
    except ValueError:
        raise _malformed(what) from None


def _totals(flat: list[dict[str, Any]]) -> dict[str, Any]:
    """Statistics for ``info``, kept as totals: per-image figures would cost bytes per image."""
    finite = [r["psnr"] for r in flat if math.isfinite(r["psnr"])]
    complete = all(r["base_bits_est"] is not None for r in flat)
    return {
        "bits_est": round(sum(r["bits_est"] for r in flat), 1),
        "base_bits_est": round(sum(r["base_bits_est"] for r in flat), 1) if complete else None,
        "base_bytes": sum(r["base_bytes"] for r in flat) if complete else None,
        "psnr_mean": round(sum(finite) / len(finite), 3) if finite else None,
    }


def _write_archive(
    out: Path,
    run: RunInfo,
    chains: list[list[int]],
    outs: list[str],
    recs: list[list[dict]],
    chain_files: list[str],
    embed: bool,
    how: str,
    note: str,
) -> None:
    flat = [r for chain in recs for r in chain]
    keys = flat[0]["keys"]
    if any(r["keys"] != keys for r in flat):
        raise ArchiveError("the codec returned different stream names for different images")
    names = [outs[i] for ch in chains for i in ch]
    items = _pack_items(flat, names, run.codecs[1].stride)
    embedded, off = {}, 0
    if embed:
        for mf in (run.first, run.conditional):
            embedded[mf.role] = (off, mf.size)
            off += mf.size
    streams = sum(sum(r["len"]) for r in flat)
    header = {
        "format": "acbench-archive",
        "version": FORMAT_VERSION,
        "coder": {"acbench": _acbench_version(), **_platform()},
        "model": {
            "run_id": run.run_id,
            "reference": run.config.get("reference", "latents"),
            "first": run.first.entry(embedded.get("first")),
            "conditional": run.conditional.entry(embedded.get("conditional")),
        },
        "ordering": {**run.ordering, "features": run.features, "embedded_at": how, "note": note},
        "chain_length": run.chain,
        "chains": [len(c) for c in chains],
        "chain_pix_crc32": "".join(f"{c[-1]['chain_pix_crc32']:08x}" for c in recs),
        "totals": _totals(flat),
        "keys": keys,
        "stride": run.codecs[1].stride,
        "items_offset": off,
        "payload_bytes": off + streams,
        "items": items,
    }
    blob = zlib.compress(
        json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(), 9
    )
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(blob))
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(prefix)
            f.write(blob)
            f.write(hashlib.sha256(prefix + blob).digest())
            if embed:
                for mf in (run.first, run.conditional):
                    data = mf.read()
                    if _sha256(data) != mf.sha256:
                        raise ArchiveError(f"{mf.path} changed during compression; run again")
                    f.write(data)
            for cf in chain_files:
                with open(cf, "rb") as g:
                    shutil.copyfileobj(g, f)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _acbench_version() -> str:
    try:
        from importlib.metadata import version

        return version("acbench")
    except Exception:
        return "unknown"


# --------------------------------------------------------------------------------------------
# Read


@dataclass
class _Archive:
    path: Path
    header: dict[str, Any]
    payload_start: int
    file_size: int

    @property
    def n(self) -> int:
        return len(self.header["items"]["name"])

    @property
    def end(self) -> int:
        """Where the archive ends (its header's sizes): bytes after it belong to no item."""
        return self.payload_start + self.header["payload_bytes"]

    @property
    def trailing(self) -> int:
        """Bytes after the archive's end (appended by a copy or another program); ignored."""
        return max(0, self.file_size - self.end)

    def item_offsets(self) -> list[int]:
        offs, o = [], self.payload_start + self.header["items_offset"]
        for ls in self.header["items"]["len"]:
            offs.append(o)
            o += sum(ls)
        return offs

    def chains(self) -> list[list[int]]:
        out, i = [], 0
        for n in self.header["chains"]:
            out.append(list(range(i, i + n)))
            i += n
        return out


def _malformed(why: str) -> ArchiveError:
    return ArchiveError(f"archive header is malformed ({why}); the file is damaged or not from acbench")


def _check_header(h: Any) -> None:
    """Types and ranges of every field the reader uses (the header is untrusted)."""
    if not isinstance(h, dict) or h.get("format") != "acbench-archive":
        raise _malformed("not an acbench archive header")
    it = h.get("items")
    if not isinstance(it, dict):
        raise _malformed("no item table")
    names = it.get("name")
    if not isinstance(names, list):
        raise _malformed("no item names")
    n = len(names)

    def ints(v: Any, lo: int, hi: int, what: str) -> None:
        if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
            raise _malformed(f"{what} = {v!r}")

    for col in (*_COLS, "src"):
        if not isinstance(it.get(col), list) or len(it[col]) != n:
            raise _malformed(f"item column {col!r}")
    if not all(isinstance(x, str) for x in names):
        raise _malformed("item names")
    if not all(s is None or isinstance(s, str) for s in it["src"]):
        raise _malformed("item column 'src'")
    if not all(isinstance(x, str) for x in it["mode"]):
        raise _malformed("item column 'mode'")
    tot = h.get("totals")
    if not (isinstance(tot, dict) and isinstance(tot.get("bits_est"), (int, float))):
        raise _malformed("totals")
    for k in ("base_bits_est", "base_bytes", "psnr_mean"):
        if not (tot.get(k) is None or isinstance(tot[k], (int, float))):
            raise _malformed(f"totals {k!r}")
    ints(h.get("stride"), 1, 4096, "stride")
    if "shape" in it and (not isinstance(it["shape"], list) or len(it["shape"]) != n):
        raise _malformed("item column 'shape'")
    h["items"] = it = _unpack_items(it, h["stride"])
    keys = h.get("keys")
    if not (isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys)):
        raise _malformed("stream names")
    for i in range(n):
        ints(it["w"][i], 1, MAX_SIDE, "width")
        ints(it["h"][i], 1, MAX_SIDE, "height")
        ls, sh = it["len"][i], it["shape"][i]
        if not (isinstance(ls, list) and len(ls) == len(keys)):
            raise _malformed("stream lengths")
        for v in ls:
            ints(v, 0, 2**40, "stream length")
        if not (isinstance(sh, list) and len(sh) == 2):
            raise _malformed("z shape")
        for v, side in zip(sh, (it["h"][i], it["w"][i])):
            ints(v, 1, side, "z shape")
    chains = h.get("chains")
    if not isinstance(chains, list):
        raise _malformed("chains")
    for c in chains:
        ints(c, 1, n, "chain length")
    if sum(chains) != n:
        raise _malformed(f"chains hold {sum(chains)} items, the table {n}")
    h["chain_pix_crc32"] = _unhex(h.get("chain_pix_crc32"), len(chains), "chain pixel checksums")
    ints(h.get("items_offset"), 0, 2**50, "items offset")
    ints(h.get("payload_bytes"), 0, 2**50, "payload size")
    if h["items_offset"] + sum(sum(ls) for ls in it["len"]) != h["payload_bytes"]:
        raise _malformed("payload size does not add up")
    m = h.get("model")
    if not isinstance(m, dict):
        raise _malformed("model")
    for role in ("first", "conditional"):
        e = m.get(role)
        if not (
            isinstance(e, dict)
            and isinstance(e.get("sha256"), str)
            and isinstance(e.get("run_id"), str)
            and isinstance(e.get("file"), str)
        ):
            raise _malformed(f"{role} model entry")
        ints(e.get("bytes"), 0, 2**40, "model size")
        if e.get("embedded") is not None:
            emb = e["embedded"]
            if not (isinstance(emb, list) and len(emb) == 2):
                raise _malformed("embedded model")
            ints(emb[0], 0, h["items_offset"], "embedded model offset")
            ints(emb[1], 0, h["items_offset"], "embedded model size")


def read_header(path: Path) -> _Archive:
    """Open an archive: magic, version, header checksum and structure checked."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ArchiveError(f"{path}: cannot open ({e.strerror})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(_PREFIX.size)
        if len(prefix) < len(MAGIC) or prefix[: len(MAGIC)] != MAGIC:
            raise ArchiveError(f"{path} is not an acbench archive (wrong magic bytes)")
        if len(prefix) < _PREFIX.size:
            raise ArchiveError(f"{path} is truncated (it ends inside the archive's prefix); re-copy it")
        _, version, _flags, hlen = _PREFIX.unpack(prefix)
        if version > FORMAT_VERSION:
            raise ArchiveError(
                f"{path} uses archive format version {version}, newer than this acbench reads "
                f"(up to {FORMAT_VERSION}); upgrade acbench (pip install -U acbench)"
            )
        if version < 1:
            raise ArchiveError(f"{path}: invalid format version {version}; the file is damaged")
        if hlen > MAX_HEADER:
            raise ArchiveError(f"{path}: header length {hlen} is implausible; the file is damaged")
        blob = f.read(hlen)
        digest = f.read(_DIGEST)
        if len(blob) < hlen or len(digest) < _DIGEST:
            raise ArchiveError(f"{path} is truncated inside its header ({size} bytes); re-copy it")
        if hashlib.sha256(prefix + blob).digest() != digest:
            raise ArchiveError(
                f"{path}: the archive header is corrupt (sha256 mismatch); nothing in it can be "
                "trusted, so nothing is restored — re-copy the file from its source"
            )
    try:
        d = zlib.decompressobj()
        raw = d.decompress(blob, MAX_HEADER)
        if d.unconsumed_tail:
            raise ValueError("header larger than the limit")
        header = json.loads(raw.decode())
    except (zlib.error, ValueError, UnicodeDecodeError) as e:
        raise _malformed(str(e)) from None
    _check_header(header)
    return _Archive(path, header, _PREFIX.size + hlen + _DIGEST, size)


# --------------------------------------------------------------------------------------------
# Decompress


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
    """The two checkpoints, matched by sha256: embedded, then ``model``, then ``runs_root``."""
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
            elif (got := _sha256(mf.read())) != e["sha256"]:
                damaged = f"its sha256 {got[:12]}… does not match the {e['sha256'][:12]}… recorded"
            else:
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
            if digest == e["sha256"]:
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
        skip_corrupt: restore what can be restored when items are corrupt or truncated (a lost
            item takes the later items of its chain with it); otherwise fail before writing.
        model: the conditional run's directory or a checkpoint file (needed unless the archive
            embeds its model); checkpoints are matched by sha256.
        runs_root: a runs folder holding the runs named in the archive.
        jobs: chains decoded in parallel processes.
        progress: ``progress(label, done, total, logs)``.

    Returns:
        summary: ``images``, ``restored``, ``lost`` (``[{name, reason}]``), ``mismatch`` (names
        of the images in chains whose pixels differ from the encoder's — another CPU type or
        torch version; they are written), ``warnings`` (lines to show), ``out_dir``, ``seconds``.
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
    offsets = arc.item_offsets()
    bad: dict[int, str] = {}
    with open(arc.path, "rb") as f:
        for i, off in enumerate(offsets):
            n = sum(it["len"][i])
            if off + n > arc.file_size:
                bad[i] = "truncated: the archive ends inside its bitstream"
                continue
            f.seek(off)
            if zlib.crc32(f.read(n)) != it["crc32"][i]:
                bad[i] = "bitstream checksum mismatch"
    chains = arc.chains()
    lost: list[dict[str, str]] = []
    for ch in chains:
        broken = None
        for i in ch:
            if broken is not None:
                lost.append(
                    {"name": it["name"][i], "reason": f"depends on {it['name'][broken]} (same chain)"}
                )
            elif i in bad:
                broken = i
                lost.append({"name": it["name"][i], "reason": bad[i]})
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
    for ch in chains:
        recs = [
            {
                "name": it["name"][i],
                "offset": offsets[i],
                "len": it["len"][i],
                "keys": h["keys"],
                "crc32": it["crc32"][i],
                "w": it["w"][i],
                "h": it["h"][i],
                "shape": it["shape"][i],
                "target": str(targets[i]),
            }
            for i in ch
        ]
        tasks.append((str(arc.path), recs, h["chain_pix_crc32"][len(tasks)]))
        sizes.append(len(ch))
    results = _run_chains(decode_chain, tasks, sizes, jobs, coder, (first, cond), progress, "decompress")
    lost, mismatch, restored = [], [], 0
    for (_, recs, _), res in zip(tasks, results, strict=True):
        for r, (status, detail) in zip(recs, res):
            if status in ("ok", "mismatch"):
                restored += 1
            if status == "mismatch":
                mismatch.append(r["name"])
            elif status != "ok":
                lost.append({"name": r["name"], "reason": detail})
    warnings = list(notes)
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
            f"{len(mismatch)} image(s) decoded to pixels that differ from the encoder's (e.g. "
            f"{mismatch[0]}); decode on the kind of machine that encoded (archive vs here: {diff or 'same'})"
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


# --------------------------------------------------------------------------------------------
# Info


def archive_info(path: Path) -> dict[str, Any]:
    """What an archive holds, without decoding: model identity, chains, per-image rates.

    Returns:
        ``path``, ``version``, ``bytes``, ``complete`` (file as long as its header says),
        ``trailing_bytes`` (bytes after the archive's end, ignored; not counted in bpp),
        ``images``, ``pixels``, ``chains``, ``chain_length``, ``model`` (run id, checkpoints and
        whether embedded), ``ordering``, ``coder`` (platform that encoded), the file's
        ``bpp_file``, ``bpp_streams``, ``bpp_est``, ``bpp_baseline_est``/``bpp_baseline_real``
        (each image alone with the baseline; ``None`` if not recorded), ``overhead_bytes``,
        ``model_bytes``, ``psnr_mean``, and ``items``: one dict per image (name, source, mode,
        width, height, chain, position, bytes, bpp).
    """
    arc = read_header(Path(path))
    h, it = arc.header, arc.header["items"]
    items = []
    for cid, ch in enumerate(arc.chains()):
        for pos, i in enumerate(ch):
            px = it["w"][i] * it["h"][i]
            items.append(
                {
                    "name": it["name"][i],
                    "source": it["src"][i],
                    "mode": it["mode"][i],
                    "width": it["w"][i],
                    "height": it["h"][i],
                    "chain": cid,
                    "position": pos + 1,
                    "bytes": sum(it["len"][i]),
                    "bpp": 8 * sum(it["len"][i]) / px,
                }
            )
    px = sum(w * hh for w, hh in zip(it["w"], it["h"]))
    streams = sum(sum(ls) for ls in it["len"])
    size = min(arc.file_size, arc.end)  # bytes appended after the end are not the archive's
    model_bytes = sum(h["model"][r]["bytes"] for r in ("first", "conditional") if h["model"][r]["embedded"])
    tot = h["totals"]
    return {
        "path": str(arc.path),
        "version": h["version"],
        "bytes": arc.file_size,
        "complete": arc.file_size >= arc.end,
        "trailing_bytes": arc.trailing,
        "images": arc.n,
        "pixels": px,
        "chains": len(h["chains"]),
        "chain_length": h.get("chain_length"),
        "model": {
            "run_id": h["model"].get("run_id"),
            "embedded": bool(h["model"]["first"]["embedded"] and h["model"]["conditional"]["embedded"]),
            **{
                r: {k: h["model"][r][k] for k in ("run_id", "file", "sha256", "bytes")}
                for r in ("first", "conditional")
            },
        },
        "ordering": h.get("ordering", {}),
        "coder": h.get("coder", {}),
        "bpp_file": 8 * size / px,
        "bpp_streams": 8 * streams / px,
        "bpp_est": tot["bits_est"] / px,
        "bpp_baseline_est": None if tot["base_bits_est"] is None else tot["base_bits_est"] / px,
        "bpp_baseline_real": None if tot["base_bytes"] is None else 8 * tot["base_bytes"] / px,
        "psnr_mean": tot["psnr_mean"],
        "stream_bytes": streams,
        "model_bytes": model_bytes,
        "overhead_bytes": size - streams - model_bytes,
        "items": items,
    }


def format_info(info: dict[str, Any], max_items: int = 30) -> str:
    """Human-readable :func:`archive_info` (the first ``max_items`` images listed; 0 = all) or
    :func:`compress_folder` summary (no image list)."""

    def f(v: float | None, fmt: str = ".4f") -> str:
        return "n/a" if v is None else format(v, fmt)

    m = info["model"]
    o = info["ordering"]
    lines = [
        f"{info['path']}: acbench archive v{info['version']}, {info['bytes']:,} bytes"
        + ("" if info["complete"] else "  (TRUNCATED: shorter than its header says)")
        + (
            f"  ({info['trailing_bytes']:,} bytes after the archive's end: ignored)"
            if info.get("trailing_bytes")
            else ""
        ),
        f"  model     run {m['run_id']}  ({'embedded' if m['embedded'] else 'not embedded'}); "
        f"first image: run {m['first']['run_id']}/{m['first']['file']} sha256 {m['first']['sha256'][:12]}…, "
        f"others: {m['conditional']['file']} sha256 {m['conditional']['sha256'][:12]}…",
        f"  ordering  {o.get('name')} on {o.get('features')} features ({o.get('embedded_at')})"
        + (f"; {o['note']}" if o.get("note") else ""),
        f"  images    {info['images']} in {info['chains']} chain(s) of ≤ {info['chain_length']}, "
        f"{info['pixels']:,} px",
        _lossy_line(info),
        f"  bpp       file {info['bpp_file']:.4f}  (bitstreams {info['bpp_streams']:.4f}, "
        f"model estimate {info['bpp_est']:.4f})",
        f"  baseline  each image alone: {f(info['bpp_baseline_real'])} real, "
        f"{f(info['bpp_baseline_est'])} estimated"
        + (
            f"  → file vs baseline {100 * (info['bpp_file'] / info['bpp_baseline_real'] - 1):+.1f} %"
            if info["bpp_baseline_real"]
            else ""
        ),
        f"  overhead  {info['overhead_bytes']:,} bytes "
        f"({info['overhead_bytes'] / info['images']:.1f} per image)"
        + (f" + {info['model_bytes']:,} bytes of embedded model" if info["model_bytes"] else ""),
        "",
        f"  {'chain':>5} {'pos':>3} {'size':>11} {'bytes':>8} {'bpp':>7}  name",
    ]
    if "items" not in info:  # a compress summary
        return "\n".join(lines[:-2])
    items = info["items"] if not max_items else info["items"][:max_items]
    for x in items:
        lines.append(
            f"  {x['chain']:>5} {x['position']:>3} {str(x['width']) + 'x' + str(x['height']):>11} "
            f"{x['bytes']:>8} {x['bpp']:>7.4f}  {x['name']}"
        )
    if len(items) < len(info["items"]):
        lines.append(f"  … {len(info['items']) - len(items)} more")
    return "\n".join(lines)


def _lossy_line(info: dict[str, Any]) -> str:
    """What decompressing restores, and how far it is from the originals (PSNR, 8-bit RGB)."""
    what = (
        "  lossy     decompress restores the codec's reconstruction (checked against the encoder's "
        "by checksum), not the original pixels; "
    )
    if info.get("psnr_mean") is None:
        return what + "PSNR against the originals was not recorded"
    if "psnr_min" in info:  # a compress summary: the originals were at hand
        return (
            what + f"PSNR against the originals: mean {info['psnr_mean']:.2f} dB, "
            f"lowest {info['psnr_min']:.2f} dB"
        )
    return (
        what + f"mean PSNR against the originals {info['psnr_mean']:.2f} dB, as measured when "
        "compressing (info does not read the originals)"
    )


def format_restored(summary: dict[str, Any]) -> str:
    """Human-readable :func:`decompress_archive` summary (warnings last, one per line)."""
    head = (
        f"restored {summary['restored']} of {summary['images']} images into {summary['out_dir']} "
        f"in {summary['seconds']:.1f} s"
    )
    return "\n".join([head, *(f"warning: {w}" for w in summary["warnings"])])


__all__ = [
    "ArchiveError",
    "FORMAT_VERSION",
    "MAGIC",
    "archive_info",
    "check_name",
    "compress_folder",
    "decompress_archive",
    "format_info",
    "format_restored",
    "open_run",
    "output_names",
    "read_header",
    "scan",
]
