"""Messages for unknown names, with the close matches ("did you mean 'film'?"): written once.

A leaf module (imports nothing of acbench): the registry, the config, the executors, the API and
the CLI all word an unknown name the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """``"did you mean 'film'?"`` (or ``'a' or 'b'`` with ``n`` > 1), or ``""`` when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown(what: str, name: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> str:
    """``"unknown mixer 'flim'; did you mean 'film'? known: conv1x1, film, ..."``."""
    choices = list(choices)
    hint = did_you_mean(name, choices, n, cutoff)
    return f"unknown {what} {name!r}; {hint + ' ' if hint else ''}known: {', '.join(choices)}"
