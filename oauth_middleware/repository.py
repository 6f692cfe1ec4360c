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
``code:<sha256>``      an authorization code's record, keyed by the code's
                       hash (codes are never stored in clear)
``code-used:<sha256>`` a redeemed code: its family, and ``r`` once it was
                       presented again (replay, RFC 6749 §4.1.2)
``used:<sha256>``      a rotated refresh token: its chain's data, kept as
                       long as the token would have lived, to detect reuse
``consent:<sha256>``   index of the scopes a user approved for a client (the
                       hash of user id and client id), plus the member
                       :data:`APPROVED`, for ``remember_consent``
``unique:<sha256>``    the encrypted current access token of one client,
                       user, grant type and scope set, for ``unique_tokens``
``fail:<subject>``     a counter of failed authentications (and of those
                       being checked) in the current ``throttle_window``;
                       subjects are ``addr:<ip>`` (an IPv6 client by its
                       ``/64``) alone or with ``|client:<id>`` or
                       ``|user:<sha256 of the normalised username>``
                       (usernames are never stored in clear); the address
                       of a pair may be ``unknown``
``block:<subject>``    a throttled subject: ``u``, the Unix time its block
                       ends (see :mod:`oauth_middleware.throttle`)
=====================  =====================================================
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from .models import AccessToken, Client
from .stores import Store

_CLIENTS_INDEX = "clients"
#: Member of every remembered approval, so that one of no scope is remembered too.
#: A space is never part of a scope token (RFC 6749 §3.3), so no scope can be it.
APPROVED = " approved"


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
        # Index first: if the store fails between the two writes, a listed id
        # without a record is skipped by list_clients, whereas a client that
        # works but is missing from ``client list`` could not be audited.
        self.client_store.index_add(_CLIENTS_INDEX, client.client_id, None)
        self.client_store.put(f"client:{client.client_id}", client.to_value(), None)

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

    def _save(
        self,
        key: str,
        token: AccessToken,
        ttl: int,
        family: str | None,
        more: Mapping[str, Any] | None = None,
    ) -> None:
        record = {
            "c": token.client_id,
            "u": token.user_id,
            "s": list(token.scopes),
            "e": token.expires_at,
            "x": dict(token.extra),
            "f": family,
            **(more or {}),
        }
        # Family index first, record second: should the store fail between the
        # two writes (a timeout, a server going down), a token can never exist
        # outside its family, where revoking the family (code replay, refresh
        # reuse) would miss it. A member without a record is harmless: deleting
        # it is a no-op.
        if family is not None:
            self.store.index_add(f"family:{family}", key, ttl)
        self.store.put(key, record, ttl)

    def add_access_token_to_family(self, token_id: str, family: str, ttl: int) -> None:
        """List an access token, already stored, in one more ``family`` (see ``unique_tokens``)."""
        self.store.index_add(f"family:{family}", f"at:{token_id}", ttl)

    def find_access_token(self, token_id: str) -> dict[str, Any] | None:
        """The record of the access token whose hash is ``token_id``."""
        return self.store.get(f"at:{token_id}")

    def revoke_access_token(self, token_id: str) -> dict[str, Any] | None:
        """Remove one access token; return its record if it was live."""
        return self.store.take(f"at:{token_id}")

    # -- refresh tokens ----------------------------------------------------

    def save_refresh_token(
        self, token: AccessToken, ttl: int, family: str, chain_expires_at: int | None = None
    ) -> None:
        """Store a refresh token's record under its hash, in ``family``.

        ``token`` carries the refresh token's own hash as ``token_id``.

        :param chain_expires_at: when the whole rotation chain ends (``ce``);
            a rotated token never outlives it.
        """
        more = {"ce": chain_expires_at} if chain_expires_at is not None else None
        self._save(f"rt:{token.token_id}", token, ttl, family, more)

    def find_refresh_token(self, token_id: str) -> dict[str, Any] | None:
        """The live record of the refresh token whose hash is ``token_id``."""
        return self.store.get(f"rt:{token_id}")

    def take_refresh_token(self, token_id: str) -> dict[str, Any] | None:
        """Atomically remove and return a refresh token's record (one winner)."""
        return self.store.take(f"rt:{token_id}")

    def claim_rotation(self, token_id: str, marker: Mapping[str, Any], ttl: int) -> bool:
        """Mark a refresh token as rotated; exactly one concurrent caller gets True.

        :param marker: what reuse detection needs later (family, client, time).
        """
        claimed = self.store.add(f"used:{token_id}", dict(marker), ttl)
        if claimed:
            self.store.delete(f"rt:{token_id}")
        return claimed

    def rotated_refresh_token(self, token_id: str) -> dict[str, Any] | None:
        """The marker of a refresh token that was already rotated, or None."""
        return self.store.get(f"used:{token_id}")

    def mark_refresh_reused(self, token_id: str, marker: Mapping[str, Any], ttl: int) -> None:
        """Record that a rotated refresh token was presented again (``r``)."""
        self.store.put(f"used:{token_id}", {**marker, "r": True}, ttl)

    # -- authorization codes -----------------------------------------------

    def save_code(self, code_id: str, record: Mapping[str, Any], ttl: int) -> None:
        """Store a new authorization code's record under the code's hash."""
        self.store.put(f"code:{code_id}", dict(record), ttl)

    def find_code(self, code_id: str) -> dict[str, Any] | None:
        """The record of an unredeemed, unexpired code, or None."""
        return self.store.get(f"code:{code_id}")

    def claim_code(self, code_id: str, family: str, ttl: int) -> bool:
        """Redeem a code: exactly one concurrent caller gets True (single use).

        The ``code-used`` marker is written before the code is deleted, so a
        second redemption always finds one or the other.
        """
        claimed = self.store.add(f"code-used:{code_id}", {"f": family}, ttl)
        if claimed:
            self.store.delete(f"code:{code_id}")
        return claimed

    def redeemed_code(self, code_id: str) -> dict[str, Any] | None:
        """The ``code-used`` marker of a code (``f``: family, ``r``: replayed)."""
        return self.store.get(f"code-used:{code_id}")

    def mark_code_replayed(self, code_id: str, family: str, ttl: int) -> None:
        """Record that a redeemed code was presented again."""
        self.store.put(f"code-used:{code_id}", {"f": family, "r": True}, ttl)

    # -- remembered consent --------------------------------------------------

    def save_consent(self, user_id: str, client_id: str, scopes: tuple[str, ...], ttl: int) -> None:
        """Remember that ``user_id`` approved ``scopes`` for ``client_id`` (added to earlier ones).

        Each scope is added to a set index, which every store does atomically,
        so approvals given at the same time all stay (a read-merge-write of
        one record would keep only the last). The set lives ``ttl`` seconds
        from the latest approval.
        """
        key = f"consent:{_pair_digest(user_id, client_id)}"
        for scope in scopes:
            self.store.index_add(key, scope, ttl)
        # Last, so that a first approval is not seen at all until every scope is in.
        self.store.index_add(key, APPROVED, ttl)

    def has_consent(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> bool:
        """True when ``user_id`` already approved all of ``scopes`` for ``client_id``."""
        approved = self.store.index_members(f"consent:{_pair_digest(user_id, client_id)}")
        return APPROVED in approved and set(scopes) <= approved

    # -- unique tokens -------------------------------------------------------

    def find_unique_token(self, key: str) -> dict[str, Any] | None:
        """The kept current token of a unique-token key (see :mod:`.tokens.unique`)."""
        return self.store.get(f"unique:{key}")

    def save_unique_token(self, key: str, record: Mapping[str, Any], ttl: int) -> None:
        """Keep the current token of a unique-token key for ``ttl`` seconds."""
        self.store.put(f"unique:{key}", dict(record), ttl)

    # -- throttling ----------------------------------------------------------

    def count_attempt(self, subject: str, window: int) -> int:
        """Count an authentication of ``subject`` before it is checked; its count in this ``window``."""
        return self.store.incr(f"fail:{subject}", window)

    def give_back_attempt(self, subject: str) -> None:
        """Take back an attempt counted by :meth:`count_attempt` (its credentials were right)."""
        self.store.decr(f"fail:{subject}")

    def block(self, subject: str, until: float, ttl: int) -> bool:
        """Block ``subject`` until ``until`` (Unix time); False when it already was.

        A block in place is kept as it is, so failures racing in while it is
        set never lengthen it.
        """
        return self.store.add(f"block:{subject}", {"u": until}, ttl)

    def clear_throttle(self, subject: str) -> None:
        """Forget the count and the block of ``subject`` (``oauth-middleware throttle clear``)."""
        self.store.delete(f"fail:{subject}", f"block:{subject}")

    def blocked_until(self, subject: str) -> float | None:
        """When the block of ``subject`` ends (Unix time), or None when it is not blocked."""
        record = self.store.get(f"block:{subject}")
        return None if record is None else float(record["u"])

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
        # The index stays (it expires with its last member). The winner of a
        # code redemption or a rotation lists its new tokens here, then looks for
        # a replay, and revokes the family again if it sees one; a replay marks
        # itself, then revokes. Whichever runs last finds every token, but only if
        # no revocation in between emptied the index. Revoking twice is harmless.
        if keys:
            self.store.delete(*keys)

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


def _pair_digest(user_id: str, client_id: str) -> str:
    """A fixed-length key part for a (user, client) pair, whatever characters they hold."""
    return hashlib.sha256(f"{user_id}\x00{client_id}".encode()).hexdigest()
