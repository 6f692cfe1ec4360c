"""A custom store URL scheme: ``testmem://NAME``, a memory store the tests can look into."""

from __future__ import annotations

from oauth_middleware.stores import StoreConfig
from oauth_middleware.stores.memory import MemoryStore

#: Every store opened, by its URL: the tests check that the tokens landed there.
OPENED: dict[str, DictStore] = {}


class DictStore(MemoryStore):
    """A :class:`MemoryStore` that records itself in :data:`OPENED`; registered through the Python API."""

    def __init__(self, config: StoreConfig | None = None) -> None:
        super().__init__(config)
        if config is not None:
            OPENED[config.url] = self

    def stored(self) -> list[str]:
        """The keys it holds now."""
        return list(self._values)


class EntryPointDictStore(DictStore):
    """The same store, for the scheme registered through the entry point."""
