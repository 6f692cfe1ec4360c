"""Refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14).

With ``rotate_refresh_tokens`` (the default) each refresh claims the
presented token atomically, kills it, and returns a new one in the same
family. The claim leaves a ``used`` marker for the old token's remaining
life: presenting a rotated token again revokes the whole family, unless it
comes from the same client within ``refresh_token_reuse_grace`` seconds (a
client retrying after losing the response). Of N concurrent refreshes with
one token exactly one wins; the others are ``invalid_grant``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import InvalidGrant, InvalidRequest, InvalidScope
from ..models import digest
from ..parsing import scope_list
from ..records import RefreshTokenRecord, RotationMarker
from .base import GrantBase, GrantContext, TokenRequest, TokenResponse, check_not_revoked

if TYPE_CHECKING:
    pass

log = logging.getLogger("oauth_middleware.grants")


def narrowed_scope(requested: str | None, granted: tuple[str, ...]) -> tuple[str, ...]:
    """The scope of a refreshed access token: the grant's, or less (RFC 6749 §6).

    :raises InvalidScope: a scope the original grant did not include.
    """
    if requested is None:
        return granted
    scopes = scope_list(requested)
    wider = [scope for scope in scopes if scope not in granted]
    if wider:
        raise InvalidScope(f"scope {wider[0]} was not granted to this refresh token")
    return scopes


class RefreshTokenGrant(GrantBase):
    """Exchange a refresh token for a new access token (and a new refresh token)."""

    grant_type = "refresh_token"
    #: It rotates refresh tokens (``rotate_refresh_tokens``) but starts no chain of its own.
    refresh_tokens = False
    #: RFC 6749 §6: public clients refresh too (the token is bound to them).
    allows_public_clients = True

    def __init__(self, context: GrantContext) -> None:
        super().__init__(context)
        self.repository = context.repository
        self.rotate = context.settings.rotate_refresh_tokens
        self.grace = context.settings.refresh_token_reuse_grace

    def token_response(self, request: TokenRequest) -> TokenResponse:
        """Check the refresh token and its scope, rotate it, and issue tokens."""
        presented = request.params.get("refresh_token")
        if presented is None:
            raise InvalidRequest("refresh_token is required")
        token_id = digest(presented)
        record = self.repository.find_refresh_token(token_id)
        now = self.context.clock.time()
        if record is None or record.expired(now):
            return self._rotated_before(token_id, request)
        if record.client_id != request.client.client_id:
            raise InvalidGrant("the refresh token was issued to another client")
        # Both checked before the token is claimed: a refused request must not use it up.
        scopes, audience = self._scope(request, record), self._audience(request, record)
        if not self.rotate:
            response = self._issue(request, record, scopes, audience, rotate=False)
            check_not_revoked(self.context, record.family)
            return response
        marker = RotationMarker(record, rotated_at=int(now))
        if not self.repository.claim_rotation(token_id, marker, _ttl(record.expires_at, now)):
            return self._rotated_before(token_id, request)
        return self._issue_unless_reused(token_id, request, marker, scopes, audience)

    def _scope(self, request: TokenRequest, grant: RefreshTokenRecord) -> tuple[str, ...]:
        """The refreshed token's scope: the grant's or less, and still allowed today; a bound grant's key checked.

        The server's ``scopes`` and the client's registration may have lost a
        scope since the grant: such a scope is ``invalid_scope`` (the client
        may ask for the rest), never silently issued again.
        """
        if grant.jkt is not None and grant.jkt != request.dpop_jkt:
            # RFC 9449 §5: a public client's refresh token works only with proofs of its key.
            raise InvalidGrant("the refresh token is bound to another DPoP key")
        scopes = narrowed_scope(request.params.get("scope"), grant.scopes)
        self.context.scope_policy.check(scopes, request.client)
        return scopes

    def _audience(self, request: TokenRequest, grant: RefreshTokenRecord) -> tuple[str, ...]:
        """The refreshed token's resources: the grant's, or fewer (RFC 8707 §2.2)."""
        policy = self.context.resource_policy
        return policy.narrow(request.resources, grant.audience, request.client.resources)

    def _rotated_before(self, token_id: str, request: TokenRequest) -> TokenResponse:
        """A token that is not live: a retry within the grace period, a reuse, or unknown."""
        marker = self.repository.rotated_refresh_token(token_id)
        if marker is None:
            raise InvalidGrant("the refresh token is invalid or has expired")
        now = self.context.clock.time()
        in_grace = now - marker.rotated_at <= self.grace and not marker.reused
        if self.grace and in_grace and marker.token.client_id == request.client.client_id:
            scopes, audience = self._scope(request, marker.token), self._audience(request, marker.token)
            return self._issue_unless_reused(token_id, request, marker, scopes, audience)
        self.repository.mark_refresh_reused(token_id, marker, _ttl(marker.token.expires_at, now))
        self.repository.revoke_family(marker.token.family)
        log.warning(
            "rotated refresh token reused: family revoked: client_id=%r family=%s",
            request.client.client_id,
            marker.token.family[:12],
        )
        raise InvalidGrant("the refresh token was already used; its tokens are revoked")

    def _issue_unless_reused(
        self,
        token_id: str,
        request: TokenRequest,
        marker: RotationMarker,
        scopes: tuple[str, ...],
        audience: tuple[str, ...],
    ) -> TokenResponse:
        """Rotate, then check no reuse of ``token_id`` raced us; if one did, the new tokens die too."""
        response = self._issue(request, marker.token, scopes, audience, rotate=True)
        after = self.repository.rotated_refresh_token(token_id)
        if after is not None and after.reused:
            self.repository.revoke_family(marker.token.family)
        check_not_revoked(self.context, marker.token.family)
        return response

    def _issue(
        self,
        request: TokenRequest,
        grant: RefreshTokenRecord,
        scopes: tuple[str, ...],
        audience: tuple[str, ...],
        *,
        rotate: bool,
    ) -> TokenResponse:
        """An access token for ``scopes`` (bound to the proof's key, if any); with ``rotate``, the next refresh token."""
        client = request.client
        body = self.context.issuer.issue(
            client=client,
            user_id=grant.user_id,
            scopes=scopes,
            grant_type=self.grant_type,
            extra=grant.extra,  # the grant's data, as the first access token had it
            family=grant.family,
            jkt=request.dpop_jkt,
            audience=audience,
        )
        if rotate:
            body["refresh_token"] = self.context.refresh_tokens.issue(
                client_id=client.client_id,
                user_id=grant.user_id,
                scopes=grant.scopes,  # the next token keeps the grant's full scope (§6)
                family=grant.family,
                chain_expires_at=grant.chain_expires_at,
                jkt=grant.jkt,
                extra=grant.extra,
                audience=grant.audience,  # and the grant's resources (RFC 8707 §2.2)
            )
        return TokenResponse(body)


def _ttl(expires_at: int, now: float) -> int:
    """Seconds from ``now`` until ``expires_at``, at least one (a store TTL must be positive)."""
    return max(1, int(expires_at - now))
