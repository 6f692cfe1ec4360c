"""A clock the tests move by hand, instead of sleeping."""

from __future__ import annotations

import threading
import time


class FakeClock:
    """A :class:`~oauth_middleware.clock.Clock` that only moves when told to.

    It starts at the real time (both clocks), so that records and tokens
    made with the real clock (signed JWTs, saved records, a deadline taken
    before it was swapped in) stay comparable with it.
    ``sleep`` moves it instead of waiting, so a loop that sleeps (the
    throttle's wait) ends at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._time = time.time()
        self._monotonic = time.monotonic()

    def time(self) -> float:
        """The fake Unix time."""
        with self._lock:
            return self._time

    def monotonic(self) -> float:
        """The fake monotonic clock."""
        with self._lock:
            return self._monotonic

    def sleep(self, seconds: float) -> None:
        """Move on ``seconds`` without waiting."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move both clocks on by ``seconds``."""
        with self._lock:
            self._time += seconds
            self._monotonic += seconds
