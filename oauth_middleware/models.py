"""The records the server keeps: clients and access tokens.

Each record converts to and from the plain ``dict`` the stores hold, with
short keys because the guard reads one on every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .secret_hash import check_secret, digest

__all__ = ["LEGACY_AUTH_METHODS", "AccessToken", "Client", "digest"]

#: What a confidential client stored before clients had a ``token_endpoint_auth_method``
#: may use: either secret method, as every client could then (kept so old deployments work).
LEGACY_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class Client:
    """A registered OAuth client.

    :param client_id: the public identifier.
    :param secret_hash: the secret's SHA-256 (:func:`digest`, generated secrets) or its
        salted PBKDF2 hash (chosen secrets, see :mod:`.secret_hash`); None for public clients.
    :param redirect_uris: registered redirect URIs, matched exactly.
    :param grant_types: grants the client may use.
    :param response_types: ``code`` and/or ``token`` at the authorize endpoint.
    :param scopes: the scopes the client may ask for.
    :param name: shown on the consent page.
    :param token_endpoint_auth_method: the one client authentication method it
        may use (RFC 7591 §2 names, see :mod:`oauth_middleware.client_auth`);
        None for a client stored before clients had one: see :meth:`accepts_method`.
    :param require_pushed_authorization_requests: its authorization requests must
        come through the pushed authorization request endpoint (RFC 9126 §6).
    :param dpop_bound_access_tokens: its token requests must carry a DPoP proof
        (RFC 9449 §5.2): it only ever gets DPoP-bound tokens.
    :param jwks: its public keys (JWKs) for ``private_key_jwt`` (RFC 7591 §2 ``jwks``).
    :param jwks_uri: where its public keys are published, instead of ``jwks``.
    :param token_endpoint_auth_signing_alg: the one algorithm its assertions may be
        signed with; None: the algorithm of the key that signed it.
    :param secret_sealed: for ``client_secret_jwt``, its secret encrypted
        (:mod:`.sealed_secrets`): an HMAC is checked with the secret itself, which a hash cannot give back.
    :param resources: the resources (RFC 8707) it may ask tokens for; empty: any the server allows.
    :param meta: the operator's own string attributes (a description, a logo URL,
        a tenant): shown to the ``token_claims`` hook and the consent template,
        and what :meth:`~oauth_middleware.OAuth2Middleware.find_clients` finds clients by.
    """

    client_id: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    response_types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    name: str = ""
    token_endpoint_auth_method: str | None = None
    require_pushed_authorization_requests: bool = False
    dpop_bound_access_tokens: bool = False
    jwks: tuple[Mapping[str, Any], ...] = ()
    jwks_uri: str | None = None
    token_endpoint_auth_signing_alg: str | None = None
    secret_sealed: str | None = None
    resources: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_public(self) -> bool:
        """True for a client with neither a secret nor keys (native and browser apps)."""
        return (
            self.secret_hash is None
            and self.secret_sealed is None
            and not self.jwks
            and self.jwks_uri is None
        )

    def check_secret(self, secret: str) -> bool:
        """Compare ``secret`` with the stored hash in constant time.

        The presented value is always hashed first, so presenting the stored
        hash itself never authenticates.
        """
        return self.secret_hash is not None and check_secret(self.secret_hash, secret)

    def accepts_method(self, method: str) -> bool:
        """True when the client may authenticate with ``method``.

        A client stored without a method (before 0.2.0) keeps what it could
        do then: a confidential one either secret method
        (:data:`LEGACY_AUTH_METHODS`), a public one ``none``.
        """
        if self.token_endpoint_auth_method is not None:
            return method == self.token_endpoint_auth_method
        return method == "none" if self.is_public else method in LEGACY_AUTH_METHODS

    def matches(self, attributes: Mapping[str, str]) -> bool:
        """True when the client carries every one of ``attributes`` with that value."""
        return all(self.meta.get(key) == value for key, value in attributes.items())

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        return {
            "id": self.client_id,
            "sh": self.secret_hash,
            "ru": list(self.redirect_uris),
            "gt": list(self.grant_types),
            "rt": list(self.response_types),
            "sc": list(self.scopes),
            "n": self.name,
            "am": self.token_endpoint_auth_method,
            "par": self.require_pushed_authorization_requests,
            **({"dp": True} if self.dpop_bound_access_tokens else {}),
            **({"jwks": [dict(key) for key in self.jwks]} if self.jwks else {}),
            **({"ju": self.jwks_uri} if self.jwks_uri else {}),
            **({"sa": self.token_endpoint_auth_signing_alg} if self.token_endpoint_auth_signing_alg else {}),
            **({"ss": self.secret_sealed} if self.secret_sealed else {}),
            **({"rs": list(self.resources)} if self.resources else {}),
            **({"m": dict(self.meta)} if self.meta else {}),
        }

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> Client:
        """Rebuild a client from :meth:`to_value` output."""
        return cls(
            client_id=value["id"],
            secret_hash=value["sh"],
            redirect_uris=tuple(value["ru"]),
            grant_types=tuple(value["gt"]),
            response_types=tuple(value["rt"]),
            scopes=tuple(value["sc"]),
            name=value.get("n", ""),
            token_endpoint_auth_method=value.get("am"),
            require_pushed_authorization_requests=bool(value.get("par", False)),
            dpop_bound_access_tokens=bool(value.get("dp")),
            jwks=tuple(value.get("jwks", ())),
            jwks_uri=value.get("ju"),
            token_endpoint_auth_signing_alg=value.get("sa"),
            secret_sealed=value.get("ss"),
            resources=tuple(value.get("rs", ())),
            meta=dict(value.get("m", {})),
        )


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A valid access token, as the guard puts it in ``environ['oauth2.token']``.

    The same shape for opaque and JWT tokens.

    :param token: the token string the client presented.
    :param client_id: the client it was issued to.
    :param user_id: the resource owner, or None for client-only tokens.
    :param scopes: the granted scopes.
    :param expires_at: expiry as a Unix timestamp.
    :param extra: extra data the grant attached.
    :param token_id: stable id (hash or ``jti``) used for revocation.
    :param jkt: for a DPoP-bound token, the RFC 7638 thumbprint of the client's key
        (RFC 9449 §6): it is valid only with proofs signed by that key. None for a bearer token.
    :param audience: the resources it is for (RFC 8707; RFC 9068 ``aud``): the
        ``resource`` values of its request, a JWT's ``aud``; empty for an opaque token
        issued without one, which is for the server's default ``audience``.
    :param act: for a token issued by token exchange for a delegate, who acts for the
        subject (RFC 8693 §4.1): ``{"sub": ...}``, with the actors before it nested
        under ``act``; None otherwise.

    ``extra`` and ``act`` are read-only views: an app cannot change what the store (or
    the JWT verify cache) holds for the next request.
    """

    token: str
    client_id: str
    user_id: str | None
    scopes: tuple[str, ...]
    expires_at: int
    extra: Mapping[str, Any] = field(default_factory=dict)
    token_id: str = ""
    jkt: str | None = None
    audience: tuple[str, ...] = ()
    act: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # A read-only view, not a copy: this runs on every guarded request.
        if type(self.extra) is not MappingProxyType:
            object.__setattr__(self, "extra", MappingProxyType(self.extra))
        if self.act is not None and type(self.act) is not MappingProxyType:
            object.__setattr__(self, "act", MappingProxyType(self.act))
