"""The store backends the contract suite runs against, one entry each.

A test module gets the fixtures with::

    from store_fixtures import backend, store  # noqa: F401

(pytest's default ``prepend`` import mode puts ``tests/`` on ``sys.path``).
Each test that asks for ``store`` then runs once per entry of
:data:`BACKENDS`, with the entry's name as the test id (``test_x[sqlite]``).

To add a backend, write a context manager that opens a clean store for one
test, keeping expiry by the clock it is given if it keeps expiry itself
(skip with ``pytest.skip`` when its server is not reachable), and add one
line to :data:`BACKENDS`::

    "redis": Backend(_redis, marks=(pytest.mark.redis,), server_clock=True),

``timed_store`` gives a test the store and how to let time pass for it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from servers import shared_mariadb, shared_memcached, shared_postgres, shared_redis

from oauth_middleware.clock import SYSTEM_CLOCK, Clock
from oauth_middleware.stores import Store, StoreConfig, open_store


@dataclass(frozen=True)
class Backend:
    """How to open one backend for one test.

    :param open: given the pytest ``request`` and the clock the store is to
        keep expiry by, a context manager yielding an empty store and
        cleaning up after it.
    :param expiry_slack: seconds to wait past a ttl before an entry must be
        gone; more for servers with a coarse clock (memcached ticks once a second).
    :param marks: pytest marks for the backend's tests, e.g. to select them.
    :param server_clock: expiry is kept by a server's own clock, which only
        real waiting moves (Redis, memcached), not by the store's ``clock``.
    """

    open: Callable[[pytest.FixtureRequest, Clock], AbstractContextManager[Store]]
    expiry_slack: float = 0.2
    marks: tuple[Any, ...] = ()
    server_clock: bool = False


@contextmanager
def _memory(request: pytest.FixtureRequest, clock: Clock) -> Iterator[Store]:
    store = open_store(StoreConfig("memory://", clock=clock))
    try:
        yield store
    finally:
        store.close()


def sqlite_url(directory: Path, name: str = "store.db") -> str:
    """A ``sqlite://`` URL for a file in ``directory`` (absolute, so four slashes)."""
    return f"sqlite:///{directory / name}"


@contextmanager
def _sqlite(request: pytest.FixtureRequest, clock: Clock) -> Iterator[Store]:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    store = open_store(StoreConfig(sqlite_url(tmp_path), clock=clock))
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _networked(url: str) -> Iterator[Store]:
    # A fresh prefix per test: tests share the server but never see each other's keys.
    store = open_store(StoreConfig(url, timeout=1.0, prefix=f"test-{uuid.uuid4().hex}:"))
    try:
        yield store
    finally:
        store.close()


def _redis(request: pytest.FixtureRequest, clock: Clock) -> AbstractContextManager[Store]:
    return _networked(shared_redis(request).url)


def _memcache(request: pytest.FixtureRequest, clock: Clock) -> AbstractContextManager[Store]:
    return _networked(shared_memcached(request).url)


def fresh_table_prefix() -> str:
    """A table prefix no other test uses: tests share a database server, never tables."""
    return f"t{uuid.uuid4().hex[:12]}_"


@contextmanager
def _database(url: str, clock: Clock) -> Iterator[Store]:
    store = open_store(StoreConfig(url, timeout=2.0, clock=clock, table_prefix=fresh_table_prefix()))
    try:
        yield store
    finally:
        store.close()


def _postgresql(request: pytest.FixtureRequest, clock: Clock) -> AbstractContextManager[Store]:
    return _database(shared_postgres(request).url, clock)


def _mysql(request: pytest.FixtureRequest, clock: Clock) -> AbstractContextManager[Store]:
    return _database(shared_mariadb(request).url, clock)


#: Backend name (the test id) -> how to open it.
BACKENDS: dict[str, Backend] = {
    "memory": Backend(_memory),
    "sqlite": Backend(_sqlite),
    "redis": Backend(_redis, server_clock=True),
    # Counters are native memcached numbers, which outlive their ttl by up to a second.
    "memcache": Backend(_memcache, expiry_slack=1.2, server_clock=True),
    # Expiry by the store's clock, as in SQLite: the hosts' time decides, not the database's.
    "postgresql": Backend(_postgresql),
    "mysql": Backend(_mysql),
}


@pytest.fixture(params=[pytest.param(name, id=name, marks=spec.marks) for name, spec in BACKENDS.items()])
def backend(request: pytest.FixtureRequest) -> Backend:
    """The :class:`Backend` under test (one test per entry of :data:`BACKENDS`)."""
    return BACKENDS[request.param]


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: Backend) -> Iterator[Store]:
    """An empty store of each backend, closed after the test."""
    with backend.open(request, SYSTEM_CLOCK) as opened:
        yield opened


@pytest.fixture
def timed_store(
    request: pytest.FixtureRequest, backend: Backend
) -> Iterator[tuple[Store, Callable[[float], None]]]:
    """An empty store of each backend, and how to let time pass for it.

    Memory and SQLite keep expiry by a :class:`FakeClock`, moved on at once;
    Redis and memcached by their server's clock, for which the test really waits.
    """
    clock = FakeClock()
    with backend.open(request, clock) as opened:
        yield opened, time.sleep if backend.server_clock else clock.advance
