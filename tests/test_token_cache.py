"""The guard's token cache (issue 17): bounded, never past ``exp``, and never serving a revoked token.

In-process: the bound and the expiry of entries, a fill racing a revocation,
the revocation generation on SQLite (``guard_cache_staleness``) with a clock
moved by hand, and the Redis channel: a revocation made elsewhere is
refused at once, and while the channel is lost the cache serves nothing
(the guard answers 503 with the store down, never 200 from memory). The
propagation across gunicorn workers is in ``test_revocation_workers.py``.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, issue_token, register
from fake_clock import FakeClock
from flaky_store import FlakyStore
from servers import RedisServer, shared_memcached
from store_fixtures import sqlite_url

from oauth_middleware import OAuth2Middleware
from oauth_middleware.demo import DemoApp
from oauth_middleware.errors import ConfigError, StoreUnavailable
from oauth_middleware.models import digest
from oauth_middleware.repository import GENERATION_KEY, Repository
from oauth_middleware.settings import Settings
from oauth_middleware.stores import StoreConfig
from oauth_middleware.stores.memory import MemoryStore
from oauth_middleware.token_cache import CachedRepository, TokenCache
from oauth_middleware.wiring import repository_from_settings, store_from_settings

HS256_SECRET = "token-cache-test-secret-0123456789abcdef"


def call(app: webtest.TestApp, token: str, status: int | str = "*") -> webtest.TestResponse:
    return app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=status)


def revoke(app: webtest.TestApp, token: str) -> None:
    app.post("/oauth/revoke", {"token": token}, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)})


def make(clock: FakeClock | None = None, **settings: Any) -> OAuth2Middleware:
    """The demo behind the middleware with the service client, ``settings`` over test defaults."""
    settings = {
        "issuer": "http://localhost",
        "require_https": "false",
        "scopes": "read write",
        **settings,
    }
    middleware = OAuth2Middleware(DemoApp(), clock=clock or FakeClock(), **settings)
    register(middleware, SERVICE_ID, SERVICE_SECRET, grant_types=["client_credentials"], scopes=["read"])
    return middleware


def jwt_settings(**settings: str) -> dict[str, str]:
    return {
        "token_format": "jwt",
        "jwt_algorithm": "HS256",
        "jwt_secret": HS256_SECRET,
        "audience": "http://localhost/api",
        "jwt_check_revocation": "true",
        **settings,
    }


# -- the cache itself -------------------------------------------------------------


@pytest.fixture
def polled(clock: FakeClock) -> TokenCache:
    """A cache on a store without a channel, its generation read once a minute (and once now)."""
    cache = TokenCache(3, MemoryStore(StoreConfig("memory://", clock=clock)), staleness=60, clock=clock)
    assert cache.get("at:none") is None  # the first look reads the generation (and empties the cache)
    return cache


def fill(cache: TokenCache, key: str, expires_at: int) -> None:
    cache.put(key, {"k": key}, expires_at, cache.epoch)


def test_the_cache_keeps_at_most_its_size_dropping_the_least_recently_used(
    polled: TokenCache, clock: FakeClock
) -> None:
    later = int(clock.time()) + 600
    for key in ("at:a", "at:b", "at:c"):
        fill(polled, key, later)
    assert polled.get("at:a") == {"k": "at:a"}  # a is used again: b is now the oldest
    fill(polled, "at:d", later)
    assert len(polled) == 3
    assert polled.get("at:b") is None
    assert [polled.get(key) for key in ("at:a", "at:c", "at:d")] == [
        {"k": "at:a"},
        {"k": "at:c"},
        {"k": "at:d"},
    ]


def test_an_entry_never_outlives_its_token_exp(polled: TokenCache, clock: FakeClock) -> None:
    fill(polled, "at:a", int(clock.time()) + 30)
    fill(polled, "at:dead", int(clock.time()))  # expired already: not kept
    assert polled.get("at:a") is not None
    assert polled.get("at:dead") is None
    clock.advance(30)
    assert polled.get("at:a") is None
    assert len(polled) == 0


def test_a_fill_that_read_the_store_before_a_revocation_is_refused(
    polled: TokenCache, clock: FakeClock
) -> None:
    epoch = polled.epoch  # a request reads the store...
    polled.discard(["at:a"])  # ...the token is revoked meanwhile...
    polled.put("at:a", {"k": "at:a"}, int(clock.time()) + 600, epoch)  # ...and it tries to cache what it read
    assert polled.get("at:a") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("0", 0.0, id="off"),
        pytest.param("0.25", 0.25, id="fraction"),
        pytest.param("2", 2.0, id="whole"),
    ],
)
def test_guard_cache_staleness_takes_seconds(raw: str, expected: float) -> None:
    assert Settings.from_config({"guard_cache_staleness": raw}).guard_cache_staleness == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param(
            {"guard_cache_staleness": "-1"}, "guard_cache_staleness: expected a number above 0", id="neg"
        ),
        pytest.param(
            {"guard_cache_staleness": "soon"}, "guard_cache_staleness: expected a number", id="word"
        ),
        pytest.param({"guard_cache_size": "-1"}, "guard_cache_size: expected a whole number", id="size"),
    ],
)
def test_bad_cache_settings_are_one_line_naming_the_key(config: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        Settings.from_config(config)


@pytest.mark.parametrize(
    ("settings", "cached"),
    [
        pytest.param({"store": "memory://"}, True, id="memory-on-asking-for-changes"),
        pytest.param({}, True, id="sqlite-on-by-default-asking-for-changes"),
        pytest.param({"guard_cache_staleness": "5"}, True, id="sqlite-with-staleness"),
        pytest.param({"guard_cache_staleness": "5", "guard_cache_size": "0"}, False, id="size-0"),
    ],
)
def test_where_the_cache_is_on(tmp_path: Path, settings: dict[str, str], cached: bool) -> None:
    config = Settings.from_config({"store": sqlite_url(tmp_path), **settings})
    repository = repository_from_settings(config, store_from_settings(config))
    assert isinstance(repository, CachedRepository) is cached
    repository.store.close()


# -- SQLite: the revocation generation --------------------------------------------


@pytest.fixture
def two_processes(
    tmp_path: Path,
) -> Iterator[Callable[..., tuple[webtest.TestApp, webtest.TestApp, FakeClock]]]:
    """Two middlewares on one SQLite file, as two processes would be: (A, B, B's clock)."""
    made: list[OAuth2Middleware] = []

    def build(**settings: str) -> tuple[webtest.TestApp, webtest.TestApp, FakeClock]:
        url = sqlite_url(tmp_path)
        first = make(store=url, guard_cache_staleness="2", **settings)
        clock = FakeClock()
        second = make(clock, store=url, guard_cache_staleness="2", **settings)
        made.extend((first, second))
        return webtest.TestApp(first), webtest.TestApp(second), clock

    yield build
    for middleware in made:
        middleware.close()


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_sqlite_a_revocation_elsewhere_is_seen_within_guard_cache_staleness(
    two_processes: Callable[..., tuple[webtest.TestApp, webtest.TestApp, FakeClock]], token_format: str
) -> None:
    settings = jwt_settings() if token_format == "jwt" else {}
    first, second, clock = two_processes(**settings)
    token = issue_token(first)
    assert call(second, token).status_int == 200  # B caches it
    revoke(first, token)
    assert call(first, token).status_int == 401  # A ended it: A forgot it at once
    clock.advance(1.9)
    assert call(second, token).status_int == 200  # the documented staleness: B has not looked yet
    clock.advance(0.2)
    assert call(second, token, status=401).headers["WWW-Authenticate"].count('error="invalid_token"') == 1


def test_memcached_a_revocation_elsewhere_is_seen_within_guard_cache_staleness(
    request: pytest.FixtureRequest,
) -> None:
    # memcached has no channel either: the generation key does it, as on SQLite.
    settings = {
        "store": shared_memcached(request).url,
        "store_prefix": f"cache-{uuid.uuid4().hex[:8]}:",
        "guard_cache_staleness": "2",
    }
    clock = FakeClock()
    first, second = make(**settings), make(clock, **settings)
    try:
        a, b = webtest.TestApp(first), webtest.TestApp(second)
        token = issue_token(a)
        assert call(b, token).status_int == 200
        assert len(cache_of(second)) == 1
        revoke(a, token)
        assert call(b, token).status_int == 200  # within the staleness
        clock.advance(2)
        assert call(b, token).status_int == 401
    finally:
        first.close()
        second.close()


def test_sqlite_a_family_revoked_elsewhere_is_seen_within_guard_cache_staleness(
    two_processes: Callable[..., tuple[webtest.TestApp, webtest.TestApp, FakeClock]],
) -> None:
    first, second, clock = two_processes()
    token = issue_token(first)
    assert call(second, token).status_int == 200
    repository = first.app.server.repository
    # A client-credentials token has no family: list it in one, as a code's tokens are.
    repository.add_access_token_to_family(digest(token), "fam", 600)
    repository.revoke_family("fam")
    clock.advance(2.1)
    assert call(second, token).status_int == 401


def test_sqlite_an_unreadable_generation_stops_the_cache(clock: FakeClock) -> None:
    # Fail closed: while the generation cannot be read, the guard reads the store (503 when down).
    store = FlakyStore(StoreConfig("memory://", clock=clock))
    cache = TokenCache(10, store, staleness=1, clock=clock)
    repository = CachedRepository(store, clock=clock, cache=cache)
    store.put("at:x", {"c": "c", "u": None, "s": [], "e": int(clock.time()) + 600, "x": {}}, 600)
    assert repository.load_access_token("t", "x") is not None
    assert len(cache) == 1
    store.down = True
    clock.advance(1)
    with pytest.raises(StoreUnavailable):
        repository.load_access_token("t", "x")
    assert len(cache) == 0 and not cache.serving
    store.down = False
    clock.advance(1)
    assert repository.load_access_token("t", "x") is not None  # read again, cached again
    assert len(cache) == 1


def test_an_evicted_generation_empties_the_cache(clock: FakeClock) -> None:
    # memcached may evict the generation: a missing one is a change, never "no change".
    store = MemoryStore(StoreConfig("memory://", clock=clock))
    cache = TokenCache(10, store, staleness=1, clock=clock)
    fill(cache, "at:a", int(clock.time()) + 600)
    assert cache.get("at:a") is None  # the first read of the generation empties it
    fill(cache, "at:a", int(clock.time()) + 600)
    assert cache.get("at:a") is not None
    store.delete(GENERATION_KEY)
    clock.advance(1)
    assert cache.get("at:a") is None


# -- Redis: the channel ------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of this test's own: it is stopped and started again."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until ``condition`` held (fails after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "the condition never held"
        time.sleep(0.002)
    return time.monotonic() - start


def cache_of(middleware: OAuth2Middleware) -> TokenCache:
    cache = middleware.server.repository.cache
    assert cache is not None
    return cache


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_redis_a_revocation_elsewhere_is_refused_at_once(own_redis: RedisServer, token_format: str) -> None:
    settings = {"store": own_redis.url, **(jwt_settings() if token_format == "jwt" else {})}
    first, second = make(**settings), make(**settings)
    try:
        a, b = webtest.TestApp(first), webtest.TestApp(second)
        wait_for(lambda: cache_of(first).serving and cache_of(second).serving)
        token = issue_token(a)
        assert call(b, token).status_int == 200
        assert len(cache_of(second)) == 1
        revoke(a, token)
        seconds = wait_for(lambda: len(cache_of(second)) == 0, timeout=1)
        assert seconds < 0.1
        assert call(b, token).status_int == 401
    finally:
        first.close()
        second.close()


def test_redis_the_cache_serves_nothing_while_the_server_is_down(own_redis: RedisServer) -> None:
    middleware = make(store=own_redis.url)
    try:
        app = webtest.TestApp(middleware)
        cache = cache_of(middleware)
        wait_for(lambda: cache.serving)
        token = issue_token(app)
        assert call(app, token).status_int == 200
        own_redis.stop()
        wait_for(lambda: not cache.serving)
        assert len(cache) == 0
        assert call(app, token).status_int == 503  # not 200 from memory: fail closed
        own_redis.start()  # empty: the token is gone with the data
        wait_for(lambda: cache.serving)
        assert call(app, token).status_int == 401
        register(middleware, SERVICE_ID, SERVICE_SECRET, grant_types=["client_credentials"], scopes=["read"])
        fresh = issue_token(app)
        assert call(app, fresh).status_int == 200
        assert len(cache) == 1
    finally:
        middleware.close()


def test_redis_a_revocation_published_while_the_subscriber_was_away_is_not_missed(
    own_redis: RedisServer,
) -> None:
    # The subscriber's connection is dropped; a revocation is published before it is back
    # (lost, as pub/sub loses it): the cache comes back empty, so the token is read again.
    middleware = make(store=own_redis.url)
    try:
        app = webtest.TestApp(middleware)
        cache = cache_of(middleware)
        wait_for(lambda: cache.serving)
        token = issue_token(app)
        assert call(app, token).status_int == 200
        # The revocation goes to the store through another process's repository: this one's
        # cache can hear of it only from the channel.
        elsewhere = Repository(middleware.server.store)
        admin = redis.Redis(port=own_redis.port)
        killed = admin.client_kill_filter(_type="pubsub")
        assert killed == 1
        elsewhere.revoke_access_token(digest(token))
        admin.close()
        wait_for(lambda: cache.serving)  # subscribed again
        assert call(app, token).status_int == 401
    finally:
        middleware.close()


def test_a_channel_that_is_lost_stops_the_cache_until_it_is_subscribed_again(clock: FakeClock) -> None:
    events: list[str] = []
    step = threading.Event()

    class Channel(MemoryStore):
        """A memory store with a channel the test drives: subscribed, a message, lost, subscribed."""

        def publish(self, channel: str, message: str) -> None:
            raise AssertionError("not published in this test")

        def listen(
            self, channel: str, heartbeat: float, stop: threading.Event, busy: threading.Lock
        ) -> Iterator[int | str]:
            while not stop.is_set():
                if not step.wait(0.05):
                    continue  # look at stop again, as the Redis store does
                step.clear()
                event = events.pop(0)
                if event == "lost":
                    raise StoreUnavailable("connection reset")
                yield quiet.fileno() if event == "subscribed" else event

    quiet, other_end = socket.socketpair()  # the "connection": nothing to read on it
    cache = TokenCache(10, Channel(StoreConfig("memory://", clock=clock)), clock=clock)

    def send(event: str) -> None:
        events.append(event)
        step.set()
        wait_for(lambda: not events and not step.is_set())
        time.sleep(0.05)  # the listener handles what it read

    try:
        assert not cache.serving  # nothing is cached before the subscription is in place
        send("subscribed")
        assert cache.serving
        fill(cache, "at:a", int(clock.time()) + 600)
        fill(cache, "at:b", int(clock.time()) + 600)
        send("at:a")
        assert cache.get("at:a") is None and cache.get("at:b") is not None
        epoch = cache.epoch
        send("lost")
        assert not cache.serving and len(cache) == 0
        cache.put("at:b", {}, int(clock.time()) + 600, epoch)  # a fill from before the loss
        fill(cache, "at:c", int(clock.time()) + 600)  # and one during it
        assert len(cache) == 0
        send("subscribed")
        assert cache.serving and len(cache) == 0
        other_end.send(b"x")  # data waiting on the channel: the cache does not answer meanwhile
        fill(cache, "at:d", int(clock.time()) + 600)
        assert cache.get("at:d") is None
        quiet.recv(1)
        assert cache.get("at:d") is not None
    finally:
        cache.close()
        quiet.close()
        other_end.close()


def test_a_cache_hit_hands_the_app_the_token_as_the_store_gave_it(tmp_path: Path) -> None:
    # The cache keeps the built token: a hit must hand the app the same token, fields and all.
    middleware = make(store=sqlite_url(tmp_path), guard_cache_staleness="2")
    try:
        app = webtest.TestApp(middleware)
        token = issue_token(app)
        first = call(app, token, status=200).json
        cache = middleware.server.repository.token_cache  # type: ignore[attr-defined]
        assert len(cache) == 1
        assert call(app, token, status=200).json == first
        assert call(app, token + "x", status=401).headers["WWW-Authenticate"].count("invalid_token") == 1
        revoke(app, token)
        assert call(app, token, status=401).headers["WWW-Authenticate"].count("invalid_token") == 1
    finally:
        middleware.close()


# -- SQLite by default: the cache asks for changes on each hit ---------------------


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_sqlite_by_default_a_revocation_elsewhere_is_refused_at_once(
    tmp_path: Path, token_format: str
) -> None:
    # No staleness: the other process's commit moves SQLite's data_version, the cache reads the
    # generation before it answers again.
    settings = jwt_settings() if token_format == "jwt" else {}
    url = sqlite_url(tmp_path)
    first, second = make(store=url, **settings), make(store=url, **settings)
    try:
        a, b = webtest.TestApp(first), webtest.TestApp(second)
        token = issue_token(a)
        assert call(b, token).status_int == 200
        assert call(b, token).status_int == 200  # answered from B's cache
        assert len(second.server.repository.token_cache) == 1  # type: ignore[attr-defined]
        revoke(a, token)
        assert call(b, token, status=401).headers["WWW-Authenticate"].count('error="invalid_token"') == 1
    finally:
        first.close()
        second.close()


class CountingStore(MemoryStore):
    """A memory store that counts commits as SQLite does, and can fail to say."""

    version = 0
    down = False

    def changes(self) -> int:
        if self.down:
            raise StoreUnavailable("down")
        return self.version


def test_a_cache_asking_for_changes_reads_the_generation_only_after_one_and_fails_closed(
    clock: FakeClock,
) -> None:
    store = CountingStore(StoreConfig("memory://", clock=clock))
    cache = TokenCache(10, store, clock=clock, changes=store.changes)
    fill(cache, "at:a", int(clock.time()) + 600)
    assert cache.get("at:a") is None  # the first look reads the generation and empties it
    fill(cache, "at:a", int(clock.time()) + 600)
    assert cache.get("at:a") is not None
    store.put(GENERATION_KEY, {"g": "elsewhere"}, None)
    assert cache.get("at:a") is not None  # no commit counted: the generation is not read
    store.version += 1
    assert cache.get("at:a") is None  # counted: the generation is read, it changed
    fill(cache, "at:a", int(clock.time()) + 600)
    store.version += 1
    assert cache.get("at:a") is not None  # a commit that ended no token leaves the cache
    store.down = True
    assert cache.get("at:a") is None
    assert len(cache) == 0 and not cache.serving
    store.down = False
    assert cache.get("at:a") is None  # back, empty
    fill(cache, "at:a", int(clock.time()) + 600)
    assert cache.get("at:a") is not None
