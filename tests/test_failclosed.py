"""Failing closed, end to end: the middleware on a real Redis, memcached, PostgreSQL or MariaDB that goes away.

While the token store is down (stopped, or hanging) the guard answers 503
with ``Retry-After`` and never lets a request through, the token endpoint
answers 503 ``temporarily_unavailable``, and the outage is logged once per
interval. When the server is back, the same middleware object works again
without a restart. Each test module run gets servers of its own, because
these tests stop them.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, issue_token
from fake_clock import FakeClock
from servers import (
    DB_PASSWORD,
    MariaDBServer,
    MemcachedServer,
    PostgresServer,
    RedisServer,
    Server,
    descendants,
    shared_memcached,
)
from store_fixtures import fresh_table_prefix

from oauth_middleware.clients import build_client
from oauth_middleware.demo import DemoApp
from oauth_middleware.errors import StoreUnavailable
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import digest
from oauth_middleware.records import AccessTokenRecord, RefreshTokenRecord
from oauth_middleware.repository import Repository
from oauth_middleware.stores import StoreConfig
from oauth_middleware.stores.memcache import MemcacheStore
from oauth_middleware.stores.memory import MemoryStore
from oauth_middleware.stores.mysql import open_mysql
from oauth_middleware.stores.postgresql import open_postgresql
from oauth_middleware.stores.redis import RedisStore

#: Seconds a store call may take; small so that the hang tests are quick.
TIMEOUT = 0.5


class CountingApp:
    """The demo app, counting the requests that reach it."""

    def __init__(self) -> None:
        self.app = DemoApp()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.app(environ, start_response)


#: The servers, by name (the test id).
SERVERS: dict[str, Callable[[Path], Server]] = {
    "redis": RedisServer,
    "memcache": MemcachedServer,
    "postgresql": PostgresServer,
    "mysql": MariaDBServer,
}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of each kind for this module alone (the tests stop and start it)."""
    made = SERVERS[request.param](tmp_path_factory.mktemp(f"failclosed-{request.param}"))
    made.start()
    try:
        yield made
    finally:
        made.stop()


def server_url(server: Server) -> str:
    assert isinstance(server, (RedisServer, MemcachedServer, PostgresServer, MariaDBServer))
    return server.url


def durable(server: Server) -> bool:
    """The server keeps its data over a restart (the databases), where Redis and memcached here do not."""
    return isinstance(server, (PostgresServer, MariaDBServer))


@pytest.fixture
def counting_app() -> CountingApp:
    return CountingApp()


@pytest.fixture
def middleware(
    make_middleware: Callable[..., OAuth2Middleware],
    server: Server,
    tmp_path: Path,
    counting_app: CountingApp,
) -> OAuth2Middleware:
    """The middleware with tokens on ``server`` and clients in a SQLite ``client_store``."""
    return make_middleware(
        counting_app,
        store=server_url(server),
        client_store=f"sqlite:///{tmp_path}/clients.db",
        store_timeout=str(TIMEOUT),
        store_prefix=f"t{uuid.uuid4().hex[:12]}:",
        store_table_prefix=fresh_table_prefix(),
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_request(app: webtest.TestApp, status: int) -> webtest.TestResponse:
    return app.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": "read"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
        status=status,
    )


def assert_unavailable(response: webtest.TestResponse) -> None:
    """A fail-closed answer: 503, ``Retry-After``, JSON ``temporarily_unavailable``."""
    assert response.status_int == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.content_type == "application/json"
    assert response.json["error"] == "temporarily_unavailable"


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "oauth_middleware.store" and r.levelno == logging.ERROR
    ]


def test_store_down_fails_closed_and_the_same_app_recovers(
    server: Server,
    middleware: OAuth2Middleware,
    counting_app: CountingApp,
    caplog: pytest.LogCaptureFixture,
    clock: FakeClock,
) -> None:
    caplog.set_level(logging.WARNING, logger="oauth_middleware")
    app = webtest.TestApp(middleware)
    token = issue_token(app)
    assert app.get("/api/me", headers=bearer(token)).json["client_id"] == SERVICE_ID
    assert counting_app.calls == 1
    middleware.outage.interval = 1.0
    middleware.outage.clock = clock

    server.stop()
    try:
        for presented in (token, "never-issued-token"):
            for _ in range(3):
                answer = app.get("/api/me", headers=bearer(presented), status=503)
                assert_unavailable(answer)
                assert "WWW-Authenticate" not in answer.headers  # not a 401: the token may be fine
        assert_unavailable(app.post("/api/me", {"access_token": token}, status=503))
        assert_unavailable(token_request(app, 503))
        assert counting_app.calls == 1, "a request reached the app while the store was down"
        # Seven failed store calls, from the guard and the token endpoint: one line.
        lines = outage_lines(caplog)
        assert len(lines) == 1 and "failing closed" in lines[0], lines
        assert "Traceback" not in caplog.text
        assert DB_PASSWORD not in caplog.text  # the databases' URLs carry it
        clock.advance(middleware.outage.interval)
        assert_unavailable(app.get("/api/me", headers=bearer(token), status=503))
        assert len(outage_lines(caplog)) == 2  # the next interval, the next line
    finally:
        server.start()

    # The same middleware object, without a restart. A database kept the old
    # token; the throwaway Redis and memcached kept nothing, so there it is
    # unknown now (401, not 200). A new one works either way.
    if durable(server):
        assert app.get("/api/me", headers=bearer(token)).json["client_id"] == SERVICE_ID
    else:
        assert app.get("/api/me", headers=bearer(token), status=401).json["error"] == "invalid_token"
    fresh = issue_token(app)
    assert app.get("/api/me", headers=bearer(fresh)).json["client_id"] == SERVICE_ID
    assert counting_app.calls == 3 if durable(server) else 2
    assert "store reachable again" in caplog.text


def test_a_store_that_never_answers_is_503_within_the_timeout(
    server: Server, middleware: OAuth2Middleware, counting_app: CountingApp
) -> None:
    """A server that accepts connections but never answers (here: SIGSTOP)."""
    # PostgreSQL: a wait ends after 1.5 x the timeout, then the pool's new connection waits
    # libpq's least connect_timeout, 2 s, before the call gives up.
    bound = 1.5 * TIMEOUT + 2 + TIMEOUT if isinstance(server, PostgresServer) else 2 * TIMEOUT
    app = webtest.TestApp(middleware)
    token = issue_token(app)
    assert server.process is not None
    server.pause()
    try:
        for pid in (server.process.pid, *descendants(server.process.pid)):
            wait_stopped(pid)
        for request in (
            lambda: app.get("/api/me", headers=bearer(token), status=503),
            lambda: token_request(app, 503),
        ):
            started = time.monotonic()
            assert_unavailable(request())
            assert time.monotonic() - started < bound
    finally:
        server.resume()
    assert counting_app.calls == 0
    assert app.get("/api/me", headers=bearer(token)).json["client_id"] == SERVICE_ID


def wait_stopped(pid: int) -> None:
    """Wait until every thread of ``pid`` is stopped: SIGSTOP takes effect asynchronously."""
    deadline = time.monotonic() + 5
    while True:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                # The state follows the command name, which is in parentheses.
                states.append((task / "stat").read_text().rpartition(")")[2].split()[0])
        if states and all(state in ("T", "t") for state in states):
            return
        assert time.monotonic() < deadline, f"process {pid} did not stop: {states}"
        time.sleep(0.01)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel completes the handshake) and never replies."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@pytest.mark.parametrize(
    ("make_store", "least"),
    [
        pytest.param(
            lambda port: RedisStore(StoreConfig(f"redis://127.0.0.1:{port}/0", TIMEOUT)), TIMEOUT, id="redis"
        ),
        pytest.param(
            lambda port: MemcacheStore(StoreConfig(f"memcache://127.0.0.1:{port}", TIMEOUT)),
            TIMEOUT,
            id="memcache",
        ),
        # libpq waits at least 2 s for a connection (connect_timeout), whatever store_timeout says.
        pytest.param(
            lambda port: open_postgresql(StoreConfig(f"postgresql://u:p@127.0.0.1:{port}/db", TIMEOUT)),
            2.0,
            id="postgresql",
        ),
        pytest.param(
            lambda port: open_mysql(StoreConfig(f"mysql://u:p@127.0.0.1:{port}/db", TIMEOUT)),
            TIMEOUT,
            id="mysql",
        ),
    ],
)
def test_a_silent_socket_is_503_within_the_timeout(
    make_store: Callable[[int], Any],
    least: float,
    silent_port: int,
    make_middleware: Callable[..., OAuth2Middleware],
    tmp_path: Path,
    counting_app: CountingApp,
) -> None:
    # Opened without open_store's ping, which would refuse to start on it.
    middleware = make_middleware(
        counting_app,
        store_backend=make_store(silent_port),
        client_store=f"sqlite:///{tmp_path}/clients.db",
        store_timeout=str(TIMEOUT),
    )
    app = webtest.TestApp(middleware)
    for request in (
        lambda: app.get("/api/me", headers=bearer("some-token"), status=503),
        lambda: token_request(app, 503),  # the client is found in SQLite, the token cannot be saved
        lambda: app.get("/api/me", headers=bearer("some-token"), status=503),
    ):
        started = time.monotonic()
        assert_unavailable(request())
        elapsed = time.monotonic() - started
        assert least * 0.8 < elapsed < least + TIMEOUT, elapsed
    assert counting_app.calls == 0


# -- write order: a failure between two writes leaves nothing that matters -----


class FailingWrites(MemoryStore):
    """A memory store whose writes of some kinds fail, as if the server died mid-request."""

    def __init__(self, *failing: str) -> None:
        super().__init__(StoreConfig("memory://"))
        self.failing = failing

    def _fail(self, operation: str) -> None:
        if operation in self.failing:
            raise StoreUnavailable(f"{operation}: connection reset")

    def put(self, key: str, value: Any, ttl: int | None) -> None:
        self._fail("put")
        super().put(key, value, ttl)

    def index_add(self, key: str, member: str, ttl: int | None) -> None:
        self._fail("index_add")
        super().index_add(key, member, ttl)


def _token() -> AccessTokenRecord:
    return AccessTokenRecord("c", "u", ("read",), int(time.time()) + 60, family="fam")


def _refresh_token() -> RefreshTokenRecord:
    expires_at = int(time.time()) + 60
    return RefreshTokenRecord("c", "u", ("read",), expires_at, "fam", expires_at)


@pytest.mark.parametrize("save", ["access", "refresh"])
def test_a_token_never_exists_outside_its_family(save: str) -> None:
    store = FailingWrites("index_add")
    repository = Repository(store)
    with pytest.raises(StoreUnavailable):
        if save == "access":
            repository.save_access_token("hash-of-t", _token(), 60)
        else:
            repository.save_refresh_token("hash-of-t", _refresh_token(), 60)
    # The family index could not take the token, so the token was never stored:
    # revoking the family can never miss it.
    assert repository.find_access_token("hash-of-t") is None
    assert repository.find_refresh_token("hash-of-t") is None


def test_a_dangling_family_member_is_harmless() -> None:
    store = FailingWrites("put")
    repository = Repository(store)
    with pytest.raises(StoreUnavailable):
        repository.save_access_token("hash-of-t", _token(), 60)
    assert store.index_members("family:fam") == {"at:hash-of-t"}
    store.failing = ()
    repository.revoke_family("fam")  # deletes a record that was never written
    assert repository.find_access_token("hash-of-t") is None


class HookedIndex(MemoryStore):
    """A memory store running ``hook`` once, right after a family index is read."""

    def __init__(self) -> None:
        super().__init__(StoreConfig("memory://"))
        self.hook: Callable[[], None] | None = None

    def index_members(self, key: str) -> set[str]:
        members = super().index_members(key)
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return members


def test_a_token_saved_during_a_revocation_is_caught_by_the_next_one() -> None:
    """The redemption race: a replay revokes the family while the winner saves its token.

    The winner then sees the replay marker and revokes again; that second
    revocation must still find the token, so the first must not have dropped
    the index along with the members it had read.
    """
    store = HookedIndex()
    repository = Repository(store)
    store.hook = lambda: repository.save_access_token("hash-of-t", _token(), 60)
    repository.revoke_family("fam")  # the replay: reads the index, then the winner saves
    repository.revoke_family("fam")  # the winner, having seen the replay marker
    assert repository.find_access_token("hash-of-t") is None


def test_a_client_is_never_registered_without_being_listed() -> None:
    clients = FailingWrites("index_add")
    repository = Repository(MemoryStore(StoreConfig("memory://")), clients)
    client = build_client("c", secret_hash=digest("secret"), grant_types=["client_credentials"])
    with pytest.raises(StoreUnavailable):
        repository.save_client(client)
    assert repository.get_client("c") is None


def test_memcached_without_a_client_store_warns(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    url = shared_memcached(request).url
    with caplog.at_level(logging.WARNING, logger="oauth_middleware"):
        OAuth2Middleware(
            DemoApp(), issuer="http://localhost", store=url, store_prefix=f"t{uuid.uuid4().hex[:12]}:"
        )
    assert "keep them in a durable client_store" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="oauth_middleware"):
        OAuth2Middleware(DemoApp(), issuer="http://localhost", store=url, client_store="memory://")
    assert "client_store" not in caplog.text
