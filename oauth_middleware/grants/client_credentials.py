"""Client credentials grant (RFC 6749 §4.4): a client acting for itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import GrantContext, TokenRequest, TokenResponse

if TYPE_CHECKING:
    from ..settings import Settings


class ClientCredentialsGrant:
    """Issue an access token to an authenticated confidential client.

    No refresh token: the client can always ask again (RFC 6749 §4.4.3).
    """

    grant_type = "client_credentials"
    response_types: tuple[str, ...] = ()
    refresh_tokens = False
    #: RFC 6749 §4.4: only confidential clients may use this grant.
    allows_public_clients = False

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """No members besides its name in ``grant_types_supported``."""
        return {}

    def __init__(self, context: GrantContext) -> None:
        self.context = context

    def token_response(self, request: TokenRequest) -> TokenResponse:
        """Grant the requested (or default) scope to the client itself, for the requested resources."""
        scopes = self.context.scope_policy.resolve(request.params.get("scope"), request.client)
        resources = self.context.resource_policy.resolve(request.resources, request.client.resources)
        extra = self.context.token_data.for_grant(request.client, None, self.grant_type, scopes, {})
        return TokenResponse(
            self.context.issuer.issue(
                client=request.client,
                user_id=None,
                scopes=scopes,
                grant_type=self.grant_type,
                extra=extra,
                jkt=request.dpop_jkt,
                audience=resources,
            )
        )
