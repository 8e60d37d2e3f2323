"""The public Python API: a lazy facade (``import acbench`` loads no torch) whose README example runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_acbench_is_light():
    code = (
        "import sys, acbench; acbench.list_plugins; "
        "heavy = [m for m in ('torch', 'pandas', 'compressai', 'sklearn') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_facade_names_resolve_and_are_listed():
    import acbench

    for name in acbench.__all__:
        assert getattr(acbench, name) is not None, name
    assert set(acbench.__all__) <= set(dir(acbench))
    assert acbench.list_plugins("mixers", "conv*") == ["conv1x1"]
    assert set(acbench.list_plugins()) == {"orderings", "mixers", "codecs", "datasets"}


def test_unknown_plugin_kind_says_did_you_mean():
    import pytest

    import acbench
    from acbench.registry import UnknownPluginError

    with pytest.raises(UnknownPluginError, match="did you mean 'mixers'"):
        acbench.list_plugins("mixer")


def test_register_adds_a_plugin():
    import acbench
    from acbench.registry import MIXERS

    @acbench.register("mixers", "api_test_mixer")
    class Mixer:
        pass

    try:
        assert "api_test_mixer" in acbench.list_plugins("mixers")
    finally:
        MIXERS.unregister("api_test_mixer")


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    (tmp_path / "ablations").mkdir()
    shutil.copy(ROOT / "ablations" / "mixers.toml", tmp_path / "ablations")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "['done']" in out and "['conv1x1']" in out and "curves," in out
    exec(compile(code, "README.md", "exec"), {})  # the rerun finds every run done
    assert "['cached']" in capsys.readouterr().out


def test_all_lists_exactly_the_exports():
    import acbench

    assert set(acbench.__all__) == {"__version__", *acbench._EXPORTS}
