"""In-process store (``memory://``): for tests, demos and single processes.

Everything lives in dicts guarded by one lock, so takes are atomic across
threads. Nothing survives a restart and nothing is shared between worker
processes: use SQLite, Redis or memcached for that.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from itertools import islice

from ..clock import SYSTEM_CLOCK
from .base import StoreConfig, Value, expiry_time, index_deadline

#: Expired entries are swept at most this often (seconds).
_SWEEP_INTERVAL = 60.0

#: Most expired values, and most expired indexes, one sweep deletes, so that
#: the write which runs it holds the lock briefly however many expired. A
#: full batch means more may be waiting: the next write sweeps again.
SWEEP_BATCH = 1000


class MemoryStore:
    """A :class:`~oauth_middleware.stores.base.Store` kept in dictionaries.

    :param config: only its ``clock`` is used, for expiry.
    """

    def __init__(self, config: StoreConfig | None = None) -> None:
        self.clock = config.clock if config is not None else SYSTEM_CLOCK
        self._values: dict[str, tuple[Value, float | None]] = {}
        self._indexes: dict[str, tuple[set[str], float | None]] = {}
        self._lock = threading.Lock()
        self._next_sweep = self.clock.monotonic() + _SWEEP_INTERVAL
        #: Counts the values replaced or removed (:meth:`changes`).
        self._changes = 0

    def ping(self) -> None:
        """Always reachable."""

    def get(self, key: str) -> Value | None:
        """Return the live value under ``key``, or None."""
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self.clock.time():
            return None
        return value

    def put(self, key: str, value: Value, ttl: int | None) -> None:
        """Store ``value`` under ``key``."""
        with self._lock:
            if key in self._values:
                self._changes += 1
            self._values[key] = (value, expiry_time(ttl, self.clock))
            self._maybe_sweep()

    def add(self, key: str, value: Value, ttl: int | None) -> bool:
        """Store ``value`` unless a live value is there; True if stored."""
        with self._lock:
            if self.get(key) is not None:
                return False
            self._values[key] = (value, expiry_time(ttl, self.clock))
            return True

    def take(self, key: str) -> Value | None:
        """Atomically remove and return the live value under ``key``."""
        with self._lock:
            value = self.get(key)
            if self._values.pop(key, None) is not None:
                self._changes += 1
            return value

    def delete(self, *keys: str) -> None:
        """Remove the keys."""
        with self._lock:
            self._changes += 1
            for key in keys:
                self._values.pop(key, None)
                self._indexes.pop(key, None)

    def index_add(self, key: str, member: str, ttl: int | None) -> None:
        """Add ``member`` to the set ``key``, extending its life to ``ttl``."""
        with self._lock:
            members, expires = self._live_index(key)
            members.add(member)
            self._indexes[key] = (
                members,
                index_deadline(expires, expiry_time(ttl, self.clock), fresh=not members - {member}),
            )

    def index_discard(self, key: str, member: str) -> None:
        """Remove ``member`` from the set ``key``."""
        with self._lock:
            entry = self._indexes.get(key)
            if entry is not None:
                entry[0].discard(member)

    def index_members(self, key: str) -> set[str]:
        """Return a copy of the set ``key``."""
        with self._lock:
            entry = self._indexes.get(key)
            if entry is None or (entry[1] is not None and entry[1] <= self.clock.time()):
                return set()
            return set(entry[0])

    def incr(self, key: str, ttl: int) -> int:
        """Add one to the counter ``key``; a new counter expires after ``ttl``."""
        with self._lock:
            current = self.get(key)
            count = (current["n"] if current else 0) + 1
            expires = self._values[key][1] if current else expiry_time(ttl, self.clock)
            self._values[key] = ({"n": count}, expires)
            return count

    def decr(self, key: str) -> None:
        """Take one back from the live counter ``key`` (never below zero)."""
        with self._lock:
            current = self.get(key)
            if current and current.get("n", 0) > 0:
                self._values[key] = ({"n": current["n"] - 1}, self._values[key][1])

    def changes(self) -> int:
        """How many times a value was replaced or removed (:class:`~oauth_middleware.stores.base.ChangeStore`)."""
        return self._changes

    def close(self) -> None:
        """Drop everything."""
        with self._lock:
            self._changes += 1
            self._values.clear()
            self._indexes.clear()

    def _live_index(self, key: str) -> tuple[set[str], float | None]:
        entry = self._indexes.get(key)
        if entry is None or (entry[1] is not None and entry[1] <= self.clock.time()):
            entry = (set(), None)
            self._indexes[key] = entry
        return entry

    def _maybe_sweep(self) -> None:
        """Delete up to :data:`SWEEP_BATCH` expired values and indexes, once per interval.

        After a full batch the next write sweeps again, so a backlog drains a
        bounded batch per write.
        """
        now_mono = self.clock.monotonic()
        if now_mono < self._next_sweep:
            return
        self._next_sweep = now_mono + _SWEEP_INTERVAL
        now = self.clock.time()
        values, indexes = _expired(self._values, now), _expired(self._indexes, now)
        for key in values:
            del self._values[key]
        for key in indexes:
            del self._indexes[key]
        if SWEEP_BATCH in (len(values), len(indexes)):
            self._next_sweep = now_mono


def _expired(table: Mapping[str, tuple[object, float | None]], now: float) -> list[str]:
    """Up to :data:`SWEEP_BATCH` keys of ``table`` expired at ``now`` (the scan stops there)."""
    return list(
        islice((key for key, (_, exp) in table.items() if exp is not None and exp <= now), SWEEP_BATCH)
    )
