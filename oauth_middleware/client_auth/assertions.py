"""``private_key_jwt``: a client proves itself with a JWT signed by its own key (RFC 7523 §2.2, §3).

The method reads ``client_assertion_type`` and ``client_assertion``
(RFC 7521 §4.2) and names the client by the assertion's ``sub``, read
unverified only so the throttle counts the client it names. The
verification needs the server's issuer, clock and store, so it is done by
:class:`ClientAssertions`, which the authenticator hands to every method
with a ``verify_in`` (:class:`ContextualAuthMethod`).

``client_secret_jwt`` is not offered: it needs the client's secret in
clear to check the HMAC, and secrets are stored hashed.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import jwt

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigError, InvalidClient, TemporarilyUnavailable
from ..fetch import Fetcher
from ..keys import Key, public_jwk_key
from ..models import Client
from ..remote_keys import RemoteKeys
from ..repository import Repository
from .base import ClientCredentials

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("oauth_middleware.clients")

#: RFC 7523 §2.2: the ``client_assertion_type`` of a JWT assertion.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Algorithms a ``private_key_jwt`` assertion may be signed with: asymmetric only (RFC 9700 §2.5).
ASSERTION_ALGORITHMS = ("RS256", "ES256", "EdDSA")
#: Longest ``client_assertion`` read, in characters: an RSA-4096 signature fits many times over.
MAX_ASSERTION_LENGTH = 8192


class ClientAssertions:
    """Verifies client assertions for one server: audience, lifetime, single use, the client's keys.

    :param repository: where used ``jti`` values are recorded.
    :param audiences: the ``aud`` values accepted: the issuer identifier, and
        the token endpoint URL when ``client_assertion_audience_token_endpoint``.
    :param max_lifetime: longest an assertion may be valid, in seconds, from now
        and from its ``iat`` (``client_assertion_max_lifetime``).
    :param interval: fewest seconds between two fetches of one ``jwks_uri``.
    :param timeout: seconds before a fetch of a ``jwks_uri`` gives up.
    :param clock: the time assertions are checked at.
    :param fetcher: fetches ``jwks_uri`` key sets; by default a restricted one
        (no special-use address: the client chose the URL) with ``timeout``.

    Example::

        assertions = ClientAssertions(repository, ("https://as.example",), 300, interval=60, timeout=5)
        assertions.verify(client, assertion)    # True, once per jti
    """

    def __init__(
        self,
        repository: Repository,
        audiences: tuple[str, ...],
        max_lifetime: int,
        *,
        interval: float,
        timeout: float,
        clock: Clock = SYSTEM_CLOCK,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.repository = repository
        self.fetcher = fetcher or Fetcher(timeout=timeout)
        self.audiences = audiences
        self.max_lifetime = max_lifetime
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self._remote: dict[str, RemoteKeys] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, repository: Repository, clock: Clock) -> ClientAssertions:
        """The verifier the ``issuer`` and ``client_assertion_*`` settings describe."""
        audiences: tuple[str, ...] = (settings.issuer,)
        if settings.client_assertion_audience_token_endpoint:
            audiences += (settings.issuer + settings.token_path,)
        return cls(
            repository,
            audiences,
            settings.client_assertion_max_lifetime,
            interval=settings.jwks_refetch_interval,
            timeout=settings.jwks_timeout,
            clock=clock,
            fetcher=Fetcher(timeout=settings.jwks_timeout, allowed=settings.fetch_allowed_networks),
        )

    def verify(self, client: Client, assertion: str) -> bool:
        """True when ``assertion`` proves ``client``, and its ``jti`` was not used before.

        :raises TemporarilyUnavailable: the client's ``jwks_uri`` cannot be fetched
            and the assertion's key is not among those fetched before.
        """
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            return False
        alg, kid = header.get("alg"), header.get("kid")
        allowed = (
            (client.token_endpoint_auth_signing_alg,) if client.token_endpoint_auth_signing_alg else None
        )
        # The client's allow-list (else any asymmetric one) before any key is looked for: none and HMAC never pass.
        if alg not in (allowed or ASSERTION_ALGORITHMS) or (kid is not None and not isinstance(kid, str)):
            return False
        candidates = (self._claims(key, assertion) for key in self._keys(client, kid) if key.alg == alg)
        claims = next((found for found in candidates if found is not None), None)
        if claims is None:
            return False
        ttl = int(claims["exp"] - self.clock.time()) + 1
        # Single use (RFC 7523 §3 item 7): kept as long as the assertion could pass, one atomic add.
        return self.repository.record_client_assertion(client.client_id, claims["jti"], ttl)

    def _claims(self, key: Key, assertion: str) -> dict[str, Any] | None:
        """The assertion's claims if ``key`` signed it and they meet RFC 7523 §3; else None."""
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key.verifier,
                algorithms=[key.alg],
                audience=list(self.audiences),
                options={
                    "require": ["iss", "sub", "aud", "exp", "jti"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            log.info("client assertion refused: %s", type(exc).__name__)
            return None
        return claims if self._timely(claims) else None

    def _timely(self, claims: Mapping[str, Any]) -> bool:
        """``exp`` in the future but within the maximum lifetime; ``nbf`` and ``iat`` not in the future."""
        now = self.clock.time()
        times = [claims.get(name) for name in ("exp", "nbf", "iat")]
        # JSON numbers only, finite: Python's json reads NaN, which passes every comparison.
        if any(t is not None and not _is_time(t) for t in times):
            return False
        exp, nbf, iat = times
        if not isinstance(claims["jti"], str) or not claims["jti"] or claims["iss"] != claims["sub"]:
            return False
        if exp is None or exp <= now or exp > now + self.max_lifetime:
            return False
        if iat is not None and (iat > now or exp - iat > self.max_lifetime):
            return False
        return nbf is None or nbf <= now

    def _keys(self, client: Client, kid: str | None) -> list[Key]:
        """The client's keys an assertion with ``kid`` may be signed with."""
        if client.jwks_uri is not None:
            remote = self._remote_keys(client.jwks_uri)
            if kid is not None:
                key = remote.find(kid)
                return [] if key is None else [key]
            if not remote.keys:
                remote.find("")  # first use: fetch the set (a fetch failure is the 503)
            return list(remote.keys.values())
        keys = []
        for index, entry in enumerate(client.jwks):
            try:
                key = public_jwk_key(dict(entry), f"key {index} of client {client.client_id}")
            except ConfigError:
                continue  # checked at registration; a key this version cannot use never matches
            if kid is None or key.kid == kid:
                keys.append(key)
        return keys

    def _remote_keys(self, url: str) -> RemoteKeys:
        """The cached key set of ``url``, shared by every client registered with it."""
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


def _is_time(value: object) -> bool:
    """A finite number (not a bool): something a time can be compared with."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@runtime_checkable
class ContextualAuthMethod(Protocol):
    """A method that needs the server's :class:`ClientAssertions` to verify its credentials."""

    def verify_in(self, assertions: ClientAssertions, client: Client, credentials: ClientCredentials) -> bool:
        """True when ``credentials`` prove ``client``, checked with ``assertions``."""
        ...


class PrivateKeyJwt:
    """``private_key_jwt``: a JWT signed with a key the client registered (RFC 7523 §2.2)."""

    name = "private_key_jwt"
    uses_secret = False

    def credentials(self, headers: Mapping[str, str], form: Mapping[str, str]) -> ClientCredentials | None:
        """The assertion and the client its ``sub`` names (unverified); None without an assertion.

        :raises InvalidClient: another assertion type, or an assertion that is not a JWT naming a client.
        """
        if "client_assertion" not in form and "client_assertion_type" not in form:
            return None
        assertion = form.get("client_assertion", "")
        if form.get("client_assertion_type") != JWT_BEARER or len(assertion) > MAX_ASSERTION_LENGTH:
            raise InvalidClient("client_assertion_type must be " + JWT_BEARER)
        try:
            subject = jwt.decode(assertion, options={"verify_signature": False}).get("sub")
        except jwt.InvalidTokenError:
            subject = None
        if not isinstance(subject, str) or not subject:
            raise InvalidClient("client_assertion is not a JWT naming its client")
        return ClientCredentials(self.name, subject, assertion)

    def verify(self, client: Client, credentials: ClientCredentials) -> bool:
        """Always False: an assertion is verified only with a server's context (:meth:`verify_in`)."""
        return False

    def verify_in(self, assertions: ClientAssertions, client: Client, credentials: ClientCredentials) -> bool:
        """The assertion is signed by one of the client's keys and meets RFC 7523 §3."""
        return credentials.proof is not None and assertions.verify(client, credentials.proof)
