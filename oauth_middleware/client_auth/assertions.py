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
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import jwt

from ..errors import ConfigError, InvalidClient
from ..keys import Key, public_jwk_key
from ..models import Client
from ..peer_jwts import MAX_JWT_LENGTH, PEER_ALGORITHMS, PeerJWTs
from ..repository import Repository
from ..sealed_secrets import HMAC_ALGORITHMS, SecretSealer, check_hmac_secret
from .base import ClientCredentials

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("oauth_middleware.clients")

#: RFC 7523 §2.2: the ``client_assertion_type`` of a JWT assertion.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Algorithms a ``private_key_jwt`` assertion may be signed with: asymmetric only (RFC 9700 §2.5).
ASSERTION_ALGORITHMS = PEER_ALGORITHMS
#: Longest ``client_assertion`` read, in characters.
MAX_ASSERTION_LENGTH = MAX_JWT_LENGTH


class ClientAssertions:
    """Verifies client assertions for one server: the client's keys or secret, ``iss`` = ``sub``, single use.

    Signature, audience and lifetime are checked by :class:`~oauth_middleware.peer_jwts.PeerJWTs`,
    as for every JWT a peer signs.

    :param repository: where used ``jti`` values are recorded.
    :param jwts: the server's checks of peer JWTs (audiences, clock, leeway, fetched key sets).
    :param max_lifetime: longest an assertion may be valid, in seconds, from now
        and from its ``iat`` (``client_assertion_max_lifetime``).
    :param algorithms: the asymmetric algorithms ``private_key_jwt`` assertions may use.
    :param audience_string_only: refuse an ``aud`` given as an array (FAPI 2.0 §5.3.2.1 item 8).
    :param sealer: opens ``client_secret_jwt`` secrets; without it none verifies.

    Example::

        jwts = PeerJWTs(("https://as.example",), interval=60, timeout=5)
        assertions = ClientAssertions(repository, jwts, 300)
        assertions.verify(client, assertion)    # True, once per jti
    """

    def __init__(
        self,
        repository: Repository,
        jwts: PeerJWTs,
        max_lifetime: int,
        *,
        algorithms: tuple[str, ...] = ASSERTION_ALGORITHMS,
        audience_string_only: bool = False,
        sealer: SecretSealer | None = None,
    ) -> None:
        self.repository = repository
        self.jwts = jwts
        self.max_lifetime = max_lifetime
        self.algorithms = algorithms
        self.audience_string_only = audience_string_only
        self.sealer = sealer

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        repository: Repository,
        jwts: PeerJWTs,
        *,
        algorithms: tuple[str, ...] = ASSERTION_ALGORITHMS,
        audience_string_only: bool = False,
    ) -> ClientAssertions:
        """The verifier the ``client_assertion_max_lifetime`` and ``client_secret_key`` settings describe.

        :param algorithms: the ``private_key_jwt`` algorithms (a profile may narrow them).
        :param audience_string_only: refuse an array ``aud`` (a profile may ask it).
        """
        return cls(
            repository,
            jwts,
            settings.client_assertion_max_lifetime,
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
        # The client's allow-list (else the method's) before any key is looked for: none and HMAC never pass.
        return self._first_use(
            client,
            self.jwts.claims(
                assertion,
                algorithms=self._allowed(client, self.algorithms),
                keys=lambda kid: self._keys(client, kid),
                max_lifetime=self.max_lifetime,
            ),
        )

    def verify_hmac(self, client: Client, assertion: str) -> bool:
        """True when ``assertion`` is an HMAC keyed with ``client``'s secret (``client_secret_jwt``), used once."""
        if client.secret_sealed is None:
            return False
        secret = None if self.sealer is None else self.sealer.open(client.client_id, client.secret_sealed)
        if secret is None:
            log.error("client %r: its sealed secret does not open with client_secret_key", client.client_id)
            return False
        key = secret.encode("utf-8")
        # RFC 7518 §3.2: a key shorter than the hash is never used (registration checks it too).
        algorithms = [
            alg for alg in self._allowed(client, tuple(HMAC_ALGORITHMS)) if len(key) >= HMAC_ALGORITHMS[alg]
        ]
        hmac_keys = [Key("", alg, key) for alg in algorithms]
        return self._first_use(
            client,
            self.jwts.claims(
                assertion, algorithms=algorithms, keys=lambda kid: hmac_keys, max_lifetime=self.max_lifetime
            ),
        )

    @staticmethod
    def _allowed(client: Client, family: tuple[str, ...]) -> tuple[str, ...]:
        """The client's registered algorithm if it is of the method's ``family``; without one, the family."""
        registered = client.token_endpoint_auth_signing_alg
        if registered is None:
            return family
        return (registered,) if registered in family else ()

    def _first_use(self, client: Client, claims: Mapping[str, Any] | None) -> bool:
        """True for verified ``claims`` of ``client`` whose ``jti`` it never used (RFC 7523 §3 item 7)."""
        if claims is None or claims["iss"] != claims["sub"]:
            return False
        if self.audience_string_only and not isinstance(claims["aud"], str):
            return False
        # Kept as long as the assertion could pass, one atomic add.
        return self.repository.record_client_assertion(client.client_id, claims["jti"], self.jwts.ttl(claims))

    def _keys(self, client: Client, kid: str | None) -> list[Key]:
        """The client's keys an assertion with ``kid`` may be signed with."""
        if client.jwks_uri is not None:
            return self.jwts.keys(kid, jwks_uri=client.jwks_uri)
        keys = []
        for index, entry in enumerate(client.jwks):
            try:
                keys.append(public_jwk_key(dict(entry), f"key {index} of client {client.client_id}"))
            except ConfigError:
                continue  # checked at registration; a key this version cannot use never matches
        return self.jwts.keys(kid, jwks=keys)


def _header(assertion: str) -> dict[str, Any]:
    """The JOSE header of ``assertion``, unverified; empty when it is not a JWT."""
    try:
        return jwt.get_unverified_header(assertion)
    except (jwt.InvalidTokenError, RecursionError):
        return {}


def _is_hmac(assertion: str) -> bool:
    """Whether ``assertion`` says it is an HMAC (``client_secret_jwt``)."""
    alg = _header(assertion).get("alg")
    return isinstance(alg, str) and alg in HMAC_ALGORITHMS


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
    #: What its assertions may be signed with (the server metadata lists them).
    signing_algorithms = ASSERTION_ALGORITHMS

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
    #: What its assertions may be signed with (the server metadata lists them).
    signing_algorithms = tuple(HMAC_ALGORITHMS)
    #: Without this key no sealed secret opens: the metadata does not offer the method.
    required_setting = "client_secret_key"

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
