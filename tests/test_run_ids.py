"""Run ids are the names of cached runs and the keys of the model zoo: they must not change.

``golden/run_ids.json`` was computed before jobs became typed dataclasses (from the payload
dicts of the time); every job of a few presets must keep its id, its curve ids, its
dependencies and the content of its ``config.json`` (hashed). Ids change only where a version is
raised on purpose so that stale runs are not reused: joint training, version 2 (2026-12-03), the
conditional jobs of ``tiny_joint_pixels_L3``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from acbench.config import override, preset, validate
from acbench.runner import plan

GOLDEN = Path(__file__).parent / "golden" / "run_ids.json"


def _configs():
    film = override(override(override(preset("cpu"), "mixer", "film"), "ordering", "isomap"), "seeds", 3)
    return {
        "tiny": preset("tiny"),
        "cpu": preset("cpu"),
        "cpu_film_isomap_seeds3": film,
        "tiny_joint_pixels_L3": dataclasses.replace(
            preset("tiny"), baseline="joint", features="pixels", chain=3
        ),
        "paper": preset("paper"),
    }


def _line(j) -> str:
    record = json.dumps(j.record(), sort_keys=True, default=str).encode()
    fields = [j.kind, j.id, j.curve, j.anchor_curve, j.matched_curve, j.control_curve, ",".join(j.deps)]
    return " ".join([*fields, hashlib.sha256(record).hexdigest()[:12]])


def test_known_configs_keep_their_run_ids():
    golden = json.loads(GOLDEN.read_text())
    for name, cfg in _configs().items():
        assert sorted(_line(j) for j in plan([validate(cfg)])) == golden[name], name
