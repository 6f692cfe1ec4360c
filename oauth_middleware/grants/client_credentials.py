"""Client credentials grant (RFC 6749 §4.4): a client acting for itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import GrantBase, TokenRequest, TokenResponse

if TYPE_CHECKING:
    pass


class ClientCredentialsGrant(GrantBase):
    """Issue an access token to an authenticated confidential client.

    No refresh token: the client can always ask again (RFC 6749 §4.4.3).
    """

    grant_type = "client_credentials"
    refresh_tokens = False
    #: RFC 6749 §4.4: only confidential clients may use this grant.
    allows_public_clients = False

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
