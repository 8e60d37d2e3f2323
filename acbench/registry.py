"""One generic plugin registry, one instance per plugin kind.

Built-ins are declared by their package ``__init__`` (lazily, as ``"module:attr"`` strings, so that
listing plugins never imports torch); third parties publish an entry point in the group
``acbench.<kind>``; code in the same process can use the :meth:`Registry.register` decorator. One
string names a plugin everywhere: CLI value, config key, entry-point name and leaderboard label.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from acbench.suggest import unknown

T = TypeVar("T")


class UnknownPluginError(KeyError):
    """An unknown plugin name; the message lists the close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _load(target: str) -> object:
    module, _, attr = target.partition(":")
    obj: object = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Name → plugin factory, with lazy built-ins, entry points and "did you mean" errors.

    Args:
        kind: plural noun used in messages and the entry-point group (``acbench.<kind>``).
        builtins: module whose import declares the built-in plugins.
    """

    def __init__(self, kind: str, builtins: str | None = None) -> None:
        self.kind = kind
        self._builtins = builtins
        self._objects: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._declared: dict[str, str] = {}  # versions declared with lazy built-ins
        self._tags: dict[str, frozenset[str]] = {}  # tags declared with lazy built-ins
        self._discovered = False

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (its ``name`` attribute is set too)."""

        def deco(obj: T) -> T:
            self._objects[name] = obj
            self._lazy.pop(name, None)
            try:
                obj.name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a plugin registered for a while, e.g. by a test)."""
        self._objects.pop(name, None)
        self._lazy.pop(name, None)
        self._declared.pop(name, None)
        self._tags.pop(name, None)

    def copy(self) -> Registry[T]:
        """An independent registry with the same plugins (built-ins and entry points discovered)."""
        self._discover()
        new: Registry[T] = Registry(self.kind)
        new._objects, new._lazy, new._declared = dict(self._objects), dict(self._lazy), dict(self._declared)
        new._tags = dict(self._tags)
        new._discovered = True
        return new

    def register_lazy(
        self, name: str, target: str, version: str | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Declare a plugin by ``"module:attr"``, imported only when asked for by name.

        ``version`` (optional) lets planning compute run ids without importing the plugin; it
        must equal the class's own ``version`` (a contract test checks it). ``tags`` (optional)
        are properties that reports show without importing the plugin (e.g. a mixer that
        ``aligns``); they must equal the class's own ``tags``.
        """
        if name not in self._objects:
            self._lazy[name] = target
            if version is not None:
                self._declared[name] = version
            self._tags[name] = frozenset(tags)

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        if self._builtins:
            importlib.import_module(self._builtins)
        for ep in entry_points(group=f"acbench.{self.kind}"):
            if ep.name not in self._objects and ep.name not in self._lazy:
                self._lazy[ep.name] = ep.value

    # -- lookup -------------------------------------------------------------------------------
    def names(self, pattern: str = "*") -> list[str]:
        """Sorted plugin names matching a shell-style wildcard pattern."""
        self._discover()
        return sorted(n for n in {*self._objects, *self._lazy} if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._objects or name in self._lazy

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise :class:`UnknownPluginError` with suggestions."""
        if name in self:
            return name
        singular = self.kind[:-1] if self.kind.endswith("s") else self.kind
        raise UnknownPluginError(unknown(singular, name, self.names(), n=3, cutoff=0.5))

    def get(self, name: str) -> T:
        """The plugin factory registered under ``name`` (imported on first use)."""
        self.check(name)
        if name not in self._objects:
            obj = _load(self._lazy.pop(name))
            self._objects[name] = obj  # type: ignore[assignment]
            try:
                obj.name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
        return self._objects[name]

    def version(self, name: str) -> str:
        """The plugin's ``version`` attribute (part of every run id)."""
        if name in self._declared and name not in self._objects:
            self.check(name)
            return self._declared[name]
        return str(getattr(self.get(name), "version", "0"))

    def declared_version(self, name: str) -> str | None:
        """The version declared with a lazy registration (None if none was declared)."""
        self._discover()
        return self._declared.get(name)

    def declared_tags(self, name: str) -> frozenset[str] | None:
        """A plugin's tags, without importing it: declared with its lazy registration, or those
        of the object already loaded; None when unknown (an entry point not yet imported)."""
        self._discover()
        if name in self._objects:
            return frozenset(getattr(self._objects[name], "tags", ()))
        return self._tags.get(name)

    def loaded(self, name: str) -> bool:
        """Whether the plugin's module is already imported."""
        return name in self._objects

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


ORDERINGS: Registry = Registry("orderings", "acbench.orderings")
MIXERS: Registry = Registry("mixers", "acbench.mixers")
CODECS: Registry = Registry("codecs", "acbench.codecs")
DATASETS: Registry = Registry("datasets", "acbench.data")

REGISTRIES: dict[str, Registry] = {r.kind: r for r in (ORDERINGS, MIXERS, CODECS, DATASETS)}
