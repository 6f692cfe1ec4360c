"""Refresh tokens (RFC 6749 §1.5, §6): random strings stored by their hash.

Every refresh token belongs to a *family* (the tokens issued from one code
or one password grant, and the whole rotation chain after it), so that a
replayed code or a reused refresh token revokes them all together.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ..models import Client, digest
from ..records import RefreshTokenRecord
from ..repository import Repository
from ..settings import Settings
from .base import new_token_string


def new_family() -> str:
    """A fresh family id for a grant that is not tied to a code."""
    return secrets.token_hex(16)


class RefreshTokens:
    """Issues refresh tokens, when the settings and the client allow them.

    :param repository: where refresh records live.
    :param settings: ``grants``, ``refresh_token_grants``, the lifetimes and
        the token generator.
    :param clock: the time tokens and chains expire by.
    """

    def __init__(self, repository: Repository, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.repository = repository
        self.clock = clock
        self.enabled = "refresh_token" in settings.grants
        self.grants = frozenset(settings.refresh_token_grants)
        self.ttl = settings.refresh_token_ttl
        self.idle_ttl = settings.refresh_token_idle_ttl
        self.generator = settings.token_generator

    def offered(self, grant_type: str, client: Client) -> bool:
        """Whether a token response of ``grant_type`` to ``client`` carries a refresh token."""
        return self.enabled and grant_type in self.grants and "refresh_token" in client.grant_types

    def issue(
        self,
        *,
        client_id: str,
        user_id: str | None,
        scopes: tuple[str, ...],
        family: str,
        chain_expires_at: int | None = None,
        jkt: str | None = None,
        extra: Mapping[str, Any] | None = None,
        audience: tuple[str, ...] = (),
    ) -> str:
        """Create and store a refresh token; return it.

        :param scopes: the scope of the grant (a refresh may ask for less, never more).
        :param chain_expires_at: end of the rotation chain; None starts a new
            chain that ends ``refresh_token_ttl`` from now.
        :param jkt: the DPoP key it is bound to (a public client's, RFC 9449 §5), or None.
        :param extra: the grant's data, carried to every access token refreshed with it.
        :param audience: the resources of the grant (RFC 8707 §2.2), which its refreshes may narrow.
        """
        now = int(self.clock.time())
        chain_end = chain_expires_at if chain_expires_at is not None else now + self.ttl
        expires_at = min(chain_end, now + self.idle_ttl) if self.idle_ttl else chain_end
        token = new_token_string(self.generator)
        record = RefreshTokenRecord(
            client_id,
            user_id,
            scopes,
            expires_at,
            family,
            chain_end,
            jkt,
            audience=audience,
            extra=dict(extra or {}),
        )
        self.repository.save_refresh_token(digest(token), record, max(1, expires_at - now))
        return token

    def add_to(
        self,
        body: dict[str, Any],
        *,
        grant_type: str,
        client: Client,
        user_id: str | None,
        scopes: tuple[str, ...],
        family: str,
        jkt: str | None = None,
        extra: Mapping[str, Any] | None = None,
        audience: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Add a new chain's ``refresh_token`` to a token response when it is offered.

        :param jkt: the key of the request's DPoP proof: a public client's
            refresh token is bound to it (RFC 9449 §5; a confidential client's
            is bound to the client's own credentials already).
        :param audience: the resources of the grant.
        """
        if self.offered(grant_type, client):
            body["refresh_token"] = self.issue(
                client_id=client.client_id,
                user_id=user_id,
                scopes=scopes,
                family=family,
                jkt=jkt if client.is_public else None,
                extra=extra,
                audience=audience,
            )
        return body
