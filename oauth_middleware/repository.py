"""OAuth records on top of a dumb :class:`~oauth_middleware.stores.Store`.

The one place that knows the key layout, so every backend stores the same
things the same way:

=====================  =====================================================
``client:<id>``        a :class:`~oauth_middleware.models.Client`
``clients``            index of client ids
``at:<sha256>``        an access token record, keyed by the token's hash
``rt:<sha256>``        a refresh token record (same fields as an access
                       token record; ``f`` is always set)
``family:<id>``        index of the token keys issued from one grant
                       (one code, one refresh chain), revoked together;
                       a JWT access token is the member
                       ``jwt:<jti>:<deny-until>`` (nothing is stored for it)
``deny:<jti>``         a revoked JWT access token's ``jti``, kept until the
                       token can no longer pass (its ``exp`` plus leeway)
=====================  =====================================================
"""

from __future__ import annotations

import time
from typing import Any

from .models import AccessToken, Client
from .stores import Store

_CLIENTS_INDEX = "clients"


class Repository:
    """Clients and tokens, kept in one or two stores.

    :param store: tokens, codes and everything short-lived.
    :param client_store: durable home of clients when ``store`` may evict
        (memcached); defaults to ``store``.
    """

    def __init__(self, store: Store, client_store: Store | None = None) -> None:
        self.store = store
        self.client_store = client_store or store

    # -- clients -----------------------------------------------------------

    def get_client(self, client_id: str) -> Client | None:
        """The client registered as ``client_id``, or None."""
        value = self.client_store.get(f"client:{client_id}")
        return None if value is None else Client.from_value(value)

    def save_client(self, client: Client) -> None:
        """Register or replace a client."""
        self.client_store.put(f"client:{client.client_id}", client.to_value(), None)
        self.client_store.index_add(_CLIENTS_INDEX, client.client_id, None)

    def remove_client(self, client_id: str) -> bool:
        """Remove a client; False when there was none."""
        existed = self.client_store.take(f"client:{client_id}") is not None
        self.client_store.index_discard(_CLIENTS_INDEX, client_id)
        return existed

    def list_clients(self) -> list[Client]:
        """All registered clients, sorted by id."""
        clients = (self.get_client(cid) for cid in sorted(self.client_store.index_members(_CLIENTS_INDEX)))
        return [client for client in clients if client is not None]

    # -- access tokens -----------------------------------------------------

    def save_access_token(self, token: AccessToken, ttl: int, family: str | None) -> None:
        """Store an access token's record under its hash (never the token)."""
        self._save(f"at:{token.token_id}", token, ttl, family)

    def _save(self, key: str, token: AccessToken, ttl: int, family: str | None) -> None:
        record = {
            "c": token.client_id,
            "u": token.user_id,
            "s": list(token.scopes),
            "e": token.expires_at,
            "x": dict(token.extra),
            "f": family,
        }
        self.store.put(key, record, ttl)
        if family is not None:
            self.store.index_add(f"family:{family}", key, ttl)

    def find_access_token(self, token_id: str) -> dict[str, Any] | None:
        """The record of the access token whose hash is ``token_id``."""
        return self.store.get(f"at:{token_id}")

    def revoke_access_token(self, token_id: str) -> dict[str, Any] | None:
        """Remove one access token; return its record if it was live."""
        return self.store.take(f"at:{token_id}")

    # -- refresh tokens ----------------------------------------------------

    def save_refresh_token(self, token: AccessToken, ttl: int, family: str) -> None:
        """Store a refresh token's record under its hash, in ``family``.

        ``token`` carries the refresh token's own hash as ``token_id``.
        """
        self._save(f"rt:{token.token_id}", token, ttl, family)

    def find_refresh_token(self, token_id: str) -> dict[str, Any] | None:
        """The live record of the refresh token whose hash is ``token_id``."""
        return self.store.get(f"rt:{token_id}")

    def take_refresh_token(self, token_id: str) -> dict[str, Any] | None:
        """Atomically remove and return a refresh token's record (one winner)."""
        return self.store.take(f"rt:{token_id}")

    # -- families ----------------------------------------------------------

    def revoke_family(self, family: str) -> None:
        """Remove every token issued in ``family`` (a code or a refresh chain).

        Stored tokens are deleted; JWT access tokens, which are not stored,
        go on the deny list until they expire.
        """
        keys = []
        for member in self.store.index_members(f"family:{family}"):
            if member.startswith("jwt:"):
                jti, _, until = member[4:].rpartition(":")
                self.deny_jwt(jti, int(until))
            else:
                keys.append(member)
        self.store.delete(*keys, f"family:{family}")

    # -- JWT deny list -----------------------------------------------------

    def index_jwt(self, family: str, jti: str, deny_until: int, ttl: int) -> None:
        """Record a JWT access token in ``family``, so revoking the family denies it.

        :param deny_until: Unix time after which the token cannot pass anyway.
        """
        self.store.index_add(f"family:{family}", f"jwt:{jti}:{deny_until}", ttl)

    def deny_jwt(self, jti: str, until: int) -> None:
        """Put a JWT's ``jti`` on the deny list until ``until`` (Unix time)."""
        ttl = until - int(time.time())
        if ttl > 0:  # a token past ``until`` fails its exp check: nothing to keep
            self.store.put(f"deny:{jti}", {"u": until}, ttl)

    def is_jwt_denied(self, jti: str) -> bool:
        """True when the JWT with this ``jti`` was revoked."""
        return self.store.get(f"deny:{jti}") is not None
