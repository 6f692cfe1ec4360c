"""Resource owner password credentials grant (RFC 6749 §4.3).

Off unless ``password`` is in the ``grants`` setting: RFC 9700 §2.4 says it
MUST NOT be used, and it is here for applications migrating from older
libraries. The password is checked by the ``verify_password`` callable and
is never logged. Wrong passwords are throttled per username and address
(:mod:`oauth_middleware.throttle`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InvalidGrant, InvalidRequest
from ..throttle import verify_password
from ..tokens.refresh import new_family
from .base import GrantBase, TokenRequest, TokenResponse, issue_with_refresh

if TYPE_CHECKING:
    pass


class PasswordGrant(GrantBase):
    """Issue tokens to a client that sends the user's username and password."""

    grant_type = "password"
    refresh_tokens = True
    #: RFC 6749 §4.3.2: a public client may use it (a confidential one must authenticate).
    allows_public_clients = True

    def token_response(self, request: TokenRequest) -> TokenResponse:
        """Check the scope, then the password, and issue tokens for the user."""
        username, password = request.params.get("username"), request.params.get("password")
        if username is None or password is None:
            raise InvalidRequest("username and password are required")
        scopes = self.context.scope_policy.resolve(request.params.get("scope"), request.client)
        resources = self.context.resource_policy.resolve(request.resources, request.client.resources)
        user = verify_password(
            self.context,
            request.request,
            username,
            password,
            where="password grant",
            client_id=request.client.client_id,
        )
        if user is None:
            raise InvalidGrant("wrong username or password")
        return issue_with_refresh(
            self.context,
            request,
            self.grant_type,
            user_id=user.user_id,
            scopes=scopes,
            family=new_family(),
            data=user.data,
            audience=resources,
        )
