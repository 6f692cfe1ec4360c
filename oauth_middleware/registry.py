"""Named extension points: one :class:`Registry` per kind of plug-in.

Each kind (grant types, client authentication methods, guard token types,
store URL schemes, endpoints) has one registry. The package registers its
own entries when the module that defines them is imported; another package
registers its own either by calling :meth:`Registry.register` or through a
setuptools entry point in the registry's group, loaded the first time the
registry is read::

    # pyproject.toml of a third-party package
    [project.entry-points."oauth_middleware.stores"]
    mystore = "my_package.store:MyStore"

Settings, metadata and checks ask a registry for its names instead of
keeping a list of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind by name, extended by entry points of ``group``.

    :param kind: what an entry is, for error messages (``"store scheme"``).
    :param group: the entry-point group third-party packages register in.

    Example::

        STORES: Registry[type[Store]] = Registry("store scheme", "oauth_middleware.stores")
        STORES.register("memory", MemoryStore)
        STORES.get("memory")  # MemoryStore
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name`` and return it (usable as a decorator's result).

        :param replace: allow replacing an entry of that name; without it a
            second registration of a name is a :class:`ConfigError`, so two
            plug-ins cannot silently take over each other's names.
        """
        with self._lock:
            if not replace and name in self._entries and self._entries[name] is not entry:
                raise ConfigError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove the entry ``name`` (missing names are ignored)."""
        with self._lock:
            self._entries.pop(name, None)

    def get(self, name: str) -> T | None:
        """The entry registered as ``name``, or None."""
        self._load_entry_points()
        return self._entries.get(name)

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        self._load_entry_points()
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load_entry_points(self) -> None:
        """Register the entry points of :attr:`group`, once per process."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            found = list(entry_points(group=self.group))
        for point in found:
            try:
                entry = point.load()
            except Exception as exc:  # a broken plug-in must name itself, not crash the start
                raise ConfigError(
                    f"{self.kind} {point.name!r}: cannot load entry point {point.value!r} "
                    f"of group {self.group}: {exc}"
                ) from None
            self.register(point.name, entry)
