"""Opaque access tokens: random strings, looked up by their hash in the store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import InvalidToken
from ..models import AccessToken, digest
from ..records import AccessTokenRecord
from ..repository import Repository
from .base import new_token_string


class OpaqueTokens:
    """A :class:`~oauth_middleware.tokens.base.TokenFormat` backed by the store.

    :param repository: where token records live (by hash, never in clear).
    :param ttl: access token lifetime in seconds.
    :param generator: ``secrets`` or ``uuid4``.
    :param deleted_clients: also refuse the tokens of a client whose registration was
        deleted (RFC 7592 §2.3; one more store read per verification).
    :param clock: the time tokens expire by.
    """

    #: Every verification is a store look-up.
    reads_store = True

    def __init__(
        self,
        repository: Repository,
        ttl: int,
        generator: str = "secrets",
        *,
        deleted_clients: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.repository = repository
        self.ttl = ttl
        self.generator = generator
        self.deleted_clients = deleted_clients
        self.clock = clock
        #: The guard's token cache's stamp: verdicts hold while no token ended (None without a
        #: cache). The repository's callable itself, one call less on every guarded request.
        self.stamp = repository.stamp

    def issue(
        self,
        *,
        client_id: str,
        user_id: str | None,
        scopes: tuple[str, ...],
        extra: Mapping[str, Any],
        family: str | None,
        jkt: str | None = None,
        audience: tuple[str, ...] = (),
        act: Mapping[str, Any] | None = None,
    ) -> AccessToken:
        """Create a token and store its record (with the DPoP ``jkt`` it is bound to and its
        audience and actor) under its hash."""
        token = new_token_string(self.generator)
        expires_at = int(self.clock.time()) + self.ttl
        record = AccessTokenRecord(
            client_id, user_id, scopes, expires_at, dict(extra), family, jkt, audience, act
        )
        token_id = digest(token)
        self.repository.save_access_token(token_id, record, self.ttl)
        return record.access_token(token, token_id)

    def verify(self, token: str) -> AccessToken:
        """Look the token up by hash; unknown, expired or of a deleted registration is ``invalid_token``."""
        access = self.repository.load_access_token(token, digest(token))
        if (
            access is None
            or access.expires_at <= self.clock.time()
            or (self.deleted_clients and self.repository.is_deleted_clients_token(access))
        ):
            raise InvalidToken("the access token is invalid or has expired")
        return access

    def introspect(self, token: str) -> AccessToken | None:
        """The live token, or None: the store is the truth for opaque tokens (never the guard's cache)."""
        token_id = digest(token)
        record = self.repository.find_access_token(token_id)
        if record is None or record.expires_at <= self.clock.time():
            return None
        access = record.access_token(token, token_id)
        if self.deleted_clients and self.repository.is_deleted_clients_token(access):
            return None
        return access

    def revoke(self, token: AccessToken) -> None:
        """Delete the token's record."""
        self.repository.revoke_access_token(token.token_id)

    def join_family(self, token: AccessToken, family: str) -> None:
        """List the token's record in ``family``, for as long as the token lives."""
        ttl = max(1, token.expires_at - int(self.clock.time()))
        self.repository.add_access_token_to_family(token.token_id, family, ttl)
