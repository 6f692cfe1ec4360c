"""The guard's cache of validated tokens, and how a revocation reaches it in every process.

A guard that reads a shared store (Redis, memcached, SQL) on every request
pays a round trip per request. This cache keeps what such a read returned
for a live token (an opaque token as built from its record, "not on the deny
list" for a JWT) and answers the next requests from memory, but only while it
can be sure nothing it holds was ended since:

* an entry is keyed by the store key (``at:<sha256 of the token>``,
  ``deny:<jti>``), never by the token, and dies at the token's ``exp``;
* at most ``guard_cache_size`` entries are kept, the least recently used
  dropped first;
* the repository announces every token it ends (deleted, denied, its family
  or its user's grants revoked: :meth:`Repository.ended
  <oauth_middleware.repository.Repository.ended>`). On a store with a channel
  (Redis pub/sub) each process hears the keys at once and forgets them; while
  the channel is down the cache serves nothing (every request reads the
  store), and it starts again empty once the channel is back. On other
  stores a process reads the store's revocation generation at most once per
  ``guard_cache_staleness`` seconds and forgets everything when it changed,
  or when it cannot be read; with no staleness, a store with a change mark
  (SQLite, memory: :class:`~oauth_middleware.stores.ChangeStore`) is asked on
  each hit and the generation read when the mark moved.

A fill that read the store before the cache was last emptied (or the key
forgotten) is refused, so a read racing a revocation never brings a revoked
token back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING

from .clock import SYSTEM_CLOCK, Clock
from .errors import StoreUnavailable
from .models import AccessToken
from .records import AccessTokenRecord
from .repository import (
    GENERATION_KEY,
    REVOKED_CHANNEL,
    Repository,
    access_token_key,
    deny_key,
    new_generation,
)
from .stores import ChangeStore, ChannelStore, Store, Value
from .stores.base import LOST

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["CachedRepository", "TokenCache", "token_cache_from_settings"]

log = logging.getLogger("oauth_middleware.token_cache")

#: What an entry holds: an opaque token as built from its record, or a JWT's "not denied".
Cached = Value | AccessToken

#: Seconds of silence before the channel is pinged; no answer within as many again counts as lost.
HEARTBEAT = 1.0
#: Seconds :meth:`TokenCache.close` waits for the listener to end.
CLOSE_TIMEOUT = 2.0
#: Seconds to wait before subscribing again after the channel was lost.
RECONNECT_DELAY = 0.2


class TokenCache:
    """A bounded LRU of store values for live tokens, kept honest by a channel or a generation.

    :param size: most entries kept (one per token); at least 1.
    :param store: the store whose channel it listens to, or whose generation it polls.
    :param staleness: on a store without a channel, seconds between two reads of
        the revocation generation (the longest a revocation elsewhere goes unseen).
    :param clock: entries die at their token's ``exp`` by ``clock.time()``; the
        generation is read by ``clock.monotonic()``.

    Example::

        cache = TokenCache(10_000, store, staleness=1.0)
        repository = CachedRepository(store, cache=cache)
    """

    def __init__(
        self,
        size: int,
        store: Store,
        *,
        staleness: float = 0.0,
        clock: Clock = SYSTEM_CLOCK,
        changes: Callable[[], Hashable] | None = None,
    ) -> None:
        self.size = size
        self.store = store
        self.clock = clock
        self._entries: OrderedDict[str, tuple[Cached, int]] = OrderedDict()
        self._lock = threading.Lock()
        #: Bumped whenever entries are forgotten: a fill that began before is refused.
        self.epoch = 0
        self.channel = isinstance(store, ChannelStore)
        #: False while the cache cannot know of revocations (channel down, generation unreadable).
        #: A polling cache starts serving at once: its first read is of the generation.
        self.serving = not self.channel
        self.staleness = staleness
        self._next_check = float("-inf")
        self._generation: Value | None = None
        #: With a store that has a change mark (:class:`~oauth_middleware.stores.ChangeStore`) and
        #: no staleness: read on each hit; the generation is read when the mark moved.
        self.changes = changes
        self._version: Hashable | None = None
        self._checking = threading.Lock()
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()
        #: Held by the listener from the moment it reads from the channel until it has handled
        #: what it read; ``_fd`` is the channel's socket: readable means unread messages.
        self._busy = threading.Lock()
        self._fd = LOST
        #: Watches ``_fd``: level-triggered, so it reports unread data (and the end) until read.
        self._watch = select.epoll() if self.channel else None
        if self.channel:
            # The thread holds no reference to the cache: a cache dropped without close() stops it.
            weakref.finalize(self, self._closed.set)
            self._listen_in_background()
            reset = weakref.WeakMethod(self._forked)
            os.register_at_fork(after_in_child=lambda: (method := reset()) is not None and method())
        #: Whether the cache may serve now, by the channel, the store's changes or the
        #: generation's schedule (asked on every hit, so chosen once here).
        self._may_serve: Callable[[], bool] = (
            self._channel_quiet
            if self.channel
            else self._check_changes
            if changes is not None
            else self._generation_fresh
        )

    # -- reads and fills ----------------------------------------------------

    def stamp(self) -> int | None:
        """The cache's epoch if it may serve now, else None.

        What a hit asks first (see :meth:`get`), and what the guard's memo of
        verified headers compares (:mod:`oauth_middleware.verified_headers`):
        the epoch moves whenever entries are forgotten, so a verdict given
        under one epoch is still good while the stamp is the same.
        """
        return self.epoch if self._may_serve() and self.serving else None

    def _channel_quiet(self) -> bool:
        """Nothing waits on the channel nor is being handled: what it carried so far is applied.

        Data waiting, or being handled, may be a revocation (or the server's
        goodbye): the store answers until it is handled. In this order, so
        that data read between the two looks is seen as being handled.
        """
        return not (self._unread() or self._busy.locked())

    def _generation_fresh(self) -> bool:
        """The generation was read less than ``staleness`` ago, or is read now."""
        return self.clock.monotonic() < self._next_check or self._check_generation()

    def get(self, key: str) -> Cached | None:
        """The cached value of ``key``, or None (not cached, expired, or the cache cannot vouch for it)."""
        if self.stamp() is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            value, expires_at = entry
            if expires_at <= self.clock.time():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: Cached, expires_at: int, epoch: int) -> None:
        """Keep ``value`` until ``expires_at``, unless entries were forgotten since ``epoch`` was read.

        :param epoch: :attr:`epoch` as read before the store was.
        """
        if expires_at <= self.clock.time():
            return
        with self._lock:
            if epoch != self.epoch or not self.serving:
                return
            self._entries[key] = (value, expires_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def discard(self, keys: Iterable[str]) -> None:
        """Forget ``keys`` (their tokens ended): reads already under way cannot put them back."""
        with self._lock:
            self.epoch += 1
            for key in keys:
                self._entries.pop(key, None)

    def _reset(self, *, serving: bool) -> None:
        """Forget every entry and start (or stop) serving."""
        with self._lock:
            self.epoch += 1
            self._entries.clear()
            self.serving = serving

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        """Stop serving and listening: the listener has closed its connection when this returns."""
        self._closed.set()
        self._reset(serving=False)
        listener = self._listener
        if listener is not None and listener is not threading.current_thread():
            listener.join(CLOSE_TIMEOUT)
        if self._watch is not None:
            self._watch.close()

    # -- a store without a channel: the revocation generation -----------------

    def _check_generation(self) -> bool:
        """Read the generation if it is time to: True when the cache may serve.

        One thread reads; the others meanwhile read the store, so that no
        request past the interval is answered from an entry the read may clear.
        """
        if not self._checking.acquire(blocking=False):
            return False
        try:
            if self.clock.monotonic() < self._next_check:
                return self.serving
            self._read_generation()
            self._next_check = self.clock.monotonic() + self.staleness
            return self.serving
        finally:
            self._checking.release()

    def _check_changes(self) -> bool:
        """Ask the store whether a value was replaced or removed since; if so, read the generation.

        True when the cache may serve. Unchanged, nothing is locked (a hit's
        usual answer): ``_version`` is set only once the generation it goes
        with was handled. Changed, as with the generation, one thread reads
        it and the others meanwhile read the store.
        """
        assert self.changes is not None
        try:
            # Asked before the generation is read: a change in between moves it again.
            version = self.changes()
        except StoreUnavailable:
            self._stop_checking()
            return False
        if version == self._version:
            return self.serving
        if not self._checking.acquire(blocking=False):
            return False
        try:
            if version != self._version:
                self._read_generation()
                self._version = version if self.serving else None
            return self.serving
        finally:
            self._checking.release()

    def _stop_checking(self) -> None:
        """The store cannot say what changed: serve nothing, and read the generation once it can."""
        with self._checking:
            self._version = None
            self._reset(serving=False)
            self._generation = None

    def _read_generation(self) -> None:
        """Read the revocation generation: forget everything when it changed, stop when it cannot be read."""
        try:
            generation = self.store.get(GENERATION_KEY)
            if generation is None:
                # Never written, or evicted (memcached): write one, so that the next
                # change is a new value whatever it replaces; forget everything now.
                self.store.add(GENERATION_KEY, new_generation(), None)
                generation = self.store.get(GENERATION_KEY)
        except StoreUnavailable:
            self._reset(serving=False)
            self._generation = None
            return
        if generation is None or generation != self._generation:
            self._reset(serving=generation is not None)
            self._generation = generation

    # -- a store with a channel: the listener thread ---------------------------

    def _listen_in_background(self) -> None:
        assert isinstance(self.store, ChannelStore)
        self._listener = threading.Thread(
            target=_follow,
            args=(weakref.ref(self), self.store, self._closed, self._busy),
            name="oauth2-token-cache",
            daemon=True,
        )
        self._listener.start()

    def _forked(self) -> None:
        """In a forked child the parent's thread is gone: start over, empty, with a thread of its own.

        Locks another thread held at the fork would stay held in the child: they are made anew.
        """
        self._lock = threading.Lock()
        self._checking = threading.Lock()
        self._busy = threading.Lock()
        self._fd = LOST
        if self._watch is not None:
            self._watch.close()  # the parent's: closing the child's copy leaves the parent's alone
            self._watch = select.epoll()
        self.epoch += 1
        self._entries.clear()
        self.serving = False
        if not self._closed.is_set():
            self._listen_in_background()

    def _unread(self) -> bool:
        """True when data waits on the channel's socket (or its end does), or it cannot be asked."""
        watch = self._watch
        if watch is None:
            return True
        try:
            return bool(watch.poll(0))
        except (OSError, ValueError):
            return True

    def _subscribed(self, fd: int) -> None:
        """The channel is (again) in place on socket ``fd``: what was announced meanwhile is unknown."""
        watch = self._watch
        if watch is None:
            return
        # Watched before the cache serves: a socket closed since left the epoll set by itself.
        with contextlib.suppress(OSError, ValueError):
            watch.unregister(self._fd)
        watch.register(fd, select.EPOLLIN)
        self._fd = fd
        self._reset(serving=not self._closed.is_set())
        log.info("token cache: revocation channel up, cache on")

    def _lost(self, exc: Exception | None = None) -> None:
        """The channel is down: serve nothing until a new subscription is in place."""
        if self.serving and not self._closed.is_set():
            log.warning("token cache: revocation channel lost, cache off: %s", exc or "connection lost")
        self._reset(serving=False)


def _follow(
    cache_ref: weakref.ref[TokenCache], store: ChannelStore, closed: threading.Event, busy: threading.Lock
) -> None:
    """The listener thread: forget announced keys; no serving while the channel is down.

    It holds the cache weakly and ends once the cache is closed or gone.
    """
    while not closed.is_set():
        try:
            for event in store.listen(REVOKED_CHANNEL, HEARTBEAT, closed, busy):
                cache = cache_ref()
                if cache is None:
                    return
                if event == LOST:
                    cache._lost()
                elif isinstance(event, int):
                    cache._subscribed(event)
                else:
                    cache.discard(event.split())
                del cache
        except Exception as exc:
            # Whatever went wrong (StoreUnavailable, or a driver's surprise), the thread
            # lives on: the cache is off until a new subscription is in place.
            cache = cache_ref()
            if cache is None:
                return
            cache._lost(exc)
            del cache
            closed.wait(RECONNECT_DELAY)


class CachedRepository(Repository):
    """A :class:`~oauth_middleware.repository.Repository` whose guard reads go through a :class:`TokenCache`.

    Only the reads the guard makes on every request are cached: an opaque
    token's record and a JWT's deny-list status. Everything else (and every
    write) goes to the store; the tokens it ends are forgotten by ``cache``
    at once (:meth:`~oauth_middleware.repository.Repository.ended`).

    :param store: tokens, codes and everything short-lived.
    :param client_store: durable home of clients, if not ``store``.
    :param clock: the time deny-list entries are kept from.
    :param cache: the cache the reads go through.
    """

    token_cache: TokenCache

    def __init__(
        self,
        store: Store,
        client_store: Store | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        cache: TokenCache,
    ) -> None:
        super().__init__(store, client_store, clock=clock, cache=cache)
        self.token_cache = cache

    def load_access_token(self, token: str, token_id: str) -> AccessToken | None:
        """The stored access token, from the cache when it holds it.

        The cache keeps the token as built from its record, so that a hit
        rebuilds nothing (building the frozen token was most of a hit's cost);
        the key is the token's hash, which only this token has.
        """
        cache = self.token_cache
        key = access_token_key(token_id)
        cached = cache.get(key)
        if isinstance(cached, AccessToken):
            return cached
        epoch = cache.epoch
        value = self.store.get(key)
        if value is None:
            return None
        access = AccessTokenRecord.access_token_from_value(value, token, token_id)
        cache.put(key, access, access.expires_at, epoch)
        return access

    def is_jwt_denied(self, jti: str, expires_at: int | None = None) -> bool:
        """True when the JWT was revoked; "not denied" is cached until ``expires_at``.

        Without ``expires_at`` (introspection) the store is asked, whatever the cache holds.
        """
        if expires_at is None:
            return super().is_jwt_denied(jti)
        cache = self.token_cache
        key = deny_key(jti)
        if cache.get(key) is not None:
            return False
        epoch = cache.epoch
        denied = self.store.get(key) is not None
        if not denied:
            cache.put(key, _LIVE, expires_at, epoch)
        return denied


#: The cached value of a JWT that is not on the deny list.
_LIVE: Value = {}


def token_cache_from_settings(
    settings: Settings, store: Store, clock: Clock = SYSTEM_CLOCK
) -> TokenCache | None:
    """The guard's cache for ``store``, or None where it is off.

    Off with ``guard_cache_size = 0``; on a store with a channel (Redis) on;
    with ``guard_cache_staleness`` above 0, on, polling the generation; else
    on a store with a change mark (SQLite, memory) on, reading it on each hit;
    on any other store off.
    """
    if settings.guard_cache_size == 0:
        return None
    if isinstance(store, ChannelStore):
        return TokenCache(settings.guard_cache_size, store, clock=clock)
    if settings.guard_cache_staleness <= 0:
        if isinstance(store, ChangeStore):
            return TokenCache(settings.guard_cache_size, store, clock=clock, changes=store.changes)
        return None
    return TokenCache(settings.guard_cache_size, store, staleness=settings.guard_cache_staleness, clock=clock)
