"""One check for networked stores: every call fails fast and cleanly while the server is down."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from servers import Server

from oauth_middleware.errors import StoreUnavailable
from oauth_middleware.stores import Store


def check_outage_then_restart(store: Store, server: Server, message: str, *, limit: float = 1.0) -> None:
    """Stop ``server``: every Store call must raise ``StoreUnavailable`` matching
    ``message`` within ``limit`` seconds. The server is started again at the end."""
    store.put("k", {"x": 1}, 60)  # the pool now holds a live connection
    server.stop()
    try:
        calls: list[Callable[[], object]] = [
            store.ping,
            lambda: store.get("k"),
            lambda: store.put("k", {"x": 2}, 60),
            lambda: store.add("k", {"x": 2}, 60),
            lambda: store.take("k"),
            lambda: store.delete("k"),
            lambda: store.index_add("i", "m", 60),
            lambda: store.index_discard("i", "m"),
            lambda: store.index_members("i"),
            lambda: store.incr("n", 60),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match=message):
                call()
            assert time.monotonic() - started < limit
    finally:
        server.start()
