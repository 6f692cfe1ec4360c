"""A memory store that can be switched off, to test failing closed."""

from __future__ import annotations

from typing import Any

from oauth_middleware.errors import StoreUnavailable
from oauth_middleware.stores.memory import MemoryStore


class FlakyStore(MemoryStore):
    """Every call raises ``StoreUnavailable`` while ``down`` is true."""

    down = False

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if not name.startswith("_") and callable(attribute) and super().__getattribute__("down"):

            def unavailable(*args: Any, **kwargs: Any) -> Any:
                raise StoreUnavailable("connection refused")

            return unavailable
        return attribute
