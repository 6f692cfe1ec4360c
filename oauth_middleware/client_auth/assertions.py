"""Client assertions: ``private_key_jwt`` and ``client_secret_jwt`` (RFC 7523 §2.2, §3).

Both methods read ``client_assertion_type`` and ``client_assertion``
(RFC 7521 §4.2) and name the client by the assertion's ``sub``, read
unverified only so the throttle counts the client it names. Which of the two
an assertion is for is told by its ``alg``: an HMAC one is ``client_secret_jwt``,
any other ``private_key_jwt`` (a client registered for the other method is then
refused before anything is verified, so a public key is never tried as an HMAC
secret). The verification needs the server's issuer, clock and store, so it is
done by :class:`ClientAssertions`, which the authenticator hands to every
method with a ``verify_in`` (:class:`ContextualAuthMethod`).

A ``client_secret_jwt`` secret is kept sealed (:mod:`..sealed_secrets`): the
server needs the secret itself to check an HMAC.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import jwt

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigError, InvalidClient, TemporarilyUnavailable
from ..keys import Key, public_jwk_key
from ..models import Client
from ..remote_keys import RemoteKeys
from ..repository import Repository
from ..sealed_secrets import HMAC_ALGORITHMS, SecretSealer, check_hmac_secret
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
    :param leeway: seconds an ``iat`` or ``nbf`` may be in the future (clock skew, ``jwt_leeway``).
    :param algorithms: the asymmetric algorithms ``private_key_jwt`` assertions may use.
    :param audience_string_only: refuse an ``aud`` given as an array (FAPI 2.0 §5.3.2.1 item 8).
    :param sealer: opens ``client_secret_jwt`` secrets; without it none verifies.

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
        leeway: int = 0,
        algorithms: tuple[str, ...] = ASSERTION_ALGORITHMS,
        audience_string_only: bool = False,
        sealer: SecretSealer | None = None,
    ) -> None:
        self.repository = repository
        self.audiences = audiences
        self.max_lifetime = max_lifetime
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.leeway = leeway
        self.algorithms = algorithms
        self.audience_string_only = audience_string_only
        self.sealer = sealer
        self._remote: dict[str, RemoteKeys] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        repository: Repository,
        clock: Clock,
        *,
        algorithms: tuple[str, ...] = ASSERTION_ALGORITHMS,
        audience_string_only: bool = False,
    ) -> ClientAssertions:
        """The verifier the ``issuer``, ``jwt_leeway``, ``client_assertion_*`` and ``client_secret_key`` settings describe.

        :param algorithms: the ``private_key_jwt`` algorithms (a profile may narrow them).
        :param audience_string_only: refuse an array ``aud`` (a profile may ask it).
        """
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
            leeway=settings.jwt_leeway,
            algorithms=algorithms,
            audience_string_only=audience_string_only,
            sealer=SecretSealer(settings.client_secret_key) if settings.client_secret_key else None,
        )

    def check_sealed_secrets(self, clients: Iterable[Client]) -> None:
        """Check at load time that every ``client_secret_jwt`` secret opens and is long enough.

        :raises ConfigError: ``client_secret_key`` is missing or is not the key that
            sealed a secret, or a secret is shorter than its algorithm needs.
        """
        for client in clients:
            if client.secret_sealed is None:
                continue
            if self.sealer is None:
                raise ConfigError(
                    f"client_secret_key: required: client {client.client_id} uses client_secret_jwt"
                )
            secret = self.sealer.open(client.client_id, client.secret_sealed)
            if secret is None:
                raise ConfigError(
                    f"client_secret_key: does not open the secret of client {client.client_id} "
                    "(another key sealed it: register the client again)"
                )
            try:
                check_hmac_secret(secret, client.token_endpoint_auth_signing_alg)
            except ValueError as exc:
                raise ConfigError(f"client {client.client_id}: {exc}") from None

    def verify(self, client: Client, assertion: str) -> bool:
        """True when ``assertion`` is signed by one of ``client``'s keys (``private_key_jwt``), used once.

        :raises TemporarilyUnavailable: the client's ``jwks_uri`` cannot be fetched
            and the assertion's key is not among those fetched before.
        """
        header = _header(assertion)
        alg, kid = header.get("alg"), header.get("kid")
        # The client's allow-list (else any asymmetric one) before any key is looked for: none and HMAC never pass.
        if not self._allowed(client, alg, self.algorithms) or (kid is not None and not isinstance(kid, str)):
            return False
        candidates = (
            self._claims(key.verifier, key.alg, assertion)
            for key in self._keys(client, kid)
            if key.alg == alg
        )
        return self._first_use(client, next((found for found in candidates if found is not None), None))

    def verify_hmac(self, client: Client, assertion: str) -> bool:
        """True when ``assertion`` is an HMAC keyed with ``client``'s secret (``client_secret_jwt``), used once."""
        alg = _header(assertion).get("alg")
        if not self._allowed(client, alg, tuple(HMAC_ALGORITHMS)) or client.secret_sealed is None:
            return False
        secret = None if self.sealer is None else self.sealer.open(client.client_id, client.secret_sealed)
        if secret is None:
            log.error("client %r: its sealed secret does not open with client_secret_key", client.client_id)
            return False
        key = secret.encode("utf-8")
        # RFC 7518 §3.2: a key shorter than the hash is refused (registration checks it too).
        if len(key) < HMAC_ALGORITHMS[str(alg)]:
            return False
        return self._first_use(client, self._claims(key, str(alg), assertion))

    @staticmethod
    def _allowed(client: Client, alg: object, family: tuple[str, ...]) -> bool:
        """``alg`` is the client's registered algorithm, or without one, of the method's ``family``."""
        if not isinstance(alg, str) or alg not in family:
            return False
        return client.token_endpoint_auth_signing_alg in (None, alg)

    def _first_use(self, client: Client, claims: Mapping[str, Any] | None) -> bool:
        """True for verified ``claims`` whose ``jti`` this client never used (RFC 7523 §3 item 7)."""
        if claims is None:
            return False
        ttl = int(claims["exp"] - self.clock.time()) + 1
        # Kept as long as the assertion could pass, one atomic add.
        return self.repository.record_client_assertion(client.client_id, claims["jti"], ttl)

    def _claims(self, verifier: Any, alg: str, assertion: str) -> dict[str, Any] | None:
        """The assertion's claims if ``verifier`` checks its signature and they meet RFC 7523 §3; else None."""
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                verifier,
                algorithms=[alg],
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
        if self.audience_string_only and not isinstance(claims["aud"], str):
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
        # A clock a little ahead of ours is tolerated (jwt_leeway), never on exp.
        if iat is not None and (iat > now + self.leeway or exp - iat > self.max_lifetime):
            return False
        return nbf is None or nbf <= now + self.leeway

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
                )
                self._remote[url] = remote
            return remote


def _header(assertion: str) -> dict[str, Any]:
    """The JOSE header of ``assertion``, unverified; empty when it is not a JWT."""
    try:
        return jwt.get_unverified_header(assertion)
    except jwt.InvalidTokenError:
        return {}


def _is_hmac(assertion: str) -> bool:
    """Whether ``assertion`` says it is an HMAC (``client_secret_jwt``)."""
    alg = _header(assertion).get("alg")
    return isinstance(alg, str) and alg in HMAC_ALGORITHMS


def _is_time(value: object) -> bool:
    """A finite number (not a bool): something a time can be compared with."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@runtime_checkable
class ContextualAuthMethod(Protocol):
    """A method that needs the server's :class:`ClientAssertions` to verify its credentials."""

    def verify_in(self, assertions: ClientAssertions, client: Client, credentials: ClientCredentials) -> bool:
        """True when ``credentials`` prove ``client``, checked with ``assertions``."""
        ...


def _assertion_credentials(name: str, form: Mapping[str, str]) -> ClientCredentials | None:
    """The assertion of ``form`` and the client its ``sub`` names (unverified); None without an assertion.

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
    return ClientCredentials(name, subject, assertion)


class PrivateKeyJwt:
    """``private_key_jwt``: a JWT signed with a key the client registered (RFC 7523 §2.2)."""

    name = "private_key_jwt"
    uses_secret = False

    def credentials(self, headers: Mapping[str, str], form: Mapping[str, str]) -> ClientCredentials | None:
        """Every assertion but an HMAC one (that is :class:`ClientSecretJwt`'s); None without one.

        :raises InvalidClient: another assertion type, or an assertion that is not a JWT naming a client.
        """
        credentials = _assertion_credentials(self.name, form)
        if credentials is None or _is_hmac(credentials.proof or ""):
            return None
        return credentials

    def verify(self, client: Client, credentials: ClientCredentials) -> bool:
        """Always False: an assertion is verified only with a server's context (:meth:`verify_in`)."""
        return False

    def verify_in(self, assertions: ClientAssertions, client: Client, credentials: ClientCredentials) -> bool:
        """The assertion is signed by one of the client's keys and meets RFC 7523 §3."""
        return credentials.proof is not None and assertions.verify(client, credentials.proof)


class ClientSecretJwt:
    """``client_secret_jwt``: a JWT with an HMAC keyed by the client's secret (RFC 7523 §2.2; OIDC Core §9)."""

    name = "client_secret_jwt"
    uses_secret = True

    def credentials(self, headers: Mapping[str, str], form: Mapping[str, str]) -> ClientCredentials | None:
        """A well-formed HMAC assertion; None otherwise (a malformed one is :class:`PrivateKeyJwt`'s to refuse)."""
        try:
            credentials = _assertion_credentials(self.name, form)
        except InvalidClient:
            return None
        if credentials is None or not _is_hmac(credentials.proof or ""):
            return None
        return credentials

    def verify(self, client: Client, credentials: ClientCredentials) -> bool:
        """Always False: an assertion is verified only with a server's context (:meth:`verify_in`)."""
        return False

    def verify_in(self, assertions: ClientAssertions, client: Client, credentials: ClientCredentials) -> bool:
        """The assertion's HMAC is keyed with the client's secret and it meets RFC 7523 §3."""
        return credentials.proof is not None and assertions.verify_hmac(client, credentials.proof)
