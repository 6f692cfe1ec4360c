"""Token types at the guard, by ``Authorization`` scheme: ``Bearer`` (RFC 6750) and plug-ins.

A token type knows its scheme, where a request carries its credential, how
the credential is verified with the token format, its ``WWW-Authenticate``
challenge and any server metadata it adds. The guard dispatches on the
scheme of the ``Authorization`` header; a request without one is offered to
each enabled type (``Bearer`` also reads a form body or the query string).
Another package adds a type through the entry-point group
``oauth_middleware.token_types`` or :meth:`TOKEN_TYPES.register
<oauth_middleware.registry.Registry.register>`; the ``token_types`` setting
enables it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from .dpop import ProofVerifier
from .errors import (
    BearerError,
    ConfigError,
    DPoPGuardError,
    InvalidBearerRequest,
    InvalidDPoPProof,
    InvalidToken,
)
from .forms import small_body
from .models import AccessToken
from .parsing import access_tokens, bearer_token
from .registry import Registry
from .responses import token_challenge

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .settings import Settings
    from .tokens import TokenFormat

__all__ = [
    "TOKEN_TYPES",
    "BearerToken",
    "DPoPToken",
    "Presented",
    "TokenSources",
    "TokenType",
    "enabled_token_types",
    "token_type_metadata",
]

_FORM = "application/x-www-form-urlencoded"


class Presented(NamedTuple):
    """A credential as a request presented it, and the token type that found it."""

    token_type: TokenType
    credential: str
    #: Where it was found: a query token makes the response ``Cache-Control: private``.
    source: Literal["header", "query", "body"]


class TokenType(Protocol):
    """One ``Authorization`` scheme the guard accepts; built once per guard, used from many threads.

    :param settings: the guard's settings.
    :param tokens: the access-token format that verifies tokens.
    """

    #: The ``Authorization`` scheme (matched without regard to case) and registry name.
    scheme: str

    def __init__(self, settings: Settings, tokens: TokenFormat) -> None: ...

    def extract(self, environ: WSGIEnvironment, credentials: str | None) -> Presented | None:
        """The request's credential of this type, or None when it carries none.

        :param credentials: what follows this type's scheme in the ``Authorization``
            header; None when the header names no enabled scheme (or is absent).
        :raises BearerError: a malformed credential (``invalid_request``).
        """
        ...

    def verify(self, presented: Presented, environ: WSGIEnvironment) -> AccessToken:
        """The live token the credential stands for.

        :raises BearerError: ``invalid_token`` and the like.
        :raises StoreUnavailable: the store cannot be asked.
        """
        ...

    def challenge(self, error: BearerError, realm: str) -> str:
        """The ``WWW-Authenticate`` challenge answering ``error``."""
        ...

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """Server metadata members this type adds when it is enabled."""
        ...


class TokenSources(NamedTuple):
    """Where the guard looks for a bearer token (RFC 6750 §2.1-2.3)."""

    header: bool = True
    body: bool = True
    query: bool = False


class BearerToken:
    """Bearer tokens (RFC 6750): in the header, a form body or the query string, per the settings."""

    scheme = "Bearer"

    def __init__(self, settings: Settings, tokens: TokenFormat) -> None:
        self.tokens = tokens
        self.sources = TokenSources(
            settings.token_from_header, settings.token_from_body, settings.token_from_query
        )
        self.body_limit = settings.max_body_size

    def extract(self, environ: WSGIEnvironment, credentials: str | None) -> Presented | None:
        """Find the request's bearer token in the enabled sources.

        The body is searched only when neither the header nor the query string
        has a token, only outside GET, and only when it has at most
        ``max_body_size`` bytes: a larger body is not read and holds no token.
        A token in more than one place the guard looks is ``invalid_request``
        (RFC 6750 §2). Reading a body leaves it readable for the app.
        """
        found: list[Presented] = []
        if credentials is not None and self.sources.header:
            found.append(Presented(self, bearer_token(credentials), "header"))
        if self.sources.query and "access_token=" in (query := environ.get("QUERY_STRING", "")):
            found.extend(Presented(self, token, "query") for token in access_tokens(query))
        if (
            not found
            and self.sources.body
            and environ.get("REQUEST_METHOD", "GET") != "GET"
            and environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() == _FORM
        ):
            body = small_body(environ, self.body_limit)
            if body:
                found.extend(
                    Presented(self, token, "body") for token in access_tokens(body.decode("latin-1"))
                )
        if len(found) > 1:
            raise InvalidBearerRequest("use exactly one way to send the access token")
        return found[0] if found else None

    def verify(self, presented: Presented, environ: WSGIEnvironment) -> AccessToken:
        """A bearer token is valid by itself: the token format decides; a DPoP-bound one is refused.

        A bound token presented as ``Bearer`` would let whoever stole it skip
        the proof (RFC 9449 §7.2).
        """
        token = self.tokens.verify(presented.credential)
        if token.jkt is not None:
            raise InvalidToken("the access token is DPoP-bound: present it with the DPoP scheme")
        return token

    def challenge(self, error: BearerError, realm: str) -> str:
        """``Bearer realm=..., error=...`` (RFC 6750 §3)."""
        return token_challenge(self.scheme, error, realm)

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """None: bearer tokens are what RFC 8414 assumes."""
        return {}


class DPoPToken:
    """DPoP-bound tokens (RFC 9449 §7): ``Authorization: DPoP <token>`` with a ``DPoP`` proof of the key.

    Each request's proof must name the request (``htm``, ``htu``), hash the
    token (``ath``), be fresh and never seen before (its ``jti`` is recorded
    in the store) and be signed by the key the token is bound to.

    :raises ConfigError: the token format has no store (a JWT guard needs
        one here, for the proofs' ``jti``).
    """

    scheme = "DPoP"

    def __init__(self, settings: Settings, tokens: TokenFormat) -> None:
        self.tokens = tokens
        repository = tokens.repository
        if repository is None:
            raise ConfigError("token_types: DPoP needs the store, where each proof's jti is recorded")
        self.proofs = ProofVerifier.from_settings(settings, repository)
        self.algs = " ".join(settings.dpop_signing_algs)

    def extract(self, environ: WSGIEnvironment, credentials: str | None) -> Presented | None:
        """The token after ``DPoP`` in the ``Authorization`` header: it travels nowhere else (§7.1)."""
        if credentials is None:
            return None
        return Presented(self, bearer_token(credentials), "header")

    def verify(self, presented: Presented, environ: WSGIEnvironment) -> AccessToken:
        """The token, if it is bound to the key of the request's valid proof.

        :raises BearerError: ``invalid_token`` (unknown, expired or unbound
            token), ``invalid_dpop_proof`` or ``use_dpop_nonce``.
        """
        token = self.tokens.verify(presented.credential)
        if token.jkt is None:
            raise InvalidToken("the access token is not DPoP-bound: present it with the Bearer scheme")
        try:
            jkt = self.proofs.verify(environ, access_token=presented.credential)
        except InvalidDPoPProof as exc:
            raise DPoPGuardError(exc) from None
        if jkt != token.jkt:
            raise DPoPGuardError(InvalidDPoPProof("the DPoP proof is not signed by the token's key"))
        return token

    def response_headers(self) -> tuple[tuple[str, str], ...]:
        """Headers for the app's response to a request this type authenticated: the next ``DPoP-Nonce``.

        With nonces on, the client gets the current nonce on every success
        (RFC 9449 §9), so a rotation never costs it a ``use_dpop_nonce`` round trip.
        """
        nonces = self.proofs.nonces
        return () if nonces is None else (("DPoP-Nonce", nonces.current()),)

    def challenge(self, error: BearerError, realm: str) -> str:
        """``DPoP realm=..., algs="...", error=...`` (RFC 9449 §7.1)."""
        return token_challenge(self.scheme, error, realm, [("algs", self.algs)])

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """``dpop_signing_alg_values_supported`` (RFC 9449 §5.1)."""
        return {"dpop_signing_alg_values_supported": list(settings.dpop_signing_algs)}


#: scheme -> token type class; entry points of ``oauth_middleware.token_types`` add to it.
TOKEN_TYPES: Registry[type[TokenType]] = Registry("token type", "oauth_middleware.token_types")
TOKEN_TYPES.register(BearerToken.scheme, BearerToken)
TOKEN_TYPES.register(DPoPToken.scheme, DPoPToken)


def _enabled(settings: Settings) -> list[type[TokenType]]:
    """The classes the ``token_types`` setting names, in its order.

    :raises ConfigError: a name no token type is registered under.
    """
    classes = []
    for name in settings.token_types:
        cls = TOKEN_TYPES.get(name)
        if cls is None:
            known = ", ".join(TOKEN_TYPES.names())
            raise ConfigError(f"token_types: unknown token type {name!r} (known: {known})")
        classes.append(cls)
    return classes


def enabled_token_types(settings: Settings, tokens: TokenFormat) -> tuple[TokenType, ...]:
    """The token types of the ``token_types`` setting, built for one guard.

    :raises ConfigError: ``token_types`` names an unregistered type.
    """
    return tuple(cls(settings, tokens) for cls in _enabled(settings))


def token_type_metadata(settings: Settings) -> dict[str, Any]:
    """The server metadata members the enabled token types add."""
    document: dict[str, Any] = {}
    for cls in _enabled(settings):
        document.update(cls.metadata(settings))
    return document
