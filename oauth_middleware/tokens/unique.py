"""Unique access tokens (the ``unique_tokens`` setting).

For one client, user, grant type and scope set, the token endpoint hands
out the still-valid token it issued before instead of minting another. The
token then belongs to the new grant's family as well as its first one (see
:class:`~oauth_middleware.tokens.issuer.TokenIssuer`), so revoking either
grant (a replayed code, a reused refresh token) revokes it. The
token must be given back in clear, yet the store never holds tokens in
clear: the kept copy is encrypted with AES-GCM under a key derived from
``session_secret``. Without a shared ``session_secret`` another process
cannot decrypt it and simply mints a new token.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..clock import SYSTEM_CLOCK, Clock
from ..models import AccessToken
from ..records import UniqueTokenRecord
from ..repository import Repository
from .base import TokenFormat

#: A kept token this close to its expiry is not handed out again.
MIN_REMAINING = 5


class UniqueTokens:
    """Keeps the current token of each (client, user, grant type, scope set).

    :param repository: where the encrypted copies live (``unique:<sha256>``).
    :param tokens: the token format, which re-checks a kept token is still valid.
    :param key: 256-bit AES-GCM key.
    :param clock: the time a kept token's remaining life is measured by.
    """

    def __init__(
        self, repository: Repository, tokens: TokenFormat, key: bytes, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.repository = repository
        self.tokens = tokens
        self.aead = AESGCM(key)
        self.clock = clock

    def find(
        self,
        client_id: str,
        user_id: str | None,
        grant_type: str,
        scopes: tuple[str, ...],
        audience: tuple[str, ...] = (),
    ) -> AccessToken | None:
        """The kept token for this combination (and audience, RFC 8707) if it is still valid, else None."""
        slot = _slot(client_id, user_id, grant_type, scopes, audience)
        try:
            record = self.repository.find_unique_token(slot)
            if record is None:
                return None
            sealed = record.sealed
            token = self.aead.decrypt(sealed[:12], sealed[12:], slot.encode()).decode("utf-8")
        except (InvalidTag, ValueError):  # a garbled entry, or sealed under another key
            return None
        # introspect, not verify: it always consults the deny list, so a revoked
        # JWT is never handed out again (the guard may skip that check).
        access = self.tokens.introspect(token)
        if access is None:
            return None
        if access.client_id != client_id or access.user_id != user_id or set(access.scopes) != set(scopes):
            return None
        if audience and set(access.audience) != set(audience):
            return None
        return access if access.expires_at - self.clock.time() >= MIN_REMAINING else None

    def keep(self, grant_type: str, access: AccessToken, requested: tuple[str, ...] = ()) -> None:
        """Remember ``access`` as the current token of its combination.

        :param requested: the resources its request named (a JWT's ``aud`` is the
            default audience when there were none).
        """
        slot = _slot(access.client_id, access.user_id, grant_type, access.scopes, requested)
        nonce = os.urandom(12)
        sealed = nonce + self.aead.encrypt(nonce, access.token.encode("utf-8"), slot.encode())
        ttl = max(1, access.expires_at - int(self.clock.time()))
        self.repository.save_unique_token(slot, UniqueTokenRecord(sealed), ttl)


def _slot(
    client_id: str, user_id: str | None, grant_type: str, scopes: tuple[str, ...], audience: tuple[str, ...]
) -> str:
    parts: list[Any] = [client_id, user_id, grant_type, sorted(scopes)]
    if audience:  # only then: the slots of tokens without one stay where they were
        parts.append(sorted(audience))
    key = json.dumps(parts, separators=(",", ":"))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
