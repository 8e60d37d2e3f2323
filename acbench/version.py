"""The code version stamped on every result row: ``<acbench version>+g<commit>[.dirty]``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from acbench import __version__


def code_version() -> str:
    """acbench's version, plus the git commit of a source checkout (``.dirty`` if modified).

    Read once, when this module is first imported (with the code that then runs); an installed
    wheel (no git checkout around the package) gives the version alone.
    """
    return _AT_IMPORT


def _read() -> str:
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        if not (root / ".git").exists():
            return __version__
        sha = git("rev-parse", "--short=10", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "acbench")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}" + (".dirty" if dirty else "")


_AT_IMPORT = _read()
