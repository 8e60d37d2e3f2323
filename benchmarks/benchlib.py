"""Side-by-side measurements behind ``make bench``, the pytest-benchmark suites and the smoke test.

Every claim of speed is a ratio of two arms run in the same process, interleaved round by round
(ABBA order, so a load spike or a slow drift hits both arms alike), and summarised by the median
of the per-round ratios with their min–max. Absolute figures are medians too and only describe
the machine at that moment: it is shared and noisy.

Each measurement is a function ``(Profile) -> list[Row]``; :data:`MEASUREMENTS` names them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LAMBDA = 0.0067


# --------------------------------------------------------------------------------------------
# Profiles and rows


@dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark run (``full`` for the table, ``quick``/``smoke`` to keep it alive)."""

    name: str
    rounds: int = 7  # interleaved rounds per comparison
    tile: int = 64  # crop side (px)
    batch: int = 16
    N: int = 32
    M: int = 48
    train_steps: int = 40  # acbench steps per round
    ref_steps: int = 12  # reference steps per round, timed after ref_warmup untimed ones
    ref_warmup: int = 2
    png: int = 500  # side of the reference's PNG files
    workers: int = 2
    other_settings: tuple[tuple[int, int], ...] = ((128, 8),)  # more (crop, batch) settings
    code_images: int = 0  # eval images to code (0 = the whole eval split)
    code_batch: int = 64
    code_train_steps: int = 30  # train the baseline a little so rates look like a codec's
    grid: tuple[int, int, int, int, int] = (5, 4, 2, 3, 8)  # orderings, mixers, codecs, chains, λ
    plan_rounds: int = 5
    cli_repeats: int = 5
    ordering_timeout: float = 600.0  # seconds per (ordering, N) fit
    experiments: bool = False  # measure candidate fixes (channels_last, fused Adam, ...)


PROFILES = {
    "full": Profile("full"),
    "quick": Profile(
        "quick",
        rounds=1,
        train_steps=10,
        ref_steps=4,
        ref_warmup=1,
        other_settings=(),
        code_images=64,
        code_train_steps=0,
        plan_rounds=1,
        cli_repeats=1,
    ),
    "smoke": Profile(
        "smoke",
        rounds=1,
        batch=4,
        N=8,
        M=12,
        train_steps=2,
        ref_steps=2,
        ref_warmup=1,
        png=96,
        other_settings=(),
        code_images=6,
        code_batch=4,
        code_train_steps=0,
        grid=(2, 2, 2, 2, 2),
        plan_rounds=1,
        cli_repeats=1,
    ),
}


@dataclass
class Row:
    """One line of the table. ``ratio`` is always "acbench's advantage": > 1 is better."""

    name: str
    acbench: float
    reference: float = math.nan
    unit: str = ""
    ratio: float = math.nan
    ratio_lo: float = math.nan
    ratio_hi: float = math.nan
    target: str = ""
    met: bool | None = None
    note: str = ""
    group: str = ""

    def numbers(self) -> list[float]:
        return [self.acbench, self.reference, self.ratio, self.ratio_lo, self.ratio_hi]


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median, min and max of the per-round ratios a[r] / b[r]."""
    r = [x / y for x, y in zip(a, b) if y > 0]
    if not r:
        return math.nan, math.nan, math.nan
    return statistics.median(r), min(r), max(r)


QUIET_CORES = 0.25  # a round is "quiet" when other processes used less CPU than this meanwhile


def _cpu_seconds() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process and its reaped children)."""
    import resource

    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        u = resource.getrusage(who)
        own += u.ru_utime + u.ru_stime
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return math.nan, own
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), own


class Rounds(dict):
    """Each arm's results by round, and the cores other processes kept busy meanwhile."""

    def __init__(self, names: list[str]) -> None:
        super().__init__({k: [] for k in names})
        self.foreign: dict[str, list[float]] = {k: [] for k in names}

    def quiet(self, *arms: str) -> list[int]:
        n = len(self[arms[0]])
        return [r for r in range(n) if all(not self.foreign[a][r] >= QUIET_CORES for a in arms)]

    def compare(self, a: str, b: str, key: str | None = None) -> dict[str, Any]:
        """Medians of both arms and of their per-round ratio a/b, on the quiet rounds if there
        are at least two (or the only round), else on all rounds; a note says which."""
        n = len(self[a])
        quiet = self.quiet(a, b)
        use = quiet if len(quiet) >= min(2, n) else list(range(n))

        def get(arm: str) -> list[float]:
            return [self[arm][r] if key is None else self[arm][r][key] for r in use]

        xa, xb = get(a), get(b)
        others = [f for arm in (a, b) for f in self.foreign[arm] if not math.isnan(f)]
        note = f"{len(quiet)}/{n} rounds quiet"
        if others:
            note += f" (others' CPU median {med(others):.2f} cores, max {max(others):.2f})"
        if use is not quiet:
            note += "; **contended**: all rounds used"
        return {
            "acbench": med(xa),
            "reference": med(xb),
            **dict(zip(("ratio", "ratio_lo", "ratio_hi"), paired(xa, xb))),
            "note": note,
        }


def interleave(arms: dict[str, Callable[[int], Any]], rounds: int) -> Rounds:
    """Run each arm once per round, in ABBA order; returns each arm's results by round.

    Around every call, the CPU time of the whole machine minus this process's (and its
    children's) gives the cores other processes used meanwhile (``Rounds.foreign``): on a small
    shared machine a busy neighbour slows 2-thread OpenMP code far more than single-threaded
    code, so such rounds are flagged rather than averaged in.
    """
    names = list(arms)
    out = Rounds(names)
    for r in range(rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            busy0, own0 = _cpu_seconds()
            t0 = time.perf_counter()
            out[k].append(arms[k](r))
            wall = time.perf_counter() - t0
            busy1, own1 = _cpu_seconds()
            out.foreign[k].append(max(0.0, (busy1 - busy0) - (own1 - own0)) / wall if wall > 0 else math.nan)
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "python": sys.version.split()[0],
        "loadavg": os.getloadavg(),
    }


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------------------------
# (a) training throughput: acbench's loop vs a CompressAI examples/train.py-style loop


def write_photo_pngs(folder: Path, count: int, size: int) -> int:
    """``count`` size×size PNG crops of the packaged photos (acbench's own source images).

    Photos whose short side is below ``size`` are upscaled first; crops are taken on a grid
    (stride size/4) and cycled over the photos. Written under ``folder/photos/`` so that
    torchvision's ``ImageFolder`` sees one class.
    """
    import numpy as np
    from PIL import Image

    from acbench.data.base import to_rgb_uint8
    from acbench.data.photos import _packaged_photos

    crops: list[list[tuple[np.ndarray, int, int]]] = []
    for _, img in _packaged_photos(False):
        a = to_rgb_uint8(img)
        h, w = a.shape[:2]
        if min(h, w) < size:
            s = size / min(h, w)
            a = np.asarray(
                Image.fromarray(a).resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
            )
            h, w = a.shape[:2]
        step = max(1, size // 4)
        crops.append([(a, i, j) for i in range(0, h - size + 1, step) for j in range(0, w - size + 1, step)])
    out = folder / "photos"
    out.mkdir(parents=True, exist_ok=True)
    k = 0
    while k < count:
        for pos in crops:
            if k >= count:
                break
            a, i, j = pos[(k // len(crops)) % len(pos)]
            Image.fromarray(np.ascontiguousarray(a[i : i + size, j : j + size])).save(out / f"{k:05d}.png")
            k += 1
    return k


def null_codec() -> Any:
    """Stands in for the codec to time everything in acbench's loop except the codec itself.

    ``train(BaselineTask(null_codec(), ...))`` still reseeds, samples, converts uint8 → float,
    computes the RD terms of a trivial output, steps Adam on one parameter and does the loop's
    bookkeeping: an upper bound on the data pipeline's cost per step.
    """
    import torch
    from torch import nn

    class NullCodec(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))

        def forward(self, x: torch.Tensor, ref: Any = None) -> dict[str, Any]:
            return {"x_hat": x * self.w, "likelihoods": {"y": torch.ones_like(x[:, :1]) * self.w}}

    return NullCodec()


def _reference_loader(folder: Path, crop: int, batch: int, workers: int):
    """CompressAI ``examples/train.py``'s data path with torchvision's ImageFolder."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.RandomCrop(crop), transforms.ToTensor()])
    ds = datasets.ImageFolder(str(folder), transform=tf)
    return DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, pin_memory=False)


class ReferenceLoop:
    """CompressAI ``examples/train.py::train_one_epoch`` on ``model``: its loss, optimisers, clip.

    Each call starts a fresh DataLoader iterator (as a new epoch does), runs ``warmup`` untimed
    steps, times ``steps`` steps, then shuts the workers down so nothing runs in the background
    while the other arm is timed. The folder holds enough PNGs that one call is one epoch.
    """

    def __init__(self, model, folder: Path, crop: int, batch: int, workers: int, clip: float = 1.0):
        import torch
        from compressai.losses import RateDistortionLoss

        self.model = model
        self.loader = _reference_loader(folder, crop, batch, workers)
        self.crit = RateDistortionLoss(lmbda=LAMBDA)
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.opt = torch.optim.Adam([p for n, p in params.items() if not n.endswith(".quantiles")], lr=1e-4)
        self.aux_opt = torch.optim.Adam([p for n, p in params.items() if n.endswith(".quantiles")], lr=1e-3)
        self.clip = clip
        self.batch = batch

    def __call__(self, steps: int, warmup: int) -> dict[str, float]:
        import torch

        self.model.train()
        it = iter(self.loader)
        wait = 0.0
        t0 = time.perf_counter()
        for i in range(warmup + steps):
            if i == warmup:
                wait, t0 = 0.0, time.perf_counter()
            tw = time.perf_counter()
            x, _ = next(it)
            wait += time.perf_counter() - tw
            self.opt.zero_grad()
            self.aux_opt.zero_grad()
            out = self.model(x)
            loss = self.crit(out, x)
            loss["loss"].backward()
            if self.clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
            self.opt.step()
            aux = self.model.aux_loss()
            aux.backward()
            self.aux_opt.step()
        dt = time.perf_counter() - t0
        del it  # shuts the workers down
        return {"ips": steps * self.batch / dt, "wait": wait / dt}


def data_pipeline_block(pixels: Any, steps: int, batch: int, seed: int = 0) -> float:
    """Seconds per step of what ``train`` + ``BaselineTask.loss`` do before the codec runs.

    A replica of those lines (reseed, draw indices, gather uint8 tiles, ``to_float``); keep it
    in step with ``acbench/train.py``.
    """
    import torch

    from acbench.train import to_float

    t0 = time.perf_counter()
    for step in range(steps):
        s = (seed * 1_000_003 + step) % 2**63
        torch.manual_seed(s)
        gen = torch.Generator().manual_seed(s)
        idx = torch.randint(len(pixels), (batch,), generator=gen)
        to_float(pixels[idx])
    return (time.perf_counter() - t0) / steps


def acbench_train_block(model, pixels, steps: int, batch: int, seed: int = 0) -> float:
    """Images/s of ``acbench.train.train(BaselineTask(...))`` over ``steps`` steps."""
    from acbench.config import TrainConfig
    from acbench.train import BaselineTask, train

    cfg = TrainConfig(steps=steps, batch=batch, lr=1e-4, checkpoint_every=10**9, seed=seed)
    t0 = time.perf_counter()
    train(BaselineTask(model, pixels, LAMBDA), cfg)
    return steps * batch / (time.perf_counter() - t0)


@contextlib.contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _fused_optimizers(module, cfg):
    """``acbench.train._optimizers`` with ``fused=True`` Adam (the candidate fix measured)."""
    import torch

    main = [p for n, p in module.named_parameters() if p.requires_grad and not n.endswith(".quantiles")]
    aux = [p for n, p in module.named_parameters() if p.requires_grad and n.endswith(".quantiles")]
    opt = torch.optim.Adam(main, lr=cfg.lr, fused=True)
    aux_opt = torch.optim.Adam(aux, lr=cfg.aux_lr, fused=True) if aux else None
    return opt, aux_opt


def train_throughput(p: Profile, crop: int | None = None, batch: int | None = None) -> list[Row]:
    """(a) acbench's loop vs the CompressAI-style loop on the same model, crop, batch, photos."""
    import copy

    import torch

    from acbench.codecs.base import build_codec
    from acbench.config import DataConfig
    from acbench.data.cache import load_split

    crop = crop or p.tile
    batch = batch or p.batch
    setting = f"MSHP N={p.N}/M={p.M}, {crop}-px crops, batch {batch}"
    pixels = torch.from_numpy(load_split(DataConfig(tile=crop))[0].pixels)
    torch.manual_seed(0)
    model = build_codec("mshp", {"N": p.N, "M": p.M})
    ref_model = copy.deepcopy(model)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="acbench-bench-") as tmp:
        write_photo_pngs(Path(tmp), (p.ref_warmup + p.ref_steps) * batch, p.png)
        ref = ReferenceLoop(ref_model, Path(tmp), crop, batch, p.workers)
        # warm both (oneDNN primitives, allocator, first worker fork)
        acbench_train_block(model, pixels, 2, batch)
        ref(1, 1)

        def ours(r: int) -> dict[str, float]:
            ips = acbench_train_block(model, pixels, p.train_steps, batch, seed=r)
            data = data_pipeline_block(pixels, p.train_steps, batch, seed=r)
            null = acbench_train_block(null_codec(), pixels, p.train_steps, batch, seed=r)
            return {"ips": ips, "data": data * ips / batch, "harness": ips / null}

        arms: dict[str, Callable[[int], Any]] = {
            "acbench": ours,
            "reference": lambda r: ref(p.ref_steps, p.ref_warmup),
        }
        if p.experiments and crop == p.tile:
            cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
            fused_model = copy.deepcopy(model)
            import acbench.train as tr

            def channels_last(r: int) -> dict[str, float]:
                return {"ips": acbench_train_block(cl_model, pixels, p.train_steps, batch, seed=r)}

            def fused(r: int) -> dict[str, float]:
                with patched(tr, "_optimizers", _fused_optimizers):
                    return {"ips": acbench_train_block(fused_model, pixels, p.train_steps, batch, seed=r)}

            def ours_1thread(r: int) -> dict[str, float]:
                with num_threads(1):
                    return {"ips": acbench_train_block(model, pixels, p.train_steps, batch, seed=r)}

            def ref_1thread(r: int) -> dict[str, float]:
                with num_threads(1):
                    return ref(p.ref_steps, p.ref_warmup)

            arms.update(
                {
                    "channels_last": channels_last,
                    "fused_adam": fused,
                    "reference_1thread": ref_1thread,
                    "acbench_1thread": ours_1thread,
                }
            )
        res = interleave(arms, p.rounds)
    main = res.compare("acbench", "reference", "ips")
    wait = 100 * med([x["wait"] for x in res["reference"]])
    main["note"] = f"reference waits on its DataLoader {wait:.0f} % of its step time; " + main["note"]
    target = 3.0 if (crop, batch) == (64, 16) else 1.0
    rows.append(
        Row(
            f"train: images/s ({setting})",
            unit="img/s",
            target=f">= {target:g}x",
            met=main["ratio"] >= target,
            group="train",
            **main,
        )
    )
    share = med([x["data"] for x in res["acbench"]])
    rows.append(
        Row(
            f"train: data pipeline share of acbench's step ({crop} px, batch {batch})",
            100 * share,
            unit="%",
            target="< 5 %",
            met=share < 0.05,
            group="train",
            note="reseed + sample indices + gather uint8 tiles + to_float, timed alone / one full step",
        )
    )
    rows.append(
        Row(
            f"train: harness share of acbench's step ({crop} px, batch {batch})",
            100 * med([x["harness"] for x in res["acbench"]]),
            unit="%",
            group="train",
            note="train() with a null codec / with MSHP: all but the codec (data, RD terms, Adam on 1 "
            "parameter, bookkeeping)",
        )
    )
    for k, label in (
        ("channels_last", "candidate: model.to(channels_last), vs acbench as is"),
        ("fused_adam", "candidate: Adam(fused=True), vs acbench as is"),
        ("acbench_1thread", "candidate: torch.set_num_threads(1), vs acbench as is"),
    ):
        if k in res:
            rows.append(
                Row(f"train: {label}", unit="img/s", group="experiment", **res.compare(k, "acbench", "ips"))
            )
    if "reference_1thread" in res:
        c = res.compare("acbench", "reference_1thread", "ips")
        c["note"] = (
            "a tuned reference: its workers no longer fight 2 OpenMP threads for 2 cores; " + c["note"]
        )
        rows.append(
            Row(
                "train: vs reference with torch.set_num_threads(1) in its main process",
                unit="img/s",
                group="experiment",
                **c,
            )
        )
    gc.collect()
    return rows


def train_all(p: Profile) -> list[Row]:
    rows = train_throughput(p)
    for crop, batch in p.other_settings:
        rows += [r for r in train_throughput(dataclasses.replace(p, experiments=False), crop, batch)]
    return rows


# --------------------------------------------------------------------------------------------
# (b) chain coding: code_chains (batched) vs compressai's per-image compress / decompress loop


class _Timed:
    """Wraps a bound method and accumulates its wall time."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*a, **kw)
        finally:
            self.seconds += time.perf_counter() - t0


def coding_throughput(p: Profile) -> list[Row]:
    """(b) ``evaluate.code_chains`` (each image alone, batched) vs compressai's per-image loop."""
    import numpy as np
    import torch

    from acbench.codecs.base import build_codec
    from acbench.config import DataConfig, TrainConfig
    from acbench.data.cache import load_split
    from acbench.evaluate import code_chains
    from acbench.train import BaselineTask, train

    train_set, eval_set = load_split(DataConfig(tile=p.tile))
    pixels = eval_set.pixels[: p.code_images or None]
    n = len(pixels)
    torch.manual_seed(0)
    model = build_codec("mshp", {"N": p.N, "M": p.M})
    if p.code_train_steps:
        train(
            BaselineTask(model, torch.from_numpy(train_set.pixels), LAMBDA),
            TrainConfig(steps=p.code_train_steps, batch=p.batch, lr=1e-3, checkpoint_every=10**9),
        )
    model.update(force=True)
    model.eval()
    base = model.base  # compressai's own MeanScaleHyperprior, same weights and CDF tables
    order = np.arange(n)

    def ours(r: int) -> dict[str, float]:
        enc, dec = _Timed(model.compress), _Timed(model.decompress)
        model.compress, model.decompress = enc, dec  # instance attributes shadow the methods
        try:
            t0 = time.perf_counter()
            res = code_chains(model, None, pixels, order, 1, batch=p.code_batch)
            total = time.perf_counter() - t0
        finally:
            del model.compress, model.decompress
        nbytes = sum(c.bits_real["y"] + c.bits_real["z"] for *_, c in res) / 8
        return {"enc": n / enc.seconds, "dec": n / dec.seconds, "total": n / total, "bytes": nbytes}

    def reference(r: int) -> dict[str, float]:
        te = td = 0.0
        nbytes = 0
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(n):
                x = torch.from_numpy(pixels[i : i + 1]).float().div(255)
                t1 = time.perf_counter()
                out = base.compress(x)
                t2 = time.perf_counter()
                base.decompress(out["strings"], out["shape"])
                td += time.perf_counter() - t2
                te += t2 - t1
                nbytes += sum(len(s[0]) for s in out["strings"])
        return {"enc": n / te, "dec": n / td, "total": n / (time.perf_counter() - t0), "bytes": nbytes}

    ours(0), reference(0)  # warm
    arms = {"acbench": ours, "reference": reference}
    res = interleave(arms, p.rounds)
    rows = []
    size_ratio = res["acbench"][0]["bytes"] / res["reference"][0]["bytes"]
    for k, label in (("enc", "encode"), ("dec", "decode"), ("total", "encode+decode end to end")):
        c = res.compare("acbench", "reference", k)
        if k == "total":
            c["note"] = f"bitstream bytes acbench / compressai = {size_ratio:.4f}; " + c["note"]
        rows.append(
            Row(
                f"coding: {label}, images/s ({n} x {p.tile} px, batch {p.code_batch})",
                unit="img/s",
                target=">= 2x",
                met=c["ratio"] >= 2.0,
                group="coding",
                **c,
            )
        )
    return rows


# --------------------------------------------------------------------------------------------
# (c) sweep planning


def _private_registries(grid: tuple[int, ...]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Fresh registries for ``runner`` (the global ones stay untouched) and the names to use.

    A registered plugin whose module does not import yet is replaced by a stand-in that carries
    only a ``version``: planning reads nothing else. Probing happens on the private copies
    because ``Registry.get`` drops a lazy name whose import fails.
    """
    from acbench.registry import REGISTRIES

    regs: dict[str, Any] = {}
    names: dict[str, list[str]] = {}
    want = {"orderings": grid[0], "mixers": grid[1]}  # a missing codec: MSHP at another width
    for kind, base in REGISTRIES.items():
        reg = base.copy()  # discovers built-ins and entry points
        usable = []
        for name in reg.names():
            try:
                reg.get(name)
                usable.append(name)
            except Exception:  # an unwritten plugin module: planning only needs its version
                pass
        k = want.get(kind, 0)
        for i in range(len(usable), k):
            stand_in = type(f"StandIn{i}", (), {"version": "1"})
            reg.register(f"stand-in-{kind[:-1]}-{i}")(stand_in)
            usable.append(f"stand-in-{kind[:-1]}-{i}")
        regs[kind] = reg
        names[kind] = usable
    return regs, names


def sweep_configs(grid: tuple[int, int, int, int, int], names: dict[str, list[str]]) -> list[Any]:
    """The grid orderings × mixers × codecs × chains × λ on the ``paper`` preset."""
    from dataclasses import replace

    from acbench.config import Component, preset

    n_ord, n_mix, n_codec, n_chain, n_lam = grid
    paper = preset("paper")
    codecs = [Component(c) for c in names["codecs"] if c != "mshp"][: n_codec - 1]
    codecs.insert(0, paper.codec)
    n = paper.codec.params["N"]
    while len(codecs) < n_codec:  # no second codec yet: MSHP again at another width
        n += 64
        codecs.append(Component("mshp", {"N": n, "M": paper.codec.params["M"]}))
    lams = tuple(paper.lmbdas[:n_lam]) + tuple(0.05 + 0.01 * i for i in range(n_lam - len(paper.lmbdas)))
    return [
        replace(paper, ordering=Component(o), mixer=Component(m), codec=c, chain=L, lmbdas=lams)
        for o in names["orderings"][:n_ord]
        for m in names["mixers"][:n_mix]
        for c in codecs
        for L in (2, 4, 8, 16, 32)[:n_chain]
    ]


def _clear_caches(*modules: Any) -> None:
    """Empty the ``functools.cache`` tables of ``modules`` (a sweep plans once per process)."""
    for mod in modules:
        for v in list(vars(mod).values()):
            if callable(getattr(v, "cache_clear", None)):
                v.cache_clear()


def plan_sweep(p: Profile) -> list[Row]:
    """(c) ``runner.plan`` on a large grid: its time and trainings after sharing vs naive."""
    import inspect

    import acbench.config as config
    import acbench.runner as runner

    regs, names = _private_registries(p.grid)
    controls = "controls" in inspect.signature(runner.plan).parameters
    with contextlib.ExitStack() as stack:
        for attr, kind in (
            ("ORDERINGS", "orderings"),
            ("MIXERS", "mixers"),
            ("CODECS", "codecs"),
            ("DATASETS", "datasets"),
        ):
            stack.enter_context(patched(runner, attr, regs[kind]))
        configs = sweep_configs(p.grid, names)
        runner.plan(configs)  # warm: imports of the plugin modules
        cold, warm = [], []
        for _ in range(p.plan_rounds):
            _clear_caches(runner, config)
            t0 = time.perf_counter()
            jobs = runner.plan(configs)
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            runner.plan(configs)
            warm.append(time.perf_counter() - t0)
        bare = runner.plan(configs, controls=False) if controls else jobs
        _clear_caches(runner, config)

    def kinds(js: list[Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in js:
            out[j.kind] = out.get(j.kind, 0) + 1
        return out

    n_lam = p.grid[4]
    used = {c.ordering.name for c in configs} | {c.mixer.name for c in configs}
    stand_ins = sum(n.startswith("stand-in") for n in used)
    codecs = sorted({f"{c.codec.name}{dict(c.codec.params)}" for c in configs})
    grid = " x ".join(map(str, p.grid))
    rows = [
        Row(
            f"plan: runner.plan, {len(configs)} curves ({grid}), {len(jobs)} jobs, cold",
            1e3 * med(cold),
            unit="ms",
            group="plan",
            note=f"{1e6 * med(cold) / len(jobs):.0f} us per job cold (caches cleared), "
            f"{1e3 * med(warm):.0f} ms warm; codecs {', '.join(codecs)}"
            + (f"; {stand_ins} plugin(s) are version-only stand-ins" if stand_ins else ""),
        )
    ]
    # naive: every curve trains its own baseline and conditional per λ (with controls also its
    # step-matched anchor and, unless its mixer is already `zero`, its zero-mixer control)
    naive_bare = 2 * n_lam * len(configs)
    naive_ctl = sum(n_lam * (3 + (c.mixer.name != "zero")) for c in configs)
    for js, naive, label in (
        (bare, naive_bare, "baseline + conditional"),
        (jobs, naive_ctl, "with controls"),
    )[: 1 + controls]:
        k = kinds(js)
        planned = sum(v for kind, v in k.items() if kind != "ordering")
        rows.append(
            Row(
                f"plan: trainings, {label} (vs every curve training its own)",
                planned,
                naive,
                "runs",
                naive / planned,
                group="plan",
                note=", ".join(f"{v} {kind}" for kind, v in k.items()),
            )
        )
    k = kinds(bare)
    rows.append(
        Row(
            "plan: ordering fits (naive: 1 per curve)",
            k.get("ordering", 0),
            len(configs),
            "fits",
            len(configs) / max(1, k.get("ordering", 0)),
            group="plan",
        )
    )
    return rows


# --------------------------------------------------------------------------------------------
# (d) CLI start-up

_CHECK = """
import sys
from acbench.cli import app
try:
    app({argv!r}, standalone_mode=False)
except BaseException:
    pass
heavy = [m for m in ("torch", "compressai", "numpy", "pandas", "sklearn", "scipy") if m in sys.modules]
print("HEAVY=" + ",".join(heavy))
"""


def _acbench_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "acbench"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "acbench.cli"]


def _wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def cli_startup(p: Profile) -> list[Row]:
    """(d) wall time of ``acbench --help`` / ``acbench ls`` (subprocess) and heavy imports."""
    cmds = {
        "python": [sys.executable, "-c", "pass"],
        "torch": [sys.executable, "-c", "import torch"],
        "help": [*_acbench_cmd(), "--help"],
        "ls": [*_acbench_cmd(), "ls"],
    }
    res = interleave({k: (lambda r, c=c: _wall(c)) for k, c in cmds.items()}, p.cli_repeats)
    rows = []
    for k in ("help", "ls"):
        argv = ["--help"] if k == "help" else ["ls"]
        out = subprocess.run(
            [sys.executable, "-c", _CHECK.format(argv=argv)], capture_output=True, text=True, cwd=ROOT
        )
        heavy = next((line[6:] for line in out.stdout.splitlines() if line.startswith("HEAVY=")), "?")
        c = res.compare("torch", k)  # ratio = import torch / acbench: how much start-up it avoids
        t, c["acbench"], c["reference"] = c["reference"], c["reference"], c["acbench"]
        c["note"] = (
            f"reference = python -c 'import torch'; bare interpreter {med(res['python']):.2f} s; "
            f"heavy modules imported: {heavy or 'none'}; " + c["note"]
        )
        rows.append(
            Row(
                f"cli: acbench {' '.join(argv)} wall time (median of {p.cli_repeats})",
                unit="s",
                target="< 1 s",
                met=t < 1.0 and "torch" not in heavy.split(","),
                group="cli",
                **c,
            )
        )
    return rows


# --------------------------------------------------------------------------------------------
# (e) orderings and archives, through their own benchmark files


def orderings_fit(p: Profile) -> list[Row]:
    """(e) fit time and peak memory per ordering, through ``benchmarks/bench_orderings.py``.

    Its ``run(name, n, dim, repeats, timeout)`` fits in a fresh process (honest peak RSS).
    """
    import bench_orderings as mod  # benchmarks/ is on sys.path wherever benchlib is imported

    from acbench.registry import ORDERINGS

    names = ORDERINGS.names() if p.name != "smoke" else ["random"]
    sizes = {"full": (1000, 10000), "quick": (1000,), "smoke": (200,)}.get(p.name, (1000,))
    rows = []
    for n in sizes:
        for name in names:
            r = mod.run(
                name, n, 192 if p.name != "smoke" else 16, 3 if p.name == "full" else 1, p.ordering_timeout
            )
            if "error" in r:
                rows.append(
                    Row(
                        f"orderings: {name} fit, N={n}",
                        math.nan,
                        unit="s",
                        note=r["error"],
                        group="orderings",
                    )
                )
                continue
            rows.append(
                Row(
                    f"orderings: {name} fit, N={n:,}",
                    r["fit_s"],
                    unit="s",
                    group="orderings",
                    note=f"cold {r['cold_s']:.2f} s, place N/4 {r['place_s']:.2f} s, peak RSS "
                    f"{r['peak_rss_mb']:.0f} MB, neighbour/random distance {r['q_dist_ratio']:.3f}",
                )
            )
    return rows


def archive(p: Profile) -> list[Row]:
    """Archive throughput rows of ``benchmarks/bench_archive.py`` (run as a script)."""
    path = HERE / "bench_archive.py"
    args = {
        "full": ["--images", "32", "--size", "128", "--steps", "100", "--jobs", "2"],
        "quick": ["--images", "8", "--size", "64", "--steps", "10", "--jobs", "1"],
    }
    cmd = [
        sys.executable,
        str(path),
        *args.get(p.name, ["--images", "4", "--size", "64", "--steps", "2", "--jobs", "1"]),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return [
            Row(
                f"archive: bench_archive.py failed (exit {out.returncode}: {tail})"[:200],
                math.nan,
                group="archive",
            )
        ]
    rows, cols = [], None
    for line in out.stdout.splitlines():
        if not line.startswith("|"):
            if rows:  # the throughput table ended (the size table after it is not throughput)
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cols is None:
            if any(c.startswith("img/s") or c == "images/s" for c in cells):
                cols = cells
            continue
        ips = next(i for i, c in enumerate(cols) if c.startswith("img/s") or c == "images/s")
        try:
            value = float(cells[ips])
        except (ValueError, IndexError):
            continue  # the |---| line
        rest = [f"{c}: {v}" for c, v in zip(cols, cells) if v and c not in (cols[0], cols[ips])]
        rows.append(Row(f"archive: {cells[0]}", value, unit="img/s", group="archive", note="; ".join(rest)))
    return rows or [Row("archive: no table in bench_archive.py output", math.nan, group="archive")]


MEASUREMENTS: dict[str, Callable[[Profile], list[Row]]] = {
    "train": train_all,
    "coding": coding_throughput,
    "plan": plan_sweep,
    "cli": cli_startup,
    "orderings": orderings_fit,
    "archive": archive,
}


def finite(rows: list[Row]) -> bool:
    """Every number a row claims is finite (NaN marks a field that does not apply)."""
    return all(not math.isinf(x) for r in rows for x in r.numbers()) and all(
        math.isfinite(r.acbench) for r in rows if "skipped" not in r.name
    )


__all__ = ["MEASUREMENTS", "PROFILES", "Profile", "Row", "Rounds", "interleave", "paired", "machine"]
