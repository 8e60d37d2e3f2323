"""Dataset archives: round trip, bit-exactness with evaluation, and every kind of bad input."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from acbench.archive import (
    _PREFIX,
    FORMAT_VERSION,
    ArchiveError,
    archive_info,
    check_name,
    compress_folder,
    decompress_archive,
    format_info,
    format_restored,
    output_names,
    read_header,
    read_image,
)
from acbench.archive.layout import (
    Reader,
    decode_header,
    decode_names,
    decode_perm,
    encode_header,
    encode_names,
    encode_perm,
    perm_bytes,
    put_varint,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A real tiny conditional run (random ordering, one λ) made by the real pipeline."""
    from acbench.config import Component, preset
    from acbench.executors import execute
    from acbench.runner import conditional_job, plan

    cfg = dataclasses.replace(preset("tiny"), ordering=Component("random"), lmbdas=(0.013,), chain=3)
    jobs = plan([cfg], controls=False)
    root = tmp_path_factory.mktemp("runs")
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads on 2 busy cores is several times slower here
    try:
        outcomes = execute(jobs, root)
    finally:
        torch.set_num_threads(n)
    assert all(o.status == "done" for o in outcomes), [o.reason for o in outcomes]
    cond = conditional_job(cfg, 0.013)
    return root, cond.id, cond.baseline_run


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Crops of packaged photos: several sizes, nested folders, greyscale, palette, 16-bit, and
    an EXIF-rotated JPEG, and two files that both want the name ``rocket.png``."""
    import skimage.data as d

    root = tmp_path_factory.mktemp("photos")
    for sub in ("cats", "misc/deep"):
        (root / sub).mkdir(parents=True)
    Image.fromarray(d.astronaut()[:96, :128]).save(root / "astro.png")
    Image.fromarray(d.chelsea()[:70, :90]).save(root / "cats" / "chelsea.jpg", quality=95)
    Image.fromarray(d.chelsea()[100:164, 200:264]).save(root / "cats" / "chelsea2.png")
    Image.fromarray(d.camera()[:80, :100]).save(root / "misc" / "camera.png")  # greyscale
    Image.fromarray(d.coffee()[:130, :64]).save(root / "misc" / "deep" / "coffee.bmp")
    Image.fromarray(d.rocket()[:64, :64]).save(root / "misc" / "deep" / "rocket.png")
    Image.fromarray(d.rocket()[64:128, :64]).save(root / "misc" / "deep" / "rocket.jpg")
    Image.fromarray(d.coffee()[200:260, 300:380]).convert("P", palette=Image.Palette.ADAPTIVE).save(
        root / "misc" / "pal.gif"
    )
    Image.fromarray(d.camera()[200:264, 200:300].astype(np.uint16) * 257).save(root / "misc" / "deep16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 80x50, shown (and restored) rotated: 50x80
    Image.fromarray(d.chelsea()[150:200, 250:330]).save(root / "cats" / "rotated.jpg", exif=exif)
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def made(runs, photos, tmp_path_factory):
    root, cond, _ = runs
    path = tmp_path_factory.mktemp("arc") / "photos.acb"
    summary = compress_folder(photos, path, run_dir=root / cond)
    return path, summary


@pytest.fixture(scope="module")
def restored(made, runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("restored") / "out"
    summary = decompress_archive(made[0], out, runs_root=runs[0])
    return out, summary


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def _rewrite(src: Path, dst: Path, edit=None, version: int | None = None) -> None:
    """Re-write an archive's header (edited) with a valid digest: a forged archive."""
    raw = src.read_bytes()
    magic, ver, flags, hlen = _PREFIX.unpack_from(raw)
    header = decode_header(raw[_PREFIX.size : _PREFIX.size + hlen])
    if edit:
        edit(header)
    blob = encode_header(header)
    prefix = _PREFIX.pack(magic, ver if version is None else version, flags, len(blob))
    rest = raw[_PREFIX.size + hlen + 32 :]
    dst.write_bytes(prefix + blob + hashlib.sha256(prefix + blob).digest() + rest)


# -- round trip -------------------------------------------------------------------------------


def test_round_trip_restores_every_image_with_name_and_size(made, restored, photos):
    out, summary = restored
    assert summary["restored"] == summary["images"] == 10 and not summary["lost"] and not summary["warnings"]
    names = sorted(_files(out))
    assert names == sorted(
        [
            "astro.png",
            "cats/chelsea.png",
            "cats/chelsea2.png",
            "misc/camera.png",
            "misc/deep/coffee.png",
            "misc/deep/rocket.png",
            "misc/deep/rocket.jpg.png",
            "misc/pal.png",
            "misc/deep16.png",
            "cats/rotated.png",
        ]
    )
    info = archive_info(made[0])
    for it in info["items"]:
        src, _ = read_image(photos / it["source"])
        with Image.open(out / it["name"]) as im:
            assert im.mode == "RGB" and im.size == (src.shape[1], src.shape[0]) == (it["width"], it["height"])
    assert Image.open(out / "cats" / "rotated.png").size == (50, 80)
    modes = {it["source"]: it["mode"] for it in info["items"]}
    assert (
        modes["misc/camera.png"] == "L"
        and modes["misc/pal.gif"] == "P"
        and modes["misc/deep16.png"].startswith("I")
    )


def test_bitstreams_and_psnr_equal_evaluation(made, restored, photos, runs):
    """The archive codes exactly what ``code_chains`` codes for the same chains (batch 1)."""
    from acbench.codecs.base import load_codec
    from acbench.evaluate import _psnr as eval_psnr
    from acbench.evaluate import code_chains

    root, cond_id, base_id = runs
    info = archive_info(made[0])
    items = info["items"]  # chain-major: consecutive blocks of the chain length, like chains_of
    pixels = [np.ascontiguousarray(read_image(photos / it["source"])[0].transpose(2, 0, 1)) for it in items]

    class Pixels:  # code_chains indexes pixels with an index array; images differ in size
        def __getitem__(self, idx):
            return np.stack([pixels[i] for i in np.atleast_1d(idx)])

    first, _ = load_codec(root / base_id / "model.pt")
    cond, _ = load_codec(root / cond_id / "model.pt")
    first.update(force=True)
    cond.update(force=True)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = code_chains(first, cond, Pixels(), np.arange(len(items)), info["chain_length"], batch=1)
    finally:
        torch.set_num_threads(n)
    out = restored[0]
    psnrs = []
    stream_bits = np.zeros(info["chains"])
    for img, cid, pos, coded in res:
        it = items[img]
        assert (cid, pos) == (it["chain"], it["position"])
        stream_bits[cid] += sum(coded.bits_stream.values())
        x = torch.from_numpy(pixels[img]).float() / 255
        want = eval_psnr(x, coded.x_hat)
        got = _psnr(np.asarray(Image.open(out / it["name"])), pixels[img].transpose(1, 2, 0))
        assert got == pytest.approx(want, abs=0.01)
        psnrs.append(want)
    assert info["psnr_mean"] == pytest.approx(np.mean(psnrs), abs=0.01)
    # the very same single streams (and per-image strings), chain by chain
    assert stream_bits == pytest.approx([8 * c["bytes"] for c in info["streams"]], abs=1e-6)
    assert sum(sum(c.bits_real.values()) for *_, c in res) == 8 * info["image_stream_bytes"]


def test_decompressing_twice_gives_identical_files(made, restored, runs, tmp_path):
    again = decompress_archive(made[0], tmp_path / "again", runs_root=runs[0])
    assert again["restored"] == again["images"]
    assert format_restored(again).startswith("restored 10 of 10 images")
    assert _files(tmp_path / "again") == _files(restored[0])


def test_parallel_jobs_change_no_byte(made, restored, runs, photos, tmp_path):
    root, cond, _ = runs
    compress_folder(photos, tmp_path / "j2.acb", run_dir=root / cond, jobs=2)
    assert (tmp_path / "j2.acb").read_bytes() == made[0].read_bytes()
    decompress_archive(made[0], tmp_path / "out", runs_root=root, jobs=2)
    assert _files(tmp_path / "out") == _files(restored[0])


def test_fresh_process_decodes_with_only_archive_and_model(made, restored, runs, photos, tmp_path):
    root, cond, base = runs
    fresh = tmp_path / "fresh"
    for run_id in (cond, base):  # checkpoints only: no config.json, no rows, no data cache
        (fresh / "models" / run_id).mkdir(parents=True)
        shutil.copy(root / run_id / "model.pt", fresh / "models" / run_id / "model.pt")
    shutil.copy(made[0], fresh / "a.acb")
    compress_folder(photos, fresh / "embedded.acb", run_dir=root / cond, embed_model=True)
    code = (
        "from pathlib import Path\n"
        "from acbench.archive import decompress_archive\n"
        f"a = decompress_archive(Path('a.acb'), Path('out'), model=Path('models/{cond}/model.pt'))\n"
        "b = decompress_archive(Path('embedded.acb'), Path('out2'))\n"
        "assert a['restored'] == b['restored'] == 10, (a, b)\n"
    )
    env = {**os.environ, "ACBENCH_CACHE": str(tmp_path / "no-cache")}
    subprocess.run([sys.executable, "-c", code], cwd=fresh, env=env, check=True, timeout=300)
    assert _files(fresh / "out") == _files(restored[0]) == _files(fresh / "out2")


def test_info_reports_file_bpp_and_overhead(made):
    path, summary = made
    info = archive_info(path)
    size = path.stat().st_size
    assert info["bytes"] == summary["bytes"] == size and info["complete"]
    assert info["bpp_file"] == pytest.approx(8 * size / info["pixels"]) == pytest.approx(summary["bpp_file"])
    assert info["overhead_bytes"] == size - sum(c["bytes"] for c in info["streams"])
    assert info["stream_bytes"] < info["image_stream_bytes"]  # one flush per chain, not two per image
    assert 0 < info["flush_bytes_per_image"] < info["flush_bytes_per_image_before"]
    assert info["bpp_baseline_chain_stream"] < info["bpp_baseline_stream"] < info["bpp_baseline_real"]
    assert info["bpp_baseline_real"] > 0 and info["bpp_est"] > 0
    assert info["chains"] == 4 and info["chain_length"] == 3 and info["model"]["run_id"] == summary["run_id"]
    text = format_info(info, max_items=0)
    assert "misc/deep/rocket.jpg.png" in text and "each image alone" in text
    assert "one rANS stream per chain" in text and "per-image streams" in text
    assert "bpp       file" in format_info(summary) and "misc/" not in format_info(summary)


def test_joint_run_codes_first_images_with_its_own_baseline(runs, photos, tmp_path):
    root, cond, base = runs
    joint = tmp_path / "runs" / "jointrun"
    joint.mkdir(parents=True)
    cfg = json.loads((root / cond / "config.json").read_text())
    (joint / "config.json").write_text(json.dumps({**cfg, "baseline": "joint", "baseline_run": "gone"}))
    shutil.copy(root / cond / "model.pt", joint / "model.pt")
    shutil.copy(root / base / "model.pt", joint / "first.pt")
    compress_folder(photos / "cats", tmp_path / "j.acb", model=joint / "model.pt")
    m = archive_info(tmp_path / "j.acb")["model"]
    assert (m["first"]["run_id"], m["first"]["file"]) == ("jointrun", "first.pt")
    out = decompress_archive(tmp_path / "j.acb", tmp_path / "out", model=joint)
    assert out["restored"] == 3  # cats/: chelsea, chelsea2, rotated


# -- bad input --------------------------------------------------------------------------------


def test_truncated_archive(made, runs, tmp_path):
    path = made[0]
    raw = path.read_bytes()
    arc = read_header(path)
    for cut in (4, 15, arc.payload_start - 10):
        (tmp_path / "t.acb").write_bytes(raw[:cut])
        with pytest.raises(ArchiveError, match="not an acbench archive|truncated"):
            decompress_archive(tmp_path / "t.acb", tmp_path / "o", runs_root=runs[0])
    names = arc.header["items"]["name"]
    chains = arc.chains()
    for cut in (len(raw) - 3, arc.stream_offsets()[-2] + 5):  # inside the last / last-but-one stream
        (tmp_path / "t.acb").write_bytes(raw[:cut])
        assert not archive_info(tmp_path / "t.acb")["complete"]
        with pytest.raises(ArchiveError, match="truncated.*--skip-corrupt") as e:
            decompress_archive(tmp_path / "t.acb", tmp_path / "o", runs_root=runs[0])
        assert "\n" not in str(e.value)  # one line
        assert not (tmp_path / "o").exists()  # nothing written before failing
    # the cut lies in chain -2: it and the last chain are lost, every earlier chain restored
    res = decompress_archive(tmp_path / "t.acb", tmp_path / "o", runs_root=runs[0], skip_corrupt=True)
    lost = [names[i] for ch in chains[-2:] for i in ch]
    assert [x["name"] for x in res["lost"]] == lost and res["restored"] == arc.n - len(lost)
    assert res["lost"][0]["reason"] == "truncated: the archive ends inside its chain's stream"


@pytest.mark.parametrize("where", [0, 0.5, -1])
def test_flipped_stream_bit_loses_its_chain_only(made, runs, tmp_path, where):
    path = made[0]
    arc = read_header(path)
    chain0 = arc.chains()[0]  # chain 0's stream: its start, middle, last byte
    n = arc.header["streams"][0]
    raw = bytearray(path.read_bytes())
    raw[arc.stream_offsets()[0] + (int(where * n) if where >= 0 else n - 1)] ^= 0x10
    bad = tmp_path / "bad.acb"
    bad.write_bytes(bytes(raw))
    names = arc.header["items"]["name"]
    with pytest.raises(ArchiveError, match=f"{names[chain0[0]]}: chain stream checksum mismatch") as e:
        decompress_archive(bad, tmp_path / "o", runs_root=runs[0])
    assert "\n" not in str(e.value) and "--skip-corrupt" in str(e.value)
    assert not (tmp_path / "o").exists()
    res = decompress_archive(bad, tmp_path / "o", runs_root=runs[0], skip_corrupt=True)
    lost = {x["name"]: x["reason"] for x in res["lost"]}
    assert lost == {
        names[chain0[0]]: "chain stream checksum mismatch",
        **{names[i]: f"depends on {names[chain0[0]]} (same chain)" for i in chain0[1:]},
    }
    assert res["restored"] == arc.n - len(chain0) and not res["mismatch"]
    assert sorted(_files(tmp_path / "o")) == sorted(set(names) - set(lost))


def test_swapped_chain_streams_are_refused(made, runs, tmp_path):
    """Two chains' streams exchanged in the payload (a reordering copy tool): both are refused."""
    path = made[0]
    arc = read_header(path)
    offs, lens = arc.stream_offsets(), arc.header["streams"]
    raw = path.read_bytes()
    a, b = (raw[offs[i] : offs[i] + lens[i]] for i in (0, 1))
    swapped = raw[: offs[0]] + b + a + raw[offs[1] + lens[1] :]
    assert len(swapped) == len(raw) and swapped != raw
    (tmp_path / "s.acb").write_bytes(swapped)
    names, chains = arc.header["items"]["name"], arc.chains()
    with pytest.raises(ArchiveError, match="chain stream checksum mismatch") as e:
        decompress_archive(tmp_path / "s.acb", tmp_path / "o", runs_root=runs[0])
    assert "\n" not in str(e.value) and f"{len(chains[0]) + len(chains[1])} of {arc.n} images" in str(e.value)
    res = decompress_archive(tmp_path / "s.acb", tmp_path / "o", runs_root=runs[0], skip_corrupt=True)
    assert sorted(x["name"] for x in res["lost"]) == sorted(names[i] for ch in chains[:2] for i in ch)
    assert not res["mismatch"]
    # the same exchange inside one stream (its halves): refused too
    half = lens[0] // 2
    inner = raw[: offs[0]] + a[half:] + a[:half] + raw[offs[0] + lens[0] :]
    (tmp_path / "h.acb").write_bytes(inner)
    with pytest.raises(ArchiveError, match=f"{names[chains[0][0]]}: chain stream checksum mismatch"):
        decompress_archive(tmp_path / "h.acb", tmp_path / "o2", runs_root=runs[0])


def test_flipped_header_byte_is_refused(made, runs, tmp_path):
    raw = bytearray(made[0].read_bytes())
    raw[_PREFIX.size + 40] ^= 0x01
    (tmp_path / "h.acb").write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="header is corrupt"):
        decompress_archive(tmp_path / "h.acb", tmp_path / "o", runs_root=runs[0], skip_corrupt=True)
    with pytest.raises(ArchiveError, match="header is corrupt"):
        archive_info(tmp_path / "h.acb")


def test_newer_format_version_is_refused(made, tmp_path):
    _rewrite(made[0], tmp_path / "v.acb", version=FORMAT_VERSION + 1)
    with pytest.raises(ArchiveError, match=f"version {FORMAT_VERSION + 1}, newer.*upgrade acbench"):
        archive_info(tmp_path / "v.acb")


@pytest.mark.parametrize("version", [1, 2, 0])
def test_old_or_unknown_format_version_is_refused_in_one_line(made, runs, tmp_path, version):
    assert FORMAT_VERSION == 3
    _rewrite(made[0], tmp_path / "v.acb", version=version)
    was = {1: "one rANS stream per image and component", 2: "a JSON header with names in chain order"}
    want = (
        f"format version {version} \\({was[version]}.*\\), which this acbench no longer reads "
        "\\(it reads version 3\\)"
        if version in was
        else "invalid format version 0"
    )
    for call in (
        lambda: archive_info(tmp_path / "v.acb"),
        lambda: decompress_archive(tmp_path / "v.acb", tmp_path / "o", runs_root=runs[0]),
    ):
        with pytest.raises(ArchiveError, match=want) as e:
            call()
        assert "\n" not in str(e.value)
    assert not (tmp_path / "o").exists()


def test_model_hash_mismatch_and_missing_model(made, runs, tmp_path):
    from acbench.codecs.base import load_codec, save_checkpoint

    root, cond, base = runs
    other = tmp_path / "runs"
    for run_id in (cond, base):
        shutil.copytree(root / run_id, other / run_id)
    model, _ = load_codec(other / cond / "model.pt")
    with torch.no_grad():
        next(model.mixers.parameters()).add_(0.01)  # "retrained"
    save_checkpoint(other / cond / "model.pt", model)
    with pytest.raises(ArchiveError, match="model hash mismatch.*--embed-model"):
        decompress_archive(made[0], tmp_path / "o", model=other / cond)
    with pytest.raises(ArchiveError, match="model not found.*--model"):
        decompress_archive(made[0], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_damaged_embedded_model_is_named_as_damaged(runs, photos, tmp_path):
    root, cond, _ = runs
    good = tmp_path / "embedded.acb"
    compress_folder(photos / "cats", good, run_dir=root / cond, embed_model=True)
    arc = read_header(good)
    off, n = arc.header["model"]["conditional"]["embedded"]
    raw = bytearray(good.read_bytes())
    raw[arc.payload_start + off + n // 2] ^= 0x40
    bad = tmp_path / "damaged.acb"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError) as e:
        decompress_archive(bad, tmp_path / "o")
    msg = str(e.value)
    assert "embedded copy of the conditional model is damaged (its sha256" in msg
    assert "does not match" in msg and "Re-copy the archive" in msg
    assert "model not found" not in msg and "compress with --embed-model" not in msg
    assert not (tmp_path / "o").exists()
    # the identical model on disk is used instead, and the damage is still reported
    res = decompress_archive(bad, tmp_path / "o", runs_root=root)
    assert res["restored"] == 3 and not res["lost"]
    assert any("embedded copy of the conditional model is damaged" in w for w in res["warnings"])
    # an archive cut inside its embedded model: truncated, not "not found"
    first_off, first_n = arc.header["model"]["first"]["embedded"]
    (tmp_path / "cut.acb").write_bytes(good.read_bytes()[: arc.payload_start + first_off + first_n // 2])
    with pytest.raises(ArchiveError, match="embedded copy of the first model is damaged \\(truncated"):
        decompress_archive(tmp_path / "cut.acb", tmp_path / "o2")


def test_bytes_appended_after_the_end_are_counted_and_ignored(made, runs, tmp_path):
    path, _ = made
    tail = b"\x00appended by a download manager" * 10
    (tmp_path / "tail.acb").write_bytes(path.read_bytes() + tail)
    info, clean = archive_info(tmp_path / "tail.acb"), archive_info(path)
    assert info["trailing_bytes"] == len(tail) and clean["trailing_bytes"] == 0
    assert info["complete"] and info["bytes"] == clean["bytes"] + len(tail)
    assert info["bpp_file"] == clean["bpp_file"] and info["overhead_bytes"] == clean["overhead_bytes"]
    assert f"({len(tail):,} bytes after the archive's end: ignored)" in format_info(info)
    res = decompress_archive(tmp_path / "tail.acb", tmp_path / "o", runs_root=runs[0])
    assert res["restored"] == res["images"] and not res["lost"]
    assert f"{len(tail):,} byte(s) after the archive's end were ignored" in format_restored(res)
    decompress_archive(path, tmp_path / "o2", runs_root=runs[0])
    assert _files(tmp_path / "o") == _files(tmp_path / "o2")  # the same images as without the tail


def test_compress_and_info_say_the_archive_is_lossy_with_psnr(made, photos):
    path, summary = made
    names = [x["name"] for x in archive_info(path)["items"]]
    assert summary["psnr_min"] <= summary["psnr_mean"] and summary["psnr_min_name"] in names
    text = format_info(summary)
    assert "decompress restores the codec's reconstruction (checked against the encoder's by" in text
    assert f"PSNR against the originals: mean {summary['psnr_mean']:.2f} dB" in text
    assert f"lowest {summary['psnr_min']:.2f} dB" in text
    info = format_info(archive_info(path))
    assert f"mean PSNR against the originals {summary['psnr_mean']:.2f} dB, as measured when" in info
    assert "(info does not read the originals)" in info


@pytest.mark.parametrize(
    "evil",
    ["../escape.png", "/tmp/abs.png", "a/../../x.png", "a\\..\\x.png", "C:/x.png", "a/./b.png"],
)  # a name without .png cannot be stored (names are stored without it): test_check_name_refuses
def test_names_escaping_the_output_folder_are_refused(made, runs, tmp_path, evil):
    def edit(h):
        h["items"]["name"][0] = evil

    _rewrite(made[0], tmp_path / "evil.acb", edit)
    with pytest.raises(ArchiveError, match="refused"):
        decompress_archive(tmp_path / "evil.acb", tmp_path / "o" / "inner", runs_root=runs[0])
    assert not (tmp_path / "o").exists() and not (tmp_path / "escape.png").exists()


def test_symlinks_in_the_output_folder_are_refused(made, runs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "cats").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArchiveError, match="outside"):
        decompress_archive(made[0], out, runs_root=runs[0], overwrite=True)
    (out / "cats").unlink()
    (out / "astro.png").symlink_to(outside / "victim.png")
    with pytest.raises(ArchiveError, match="symbolic link"):
        decompress_archive(made[0], out, runs_root=runs[0], overwrite=True)
    assert list(outside.iterdir()) == []


def test_output_folder_with_files_needs_overwrite(made, runs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="already has files.*--overwrite"):
        decompress_archive(made[0], out, runs_root=runs[0])
    (out / "misc").write_text("a file where the archive needs a folder")
    with pytest.raises(ArchiveError, match="misc is a file"):
        decompress_archive(made[0], out, runs_root=runs[0], overwrite=True)
    (out / "misc").unlink()
    res = decompress_archive(made[0], out, runs_root=runs[0], overwrite=True)
    assert res["restored"] == 10 and (out / "keep.txt").read_text() == "mine"


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))  # would create the marker if unpickled


def test_malicious_checkpoint_is_refused_and_not_executed(made, runs, photos, tmp_path):
    root, cond, base = runs
    marker = tmp_path / "pwned"
    fake = tmp_path / "runs" / "evilrun"
    fake.mkdir(parents=True)
    shutil.copy(root / cond / "config.json", fake / "config.json")
    shutil.copytree(root / base, tmp_path / "runs" / base)
    torch.save({"arch": _Evil(marker), "state_dict": {}}, fake / "model.pt")
    with pytest.raises(ArchiveError, match="weights_only=True"):
        compress_folder(photos, tmp_path / "x.acb", run_dir=fake)
    assert not marker.exists()
    # a forged archive naming the evil file's hash: the decoder matches it, then refuses to load it
    digest = hashlib.sha256((fake / "model.pt").read_bytes()).hexdigest()

    def edit(h):
        h["model"]["conditional"]["sha256"] = digest[:16]  # the header keeps 64 bits

    _rewrite(made[0], tmp_path / "forged.acb", edit)
    with pytest.raises(ArchiveError, match="weights_only=True"):
        decompress_archive(tmp_path / "forged.acb", tmp_path / "o", model=fake / "model.pt", runs_root=root)
    assert not marker.exists()


def test_compress_refuses_bad_inputs(runs, photos, tmp_path):
    root, cond, base = runs
    with pytest.raises(ArchiveError, match="not a folder"):
        compress_folder(photos / "astro.png", tmp_path / "a.acb", run_dir=root / cond)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchiveError, match="no images"):
        compress_folder(tmp_path / "empty", tmp_path / "a.acb", run_dir=root / cond)
    with pytest.raises(ArchiveError, match="baseline.*conditional run"):
        compress_folder(photos, tmp_path / "a.acb", run_dir=root / base)
    with pytest.raises(ArchiveError, match="--run RUN_ID"):
        compress_folder(photos, tmp_path / "a.acb")
    (tmp_path / "a.acb").write_bytes(b"x")
    with pytest.raises(ArchiveError, match="exists; pass --overwrite"):
        compress_folder(photos, tmp_path / "a.acb", run_dir=root / cond)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ArchiveError, match="bad.jpg: cannot read this image"):
        compress_folder(broken, tmp_path / "b.acb", run_dir=root / cond)


def test_output_names_resolve_collisions():
    assert output_names(["a.jpg", "a.png", "A.PNG", "b/c.tif", "b/c.jpeg"]) == [
        "a.jpg.png",
        "a.png",
        "A~2.png",
        "b/c.png",
        "b/c.jpeg.png",
    ]


@pytest.mark.parametrize("name", ["a.png", "sub/dir/b.png", "ünï cödé.png", "..a.png"])
def test_check_name_accepts_safe_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "../a.png", "/a.png", "a//b.png", "a/../b.png", "a\\b.png", "a\x00.png", "d:x.png", "x.sh", 3],
)
def test_check_name_refuses_unsafe_names(name):
    with pytest.raises(ArchiveError):
        check_name(name)


def test_decoded_pixels_differing_from_the_encoders_are_reported(made, runs, tmp_path):
    """What a decode on another CPU type or torch version would look like: a named warning.
    The archive has one reconstruction checksum (over every chain's), so every image is suspect."""
    arc = read_header(made[0])
    names = arc.header["items"]["name"]

    def edit(h):
        h["pix_crc32"] ^= 1

    _rewrite(made[0], tmp_path / "drift.acb", edit)
    res = decompress_archive(tmp_path / "drift.acb", tmp_path / "o", runs_root=runs[0])
    assert sorted(res["mismatch"]) == sorted(names) and res["restored"] == len(names)
    assert "differ from the encoder's" in res["warnings"][0]
    assert f"all {len(names)} images were written" in res["warnings"][0]


def test_evaluation_rows_carry_each_images_share_of_its_chains_single_stream(runs):
    """The runs' rows (real pipeline): ``bpp_stream`` beside ``bpp_real``; per chain and eval
    variant the shares add up to whole 32-bit words, below the per-image strings (fewer flushes),
    and y + z = total on every image."""
    from acbench.store import Run, read_rows_csv

    root, cond, base = runs
    for run_id, evals in ((cond, {"chain", "full", "shuffled"}), (base, {"alone"})):
        rows = read_rows_csv(Run(root, run_id).rows)
        assert set(rows["eval"]) == evals and rows["bpp_stream"].notna().all()
        px = rows["tile"] ** 2
        rows = rows.assign(stream=rows["bpp_stream"] * px, real=rows["bpp_real"] * px)
        tot = rows[rows["component"] == "total"]
        for (_, _), g in tot.groupby(["eval", "chain_id"]):
            bits = g["stream"].sum()
            assert abs(bits - 32 * round(bits / 32)) < 1e-3 and bits < g["real"].sum()
        parts = rows[rows["component"] != "total"].groupby(["eval", "image"])["stream"].sum()
        whole = tot.set_index(["eval", "image"])["stream"]
        assert np.allclose(parts.loc[whole.index].to_numpy(), whole.to_numpy())


# -- the header's layout (format 3) -----------------------------------------------------------


def test_header_stores_names_once_sorted_and_the_chain_order_as_a_permutation(made):
    arc = read_header(made[0])
    h = arc.header
    names = h["items"]["name"]
    assert names == sorted(names) and sorted(h["order"]) == list(range(arc.n))
    info = archive_info(made[0])  # items listed in decoding order, chain after chain
    assert [x["name"] for x in info["items"]] == [names[i] for i in h["order"]]
    assert [len(c) for c in arc.chains()] == h["chains"] and len(h["stream_crc32"]) == len(h["chains"])
    m = h["model"]
    assert all(len(m[r]["sha256"]) == 16 for r in ("first", "conditional"))  # 64 bits each
    raw = made[0].read_bytes()
    hlen = _PREFIX.unpack_from(raw)[3]
    d = zlib.decompressobj()
    text = d.decompress(raw[_PREFIX.size : _PREFIX.size + hlen])
    r = Reader(text)  # zlib: meta, counts, chain lengths, names
    r.take(r.varint("meta"), "meta")
    small = bytearray()
    for v in [arc.n, len(h["chains"]), *h["chains"]]:
        put_varint(small, v)
    assert len(text) - r.pos == len(small) + len(encode_names(names))
    lengths = bytearray()  # stored after it: stream lengths, stream crc32, the permutation
    for v in h["streams"]:
        put_varint(lengths, v)
    assert len(d.unused_data) == len(lengths) + 4 * len(h["chains"]) + perm_bytes(arc.n)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 156, 536, 537, 2000])
def test_permutation_round_trip_in_log2_n_factorial_bits(n):
    import math
    import random

    order = list(range(n))
    random.Random(n).shuffle(order)
    data = encode_perm(order)
    assert len(data) == perm_bytes(n) and decode_perm(data, n) == order
    bits = math.ceil(math.lgamma(n + 1) / math.log(2) - 1e-9) if n > 1 else 0
    if n <= 536:  # one block: the least an arbitrary order can take
        assert len(data) == -(-bits // 8)
    else:  # blocks of at most 4096 bits, each rounded up to bytes
        assert len(data) <= -(-bits // 8) + -(-bits // 4096)
    assert decode_perm(encode_perm(list(range(n))), n) == list(range(n))


def test_varints_and_front_coded_names_round_trip():
    out = bytearray()
    values = [0, 1, 127, 128, 300, 2**32, 2**40 + 5]
    for v in values:
        put_varint(out, v)
    r = Reader(bytes(out))
    assert [r.varint("v") for _ in values] == values and r.pos == len(out)
    assert len(out) == 1 + 1 + 1 + 2 + 2 + 5 + 6
    names = ["a.png", "a/b.png", "a/b~2.png", "ünï cödé.png", "ünï.png", "z/" + "x" * 300 + ".png"]
    data = encode_names(names)
    assert decode_names(Reader(data), len(names)) == names
    assert len(data) < sum(map(len, names)) - 4 * len(names) + 2 * len(names) + 2  # shared prefixes
    with pytest.raises(ValueError, match="does not end in .png"):
        encode_names(["x.sh"])


def test_malformed_header_tables_are_refused(made, tmp_path):
    """A header with a valid digest but impossible tables: refused as malformed, in one line."""
    raw = made[0].read_bytes()
    hlen = _PREFIX.unpack_from(raw)[3]
    good = decode_header(raw[_PREFIX.size : _PREFIX.size + hlen])
    n = len(good["items"]["name"])
    enc = encode_header(good)
    d = zlib.decompressobj()
    d.decompress(enc)
    zpart = enc[: len(enc) - len(d.unused_data)]
    pb = perm_bytes(n)
    big = (1 << (8 * pb)) - 1  # all ones: above n!
    cases = {
        "cut inside the compressed tables": zpart[:-3] + d.unused_data,
        "cut inside the chain order": enc[:-1],
        "bytes after the chain order": enc + b"\x00",
        "not zlib": b"not a header",
        "chain order out of range": enc[:-pb] + big.to_bytes(pb, "little"),
    }
    for why, hdr in cases.items():
        with pytest.raises(ArchiveError, match="header is malformed") as e:
            decode_header(hdr)
        assert "\n" not in str(e.value), why
    # a forged archive: the reader refuses before anything is decoded
    _rewrite(made[0], tmp_path / "m.acb", lambda h: h["chains"].__setitem__(0, h["chains"][0] + 1))
    with pytest.raises(ArchiveError, match="header is malformed \\(chains hold"):
        read_header(tmp_path / "m.acb")
