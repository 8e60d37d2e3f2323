"""Decode a dataset once into a cached uint8 array file; deterministic train / eval split."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from acbench.config import DataConfig
from acbench.data.base import DataError, ImageSet, digest
from acbench.registry import DATASETS
from acbench.store import atomic_write

SHOWN_CLASSES = 12  # classes named in a data summary line (the rest counted)

_reporter: Callable[[str], None] | None = None
_reported: set[str] = set()


def report_to(fn: Callable[[str], None] | None) -> None:
    """Hand each dataset's summary (:func:`describe`) to ``fn`` the first time it is loaded from
    now on, from the cache too (the CLI prints it at the start of every command); ``None`` stops.
    """
    global _reporter
    _reporter = fn
    _reported.clear()


def describe(images: ImageSet, cfg: DataConfig) -> list[str]:
    """What a run should say about its data: the classes found with their image counts, and the
    files skipped (unreadable, smaller than the tile) or duplicated; warnings start ``warning:``.
    """
    info, where = images.info, cfg.root or cfg.name
    lines = []
    if "class_images" in info:
        counts = list(zip(images.classes, info["class_images"]))
        splits = info.get("split_folders") or []
        level = info.get("class_level", 1)
        if splits:
            source = (
                f"the folders inside the split folders {', '.join(s + '/' for s in splits)} "
                "(data.params.class_level=1 makes the splits the classes)"
            )
        elif level == 1:
            source = "the first-level folders"
        else:
            source = f"the level-{level} folders (data.params.class_level={level})"
        shown = ", ".join(f"{c} {n}" for c, n in counts[:SHOWN_CLASSES])
        more = f", and {len(counts) - SHOWN_CLASSES} more" if len(counts) > SHOWN_CLASSES else ""
        head = f"data {where}: {info['images']} images ({len(images)} tiles)"
        if [c for c, _ in counts] == ["."]:
            lines.append(f"{head}, one class (no class folders)")
        else:
            lines.append(f"{head} in {len(counts)} classes from {source}; images per class: {shown}{more}")
    bad, small = info.get("skipped_unreadable", 0), info.get("skipped_small", 0)
    dups = info.get("duplicates", 0)
    if bad or small or dups:
        ex = (list(info.get("unreadable_examples") or []) + list(info.get("small_examples") or []))[:3]
        lines.append(
            f"warning: data {where}: {bad} unreadable and {small} too-small file(s) skipped, "
            f"{dups} duplicate(s) {'skipped' if info.get('duplicates_skipped') else 'kept'}"
            + (f" (e.g. {'; '.join(ex)})" if ex else "")
        )
    return lines


def default_cache_dir() -> Path:
    return Path(os.environ.get("ACBENCH_CACHE", Path.home() / ".cache" / "acbench"))


def load_dataset(cfg: DataConfig, cache_dir: Path | None = None, **params) -> ImageSet:
    """All tiles of the dataset, decoded once and cached by a fingerprint of source + options."""
    try:
        ds = DATASETS.get(cfg.name)(**params)
    except TypeError as e:
        raise DataError(f"dataset {cfg.name!r}: bad option in data.params ({e})") from None
    key = digest([cfg.name, ds.version, params, cfg.tile, cfg.root, ds.fingerprint(cfg.tile, cfg.root)])
    cache = (cache_dir or default_cache_dir()) / f"{cfg.name}-{cfg.tile}-{key}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            info = {k[5:]: z[k].tolist() for k in z.files if k.startswith("info_")}
            images = ImageSet(z["pixels"], z["labels"], z["names"].tolist(), z["classes"].tolist(), info)
        _report(images, cfg, key)
        return images
    images = ds.build(cfg.tile, cfg.root)
    cache.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "pixels": images.pixels,
        "labels": images.labels,
        "names": np.asarray(images.names),
        "classes": np.asarray(images.classes),
        **{f"info_{k}": np.asarray(v) for k, v in images.info.items()},
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
            np.savez(f, **arrays)

    atomic_write(cache, write)
    _report(images, cfg, key)
    return images


def _report(images: ImageSet, cfg: DataConfig, key: str) -> None:
    if _reporter is not None and key not in _reported:
        _reported.add(key)
        for line in describe(images, cfg):
            _reporter(line)


def _stratified(
    labels: np.ndarray, idx: np.ndarray, fraction: float, rng, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``idx`` split per class into (rest, held out), ``fraction`` of each class held out.

    With ``groups`` (one id per item), whole groups are held out, so a group never straddles
    the split (overlapping tiles of one sequence stay on one side).
    """
    rest, held = [], []
    for c in np.unique(labels[idx]):
        members = idx[labels[idx] == c]
        if groups is None:
            sub = rng.permutation(members)
            k = int(round(len(sub) * fraction))
            held.extend(sub[:k])
            rest.extend(sub[k:])
            continue
        units = rng.permutation(np.unique(groups[members]))
        k = int(round(len(units) * fraction))
        out = np.isin(groups[members], units[:k])
        held.extend(members[out])
        rest.extend(members[~out])
    return np.sort(np.asarray(rest, dtype=int)), np.sort(np.asarray(held, dtype=int))


def split(images: ImageSet, cfg: DataConfig) -> tuple[ImageSet, ImageSet, ImageSet]:
    """Deterministic stratified split (by class) into train, validation and eval.

    ``max_items`` caps the total; the validation items (``val_fraction`` of the train split,
    possibly none) are never trained on and never evaluated: they give the convergence figure.
    """
    rng = np.random.default_rng(cfg.seed)
    n = len(images)
    keep = np.arange(n)
    if cfg.max_items and cfg.max_items < n:
        keep = np.sort(rng.choice(n, cfg.max_items, replace=False))
    groups = np.asarray(images.info["groups"]) if "groups" in images.info else None
    train, evl = _stratified(images.labels, keep, cfg.eval_fraction, rng, groups)
    val = np.zeros(0, dtype=int)
    if cfg.val_fraction > 0:
        vrng = np.random.default_rng([cfg.seed, 1])
        train, val = _stratified(images.labels, train, cfg.val_fraction, vrng, groups)
    if len(evl) < 2 or len(train) < 2:
        raise DataError(
            f"{cfg.name}: {n} tiles give {len(train)} train / {len(evl)} eval items; "
            "use more images, a smaller data.tile or another data.eval_fraction"
        )
    return images.subset(train), images.subset(val), images.subset(evl)


def load_split(cfg: DataConfig, cache_dir: Path | None = None) -> tuple[ImageSet, ImageSet]:
    """Train and eval tiles for a data config (the validation items are in neither)."""
    train, _, evl = load_splits(cfg, cache_dir)
    return train, evl


def load_splits(cfg: DataConfig, cache_dir: Path | None = None) -> tuple[ImageSet, ImageSet, ImageSet]:
    """Train, validation and eval tiles for a data config."""
    return split(load_dataset(cfg, cache_dir, **cfg.params), cfg)
