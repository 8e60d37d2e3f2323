"""End-to-end CLI tests (Typer's CliRunner) on the tiny preset."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acbench.cli import app

runner = CliRunner()
TINY = ["--preset", "tiny", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def _run(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_run_end_to_end_then_cached(runs):
    args = ["run", "--ordering", "isomap", "--mixer", "film", "--chain", "3", *TINY, "--out", str(runs)]
    first = _run(*args)
    assert first.exit_code == 0, first.output
    assert "BD-rate" in first.output
    reports = list(runs.glob("report-*.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    trained = {p.parent.name for p in runs.glob("*/model.pt")}
    mtimes = {p: p.stat().st_mtime_ns for p in runs.glob("*/model.pt")}
    second = _run(*args)
    assert second.exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/model.pt")} == mtimes  # trained nothing
    assert reports[0].read_text() == text  # the same table
    assert trained


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ordering", "isomp"], "did you mean 'isomap'"),
        (["--mixer", "flim"], "did you mean 'film'"),
        (["--codec", "mshq"], "did you mean 'mshp'"),
        (["--dataset", "photoz"], "did you mean 'photos'"),
        (["--preset", "tiyn"], "did you mean 'tiny'"),
        (["--chain", "1"], "chain length must be >= 2"),
        (["--lmbda", "0"], "λ must be > 0"),
        (["--lmbda", "abc"], "expects float"),
        (["--set", "train.stepz=3"], "unknown config key 'train.stepz'"),
        (["--set", "train.steps=x"], "expects int"),
        (["--sites", "hyper_analysis,nowhere"], "unknown conditioning site"),
        (["--executor", "threads"], "unknown executor 'threads'"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    base = ["run", "--preset", "tiny", "--quiet", "--out", str(tmp_path)]
    if "--preset" in args:
        base = ["run", "--quiet", "--out", str(tmp_path)]
    res = runner.invoke(app, base + args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert not any(tmp_path.glob("*/model.pt"))  # nothing trained


def test_unwritable_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro / "x", os.W_OK) or os.geteuid() == 0:
        target = Path("/proc/acbench-not-writable")  # root ignores modes; /proc refuses anyway
    else:
        target = ro / "out"
    res = runner.invoke(app, ["run", *TINY, "--out", str(target)])
    assert res.exit_code == 2
    assert "not writable" in res.output


def test_ls_lists_and_filters():
    res = _run("ls", "mixers", "conv*")
    assert res.exit_code == 0 and "conv1x1" in res.output and "film" not in res.output
    res = runner.invoke(app, ["ls", "mixer"])
    assert res.exit_code == 2 and "did you mean 'mixers'" in res.output


def test_help_and_ls_do_not_import_torch():
    code = (
        "import sys; from typer.testing import CliRunner; from acbench.cli import app; "
        "r = CliRunner().invoke(app, ['ls']); assert r.exit_code == 0, r.output; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compress_decompress_info_commands(runs, tmp_path):
    import json

    import numpy as np
    from PIL import Image
    from skimage import data

    if not any(runs.glob("*/model.pt")):
        _run("run", "--ordering", "isomap", "--mixer", "film", "--chain", "3", *TINY, "--out", str(runs))
    run_id = next(
        p.parent.name
        for p in runs.glob("*/config.json")
        if json.loads(p.read_text())["kind"] == "conditional"
    )
    src = tmp_path / "imgs"
    (src / "sub").mkdir(parents=True)
    img = data.astronaut()
    for i, (h, w) in enumerate([(64, 64), (70, 90), (128, 64)]):
        Image.fromarray(np.ascontiguousarray(img[i * 50 : i * 50 + h, :w])).save(
            src / ("sub" if i else ".") / f"p{i}.png"
        )
    arc = tmp_path / "a.acb"
    res = _run("compress", str(src), "-o", str(arc), "--run", run_id, "--runs", str(runs), "--quiet")
    assert res.exit_code == 0, res.output
    assert "restores the codec's reconstruction" in res.output  # lossy, and said so
    assert re.search(r"PSNR against the originals: mean \d+\.\d\d dB, lowest \d+\.\d\d dB", res.output)
    res = _run("info", str(arc))
    assert res.exit_code == 0 and "p1" in res.output
    assert re.search(r"mean PSNR against the originals \d+\.\d\d dB, as measured when", res.output)
    assert "info does not read the originals" in res.output
    out = tmp_path / "out"
    res = _run("decompress", str(arc), "-o", str(out), "--runs", str(runs), "--quiet")
    assert res.exit_code == 0, res.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "p0.png",
        "sub/p1.png",
        "sub/p2.png",
    ]
    assert Image.open(out / "sub" / "p1.png").size == (90, 70)
    res = runner.invoke(app, ["decompress", str(arc), "-o", str(out), "--runs", str(runs), "--quiet"])
    assert res.exit_code == 2 and "overwrite" in res.output
    res = runner.invoke(app, ["compress", str(src), "-o", str(tmp_path / "b.acb")])
    assert res.exit_code == 2 and "--run" in res.output


@pytest.mark.parametrize(
    "extra",
    [
        ["--baseline", "joint", "--reference", "reconstruction"],
        ["--sites", "latent_prior,hyper_prior", "--mixer", "deep_conv"],
        ["--features", "pixels", "--set", "shared_transforms=true", "--ordering", "greedy_chain"],
        ["--set", "lambda_finetune=3"],
    ],
    ids=["joint-reconstruction", "priors-deep_conv", "pixels-shared", "lambda-finetune"],
)
def test_run_variants(extra, tmp_path):
    args = [
        "run",
        "--preset",
        "tiny",
        "--quiet",
        "--no-controls",
        "--out",
        str(tmp_path),
        "--ordering",
        "random",
    ]
    res = runner.invoke(app, args + extra, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    import pandas as pd

    rows = pd.concat(pd.read_csv(p) for p in tmp_path.glob("*/rows.csv"))
    cond = rows[rows["kind"] == "conditional"]
    assert set(cond["eval"]) == {"chain", "full", "shuffled"}
    assert set(cond["position"]) >= {1, 2}
    if "lambda_finetune=3" in extra:  # 6 shared steps at the middle λ, then 3 at each λ
        steps = rows[rows["kind"] == "baseline"].groupby("lam")["steps"].first()
        assert steps.to_dict() == {0.0035: 9, 0.0067: 9, 0.013: 9, 0.025: 9}
        assert len(list(tmp_path.glob("*/pretrain.pt"))) == 1


def _unwritable(tmp_path: Path) -> Path:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro / "x", os.W_OK) or os.geteuid() == 0:
        return Path("/proc/acbench-not-writable")  # root ignores modes; /proc refuses anyway
    return ro / "out"


def test_bad_folders_fail_before_torch_is_imported(tmp_path):
    """A missing, empty or non-folder --data, an unwritable --out: one line, in a fraction of a
    second (torch, which takes seconds to import, is never imported)."""
    empty, afile = tmp_path / "empty", tmp_path / "a.png"
    empty.mkdir()
    (empty / ".hidden").write_text("x")  # hidden files do not count
    afile.write_bytes(b"x")
    bad = _unwritable(tmp_path)
    sweep = tmp_path / "s.toml"
    sweep.write_text('preset = "tiny"\n[grid]\nmixer = ["film"]\n')
    cases = [
        (["run", "--data", str(tmp_path / "nope")], "does not exist"),
        (["run", "--data", str(empty)], "is empty"),
        (["run", "--data", str(afile)], "is not a folder"),
        (["run", "--out", str(bad)], "not writable"),
        (["order", "--data", str(empty), "--out", str(tmp_path / "o")], "is empty"),
        (["sweep", str(sweep), "--out", str(bad)], "not writable"),
    ]
    code = (
        "import json, sys; from typer.testing import CliRunner; from acbench.cli import app\n"
        "out = []\n"
        "for args, msg in json.loads(sys.argv[1]):\n"
        "    r = CliRunner().invoke(app, args + ['--preset', 'tiny', '--quiet'])\n"
        "    out.append([r.exit_code, msg in r.output, len(r.output.strip().splitlines()), r.output])\n"
        "print(json.dumps([out, 'torch' in sys.modules]))\n"
    )
    import json

    res = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cases)], capture_output=True, text=True, check=True
    )
    results, torch_loaded = json.loads(res.stdout)
    for (args, _), (exit_code, found, lines, output) in zip(cases, results):
        assert (exit_code, found, lines) == (2, True, 1), (args, output)
    assert not torch_loaded
    assert not (tmp_path / "o").exists()  # a bad command creates no output folder


def test_split_folder_classes_and_skipped_files_are_said_on_every_run(tmp_path):
    """train/<class>/... and val/<class>/...: the run names the classes (not the splits) with their
    image counts, and the skipped files, on the first run and again on the cached second run."""
    import numpy as np
    from PIL import Image

    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cats", "dogs"):
            (data / split / cls).mkdir(parents=True)
            for i in range(3):
                img = rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)  # two 64-px tiles
                Image.fromarray(img).save(data / split / cls / f"{i}.png")
    (data / "train" / "dogs" / "broken.jpg").write_bytes(b"not a jpeg")
    args = ["run", *TINY, "--data", str(data), "--out", str(tmp_path / "runs")]
    args += ["--ordering", "class_label", "--no-controls", "--lmbda", "0.01", "--lmbda", "0.02"]
    for _ in range(2):  # the second run trains nothing and reads the data from the cache
        res = _run(*args)
        assert res.exit_code == 0, res.output
        said = "12 images (24 tiles) in 2 classes from the folders inside the split folders train/, val/"
        assert said in res.output
        assert "images per class: cats 6, dogs 6" in res.output
        assert "warning: data" in res.output and "1 unreadable and 0 too-small file(s) skipped" in res.output
