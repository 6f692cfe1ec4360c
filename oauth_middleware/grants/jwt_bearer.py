"""JWT bearer authorization grant (RFC 7523 §2.1, RFC 7521 §4.1).

A client presents an ``assertion``: a JWT a trusted issuer (see
:mod:`oauth_middleware.trusted_issuers`) signed for one of its subjects.
The token issued is the subject's, with the scopes the request, the issuer
and the client all allow, for the resources asked for (RFC 8707). Every failure is ``invalid_grant`` (RFC 7523 §3.1),
its reason logged, never sent. The token is listed among the subject's grants
(``revoke_grants`` ends it) and carries what the ``token_claims`` hook adds.

Off unless the grant is in ``grants``; a client must be confidential and
registered for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import InvalidGrant, InvalidRequest, InvalidScope
from ..tokens.refresh import new_family
from .base import GrantBase, TokenRequest, TokenResponse, issue_with_refresh

if TYPE_CHECKING:
    pass

log = logging.getLogger("oauth_middleware.grants")


class JWTBearerGrant(GrantBase):
    """Issue an access token for the subject of a trusted issuer's signed assertion."""

    grant_type = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    #: The client asks again with a new assertion (RFC 7521 §4.1 makes no refresh token).
    refresh_tokens = False
    #: Least privilege: only a client that authenticates may redeem someone's assertion.
    allows_public_clients = False

    def token_response(self, request: TokenRequest) -> TokenResponse:
        """Verify the assertion once, then issue a token for its subject."""
        assertion = request.params.get("assertion")
        if not assertion:
            raise InvalidRequest("assertion is required")
        scopes = self.context.scope_policy.resolve(request.params.get("scope"), request.client)
        resources = self.context.resource_policy.resolve(request.resources, request.client.resources)
        token = self.context.trusted_issuers.verify(assertion)
        if token is None:
            raise InvalidGrant("the assertion is invalid")
        issuer = token.issuer
        # Requested, the client's and the issuer's at once: an explicit request for more is an error.
        refused = [scope for scope in scopes if scope not in issuer.scopes]
        if refused and "scope" in request.params:
            raise InvalidScope(f"the issuer of the assertion may not grant scope {refused[0]}")
        # Single use (RFC 7523 §3 item 7), recorded last: a refused request does not use it up.
        if not self.context.repository.record_grant_assertion(
            issuer.issuer, token.claims["jti"], self.context.trusted_issuers.jwts.ttl(token.claims)
        ):
            log.info("JWT grant of %s refused: jti already used", issuer.issuer)
            raise InvalidGrant("the assertion is invalid")
        # A family of its own, listed under the subject, so that revoke_grants ends the token too.
        return issue_with_refresh(
            self.context,
            request,
            self.grant_type,
            user_id=token.subject,
            scopes=tuple(scope for scope in scopes if scope not in refused),
            family=new_family(),
            data={},
            audience=resources,
        )
