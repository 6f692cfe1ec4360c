"""What a grant handler is, and what it is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..errors import InvalidGrant
from ..models import Client
from ..records import GrantRecord
from ..request_context import RequestContext

if TYPE_CHECKING:
    from ..clock import Clock
    from ..repository import Repository
    from ..resource_indicators import ResourcePolicy
    from ..scopes import ScopePolicy
    from ..settings import Settings
    from ..throttle import Throttle
    from ..token_data import TokenData
    from ..tokens.issuer import TokenIssuer
    from ..tokens.refresh import RefreshTokens
    from ..trusted_issuers import TrustedIssuers
    from ..users import Users


@dataclass(frozen=True)
class TokenRequest:
    """A token request whose client is already authenticated.

    :param params: the form parameters, each present once.
    :param client: the authenticated (or, if public, identified) client.
    :param request: the request's context (origin, URL, headers), for grants that need more.
    :param dpop_jkt: the thumbprint of the key of the request's valid DPoP proof
        (RFC 9449 §5), or None: the tokens issued are bound to it.
    """

    params: Mapping[str, str]
    client: Client
    request: RequestContext
    dpop_jkt: str | None = None

    @property
    def resources(self) -> tuple[str, ...]:
        """The request's ``resource`` values (RFC 8707 §2.2), as sent: resolve them with the
        context's ``resource_policy``."""
        return self.request.resources


class TokenResponse(NamedTuple):
    """A successful token response (RFC 6749 §5.1), as a value (immutable) the token endpoint renders.

    :param body: the JSON members: ``access_token``, ``token_type`` (the issuer's), ...
    :param headers: headers the grant adds (a ``DPoP-Nonce``); ``Cache-Control:
        no-store`` is always added.
    """

    body: Mapping[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


class GrantContext(Protocol):
    """What a grant is given to work with, built once by the wiring (:mod:`oauth_middleware.server`).

    The public API of a grant: a grant stores it in ``__init__`` and reads
    only these members, so it never depends on how the server is put
    together. Read-only; safe to share between threads.

    Example::

        class MagicGrant:
            def __init__(self, context: GrantContext) -> None:
                self.context = context

            def token_response(self, request: TokenRequest) -> TokenResponse:
                scopes = self.context.scope_policy.resolve(request.params.get("scope"), request.client)
                return TokenResponse(self.context.issuer.issue(
                    client=request.client, user_id=None, scopes=scopes, grant_type=self.grant_type
                ))
    """

    @property
    def settings(self) -> Settings:
        """The converted settings."""
        ...

    @property
    def clock(self) -> Clock:
        """The time codes and refresh tokens expire by."""
        ...

    @property
    def repository(self) -> Repository:
        """Codes, refresh tokens and clients."""
        ...

    @property
    def scope_policy(self) -> ScopePolicy:
        """Resolves a requested ``scope`` against the server's and the client's."""
        ...

    @property
    def resource_policy(self) -> ResourcePolicy:
        """Resolves the ``resource`` values of a request (RFC 8707) against the server's and the client's."""
        ...

    @property
    def issuer(self) -> TokenIssuer:
        """Issues access tokens: the token response body (its ``token_type`` included)."""
        ...

    @property
    def refresh_tokens(self) -> RefreshTokens:
        """Issues refresh tokens for the grants in ``refresh_token_grants``."""
        ...

    @property
    def throttle(self) -> Throttle:
        """Counts failed passwords (the password grant)."""
        ...

    @property
    def users(self) -> Users:
        """Checks users' passwords (the password grant)."""
        ...

    @property
    def token_data(self) -> TokenData:
        """The data a new grant's tokens carry (the user's and the ``token_claims`` hook's)."""
        ...

    @property
    def trusted_issuers(self) -> TrustedIssuers:
        """The issuers whose signed JWTs are grants and subject tokens (``trusted_issuers_file``)."""
        ...


class GrantType(Protocol):
    """What a grant type declares, for the registry, the settings checks, registration and metadata.

    A grant that answers token requests is a :class:`Grant`; one that only
    serves a response type of the authorization endpoint (the implicit
    grant) declares this much and nothing more.
    """

    #: The ``grant_type`` name (RFC 6749 §4; a URI for an extension grant, §4.5).
    grant_type: str
    #: The ``response_type`` values of the authorization endpoint this grant serves.
    response_types: tuple[str, ...]
    #: Whether its token response may carry a refresh token (``refresh_token_grants``).
    refresh_tokens: bool
    #: Whether public clients (no secret) may use this grant.
    allows_public_clients: bool

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """The server metadata members (RFC 8414 §2) this grant adds when it is supported."""
        ...


class Grant(GrantType, Protocol):
    """A handler for one ``grant_type`` at the token endpoint.

    Handlers are built once per server with ``Grant(context)`` and must be
    safe to call from many threads.
    """

    def __init__(self, context: GrantContext) -> None: ...

    def token_response(self, request: TokenRequest) -> TokenResponse:
        """Validate the request and return the token response.

        :raises OAuthError: any RFC 6749 §5.2 error.
        """
        ...


class GrantBase:
    """What most grants share: built with the server's context, served at the token endpoint
    alone, and with no metadata members of their own.

    A grant with members (the code grant's PKCE methods) overrides :meth:`metadata`;
    one that keeps more at construction extends ``__init__``.
    """

    response_types: tuple[str, ...] = ()

    def __init__(self, context: GrantContext) -> None:
        self.context = context

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """No members besides its name in ``grant_types_supported``."""
        return {}


def issue_with_refresh(
    context: GrantContext,
    request: TokenRequest,
    grant_type: str,
    *,
    user_id: str | None,
    scopes: tuple[str, ...],
    family: str,
    data: Mapping[str, Any],
    audience: tuple[str, ...] = (),
    grant_audience: tuple[str, ...] | None = None,
    act: Mapping[str, Any] | None = None,
) -> TokenResponse:
    """Issue an access token in ``family`` and, if this grant gets one, a refresh token.

    The shared last step of the authorization code, password, device, JWT
    bearer and token exchange grants. The grant is listed among the user's
    (``list_grants``) before its tokens exist, so ``revoke_grants`` always
    finds them.

    :param data: what the user hooks answered with the user (for token exchange,
        the subject token's data): with what the ``token_claims`` hook adds, the
        tokens carry it, and so does every access token refreshed from them.
    :param audience: the resources the access token is for (RFC 8707).
    :param grant_audience: the resources of the grant, which the refresh token keeps
        (RFC 8707 §2.2: its tokens may be for any of them); None: ``audience``.
    :param act: who acts for the subject of a delegated token (RFC 8693 §4.1), or None.
    :raises InvalidGrant: the grant was revoked while its tokens were issued
        (they are revoked too).
    """
    if user_id is not None:
        lifetime = context.settings.access_token_ttl
        if context.refresh_tokens.offered(grant_type, request.client):
            lifetime = max(lifetime, context.settings.refresh_token_ttl)
        list_grant(context, request.client.client_id, user_id, family, scopes, lifetime)
    extra = context.token_data.for_grant(request.client, user_id, grant_type, scopes, data)
    body = context.issuer.issue(
        client=request.client,
        user_id=user_id,
        scopes=scopes,
        grant_type=grant_type,
        extra=extra,
        family=family,
        jkt=request.dpop_jkt,
        audience=audience,
        act=act,
    )
    response = TokenResponse(
        context.refresh_tokens.add_to(
            body,
            grant_type=grant_type,
            client=request.client,
            user_id=user_id,
            scopes=scopes,
            family=family,
            jkt=request.dpop_jkt,
            extra=extra,
            audience=audience if grant_audience is None else grant_audience,
        )
    )
    check_not_revoked(context, family)
    return response


def list_grant(
    context: GrantContext, client_id: str, user_id: str, family: str, scopes: tuple[str, ...], lifetime: int
) -> None:
    """List a new grant (the family of its tokens) among ``user_id``'s for ``lifetime`` seconds.

    Called before its tokens are issued: should the store fail in between,
    ``revoke_grants`` still finds every token that exists.
    """
    now = int(context.clock.time())
    context.repository.index_grant(user_id, GrantRecord(client_id, family, now, now + lifetime, scopes))


def check_not_revoked(context: GrantContext, family: str) -> None:
    """After issuing tokens in ``family``: if its grant was revoked meanwhile, revoke them too.

    ``revoke_grants`` marks a family before it revokes its tokens; tokens a
    racing request issued after that revocation are caught here.

    :raises InvalidGrant: the grant was revoked.
    """
    if context.repository.family_revoked(family):
        context.repository.revoke_family(family)
        raise InvalidGrant("the grant was revoked")
