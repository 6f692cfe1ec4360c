"""Authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636).

A code is 256 random bits, stored only as its hash, bound to the client,
redirect URI, scopes, user and PKCE challenge, and short-lived
(``code_ttl``). Redeeming it is single use: the first redemption claims it
atomically; any later one is ``invalid_grant`` and revokes every token issued
from the code (its family), as RFC 6749 §4.1.2 asks.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from .. import pkce
from ..errors import InvalidGrant, InvalidRequest
from ..models import digest
from ..records import CodeRecord, GrantRecord
from ..users import Identity
from .base import GrantContext, TokenRequest, TokenResponse, issue_with_refresh

if TYPE_CHECKING:
    from ..models import Client
    from ..settings import Settings

log = logging.getLogger("oauth_middleware.grants")


class ApprovedRequest(Protocol):
    """What a code is bound to: an approved request (an ``AuthorizationRequest``), read-only."""

    @property
    def client(self) -> Client:
        """The client the code is issued to."""
        ...

    @property
    def redirect_uri(self) -> str:
        """Where the code goes; the token request must name the same."""
        ...

    @property
    def redirect_uri_given(self) -> bool:
        """Whether the request named its ``redirect_uri`` (then the token request must too)."""
        ...

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes the user approved."""
        ...

    @property
    def code_challenge(self) -> str | None:
        """The PKCE challenge (RFC 7636)."""
        ...

    @property
    def code_challenge_method(self) -> str | None:
        """``S256`` or ``plain``, with a challenge."""
        ...

    @property
    def dpop_jkt(self) -> str | None:
        """The DPoP key the code is bound to (RFC 9449 §10): only a proof of it redeems the code."""
        ...

    @property
    def resources(self) -> tuple[str, ...]:
        """The resources (RFC 8707) the code's tokens may be for."""
        ...


def issue_code(context: GrantContext, request: ApprovedRequest, user_id: str) -> str:
    """Create and store a code for an approved authorization request; return it.

    :param user_id: who approved: an :class:`~oauth_middleware.users.Identity`
        carries the data their hook answered, kept with the code.
    """
    user = Identity.of(user_id)
    code = secrets.token_urlsafe(32)
    ttl = context.settings.code_ttl
    now = int(context.clock.time())
    record = CodeRecord(
        client_id=request.client.client_id,
        redirect_uri=request.redirect_uri,
        redirect_uri_given=request.redirect_uri_given,
        scopes=request.scopes,
        user_id=user.user_id,
        code_challenge=request.code_challenge,
        code_challenge_method=request.code_challenge_method,
        expires_at=now + ttl,
        dpop_jkt=request.dpop_jkt,
        extra=user.data,
        audience=request.resources,
    )
    code_id = digest(code)
    # Listed among the user's grants first, so revoke_grants finds a code not yet redeemed.
    context.repository.index_grant(
        user.user_id, GrantRecord(record.client_id, code_id, now, record.expires_at, record.scopes, code=True)
    )
    context.repository.save_code(code_id, record, ttl)
    return code


class AuthorizationCodeGrant:
    """Exchange an authorization code for tokens (RFC 6749 §4.1.3)."""

    grant_type = "authorization_code"
    response_types: tuple[str, ...] = ("code",)
    refresh_tokens = True
    #: Public clients may redeem codes; they must have used PKCE.
    allows_public_clients = True

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """The PKCE methods (RFC 8414 §2), when the ``code`` response type is offered."""
        if "code" not in settings.response_types:
            return {}
        return {
            "code_challenge_methods_supported": list(pkce.METHODS) if settings.allow_plain_pkce else ["S256"]
        }

    def __init__(self, context: GrantContext) -> None:
        self.context = context
        self.repository = context.repository

    def token_response(self, request: TokenRequest) -> TokenResponse:
        """Check the code, claim it once, and issue tokens in the code's family."""
        code = request.params.get("code")
        if code is None:
            raise InvalidRequest("code is required")
        code_id = digest(code)
        record = self.repository.find_code(code_id)
        if record is None or record.expired(self.context.clock.time()):
            self._used_or_unknown(code_id, request.client.client_id)
        self._check(record, request)
        # Checked before the code is claimed: a refused request must not use it up.
        client_resources = request.client.resources
        audience = self.context.resource_policy.narrow(request.resources, record.audience, client_resources)
        # The code's id is the family of every token issued from it.
        if not self.repository.claim_code(code_id, code_id, self.context.settings.code_ttl):
            self._replayed(code_id, code_id, request.client.client_id)
        response = self._issue(record, request, audience)
        marker = self.repository.redeemed_code(code_id)
        if marker is not None and marker.replayed:
            # A replay raced this redemption; make sure its tokens die too.
            self.repository.revoke_family(code_id)
        return response

    def _check(self, record: CodeRecord, request: TokenRequest) -> None:
        """The code must be redeemed by its client, with its redirect URI and verifier, for an allowed scope."""
        if record.client_id != request.client.client_id:
            raise InvalidGrant("the code was issued to another client")
        redirect_uri = request.params.get("redirect_uri")
        if (record.redirect_uri_given or redirect_uri is not None) and redirect_uri != record.redirect_uri:
            raise InvalidGrant("redirect_uri differs from the authorization request")
        pkce.verify(request.params.get("code_verifier"), record.code_challenge, record.code_challenge_method)
        if record.dpop_jkt is not None and record.dpop_jkt != request.dpop_jkt:
            raise InvalidGrant("the code is bound to another DPoP key (dpop_jkt)")
        # The settings or the registration may have dropped a scope since the code was issued.
        self.context.scope_policy.check(record.scopes, request.client)

    def _issue(self, record: CodeRecord, request: TokenRequest, audience: tuple[str, ...]) -> TokenResponse:
        """Tokens for the code's user and scopes: the access token for ``audience``, the refresh
        token for the code's resources (RFC 8707 §2.2)."""
        family = digest(request.params["code"])
        return issue_with_refresh(
            self.context,
            request,
            self.grant_type,
            user_id=record.user_id,
            scopes=record.scopes,
            family=family,
            data=record.extra,
            audience=audience,
            grant_audience=record.audience,
        )

    def _used_or_unknown(self, code_id: str, client_id: str) -> NoReturn:
        marker = self.repository.redeemed_code(code_id)
        if marker is not None:
            self._replayed(code_id, marker.family, client_id)
        raise InvalidGrant("the code is invalid or has expired")

    def _replayed(self, code_id: str, family: str, client_id: str) -> NoReturn:
        """RFC 6749 §4.1.2: a code used twice is refused and its tokens revoked."""
        self.repository.mark_code_replayed(code_id, family, self.context.settings.code_ttl)
        self.repository.revoke_family(family)
        # The family is the code's SHA-256: a prefix names it in the log without revealing the code.
        log.warning(
            "authorization code replayed: its tokens are revoked: client_id=%r family=%s",
            client_id,
            family[:12],
        )
        raise InvalidGrant("the code was already used")
