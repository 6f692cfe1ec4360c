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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import jwt

from ..errors import ConfigError, InvalidClient
from ..keys import Key, public_jwk_key
from ..models import Client
from ..peer_jwts import MAX_JWT_LENGTH, PEER_ALGORITHMS, PeerJWTs
from ..repository import Repository
from .base import ClientCredentials

if TYPE_CHECKING:
    from ..settings import Settings

#: RFC 7523 §2.2: the ``client_assertion_type`` of a JWT assertion.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Algorithms a ``private_key_jwt`` assertion may be signed with: asymmetric only (RFC 9700 §2.5).
ASSERTION_ALGORITHMS = PEER_ALGORITHMS
#: Longest ``client_assertion`` read, in characters.
MAX_ASSERTION_LENGTH = MAX_JWT_LENGTH


class ClientAssertions:
    """Verifies client assertions for one server: the client's keys, ``iss`` = ``sub``, single use.

    Signature, audience and lifetime are checked by :class:`~oauth_middleware.peer_jwts.PeerJWTs`,
    as for every JWT a peer signs.

    :param repository: where used ``jti`` values are recorded.
    :param jwts: the server's checks of peer JWTs (audiences, clock, fetched key sets).
    :param max_lifetime: longest an assertion may be valid, in seconds, from now
        and from its ``iat`` (``client_assertion_max_lifetime``).

    Example::

        jwts = PeerJWTs(("https://as.example",), interval=60, timeout=5)
        assertions = ClientAssertions(repository, jwts, 300)
        assertions.verify(client, assertion)    # True, once per jti
    """

    def __init__(self, repository: Repository, jwts: PeerJWTs, max_lifetime: int) -> None:
        self.repository = repository
        self.jwts = jwts
        self.max_lifetime = max_lifetime

    @classmethod
    def from_settings(cls, settings: Settings, repository: Repository, jwts: PeerJWTs) -> ClientAssertions:
        """The verifier the ``client_assertion_max_lifetime`` setting describes."""
        return cls(repository, jwts, settings.client_assertion_max_lifetime)

    def verify(self, client: Client, assertion: str) -> bool:
        """True when ``assertion`` proves ``client``, and its ``jti`` was not used before.

        :raises TemporarilyUnavailable: the client's ``jwks_uri`` cannot be fetched
            and the assertion's key is not among those fetched before.
        """
        allowed = (
            (client.token_endpoint_auth_signing_alg,) if client.token_endpoint_auth_signing_alg else None
        )
        # The client's allow-list (else any asymmetric one) before any key is looked for: none and HMAC never pass.
        claims = self.jwts.claims(
            assertion,
            algorithms=allowed or ASSERTION_ALGORITHMS,
            keys=lambda kid: self._keys(client, kid),
            max_lifetime=self.max_lifetime,
        )
        if claims is None or claims["iss"] != claims["sub"]:
            return False
        # Single use (RFC 7523 §3 item 7): kept as long as the assertion could pass, one atomic add.
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
