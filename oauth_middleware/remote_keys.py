"""The authorization server's public keys, fetched from its JWKS by a guard elsewhere.

A guard-only resource server with ``jwks_url`` fetches the key set once at
start-up (an unreachable or unusable JWKS stops the start with one line
naming ``jwks_url``) and again only when a token names a ``kid`` it does not
know, which is how it learns the key of a rotation. Those refetches are
bounded: at most one per ``jwks_refetch_interval`` seconds, failed attempts
included, so neither tokens with made-up ``kid``\\ s nor an outage of the
authorization server make us hammer it.

The HTTP request is :class:`~oauth_middleware.fetch.Fetcher`'s: https (or
http), no redirects (a key set is never taken from elsewhere than the
configured URL), one deadline, and at most :data:`MAX_JWKS_SIZE` bytes read
(a client's ``jwks_uri`` is the client's to choose: an endless body must not
fill our memory); for a client's ``jwks_uri`` it also refuses special-use
addresses. PyJWT's :class:`jwt.PyJWKClient` is not used: it reads the whole
body, holds a lock across the network call (every verification would wait
behind a slow refetch), starts its cooldown only after a *successful* fetch
(an unreachable JWKS would be asked again on every request with an unknown
``kid``), and takes a key's algorithm from the JWK. Here each key passes the
same checks as a key read from a file (:func:`~.keys.public_jwk_key`).

When a refetch fails, a token whose ``kid`` is unknown is refused with 503
``temporarily_unavailable`` until a later refetch succeeds: it may be valid,
we cannot tell, so it does not pass (fail closed), and the client is not told
to throw it away. Tokens whose key is known keep working throughout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .errors import BearerUnavailable, ConfigError, OAuthError
from .fetch import Fetcher, FetchError
from .keys import Key, public_jwk_key

log = logging.getLogger("oauth_middleware.keys")

#: Largest key set read, in bytes (a JWK Set of a few keys is a few KiB).
MAX_JWKS_SIZE = 256 * 1024


class KeysUnavailable(Exception):
    """The key set could not be fetched or held no usable key; the message says why."""


class RemoteKeys:
    """The verification keys of a JWKS URL: fetched at start-up, refetched on an unknown ``kid``.

    :param url: the JWKS URL (``jwks_url``).
    :param interval: fewest seconds between two fetches (``jwks_refetch_interval``).
    :param timeout: seconds before a fetch gives up (``jwks_timeout``).
    :param clock: a monotonic clock; tests pass their own.
    :param unavailable: the error raised while the set cannot be fetched: the
        guard's 503 by default; the token endpoint's for a client's ``jwks_uri``.
    :param fetcher: how the set is fetched; by default one with ``timeout`` that
        trusts the URL's address (the guard's own ``jwks_url``, which the operator
        configured). A client's ``jwks_uri`` is fetched with a restricted one.

    Example::

        remote = RemoteKeys("https://auth.example.com/oauth/jwks", interval=60, timeout=5)
        remote.load()                 # ConfigError naming jwks_url if it cannot be fetched
        key = remote.find(kid)        # None: no such key, even after a refetch
    """

    def __init__(
        self,
        url: str,
        *,
        interval: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        unavailable: type[OAuthError] = BearerUnavailable,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.url = url
        self.fetcher = fetcher or Fetcher(timeout=timeout, restricted=False)
        self.unavailable = unavailable
        self.interval = interval
        self.clock = clock
        self.timeout = timeout
        #: How many fetches were attempted, successful or not.
        self.fetches = 0
        # Every key of a kid: FAPI 2.0 §5.4.3 asks a verifier to tell keys sharing one apart (by alg).
        self._keys: Mapping[str, tuple[Key, ...]] = {}
        self._next_fetch = float("-inf")
        self._failing = False
        # Taken only on an unknown kid: requests with a known key never wait for a fetch.
        self._lock = threading.Lock()

    @property
    def keys(self) -> Mapping[str, Key]:
        """The keys of the last successful fetch, by ``kid`` (the first of those sharing one)."""
        return {kid: keys[0] for kid, keys in self._keys.items()}

    @property
    def every_key(self) -> tuple[Key, ...]:
        """Every key of the last successful fetch, those sharing a ``kid`` included."""
        return tuple(key for keys in self._keys.values() for key in keys)

    def load(self) -> None:
        """Fetch the key set at start-up.

        :raises ConfigError: one line naming ``jwks_url``.
        """
        with self._lock:
            self._next_fetch = self.clock() + self.interval  # the start-up fetch counts too
            try:
                self._keys = self._fetch()
            except KeysUnavailable as exc:
                raise ConfigError(f"jwks_url: {exc}") from None
        log.info("JWKS fetched from %s: %d keys", self.url, len(self.every_key))

    def find(self, kid: str) -> Key | None:
        """The key named ``kid`` (the first, if several share it), as :meth:`find_all` finds it.

        :returns: None when the key set, fetched recently enough, has no such key.
        :raises OAuthError: ``unavailable``: the key is unknown and the JWKS could not be
            fetched (now or at the last attempt).
        """
        keys = self.find_all(kid)
        return keys[0] if keys else None

    def find_all(self, kid: str) -> tuple[Key, ...]:
        """Every key named ``kid``, refetching the set first if it is unknown and a fetch is due.

        :returns: empty when the key set, fetched recently enough, has no such key.
        :raises OAuthError: ``unavailable``: the key is unknown and the JWKS could not be
            fetched (now or at the last attempt).
        """
        keys = self._keys.get(kid)
        if keys:
            return keys
        with self._lock:
            # Another request may have fetched the set while this one waited.
            keys = self._keys.get(kid)
            if keys:
                return keys
            now = self.clock()
            if now < self._next_fetch:
                if self._failing:
                    raise self.unavailable("the signing keys cannot be fetched, try again later")
                return ()
            self._next_fetch = now + self.interval
            return self._refetch(kid)

    def _refetch(self, kid: str) -> tuple[Key, ...]:
        """Fetch the set again (the lock is held) and look ``kid`` up in it."""
        try:
            keys = self._fetch()
        except KeysUnavailable as exc:
            if not self._failing:
                log.error("JWKS unavailable, refusing tokens with an unknown kid: %s", exc)
            self._failing = True
            raise self.unavailable("the signing keys cannot be fetched, try again later") from None
        if self._failing:
            log.warning("JWKS at %s reachable again: %d keys", self.url, sum(map(len, keys.values())))
        else:
            log.info(
                "JWKS refetched from %s for an unknown kid: %d keys", self.url, sum(map(len, keys.values()))
            )
        self._failing = False
        self._keys = keys
        return keys.get(kid, ())

    def _fetch(self) -> dict[str, tuple[Key, ...]]:
        """Fetch and check the key set; keys we cannot use are skipped and logged."""
        self.fetches += 1
        try:
            document: Any = self.fetcher.fetch(self.url, MAX_JWKS_SIZE).document
        except FetchError as exc:
            raise KeysUnavailable(f"cannot fetch {self.url}: {exc}") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise KeysUnavailable(f"{self.url} did not answer with a JWK Set")
        keys: dict[str, tuple[Key, ...]] = {}
        for index, entry in enumerate(entries):
            try:
                key = public_jwk_key(entry, f"key {index} of {self.url}")
            except ConfigError as exc:
                log.info("JWKS key skipped: %s", exc)
                continue
            keys[key.kid] = (*keys.get(key.kid, ()), key)
        if not keys:
            raise KeysUnavailable(f"{self.url} has no key this guard can verify with")
        return keys
