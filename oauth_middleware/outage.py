"""Logs a store outage once per interval instead of once per request."""

from __future__ import annotations

import logging
import threading

from .clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("oauth_middleware.store")


class OutageLog:
    """Rate-limited log of store failures, and of the recovery after one.

    :param interval: seconds between two log lines about the same outage.
    :param clock: the clock the interval runs on.
    """

    def __init__(self, interval: float = 60.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self.interval = interval
        self.clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def failed(self, error: Exception) -> None:
        """Record a failed store call; logs at most once per interval."""
        now = self.clock.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                return
            self._last = now
        log.error("store unavailable, failing closed: %s", error)

    def succeeded(self) -> None:
        """Record that the store answered again (cheap when nothing was down)."""
        if self._last is None:
            return
        with self._lock:
            # Checked again under the lock: of the requests that see the recovery at once, one logs it.
            if self._last is None:
                return
            self._last = None
        log.warning("store reachable again")
