"""JWTs that others sign and present to this server: the checks they all share.

Client assertions (``private_key_jwt``, RFC 7523 §2.2), JWT authorization
grants (RFC 7523 §2.1) and the subject and actor tokens of a token exchange
issued by a trusted issuer (RFC 8693) are each signed by a key this server
does not hold, addressed to this server, and short-lived. :class:`PeerJWTs`
checks those three things the same way for all of them (RFC 7523 §3 items
3-6 and 9); what each kind adds (who the issuer may be, single use) is its
caller's.

The algorithm comes from the caller's allow-list and must be the key's own;
``none`` is never in an allow-list, and HMAC only in ``client_secret_jwt``'s,
with the client's own secret as the key. Keys published at a
``jwks_uri`` are fetched by :class:`~oauth_middleware.remote_keys.RemoteKeys`,
one cache per URL shared by every client or issuer that names it, through the
restricted :class:`~oauth_middleware.fetch.Fetcher` (a client chooses its
``jwks_uri``: no special-use address unless ``fetch_allowed_networks`` allows
it; the same rule for a trusted issuer's). While a set cannot be fetched, a JWT
whose key is not known yet is a 503, never a pass.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import jwt

from .clock import SYSTEM_CLOCK, Clock
from .errors import TemporarilyUnavailable
from .fetch import Fetcher
from .keys import Key
from .remote_keys import RemoteKeys

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger("oauth_middleware.clients")

#: Longest JWT read from a client, in characters: an RSA-4096 signature fits many times over.
MAX_JWT_LENGTH = 8192
#: Algorithms a peer's JWT may be signed with: asymmetric only (RFC 9700 §2.5), never ``none`` or HMAC.
#: PS256 needs an RSA key whose JWK says ``"alg": "PS256"`` (:func:`~oauth_middleware.keys.public_jwk_key`).
PEER_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
#: The claims every peer JWT carries (RFC 7523 §3; ``jti`` so that a replay can be refused).
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "jti")


class PeerJWTs:
    """Checks JWTs signed by a peer's key: signature, audience, lifetime.

    :param audiences: the ``aud`` values accepted: the issuer identifier, and
        the token endpoint URL when ``client_assertion_audience_token_endpoint``.
    :param interval: fewest seconds between two fetches of one ``jwks_uri``.
    :param timeout: seconds before a fetch of a ``jwks_uri`` gives up.
    :param clock: the time JWTs are checked at.
    :param leeway: seconds an ``iat`` or ``nbf`` may be in the future (clock skew, ``jwt_leeway``).
    :param fetcher: fetches ``jwks_uri`` key sets; by default a restricted one with ``timeout``.

    Example::

        jwts = PeerJWTs(("https://as.example",), interval=60, timeout=5)
        keys = lambda kid: jwts.keys(kid, jwks_uri="https://idp.example/jwks")
        claims = jwts.claims(token, algorithms=("ES256",), keys=keys, max_lifetime=300)
    """

    def __init__(
        self,
        audiences: tuple[str, ...],
        *,
        interval: float,
        timeout: float,
        clock: Clock = SYSTEM_CLOCK,
        leeway: int = 0,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.audiences = audiences
        self.fetcher = fetcher or Fetcher(timeout=timeout)
        self.leeway = leeway
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self._remote: dict[str, RemoteKeys] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> PeerJWTs:
        """The checks the ``issuer``, ``client_assertion_audience_token_endpoint``, ``jwt_leeway``, ``jwks_*`` and ``fetch_allowed_networks`` settings describe."""
        audiences: tuple[str, ...] = (settings.issuer,)
        if settings.client_assertion_audience_token_endpoint:
            audiences += (settings.issuer + settings.token_path,)
        return cls(
            audiences,
            interval=settings.jwks_refetch_interval,
            timeout=settings.jwks_timeout,
            clock=clock,
            leeway=settings.jwt_leeway,
            fetcher=Fetcher(timeout=settings.jwks_timeout, allowed=settings.fetch_allowed_networks),
        )

    def claims(
        self,
        token: str,
        *,
        algorithms: Iterable[str],
        keys: Callable[[str | None], list[Key]],
        max_lifetime: int,
    ) -> dict[str, Any] | None:
        """The claims of ``token`` if one of ``keys(kid)`` signed it and they are timely; else None.

        :param algorithms: the allow-list its ``alg`` must be in (before any key is looked for).
        :param keys: the candidate keys for the header's ``kid`` (None: no ``kid``).
        :param max_lifetime: longest it may be valid, from now and from its ``iat``.
        :raises TemporarilyUnavailable: a ``jwks_uri`` the keys come from cannot be fetched.
        """
        if len(token) > MAX_JWT_LENGTH:
            return None
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.InvalidTokenError, RecursionError):
            return None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in tuple(algorithms) or (kid is not None and not isinstance(kid, str)):
            return None
        for key in keys(kid):
            if key.alg == alg:
                claims = self._decode(key, token)
                if claims is not None and self._timely(claims, max_lifetime):
                    return claims
        return None

    def keys(self, kid: str | None, *, jwks_uri: str | None = None, jwks: Iterable[Key] = ()) -> list[Key]:
        """The keys a JWT with ``kid`` may be signed with: those of ``jwks_uri``, else of ``jwks``.

        :raises TemporarilyUnavailable: ``jwks_uri`` cannot be fetched and the key is not known yet.
        """
        if jwks_uri is not None:
            remote = self.remote_keys(jwks_uri)
            if kid is not None:
                return list(remote.find_all(kid))  # keys sharing a kid are told apart by alg
            if not remote.keys:
                remote.find("")  # first use: fetch the set (a fetch failure is the 503)
            return list(remote.every_key)
        return [key for key in jwks if kid is None or key.kid == kid]

    def remote_keys(self, url: str) -> RemoteKeys:
        """The cached key set of ``url``, shared by every client and issuer registered with it."""
        with self._lock:
            remote = self._remote.get(url)
            if remote is None:
                remote = RemoteKeys(
                    url,
                    interval=self.interval,
                    timeout=self.timeout,
                    clock=self.clock.monotonic,
                    unavailable=TemporarilyUnavailable,
                    fetcher=self.fetcher,
                )
                self._remote[url] = remote
            return remote

    def _decode(self, key: Key, token: str) -> dict[str, Any] | None:
        """The token's claims if ``key`` signed it and it is addressed to us; else None."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.verifier,
                algorithms=[key.alg],
                audience=list(self.audiences),
                # The times are checked by _timely, on this server's clock.
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except (jwt.InvalidTokenError, RecursionError) as exc:
            log.info("signed JWT refused: %s", type(exc).__name__)
            return None
        return claims

    def _timely(self, claims: Mapping[str, Any], max_lifetime: int) -> bool:
        """``exp`` in the future but within ``max_lifetime``; ``nbf`` and ``iat`` not in the future; a ``jti``."""
        now = self.clock.time()
        times = [claims.get(name) for name in ("exp", "nbf", "iat")]
        # JSON numbers only, finite: Python's json reads NaN, which passes every comparison.
        if any(t is not None and not is_time(t) for t in times):
            return False
        exp, nbf, iat = times
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            return False
        if not isinstance(claims["iss"], str) or not isinstance(claims["sub"], str) or not claims["sub"]:
            return False
        if exp is None or exp <= now or exp > now + max_lifetime:
            return False
        # A clock a little ahead of ours is tolerated (jwt_leeway), never on exp.
        if iat is not None and (iat > now + self.leeway or exp - iat > max_lifetime):
            return False
        return nbf is None or nbf <= now + self.leeway

    def ttl(self, claims: Mapping[str, Any]) -> int:
        """Seconds a used ``jti`` is kept: as long as the JWT could still pass (its ``exp``, plus one)."""
        return int(claims["exp"] - self.clock.time()) + 1


def is_time(value: object) -> bool:
    """A finite number (not a bool): something a time can be compared with."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
