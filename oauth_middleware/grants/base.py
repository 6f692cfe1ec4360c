"""What a grant handler is, and what it is given."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from webob import Request

from ..models import Client

if TYPE_CHECKING:
    from ..server import AuthorizationServer


@dataclass(frozen=True)
class TokenRequest:
    """A token request whose client is already authenticated.

    :param params: the form parameters, each present once.
    :param client: the authenticated (or, if public, identified) client.
    :param request: the WebOb request, for grants that need more.
    """

    params: Mapping[str, str]
    client: Client
    request: Request


class Grant(Protocol):
    """A handler for one ``grant_type`` at the token endpoint.

    Handlers are built once per server with ``Grant(server)`` and must be
    safe to call from many threads.
    """

    #: The ``grant_type`` value this handler answers.
    grant_type: ClassVar[str]
    #: Whether public clients (no secret) may use this grant.
    allows_public_clients: ClassVar[bool]

    def __init__(self, server: AuthorizationServer) -> None: ...

    def token_response(self, request: TokenRequest) -> dict[str, Any]:
        """Validate the request and return the JSON body of the token response.

        :raises OAuthError: any RFC 6749 §5.2 error.
        """
        ...


def issue_with_refresh(
    server: AuthorizationServer,
    request: TokenRequest,
    grant_type: str,
    *,
    user_id: str | None,
    scopes: tuple[str, ...],
    family: str,
) -> dict[str, Any]:
    """Issue an access token in ``family`` and, if this grant gets one, a refresh token.

    The shared last step of the authorization code and password grants.
    """
    body = server.issuer.issue(
        client=request.client, user_id=user_id, scopes=scopes, grant_type=grant_type, family=family
    )
    return server.refresh_tokens.add_to(
        body, grant_type=grant_type, client=request.client, user_id=user_id, scopes=scopes, family=family
    )
