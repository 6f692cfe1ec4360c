"""OAuth records on top of a dumb :class:`~oauth_middleware.stores.Store`.

The one place that knows the key layout, so every backend stores the same
things the same way:

=====================  =====================================================
``client:<id>``        a :class:`~oauth_middleware.models.Client`
``clients``            index of client ids
``at:<sha256>``        an access token record, keyed by the token's hash
``rt:<sha256>``        a refresh token record
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
``par:<sha256>``       a pushed authorization request (RFC 9126), keyed by
                       the hash of its ``request_uri``'s random part;
                       taken (read and deleted at once) when it is used
``consent:<sha256>``   index of the scopes a user approved for a client (the
                       hash of user id and client id), plus the member
                       :data:`~oauth_middleware.records.APPROVED`, for ``remember_consent``
``unique:<sha256>``    the encrypted current access token of one client,
                       user, grant type and scope set, for ``unique_tokens``
``fail:<subject>``     a counter of failed authentications (and of those
                       being checked) in the current ``throttle_window``;
                       subjects are ``addr:<ip>`` (an IPv6 client by its
                       ``/64``) alone or with ``|client:<id>`` or
                       ``|user:<sha256 of the normalised username>``
                       (usernames are never stored in clear); the address
                       of a pair may be ``unknown``; ``user-code`` counts
                       the wrong user codes of all addresses (RFC 8628 §5.1)
``block:<subject>``    a throttled subject: when its block ends (see
                       :mod:`oauth_middleware.throttle`)
``dpop:<sha256>``      a DPoP proof already used: the hash of its key's
                       thumbprint and ``jti`` (RFC 9449 §11.1)
``device:<sha256>``    a device authorization (RFC 8628), keyed by the
                       device code's hash; kept twice its lifetime
``user-code:<sha256>`` the hash of a device's pending user code -> the
                       device code's hash; taken when the user decides
``device-poll:<sha>``  a device code polled within its interval
``device-slow:<sha>``  a device code's interval, once raised by ``slow_down``
``device-used:<sha>``  a redeemed device code
``assertion:<sha256>`` a client assertion already used: the hash of its
                       client id and ``jti`` (RFC 7523 §3)
``grant-jwt:<sha256>`` a JWT authorization grant already used: the hash
                       of its issuer and ``jti`` (RFC 7523 §3)
``registration:<id>``  in the client store: a dynamically registered
                       client's registration (RFC 7591, 7592), its
                       registration access token hashed
``registered:<addr>``  registration requests from one address in the
                       current ``registration_window``
``deleted:<id>``       a registration deleted by its client (RFC 7592
                       §2.3): the access tokens of ``<id>`` expiring by
                       then were issued before and are refused; kept
                       until the last of them has expired
``grants:<sha256>``    index of one user's grants (the hash of the user id):
                       codes, families of tokens, remembered consents, each
                       a :class:`~oauth_middleware.records.GrantRecord`
``revoked:<family>``   a family ended by ``revoke_grants``, until its last
                       token would have ended: a code redemption or refresh
                       racing the revocation revokes what it issued
``revocations``        the revocation generation: a random value written
                       anew each time a token is ended (stores without a
                       channel), read by the guards' caches; on Redis the
                       ended keys are published on ``<prefix>revoked``
=====================  =====================================================

The records themselves, and the fields of each, are the typed values of
:mod:`oauth_middleware.records`: callers give and get those, never a store's dict.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .clock import SYSTEM_CLOCK, Clock
from .models import AccessToken, Client
from .records import (
    AccessTokenRecord,
    BlockRecord,
    CodeRecord,
    CodeUsedMarker,
    ConsentRecord,
    DenyEntry,
    DeviceCodeRecord,
    GrantRecord,
    PushedRequestRecord,
    RefreshTokenRecord,
    RegistrationRecord,
    RotationMarker,
    UniqueTokenRecord,
    UsedJtiRecord,
)
from .stores import BatchCounterStore, ChannelStore, Store, Value

if TYPE_CHECKING:
    from .token_cache import TokenCache

_CLIENTS_INDEX = "clients"
#: Most clients whose built :class:`Client` a repository keeps (see :meth:`Repository.get_client`).
_CLIENTS_BUILT = 1024
#: Written anew whenever a token is ended, for the caches of stores without a channel.
GENERATION_KEY = "revocations"
#: Where the keys of ended tokens are published, on a store with a channel.
REVOKED_CHANNEL = "revoked"


@runtime_checkable
class UnblockedCounterStore(Protocol):
    """A store that counts several counters up unless a key is live, in one operation (SQLite).

    The throttle's look for blocks and its count of an attempt then cost one
    statement (one write transaction) instead of three, and a block set
    between the two can no longer let an attempt be counted.
    """

    def incr_many_unless(
        self, keys: tuple[str, ...], ttl: int, blocks: tuple[str, ...]
    ) -> tuple[int, ...] | None:
        """``incr_many(keys, ttl)`` when none of ``blocks`` holds a live value; else None, nothing counted."""


def new_generation() -> Value:
    """A fresh revocation generation: random, so that no later one can equal an earlier one."""
    return {"g": secrets.token_hex(8)}


def access_token_key(token_id: str) -> str:
    """The key of the access token whose hash is ``token_id``."""
    return f"at:{token_id}"


def deny_key(jti: str) -> str:
    """The deny-list key of the JWT ``jti``."""
    return f"deny:{jti}"


class Repository:
    """Clients and tokens, kept in one or two stores.

    :param store: tokens, codes and everything short-lived.
    :param client_store: durable home of clients when ``store`` may evict
        (memcached); defaults to ``store``.
    :param clock: the time deny-list entries are kept from.
    :param cache: this process's guard cache, which forgets the tokens ended here at once.
    """

    def __init__(
        self,
        store: Store,
        client_store: Store | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache: TokenCache | None = None,
    ) -> None:
        self.store = store
        self.client_store = client_store or store
        self.clock = clock
        self.cache = cache
        #: The guard's token cache's stamp (:meth:`TokenCache.stamp
        #: <oauth_middleware.token_cache.TokenCache.stamp>`), always None without a cache; the
        #: cache's own method, not a call through this one: the guard asks it on every request.
        self.stamp: Callable[[], int | None] = _no_stamp if cache is None else cache.stamp
        #: The store, when it counts several counters in one operation (asked once, not per call).
        self._batch_counters = store if isinstance(store, BatchCounterStore) else None
        self._unblocked_counters = store if isinstance(store, UnblockedCounterStore) else None
        #: Whether :meth:`count_attempts` looks for blocks itself (in the same store operation).
        self.counts_look_for_blocks = self._unblocked_counters is not None
        #: Client id -> the value last read for it and the client built from that value.
        self._clients_built: dict[str, tuple[Value, Client]] = {}

    # -- clients -----------------------------------------------------------

    def get_client(self, client_id: str) -> Client | None:
        """The client registered as ``client_id``, or None.

        The store is read on every call. What is kept is only the object built
        from a value, returned again while the value read equals it: a client
        changed or removed anywhere (a secret rotated by another process) is
        seen at once, and the rebuild, a twentieth of a token request, is skipped.
        """
        value = self.client_store.get(f"client:{client_id}")
        if value is None:
            return None
        built = self._clients_built.get(client_id)
        if built is not None and built[0] == value:
            return built[1]
        client = Client.from_value(value)
        if len(self._clients_built) >= _CLIENTS_BUILT:
            self._clients_built.clear()  # bounded: many clients just build each time more often
        self._clients_built[client_id] = (value, client)
        return client

    def save_client(self, client: Client) -> None:
        """Register or replace a client."""
        # Index first: if the store fails between the two writes, a listed id
        # without a record is skipped by list_clients, whereas a client that
        # works but is missing from ``client list`` could not be audited.
        self.client_store.index_add(_CLIENTS_INDEX, client.client_id, None)
        self.client_store.put(f"client:{client.client_id}", client.to_value(), None)

    def remove_client(self, client_id: str) -> bool:
        """Remove a client (and its dynamic registration, if any); False when there was none."""
        existed = self.client_store.take(f"client:{client_id}") is not None
        self.client_store.delete(f"registration:{client_id}")
        self.client_store.index_discard(_CLIENTS_INDEX, client_id)
        return existed

    # -- dynamic registrations (RFC 7591, 7592) --------------------------------

    def save_registration(self, client: Client, record: RegistrationRecord) -> None:
        """Register or replace a dynamically registered client with its registration."""
        # The registration first: a client without one could not be managed by its owner.
        self.client_store.put(f"registration:{client.client_id}", record.to_value(), None)
        self.save_client(client)

    def find_registration(self, client_id: str) -> RegistrationRecord | None:
        """The dynamic registration of ``client_id``, or None (not registered that way)."""
        value = self.client_store.get(f"registration:{client_id}")
        return None if value is None else RegistrationRecord.from_value(value)

    def deny_client_tokens(self, client_id: str, until: int, ttl: int) -> None:
        """Refuse every access token of ``client_id`` that expires by ``until`` (Unix time).

        Called as a registration is deleted, with ``until`` when the last token
        issued so far expires: those tokens are refused though nothing lists
        them, and a later client with the same id keeps its own.

        :param ttl: seconds the marker is kept: until no such token passes its expiry check.
        """
        self.store.put(f"deleted:{client_id}", DenyEntry(until).to_value(), ttl)
        # Every guard's memo of verified headers forgets, so the marker is read.
        self.ended(f"deleted:{client_id}")

    def is_deleted_clients_token(self, token: AccessToken) -> bool:
        """True when ``token`` was issued to a client before its registration was deleted."""
        value = self.store.get(f"deleted:{token.client_id}")
        return value is not None and token.expires_at <= DenyEntry.from_value(value).until

    def count_registration(self, address: str, window: int) -> int:
        """Count a registration request from ``address``; its count in this ``window``."""
        return self.store.incr(f"registered:{address}", window)

    def list_clients(self) -> list[Client]:
        """All registered clients, sorted by id."""
        clients = (self.get_client(cid) for cid in sorted(self.client_store.index_members(_CLIENTS_INDEX)))
        return [client for client in clients if client is not None]

    def find_clients(self, attributes: Mapping[str, str]) -> list[Client]:
        """The clients carrying every one of ``attributes`` (``meta``), sorted by id.

        Clients are few and read from the client store one by one, as
        :meth:`list_clients` does; no index is kept per attribute.
        """
        return [client for client in self.list_clients() if client.matches(attributes)]

    # -- access tokens -----------------------------------------------------

    def save_access_token(self, token_id: str, record: AccessTokenRecord, ttl: int) -> None:
        """Store an access token's record under its hash (never the token), in its family if any."""
        self._save(f"at:{token_id}", record.to_value(), ttl, record.family)

    def _save(self, key: str, value: Value, ttl: int, family: str | None) -> None:
        # Family index first, record second: should the store fail between the
        # two writes (a timeout, a server going down), a token can never exist
        # outside its family, where revoking the family (code replay, refresh
        # reuse) would miss it. A member without a record is harmless: deleting
        # it is a no-op.
        if family is not None:
            self.store.index_add(f"family:{family}", key, ttl)
        self.store.put(key, value, ttl)

    def add_access_token_to_family(self, token_id: str, family: str, ttl: int) -> None:
        """List an access token, already stored, in one more ``family`` (see ``unique_tokens``)."""
        self.store.index_add(f"family:{family}", f"at:{token_id}", ttl)

    def find_access_token(self, token_id: str) -> AccessTokenRecord | None:
        """The record of the access token whose hash is ``token_id``."""
        value = self.store.get(access_token_key(token_id))
        return None if value is None else AccessTokenRecord.from_value(value)

    def load_access_token(self, token: str, token_id: str) -> AccessToken | None:
        """The stored access token ``token`` (whose hash is ``token_id``), as the guard hands it on."""
        value = self.store.get(access_token_key(token_id))
        return None if value is None else AccessTokenRecord.access_token_from_value(value, token, token_id)

    def revoke_access_token(self, token_id: str) -> AccessTokenRecord | None:
        """Remove one access token; return its record if it was live."""
        value = self.store.take(access_token_key(token_id))
        if value is None:
            return None
        self.ended(access_token_key(token_id))
        return AccessTokenRecord.from_value(value)

    # -- refresh tokens ----------------------------------------------------

    def save_refresh_token(self, token_id: str, record: RefreshTokenRecord, ttl: int) -> None:
        """Store a refresh token's record under its hash, in its family."""
        self._save(f"rt:{token_id}", record.to_value(), ttl, record.family)

    def find_refresh_token(self, token_id: str) -> RefreshTokenRecord | None:
        """The live record of the refresh token whose hash is ``token_id``."""
        value = self.store.get(f"rt:{token_id}")
        return None if value is None else RefreshTokenRecord.from_value(value)

    def take_refresh_token(self, token_id: str) -> RefreshTokenRecord | None:
        """Atomically remove and return a refresh token's record (one winner)."""
        value = self.store.take(f"rt:{token_id}")
        return None if value is None else RefreshTokenRecord.from_value(value)

    def claim_rotation(self, token_id: str, marker: RotationMarker, ttl: int) -> bool:
        """Mark a refresh token as rotated; exactly one concurrent caller gets True.

        :param marker: what reuse detection needs later (the chain, the client, the time).
        """
        claimed = self.store.add(f"used:{token_id}", marker.to_value(), ttl)
        if claimed:
            self.store.delete(f"rt:{token_id}")
        return claimed

    def rotated_refresh_token(self, token_id: str) -> RotationMarker | None:
        """The marker of a refresh token that was already rotated, or None."""
        value = self.store.get(f"used:{token_id}")
        return None if value is None else RotationMarker.from_value(value)

    def mark_refresh_reused(self, token_id: str, marker: RotationMarker, ttl: int) -> None:
        """Record that a rotated refresh token was presented again."""
        self.store.put(f"used:{token_id}", marker.as_reused().to_value(), ttl)

    # -- authorization codes -----------------------------------------------

    def save_code(self, code_id: str, record: CodeRecord, ttl: int) -> None:
        """Store a new authorization code's record under the code's hash."""
        self.store.put(f"code:{code_id}", record.to_value(), ttl)

    def find_code(self, code_id: str) -> CodeRecord | None:
        """The record of an unredeemed code, or None."""
        value = self.store.get(f"code:{code_id}")
        return None if value is None else CodeRecord.from_value(value)

    def claim_code(self, code_id: str, family: str, ttl: int) -> bool:
        """Redeem a code: exactly one concurrent caller gets True (single use).

        The ``code-used`` marker is written before the code is deleted, so a
        second redemption always finds one or the other.
        """
        claimed = self.store.add(f"code-used:{code_id}", CodeUsedMarker(family).to_value(), ttl)
        if claimed:
            self.store.delete(f"code:{code_id}")
        return claimed

    def redeemed_code(self, code_id: str) -> CodeUsedMarker | None:
        """The marker of a redeemed code, or None."""
        value = self.store.get(f"code-used:{code_id}")
        return None if value is None else CodeUsedMarker.from_value(value)

    def mark_code_replayed(self, code_id: str, family: str, ttl: int) -> None:
        """Record that a redeemed code was presented again."""
        self.store.put(f"code-used:{code_id}", CodeUsedMarker(family, replayed=True).to_value(), ttl)

    # -- pushed authorization requests (RFC 9126) ------------------------------

    def save_pushed_request(self, request_id: str, record: PushedRequestRecord, ttl: int) -> None:
        """Store a pushed request under the hash of its ``request_uri``."""
        self.store.put(f"par:{request_id}", record.to_value(), ttl)

    def find_pushed_request(self, request_id: str) -> PushedRequestRecord | None:
        """The pushed request, if not used yet (it may have expired: check ``expires_at``)."""
        value = self.store.get(f"par:{request_id}")
        return None if value is None else PushedRequestRecord.from_value(value)

    def take_pushed_request(self, request_id: str) -> PushedRequestRecord | None:
        """Use a pushed request: exactly one concurrent caller gets it (one-time ``request_uri``)."""
        value = self.store.take(f"par:{request_id}")
        return None if value is None else PushedRequestRecord.from_value(value)

    # -- remembered consent --------------------------------------------------

    def save_consent(self, user_id: str, client_id: str, scopes: tuple[str, ...], ttl: int) -> None:
        """Remember that ``user_id`` approved ``scopes`` for ``client_id`` (added to earlier ones).

        Each scope is added to a set index, which every store does atomically,
        so approvals given at the same time all stay (a read-merge-write of
        one record would keep only the last). The set lives ``ttl`` seconds
        from the latest approval; its last member makes the approval whole.
        """
        now = int(self.clock.time())
        # Listed first: a consent the user's grants do not list could never be forgotten.
        self.index_grant(user_id, GrantRecord(client_id, None, now, now + ttl, scopes))
        key = f"consent:{_pair_digest(user_id, client_id)}"
        for member in ConsentRecord(frozenset(scopes)).to_members():
            self.store.index_add(key, member, ttl)

    def find_consent(self, user_id: str, client_id: str) -> ConsentRecord | None:
        """What ``user_id`` approved for ``client_id`` so far, or None."""
        return ConsentRecord.from_members(
            self.store.index_members(f"consent:{_pair_digest(user_id, client_id)}")
        )

    def has_consent(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> bool:
        """True when ``user_id`` already approved all of ``scopes`` for ``client_id``."""
        consent = self.find_consent(user_id, client_id)
        return consent is not None and consent.covers(scopes)

    # -- unique tokens -------------------------------------------------------

    def find_unique_token(self, key: str) -> UniqueTokenRecord | None:
        """The kept current token of a unique-token key (see :mod:`.tokens.unique`).

        :raises ValueError: the entry is garbled.
        """
        value = self.store.get(f"unique:{key}")
        return None if value is None else UniqueTokenRecord.from_value(value)

    def save_unique_token(self, key: str, record: UniqueTokenRecord, ttl: int) -> None:
        """Keep the current token of a unique-token key for ``ttl`` seconds."""
        self.store.put(f"unique:{key}", record.to_value(), ttl)

    # -- throttling ----------------------------------------------------------

    def count_attempts(self, subjects: tuple[str, ...], window: int) -> tuple[int, ...] | None:
        """Count an authentication against each of ``subjects`` before it is checked; their counts
        in this ``window``. One store operation where the store has one.

        Where the store can (:attr:`counts_look_for_blocks`), that operation also looks
        for the subjects' blocks, and None means one is blocked: nothing was counted.
        """
        counters = tuple([f"fail:{subject}" for subject in subjects])
        if self._unblocked_counters is not None:
            blocks = tuple([f"block:{subject}" for subject in subjects])
            return self._unblocked_counters.incr_many_unless(counters, window, blocks)
        if self._batch_counters is not None:
            return self._batch_counters.incr_many(counters, window)
        # Comprehensions, not generators: this runs on every token request.
        return tuple([self.store.incr(counter, window) for counter in counters])

    def give_back_attempts(self, subjects: tuple[str, ...]) -> None:
        """Take back an attempt counted by :meth:`count_attempts` (its credentials were right).

        One store operation where the store has one.
        """
        if self._batch_counters is not None:
            self._batch_counters.decr_many(tuple([f"fail:{subject}" for subject in subjects]))
            return
        for subject in subjects:
            self.store.decr(f"fail:{subject}")

    def block(self, subject: str, record: BlockRecord, ttl: int) -> bool:
        """Block ``subject`` as ``record`` says; False when it already was.

        A block in place is kept as it is, so failures racing in while it is
        set never lengthen it.
        """
        return self.store.add(f"block:{subject}", record.to_value(), ttl)

    def clear_throttle(self, subject: str) -> None:
        """Forget the count and the block of ``subject`` (``oauth-middleware throttle clear``)."""
        self.store.delete(f"fail:{subject}", f"block:{subject}")

    def find_block(self, subject: str) -> BlockRecord | None:
        """The block of ``subject``, or None when it is not blocked."""
        value = self.store.get(f"block:{subject}")
        return None if value is None else BlockRecord.from_value(value)

    # -- DPoP proofs ---------------------------------------------------------

    def record_dpop_jti(self, proof_id: str, ttl: int) -> bool:
        """Record a DPoP proof's ``jti`` (with its key's thumbprint) as used; False when it already was.

        One atomic ``add`` on every store: of concurrent requests with one
        proof, in any process, exactly one gets True.
        """
        return self._first_use(f"dpop:{hashlib.sha256(proof_id.encode()).hexdigest()}", ttl)

    # -- device authorization (RFC 8628) ---------------------------------------

    def save_device_code(self, device_id: str, record: DeviceCodeRecord, ttl: int) -> None:
        """Store a device authorization (kept ``2 * ttl``) and its user code (``ttl``)."""
        self.store.put(f"device:{device_id}", record.to_value(), 2 * ttl)
        self.store.put(f"user-code:{record.user_code_id}", {"d": device_id}, ttl)

    def find_device_code(self, device_id: str) -> DeviceCodeRecord | None:
        """The device authorization, unless unknown or redeemed."""
        value = self.store.get(f"device:{device_id}")
        return None if value is None else DeviceCodeRecord.from_value(value)

    def find_user_code(self, user_code_id: str) -> str | None:
        """The device code id a pending user code names, or None."""
        value = self.store.get(f"user-code:{user_code_id}")
        return None if value is None else str(value["d"])

    def decide_device_code(self, device_id: str, record: DeviceCodeRecord, ttl: int) -> bool:
        """Record the user's decision (kept ``ttl``): only the first one counts (the user code is taken)."""
        if self.store.take(f"user-code:{record.user_code_id}") is None:
            return False
        self.store.put(f"device:{device_id}", record.to_value(), ttl)
        return True

    def claim_device_code(self, device_id: str, ttl: int) -> bool:
        """Redeem an approved device code: exactly one concurrent caller gets True."""
        claimed = self.store.add(f"device-used:{device_id}", {"u": 1}, ttl)
        if claimed:
            self.store.delete(f"device:{device_id}")
        return claimed

    def device_code_redeemed(self, device_id: str) -> bool:
        """Whether the device code was redeemed."""
        return self.store.get(f"device-used:{device_id}") is not None

    def poll_device_code(self, device_id: str, interval: int, ttl: int) -> int | None:
        """Count a poll: None when it kept the interval, else the raised interval (``slow_down``).

        One atomic ``add`` per poll, on every store: of polls closer than the
        interval, in any process, all but one are too fast. The raised interval
        is kept in the store, so every process asks the device for it.
        """
        slow = self.store.get(f"device-slow:{device_id}")
        current = int(slow["i"]) if isinstance(slow, dict) else interval
        if self.store.add(f"device-poll:{device_id}", {"p": 1}, current):
            return None
        raised = current + 5  # RFC 8628 §3.5
        self.store.put(f"device-slow:{device_id}", {"i": raised}, ttl)
        # The device is to wait the raised interval from this poll on.
        self.store.put(f"device-poll:{device_id}", {"p": 1}, raised)
        return raised

    # -- client assertions ---------------------------------------------------

    def record_client_assertion(self, client_id: str, jti: str, ttl: int) -> bool:
        """Record a client assertion's ``jti`` as used by ``client_id``; False when it already was.

        One atomic ``add`` on every store: of concurrent requests with one
        assertion, in any process, exactly one gets True.
        """
        digest = hashlib.sha256(f"{client_id}\0{jti}".encode()).hexdigest()
        return self._first_use(f"assertion:{digest}", ttl)

    def record_grant_assertion(self, issuer: str, jti: str, ttl: int) -> bool:
        """Record a JWT authorization grant's ``jti`` as used for ``issuer``; False when it already was.

        Apart from client assertions: a client named like an issuer never uses up its ``jti`` values.
        """
        digest = hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()
        return self._first_use(f"grant-jwt:{digest}", ttl)

    def _first_use(self, key: str, ttl: int) -> bool:
        """Mark ``key`` used for ``ttl`` seconds with one atomic ``add``: True only the first time."""
        return self.store.add(key, UsedJtiRecord(int(self.clock.time())).to_value(), ttl)

    # -- families ----------------------------------------------------------

    def revoke_family(self, family: str) -> None:
        """Remove every token issued in ``family`` (a code or a refresh chain).

        Stored tokens are deleted; JWT access tokens, which are not stored,
        go on the deny list until they expire.
        """
        keys, denied = [], []
        for member in self.store.index_members(f"family:{family}"):
            if member.startswith("jwt:"):
                jti, _, until = member[4:].rpartition(":")
                if self._deny(jti, int(until)):
                    denied.append(deny_key(jti))
            else:
                keys.append(member)
        # The index stays (it expires with its last member). The winner of a
        # code redemption or a rotation lists its new tokens here, then looks for
        # a replay, and revokes the family again if it sees one; a replay marks
        # itself, then revokes. Whichever runs last finds every token, but only if
        # no revocation in between emptied the index. Revoking twice is harmless.
        if keys:
            self.store.delete(*keys)
        if keys or denied:
            self.ended(*keys, *denied)

    # -- a user's grants -----------------------------------------------------

    def index_grant(self, user_id: str, grant: GrantRecord) -> None:
        """List ``grant`` among ``user_id``'s until it ends (``grant.until``)."""
        ttl = max(1, grant.until - int(self.clock.time()))
        self.store.index_add(f"grants:{_user_digest(user_id)}", grant.to_member(), ttl)

    def find_grants(self, user_id: str) -> list[GrantRecord]:
        """``user_id``'s grants that have not ended, oldest first (garbled members are skipped)."""
        now = self.clock.time()
        grants = []
        for member in self.store.index_members(f"grants:{_user_digest(user_id)}"):
            try:
                grant = GrantRecord.from_member(member)
            except ValueError:
                continue
            if grant.until > now:
                grants.append(grant)
        return sorted(grants, key=lambda grant: (grant.since, grant.client_id))

    def revoke_grant(self, user_id: str, grant: GrantRecord) -> None:
        """End one grant of ``user_id``: its code, every token of its family, or its consent.

        The family is marked revoked first, so that a code redemption or a
        refresh that is issuing tokens in it right now revokes them itself
        once issued (see :meth:`family_revoked`).
        """
        if grant.family is None:
            self.store.delete(f"consent:{_pair_digest(user_id, grant.client_id)}")
        else:
            ttl = grant.until - int(self.clock.time())
            if ttl > 0:
                self.store.put(f"revoked:{grant.family}", DenyEntry(grant.until).to_value(), ttl)
            if grant.code:
                self.store.delete(f"code:{grant.family}")
            self.revoke_family(grant.family)
        self.store.index_discard(f"grants:{_user_digest(user_id)}", grant.to_member())

    def family_revoked(self, family: str) -> bool:
        """True when the family's grant was revoked (:meth:`revoke_grant`) and its tokens must not live."""
        return self.store.get(f"revoked:{family}") is not None

    # -- JWT deny list -----------------------------------------------------

    def index_jwt(self, family: str, jti: str, deny_until: int, ttl: int) -> None:
        """Record a JWT access token in ``family``, so revoking the family denies it.

        :param deny_until: Unix time after which the token cannot pass anyway.
        """
        self.store.index_add(f"family:{family}", f"jwt:{jti}:{deny_until}", ttl)

    def deny_jwt(self, jti: str, until: int) -> None:
        """Put a JWT's ``jti`` on the deny list until ``until`` (Unix time)."""
        if self._deny(jti, until):
            self.ended(deny_key(jti))

    def _deny(self, jti: str, until: int) -> bool:
        """Write the deny-list entry; False when the token is past ``until`` (nothing to keep)."""
        ttl = until - int(self.clock.time())
        if ttl <= 0:  # a token past ``until`` fails its exp check
            return False
        self.store.put(deny_key(jti), DenyEntry(until).to_value(), ttl)
        return True

    def is_jwt_denied(self, jti: str, expires_at: int | None = None) -> bool:
        """True when the JWT with this ``jti`` was revoked.

        :param expires_at: the token's ``exp``: how long a cache may keep a "no".
        """
        return self.store.get(deny_key(jti)) is not None

    # -- ended tokens --------------------------------------------------------

    def ended(self, *keys: str) -> None:
        """Tell every guard's cache that the tokens under ``keys`` ended (deleted or denied).

        Called after the store write by whatever ends a token (revocation, a
        family revoked on code replay or refresh reuse, a user's grants revoked).
        This process's cache forgets them now; a store with a channel (Redis)
        publishes them to the other processes, any other store gets a new
        revocation generation, which their caches read (``guard_cache_staleness``).
        """
        if self.cache is not None:
            self.cache.discard(keys)
        if isinstance(self.store, ChannelStore):
            self.store.publish(REVOKED_CHANNEL, " ".join(keys))
        else:
            self.store.put(GENERATION_KEY, new_generation(), None)


def _no_stamp() -> None:
    """The stamp of a repository without a cache: verdicts are never remembered."""
    return None


def _user_digest(user_id: str) -> str:
    """A fixed-length key part for a user id, whatever characters it holds."""
    return hashlib.sha256(f"user\x00{user_id}".encode()).hexdigest()


def _pair_digest(user_id: str, client_id: str) -> str:
    """A fixed-length key part for a (user, client) pair, whatever characters they hold."""
    return hashlib.sha256(f"{user_id}\x00{client_id}".encode()).hexdigest()
