"""Decode a dataset once into a cached uint8 array file; deterministic train / eval split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from acbench.config import DataConfig
from acbench.data.base import DataError, ImageSet, digest
from acbench.registry import DATASETS


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
            return ImageSet(z["pixels"], z["labels"], z["names"].tolist(), z["classes"].tolist(), info)
    images = ds.build(cfg.tile, cfg.root)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(
        tmp,
        pixels=images.pixels,
        labels=images.labels,
        names=np.asarray(images.names),
        classes=np.asarray(images.classes),
        **{f"info_{k}": np.asarray(v) for k, v in images.info.items()},
    )
    os.replace(tmp, cache)
    return images


def split(images: ImageSet, cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """Deterministic stratified split (by class) into train and eval; ``max_items`` caps the total."""
    rng = np.random.default_rng(cfg.seed)
    n = len(images)
    keep = np.arange(n)
    if cfg.max_items and cfg.max_items < n:
        keep = np.sort(rng.choice(n, cfg.max_items, replace=False))
    train, evl = [], []
    for c in np.unique(images.labels[keep]):
        idx = keep[images.labels[keep] == c]
        idx = rng.permutation(idx)
        k = int(round(len(idx) * cfg.eval_fraction))
        evl.extend(idx[:k])
        train.extend(idx[k:])
    train, evl = np.sort(train), np.sort(evl)
    if len(evl) < 2 or len(train) < 2:
        raise DataError(
            f"{cfg.name}: {n} tiles give {len(train)} train / {len(evl)} eval items; "
            "use more images, a smaller data.tile or another data.eval_fraction"
        )
    return images.subset(train), images.subset(evl)


def load_split(cfg: DataConfig, cache_dir: Path | None = None) -> tuple[ImageSet, ImageSet]:
    """Train and eval tiles for a data config."""
    return split(load_dataset(cfg, cache_dir, **cfg.params), cfg)
