"""Registry lookups and config validation (bad inputs fail early with clear messages)."""

from __future__ import annotations

import dataclasses

import pytest

from acbench.config import Component, ConfigError, apply_overrides, preset, run_id, validate
from acbench.registry import MIXERS, ORDERINGS, Registry, UnknownPluginError


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownPluginError, match="did you mean 'film'"):
        MIXERS.check("flim")


def test_wildcard_listing():
    assert MIXERS.names("conv*") == ["conv1x1"]
    assert {"isomap", "random"} <= set(ORDERINGS.names())


def test_decorator_registration_and_lazy_loading():
    reg: Registry = Registry("things")

    @reg.register("a")
    class A:
        version = "7"

    reg.register_lazy("b", "collections:OrderedDict")
    assert reg.names() == ["a", "b"]
    assert reg.get("a") is A and reg.version("a") == "7"
    import collections

    assert reg.get("b") is collections.OrderedDict


def test_overrides_are_type_checked():
    cfg = preset("tiny")
    assert apply_overrides(cfg, ["train.steps=7"]).train.steps == 7
    with pytest.raises(ConfigError, match="unknown config key 'train.stepz'"):
        apply_overrides(cfg, ["train.stepz=7"])
    with pytest.raises(ConfigError, match="expects int"):
        apply_overrides(cfg, ["train.steps=many"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(cfg, ["train.steps"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"chain": 1}, "chain length must be >= 2"),
        ({"lmbdas": (0.01, -1.0)}, "λ must be > 0"),
        ({"sites": ("nowhere",)}, "unknown conditioning site"),
        ({"mixer": Component("flim")}, "did you mean 'film'"),
        ({"ordering": Component("isomp")}, "did you mean 'isomap'"),
        ({"codec": Component("mshpp")}, "did you mean 'mshp'"),
        ({"mixer": Component("film", {"hiden": 3})}, "no parameter 'hiden'"),
    ],
)
def test_bad_configs(change, message):
    with pytest.raises((ConfigError, UnknownPluginError), match=message):
        validate(dataclasses.replace(preset("tiny"), **change))


def test_unknown_preset():
    with pytest.raises(ConfigError, match="did you mean 'tiny'"):
        preset("tiyn")


def test_run_id_is_stable_and_sensitive():
    a = {"x": 1, "y": [1, 2]}
    assert run_id(a) == run_id({"y": [1, 2], "x": 1})
    assert run_id(a) != run_id({"x": 2, "y": [1, 2]})


def test_declared_versions_match_the_classes():
    from acbench.registry import REGISTRIES

    for reg in REGISTRIES.values():
        for name in reg.names():
            declared = reg.declared_version(name)
            if declared is not None:
                assert str(getattr(reg.get(name), "version", "0")) == declared, f"{reg.kind}/{name}"


def test_declared_tags_match_the_classes():
    from acbench.registry import REGISTRIES

    for reg in REGISTRIES.values():
        for name in reg.names():
            declared = reg.declared_tags(name)
            if declared is not None:
                assert frozenset(getattr(reg.get(name), "tags", ())) == declared, f"{reg.kind}/{name}"


def test_registry_copy_is_independent_and_unregister_forgets():
    from acbench.registry import MIXERS

    mine = MIXERS.copy()
    mine.register("copy_only")(type("CopyOnly", (), {"version": "1"}))
    assert "copy_only" in mine and "copy_only" not in MIXERS
    assert set(MIXERS.names()) <= set(mine.names())
    mine.unregister("copy_only")
    assert "copy_only" not in mine
