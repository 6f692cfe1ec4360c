"""The storage Protocol every backend meets.

Backends are deliberately dumb: a key/value space with expiry, an atomic
*take*, sets used as indexes, and a counter. All OAuth logic (revocation
cascades, refresh families, unique tokens) lives once, above them, in
:mod:`oauth_middleware.repository`, so every backend behaves the same.

Rules every backend keeps:

* values are JSON-compatible ``dict`` objects; callers never mutate them;
* ``ttl`` is whole seconds, ``None`` means no expiry; an expired entry is
  never returned and is eventually removed;
* :meth:`Store.take` is atomic: of two concurrent takes of one key, exactly
  one gets the value; :meth:`Store.incr` and :meth:`Store.decr` are atomic:
  concurrent calls never lose a count;
* any failure to reach the backend raises
  :class:`~oauth_middleware.errors.StoreUnavailable`, never a driver error.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..clock import SYSTEM_CLOCK, Clock

Value = dict[str, Any]


@dataclass(frozen=True)
class StoreConfig:
    """What a backend needs to open itself, built once from the settings.

    :param url: the ``store`` setting, e.g. ``sqlite:///var/oauth.db``.
    :param timeout: seconds before a call to a networked store gives up.
    :param prefix: prefix for every key (shared Redis/memcached servers).
    :param clock: the time expiries are kept by, where the store keeps them
        itself (memory, SQLite, PostgreSQL, MySQL); a server's own TTLs
        (Redis) keep real time.
    :param pool_size: most connections one process opens (PostgreSQL, MySQL).
    :param table_prefix: prefix of the table names, optionally after a schema
        name and a dot (PostgreSQL, MySQL).
    """

    url: str
    timeout: float = 2.0
    prefix: str = "oauth2:"
    clock: Clock = SYSTEM_CLOCK
    pool_size: int = 10
    table_prefix: str = "oauth_"


class Store(Protocol):
    """A key/value store with expiry, atomic take, set indexes and counters."""

    def ping(self) -> None:
        """Check the store can be reached; raise ``StoreUnavailable`` if not."""

    def get(self, key: str) -> Value | None:
        """Return the live value under ``key``, or None."""

    def put(self, key: str, value: Value, ttl: int | None) -> None:
        """Store ``value`` under ``key``, replacing what was there."""

    def add(self, key: str, value: Value, ttl: int | None) -> bool:
        """Store ``value`` only if ``key`` holds no live value; True if stored."""

    def take(self, key: str) -> Value | None:
        """Atomically remove and return the live value under ``key``."""

    def delete(self, *keys: str) -> None:
        """Remove the keys (missing keys are ignored)."""

    def index_add(self, key: str, member: str, ttl: int | None) -> None:
        """Add ``member`` to the set ``key``; the set lives at least ``ttl``."""

    def index_discard(self, key: str, member: str) -> None:
        """Remove ``member`` from the set ``key``."""

    def index_members(self, key: str) -> set[str]:
        """Return the members of the set ``key`` (empty when missing)."""

    def incr(self, key: str, ttl: int) -> int:
        """Add one to the counter ``key`` (created with ``ttl``); return it."""

    def decr(self, key: str) -> None:
        """Take one back from the live counter ``key``, keeping its expiry.

        Never below zero, and a missing or expired counter stays missing: a
        give-back that arrives after its counter expired must not start a new one.
        """

    def close(self) -> None:
        """Release connections and files."""


@runtime_checkable
class BatchCounterStore(Protocol):
    """A store that counts several counters up, or back, in one operation (SQLite: one statement).

    The throttle counts each attempt against two counters before the
    credentials are checked and gives both back after: on SQLite four write
    transactions per token request become two. Each counter behaves as with
    :meth:`Store.incr` and :meth:`Store.decr`.
    """

    def incr_many(self, keys: tuple[str, ...], ttl: int) -> tuple[int, ...]:
        """:meth:`Store.incr` on each of ``keys`` at once; their counts, in the order of ``keys``."""

    def decr_many(self, keys: tuple[str, ...]) -> None:
        """:meth:`Store.decr` on each of ``keys`` at once."""


@runtime_checkable
class ChangeStore(Protocol):
    """A store that can tell, cheaply, whether a stored value was replaced or removed since (SQLite, memory).

    The guard's token cache asks it on each hit and reads the revocation
    generation only after a change, instead of every
    ``guard_cache_staleness`` seconds: a revocation elsewhere is seen by the
    next request (see :mod:`oauth_middleware.token_cache`).
    """

    def changes(self) -> Hashable:
        """A value that differs from the previous call's when a value was replaced or removed since.

        Replaced or removed through any store of the same data, in any
        process: by :meth:`Store.put` (which may count a new key too),
        :meth:`Store.take` or :meth:`Store.delete`. Counters and new keys
        need not move it. Cheap: no store round trip.

        :raises StoreUnavailable: the store cannot be asked.
        """


#: What :meth:`ChannelStore.listen` yields when its connection is lost, just before it raises.
LOST = -1


@runtime_checkable
class ChannelStore(Protocol):
    """A store that also carries messages to every process connected to it (Redis pub/sub).

    The guard's token cache hears of ended tokens this way, at once, instead
    of polling (see :mod:`oauth_middleware.token_cache`).
    """

    def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to every process listening on ``channel``."""

    def listen(
        self, channel: str, heartbeat: float, stop: threading.Event, busy: threading.Lock
    ) -> Iterator[int | str]:
        """The messages of ``channel``, on a connection of their own, until ``stop`` is set.

        Yields the connection's socket (a file descriptor) each time the
        subscription is (again) in place: messages sent before may have been
        missed, and while the socket is readable some were not yielded yet.
        Then yields each message. ``busy`` is held from before anything is
        read from the socket until what was read was yielded and handled; a
        lost connection is yielded as :data:`LOST` that way before it raises.
        Checks the connection every ``heartbeat`` seconds of silence.

        :raises StoreUnavailable: the connection is lost or does not answer
            (the messages sent meanwhile are lost).
        """


def expiry_time(ttl: int | None, clock: Clock = SYSTEM_CLOCK) -> float | None:
    """The Unix time a value stored now (by ``clock``) with ``ttl`` dies at (None: never)."""
    return None if ttl is None else clock.time() + ttl


def index_deadline(current: float | None, new: float | None, *, fresh: bool) -> float | None:
    """The deadline of a set index after adding a member that lives until ``new``.

    A fresh (empty or expired) set takes the member's deadline; otherwise the
    later of the two wins, and None (forever) beats any time.
    """
    if fresh:
        return new
    if current is None or new is None:
        return None
    return max(current, new)
