"""A custom grant type: ``urn:example:grant-type:magic`` (RFC 6749 §4.5 extension grant).

A confidential client that sends ``magic_word=please`` gets an access token
for the user ``magician``; any other word is ``invalid_grant``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oauth_middleware.errors import InvalidGrant
from oauth_middleware.grants import GrantContext, TokenRequest, TokenResponse

if TYPE_CHECKING:
    from oauth_middleware.settings import Settings

#: The user every magic token is issued for, so that a test can see it at the guard.
MAGICIAN = "magician"


class MagicGrant:
    """Registered by the tests through the Python API."""

    grant_type = "urn:example:grant-type:magic"
    response_types: tuple[str, ...] = ()
    refresh_tokens = False
    allows_public_clients = False

    def __init__(self, context: GrantContext) -> None:
        self.context = context

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """A member of its own, so that the tests see it in the metadata."""
        return {"magic_words_supported": ["please"]}

    def token_response(self, request: TokenRequest) -> TokenResponse:
        """A token for :data:`MAGICIAN` when the word is right."""
        if request.params.get("magic_word") != "please":
            raise InvalidGrant("say the magic word")
        scopes = self.context.scope_policy.resolve(request.params.get("scope"), request.client)
        body = self.context.issuer.issue(
            client=request.client, user_id=MAGICIAN, scopes=scopes, grant_type=self.grant_type
        )
        # A header of its own, so that the tests see grants send headers (a DPoP-Nonce next).
        return TokenResponse(body, (("Magic-Word", "please"),))


class EntryPointMagicGrant(MagicGrant):
    """The same grant under another name, registered through the entry point."""

    grant_type = "urn:example:grant-type:magic-ep"
