"""Datasets: image folders (layouts, bad files, conversions, fingerprints) and Fashion-MNIST."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acbench.data.base import DataError
from acbench.data.fashion_mnist import DEFAULT_ROOT, FashionMNIST
from acbench.data.folder import Folder, class_of
from acbench.registry import DATASETS


def save(path: Path, array: np.ndarray, mode: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array)
    (im.convert(mode) if mode else im).save(path, **kw)
    return path


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_registered():
    assert isinstance(DATASETS.get("folder")(), Folder)
    assert isinstance(DATASETS.get("fashion_mnist")(), FashionMNIST)


# -- folder: where the images are -------------------------------------------------------------------
def test_nonexistent_path(tmp_path):
    for call in (Folder().build, Folder().fingerprint):
        with pytest.raises(DataError, match="does not exist"):
            call(32, str(tmp_path / "nope"))


def test_empty_folder(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"x")  # hidden files do not count
    (tmp_path / "sub").mkdir()
    for call in (Folder().build, Folder().fingerprint):
        with pytest.raises(DataError, match="empty"):
            call(32, str(tmp_path))


def test_missing_root_and_file_root(tmp_path):
    with pytest.raises(DataError, match="--data"):
        Folder().build(32, None)
    f = save(tmp_path / "a.png", noise(64, 64))
    with pytest.raises(DataError, match="not a folder"):
        Folder().build(32, str(f))


def test_flat_folder_is_one_class(tmp_path):
    save(tmp_path / "b.png", noise(64, 96, 1))
    save(tmp_path / "a.jpg", noise(70, 64, 2))
    s = Folder().build(32, str(tmp_path))
    assert s.classes == ["."]
    assert s.pixels.shape == (4 + 6, 3, 32, 32) and s.pixels.dtype == np.uint8
    assert s.names[3:5] == ["a.jpg#3", "b.png#0"]  # sorted paths, tiles in order
    assert (s.labels == 0).all()


def test_nested_subfolders_are_classes(tmp_path):
    save(tmp_path / "dogs" / "x.png", noise(32, 32, 1))
    save(tmp_path / "cats" / "deep" / "er" / "y.png", noise(32, 64, 2))
    save(tmp_path / "root.png", noise(32, 32, 3))
    s = Folder().build(32, str(tmp_path))
    assert s.classes == [".", "cats", "dogs"]
    assert dict(zip(s.names, s.labels.tolist())) == {
        "cats/deep/er/y.png#0": 1,
        "cats/deep/er/y.png#1": 1,
        "dogs/x.png#0": 2,
        "root.png#0": 0,
    }


def split_layout(root: Path, splits=("train", "Val")) -> Path:
    """train/<class>/..., val/<class>/... with two classes (the ImageFolder tutorials' layout)."""
    for k, split in enumerate(splits):
        for c, cls in enumerate(("cats", "dogs")):
            for i in range(2 + k):
                save(root / split / cls / f"{i}.png", noise(64, 64, 100 * k + 10 * c + i))
    return root


def test_split_folders_take_the_class_from_the_level_below(tmp_path):
    split_layout(tmp_path, ("train", "Val"))  # any case
    s = Folder().build(32, str(tmp_path))
    assert s.classes == ["cats", "dogs"]
    labels = dict(zip(s.names, s.labels.tolist()))
    assert labels["train/cats/0.png#0"] == labels["Val/cats/2.png#3"] == 0
    assert labels["train/dogs/1.png#0"] == labels["Val/dogs/0.png#0"] == 1
    assert s.info["class_level"] == 2 and s.info["split_folders"] == ["Val", "train"]
    assert s.info["class_images"] == [5, 5]
    # the user names the level: 1 = the splits themselves are the classes
    assert Folder(class_level=1).build(32, str(tmp_path)).classes == ["Val", "train"]
    # the same rule labels the images of an archive (acbench compress)
    assert class_of(["train/cats/a.png", "val/dogs/b.png", "c.png"]) == ["cats", "dogs", "."]
    assert class_of(["cats/a.png", "val/dogs/b.png"]) == ["cats", "val"]
    with pytest.raises(DataError, match="class_level must be 0 .*data.params.class_level=2"):
        Folder(class_level=-1)


@pytest.mark.parametrize("splits", [("TRAIN", "valid", "test"), ("train", "validation"), ("test",)])
def test_every_split_name_is_recognised(tmp_path, splits):
    split_layout(tmp_path, splits)
    s = Folder().build(32, str(tmp_path))
    assert s.classes == ["cats", "dogs"] and sorted(s.info["split_folders"]) == sorted(splits)


def test_folders_that_are_not_all_splits_stay_classes(tmp_path):
    split_layout(tmp_path, ("train",))
    save(tmp_path / "birds" / "b.png", noise(32, 32, 9))  # a class next to a split: level 1
    save(tmp_path / "train" / "loose.png", noise(32, 32, 8))
    s = Folder().build(32, str(tmp_path))
    assert s.classes == ["birds", "train"] and s.info["split_folders"] == []
    # images above the class level form the class "."
    s = Folder(class_level=2).build(32, str(tmp_path))
    assert s.classes == [".", "cats", "dogs"]
    assert s.labels[s.names.index("train/loose.png#0")] == 0


def test_the_data_summary_names_classes_and_skipped_files_on_every_load(tmp_path):
    """Built once, then read from the cache: both loads say the same (classes, skipped files)."""
    from acbench.config import DataConfig
    from acbench.data.cache import describe, load_dataset, report_to

    split_layout(tmp_path / "data", ("train", "val"))
    (tmp_path / "data" / "train" / "cats" / "broken.jpg").write_bytes(b"not a jpeg")
    save(tmp_path / "data" / "val" / "dogs" / "tiny.png", noise(8, 8, 7))
    cfg = DataConfig(name="folder", root=str(tmp_path / "data"), tile=32)
    said: list[str] = []
    try:
        for _ in range(2):  # two commands: the first builds the cache, the second reads it
            report_to(said.append)
            load_dataset(cfg, tmp_path / "cache")
            load_dataset(cfg, tmp_path / "cache")  # the same command's jobs: said once
    finally:
        report_to(None)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert said[:2] == said[2:] and len(said) == 4
    classes, skipped = said[:2]
    assert "10 images (40 tiles) in 2 classes from the folders inside the split folders train/, val/" in (
        classes
    )
    assert "images per class: cats 5, dogs 5" in classes
    assert skipped.startswith("warning:")
    assert "1 unreadable and 1 too-small file(s) skipped" in skipped and "broken.jpg" in skipped
    flat = Folder().build(32, str(tmp_path / "data" / "train" / "cats"))
    flat_cfg = DataConfig(name="folder", root="x", tile=32)
    assert describe(flat, flat_cfg)[0].endswith("one class (no class folders)")


def test_tiles_match_the_image(tmp_path):
    img = noise(64, 96, 4)
    save(tmp_path / "a.png", img)
    s = Folder().build(32, str(tmp_path))
    assert np.array_equal(s.pixels[4], img[32:64, 32:64].transpose(2, 0, 1))
    centre = Folder(per_image=1).build(32, str(tmp_path))
    assert centre.names == ["a.png#3"] and len(centre) == 1


# -- folder: bad files ------------------------------------------------------------------------------
@pytest.fixture
def messy(tmp_path):
    save(tmp_path / "a" / "good.png", noise(64, 64, 1))
    save(tmp_path / "b" / "good.jpg", noise(64, 64, 2), quality=95)
    jpg = (tmp_path / "b" / "good.jpg").read_bytes()
    (tmp_path / "b" / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    (tmp_path / "b" / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    save(tmp_path / "a" / "small.png", noise(20, 100, 3))
    return tmp_path


def test_bad_files_skipped_and_counted(messy):
    s = Folder().build(32, str(messy))
    assert len(s) == 8 and s.classes == ["a", "b"]
    assert s.info["files"] == 7 and s.info["images"] == 2
    assert s.info["skipped_unreadable"] == 4
    bad = " ".join(s.info["unreadable_examples"])
    for name in ("truncated.jpg", "garbage.png", "notes.txt", "empty.jpg"):
        assert name in bad
    assert s.info["skipped_small"] == 1 and "a/small.png (100x20)" in s.info["small_examples"]


def test_strict_refuses_bad_files(messy):
    with pytest.raises(DataError, match="unreadable image file .*strict"):
        Folder(strict=True).build(32, str(messy))


def test_all_images_too_small(tmp_path):
    save(tmp_path / "a.png", noise(20, 20))
    with pytest.raises(DataError, match="no 32-px tiles.*1 smaller than the tile"):
        Folder().build(32, str(tmp_path))


def test_duplicates_reported_or_dropped(tmp_path):
    img = noise(32, 32, 5)
    save(tmp_path / "a.png", img)
    save(tmp_path / "b.bmp", img)  # same pixels, other container
    save(tmp_path / "c.png", noise(32, 32, 6))
    s = Folder().build(32, str(tmp_path))
    assert len(s) == 3 and s.info["duplicates"] == 1
    assert "b.bmp (same pixels as a.png)" in s.info["duplicate_examples"]
    assert Folder(dedupe=True).build(32, str(tmp_path)).names == ["a.png#0", "c.png#0"]


# -- folder: image modes ----------------------------------------------------------------------------
def test_modes_are_converted(tmp_path):
    grey = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    save(tmp_path / "l.png", grey)
    save(tmp_path / "la.png", np.dstack([grey, np.full_like(grey, 9)]), "LA")
    save(tmp_path / "rgba.png", np.dstack([noise(32, 32, 1), np.zeros((32, 32), np.uint8)]))
    save(tmp_path / "p.png", noise(32, 32, 2), "P")
    save(tmp_path / "bw.png", grey, "1")
    save(tmp_path / "cmyk.jpg", noise(32, 32, 3), "CMYK")
    save(tmp_path / "g16.png", grey.astype(np.uint16) * 257)
    save(tmp_path / "f.tif", grey.astype(np.float32) / 255)
    s = Folder().build(32, str(tmp_path))
    assert s.info["skipped_unreadable"] == 0 and len(s) == 8
    px = dict(zip(s.names, s.pixels))
    for name in ("l.png#0", "la.png#0", "g16.png#0", "f.tif#0"):
        assert np.array_equal(px[name], np.broadcast_to(grey, (3, 32, 32))), name
    assert np.array_equal(px["rgba.png#0"], noise(32, 32, 1).transpose(2, 0, 1))  # alpha dropped
    assert set(np.unique(px["bw.png#0"])) <= {0, 255}


def test_16bit_full_range(tmp_path):
    save(tmp_path / "a.png", np.full((32, 32), 65535, np.uint16))
    assert (Folder().build(32, str(tmp_path)).pixels == 255).all()


# -- folder: fingerprint ----------------------------------------------------------------------------
def test_fingerprint_notices_changes(tmp_path):
    save(tmp_path / "a.png", noise(32, 32, 1))
    fp = Folder().fingerprint(32, str(tmp_path))
    assert Folder().fingerprint(32, str(tmp_path)) == fp
    assert Folder().fingerprint(16, str(tmp_path)) != fp
    save(tmp_path / "b.png", noise(32, 32, 2))
    fp2 = Folder().fingerprint(32, str(tmp_path))
    assert fp2 != fp
    st = (tmp_path / "b.png").stat()
    os.utime(tmp_path / "b.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert Folder().fingerprint(32, str(tmp_path)) != fp2


# -- Fashion-MNIST ----------------------------------------------------------------------------------
def _write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


@pytest.fixture
def fake_fmnist(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 5)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.arange(n) % 10, compress=False)
    return tmp_path


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
    for call in (FashionMNIST().build, FashionMNIST().fingerprint):
        with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
            call(32, str(tmp_path / "nope"))


def test_fashion_mnist_from_idx_files(fake_fmnist):
    s = FashionMNIST().build(32, str(fake_fmnist))
    assert s.pixels.shape == (17, 3, 32, 32) and len(s.classes) == 10
    assert s.names[0] == "train#0" and s.names[-1] == "t10k#4"
    assert s.labels.tolist() == [i % 10 for i in range(12)] + list(range(5))
    assert (s.pixels[:, :, :2] == 0).all() and (s.pixels[:, :, 30:] == 0).all()  # zero padding
    up = FashionMNIST(limit=3, upscale=True).build(64, str(fake_fmnist))
    assert up.pixels.shape == (3, 3, 64, 64)
    assert np.array_equal(up.pixels[0, 0, 4:60:2, 4:60:2], s.pixels[0, 0, 2:30, 2:30])
    with pytest.raises(DataError, match="at least 28"):
        FashionMNIST().build(16, str(fake_fmnist))


def test_fashion_mnist_truncated_file(fake_fmnist):
    p = fake_fmnist / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes())[:-10]))
    with pytest.raises(DataError, match="truncated"):
        FashionMNIST().build(32, str(fake_fmnist))


@pytest.mark.skipif(not os.path.isdir(DEFAULT_ROOT), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_installed():
    ds = FashionMNIST(limit=500)
    s = ds.build(28, None)
    assert s.pixels.shape == (500, 3, 28, 28)
    assert set(s.labels.tolist()) == set(range(10)) and s.classes[9] == "Ankle boot"
    assert ds.fingerprint(28, None) == FashionMNIST(limit=500).fingerprint(28, None)
