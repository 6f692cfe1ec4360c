"""Time as a parameter: the one place the server reads the clock from.

Stores (expiry), token formats (``exp``, ``iat``, the verified-token cache),
grants (code and refresh expiry, the reuse grace), the throttle (blocks and
its short wait) and the session cookies all ask a :class:`Clock` handed to
them, never :mod:`time` itself, so that a test moves time forward instead
of sleeping (``OAuth2Middleware(app, clock=...)``).
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """What the server asks of the time."""

    def time(self) -> float:
        """Seconds since the Unix epoch: expiries, ``iat`` and ``exp``."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: intervals and deadlines."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (the throttle's wait for attempts being checked)."""


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic`, :func:`time.sleep`."""

    def time(self) -> float:
        """The Unix time now."""
        return time.time()

    def monotonic(self) -> float:
        """The monotonic clock now."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        time.sleep(seconds)


#: The clock everything uses unless it is given another.
SYSTEM_CLOCK: Clock = SystemClock()
