"""The guard's memo of ``Authorization: Bearer`` headers it verified lately.

A client sends the same header on request after request. Verifying it again
(parse, hash, cache look-up, rebuild, audience check) was most of a cached
guard request; the memo answers the header with the token verified last time,
but only while that verdict is known to hold:

* each entry keeps the token format's stamp read *before* its header was
  verified (:meth:`TokenFormat.stamp
  <oauth_middleware.tokens.base.TokenFormat.stamp>`), and is used only while
  the stamp is still the same: the stamp moves whenever a token ended
  anywhere (the guard's token cache forgot something) and is None whenever
  the cache cannot vouch (channel down, caches off), so a revocation that
  reaches the token cache reaches the memo too, and a verdict racing one is
  never kept;
* the token's ``exp`` is checked on every use, the scope rules are applied
  to every request, and a request that carries a token anywhere else too
  (the query string) goes the full way;
* it holds at most ``guard_cache_size`` headers, the oldest filled dropped
  first. It lives in the process's memory only, like the verified-JWT
  cache, and is keyed by the header (a token in clear) so that a hit
  computes no hash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

from .models import AccessToken

__all__ = ["VerifiedHeaders"]


class VerifiedHeaders:
    """A bounded map of ``Authorization`` header -> (token, stamp it was verified under).

    :param size: most headers kept; at least 1.

    Example::

        memo = VerifiedHeaders(10_000)
        memo.put("Bearer abc", token, stamp)
        token, stamp = memo.get("Bearer abc")
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[str, tuple[AccessToken, Hashable]] = {}
        self._lock = threading.Lock()
        #: The look-up, bound once: the guard calls it on every request with a header.
        self.get: Callable[[str], tuple[AccessToken, Hashable] | None] = self._entries.get

    def put(self, header: str, token: AccessToken, stamp: Hashable) -> None:
        """Remember that ``header`` verified to ``token`` under ``stamp``."""
        with self._lock:
            entries = self._entries
            if header not in entries and len(entries) >= self.size:
                # Dicts keep insertion order: the first key is the oldest fill.
                del entries[next(iter(entries))]
            entries[header] = (token, stamp)

    def __len__(self) -> int:
        return len(self._entries)
