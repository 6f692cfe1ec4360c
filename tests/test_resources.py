"""Resources: file descriptors, sockets, file modes and the work of one expiry sweep.

What a long-running server must not accumulate (connections of finished
threads, a sweep that grows with the table), what ``close()`` releases, and
who may read the SQLite file the store creates. File descriptors and sockets
are counted in ``/proc/self``, as the operating system sees them.
"""

# The fixtures are imported rather than put in a conftest (see test_store_contract.py).
# ruff: noqa: F811

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, issue_token, register
from servers import MemcachedServer, RedisServer, memcached_server, redis_server  # noqa: F401
from store_fixtures import sqlite_url

from oauth_middleware import OAuth2Middleware, guard_from_settings
from oauth_middleware.cli import main
from oauth_middleware.demo import DemoApp
from oauth_middleware.settings import Settings
from oauth_middleware.stores import StoreConfig, open_store
from oauth_middleware.stores import memory as memory_module
from oauth_middleware.stores import sqlite as sqlite_module
from oauth_middleware.stores.memory import MemoryStore
from oauth_middleware.stores.sqlite import SQLiteStore

ISSUER = "http://localhost"

needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")


def open_files() -> list[str]:
    """What each of this process's file descriptors points at (a path, ``socket:[inode]``, ...)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # the descriptor listdir itself used, closed since
            continue
    return targets


def files_of(path: str) -> list[str]:
    """The descriptors open on the SQLite file ``path`` or its ``-wal`` / ``-shm``."""
    return [target for target in open_files() if target.startswith(path)]


def sockets_to(port: int) -> int:
    """How many of this process's sockets are TCP connections to ``port`` on the loopback host."""
    inodes = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    return sum(target in inodes for target in open_files())


def in_threads(n: int, work: Callable[[], Any]) -> None:
    """Run ``work`` in ``n`` threads alive at the same time (so no thread id is reused), and wait."""
    barrier = threading.Barrier(n)

    def run() -> None:
        barrier.wait(timeout=30)
        work()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(StoreConfig(sqlite_url(tmp_path)))
    opened.ping()
    yield opened
    opened.close()


# -- connections of finished threads (SQLite) ------------------------------------------


@needs_proc
def test_sqlite_connections_of_finished_threads_are_closed(sqlite_store: SQLiteStore) -> None:
    before = len(open_files())
    in_threads(50, lambda: sqlite_store.get("k"))
    assert len(open_files()) <= before + 2
    assert sqlite_store._conns == {}


@needs_proc
def test_sqlite_threads_coming_and_going_beside_a_long_lived_connection(sqlite_store: SQLiteStore) -> None:
    sqlite_store.put("k", {"v": 1}, 60)  # this thread's connection stays open
    in_threads(50, lambda: sqlite_store.get("k"))
    # Only this thread's connection still has its -wal open. (While a connection
    # of the process holds a lock on the database file, SQLite keeps a closed
    # connection's descriptor of that file for the next connection to reuse:
    # closing it would drop the process's POSIX locks. Reused, so bounded.)
    # How many wait for reuse depends on how many threads closed while another held a
    # lock, so the bound is set by the threads alive at once (50: each may hold one
    # descriptor and leave one for reuse) plus this thread's, however many rounds run
    # (a leak would keep 50 more per round); the -wal count shows every other connection closed.
    assert len(files_of(sqlite_store.path + "-wal")) == 1
    for _ in range(4):
        in_threads(50, lambda: sqlite_store.get("k"))
        assert len(files_of(sqlite_store.path + "-wal")) == 1
        assert len(files_of(sqlite_store.path)) <= 2 * 50 + 1
    assert sqlite_store.get("k") == {"v": 1}


@needs_proc
def test_sqlite_connection_of_a_thread_that_ends_after_close_is_not_closed_twice(
    sqlite_store: SQLiteStore,
) -> None:
    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            sqlite_store.put("a", {"v": 1}, 60)
            started.set()
            release.wait(timeout=30)
            sqlite_store.put("b", {"v": 2}, 60)  # opens a new connection after close()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    started.wait(timeout=30)
    sqlite_store.close()
    release.set()
    thread.join(timeout=30)
    assert errors == []
    # Only the change mark's mapping, one per store, mapped again by the put after close().
    assert files_of(sqlite_store.path) == [f"{sqlite_store.path}-changes"]
    assert (sqlite_store.get("a"), sqlite_store.get("b")) == ({"v": 1}, {"v": 2})


def _fork_beside_a_live_thread(store: SQLiteStore) -> int:
    """Fork while another thread holds a connection; the child's exit status says what it saw.

    The child must neither close nor use that connection: SQLite forbids
    carrying a connection across ``fork()``, and closing the child's copy
    would release locks of the child's own new connection on the same file.
    """
    opened, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: (store.get("k"), opened.set(), release.wait(timeout=30)))
    holder.start()
    opened.wait(timeout=30)
    inherited = store._conns[holder.ident or 0][1]
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            store.put("k", {"from": "child"}, 60)
            inherited.total_changes  # noqa: B018 - raises if the child closed the parent's handle
            status = 0
        finally:
            os._exit(status)
    release.set()
    holder.join(timeout=30)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@needs_proc
def test_sqlite_child_keeps_the_connections_of_the_parents_threads(sqlite_store: SQLiteStore) -> None:
    sqlite_store.put("k", {"from": "parent"}, 60)
    assert _fork_beside_a_live_thread(sqlite_store) == 0
    assert sqlite_store.get("k") == {"from": "child"}
    # The parent closed its other thread's connection when that thread ended.
    assert len(sqlite_store._conns) == 1
    assert len(files_of(sqlite_store.path + "-wal")) == 1


# -- the expiry sweep is bounded ----------------------------------------------------


def _expired_rows(path: str) -> tuple[int, int]:
    raw = sqlite3.connect(path)
    try:
        counts = [
            raw.execute(f"SELECT COUNT(*) FROM {table} WHERE expires <= ?", (time.time(),)).fetchone()[0]
            for table in ("kv", "idx")
        ]
    finally:
        raw.close()
    return counts[0], counts[1]


def test_sqlite_sweep_deletes_at_most_a_batch_per_write(sqlite_store: SQLiteStore) -> None:
    batch = sqlite_module.SWEEP_BATCH
    expired = batch + batch // 2
    dead = time.time() - 1
    raw = sqlite3.connect(sqlite_store.path, isolation_level=None)
    raw.executemany("INSERT INTO kv VALUES (?, '{}', ?)", ((f"dead:{i}", dead) for i in range(expired)))
    raw.executemany("INSERT INTO idx VALUES ('dead', ?, ?)", ((f"m{i}", dead) for i in range(expired)))
    raw.close()
    sqlite_store._next_sweep = 0.0  # as if a minute had passed
    sqlite_store.put("first", {}, None)
    assert _expired_rows(sqlite_store.path) == (expired - batch, expired - batch)
    # A full batch means more may be left: the next write sweeps again, and empties the tables.
    sqlite_store.put("second", {}, None)
    assert _expired_rows(sqlite_store.path) == (0, 0)
    # A sweep that found less than a batch waits for the interval again.
    sqlite_store.put("dead-again", {}, 0)
    sqlite_store.put("third", {}, None)
    assert _expired_rows(sqlite_store.path) == (1, 0)
    assert sqlite_store.get("first") == {}


def test_memory_sweep_deletes_at_most_a_batch_per_write() -> None:
    batch = memory_module.SWEEP_BATCH
    expired = batch + batch // 2
    store = MemoryStore()
    for i in range(expired):
        store.put(f"dead:{i}", {}, 0)
        store.index_add(f"dead-index:{i}", "m", 0)
    store._next_sweep = 0.0  # as if a minute had passed
    store.put("first", {}, None)
    assert (len(store._values), len(store._indexes)) == (expired - batch + 1, expired - batch)
    store.put("second", {}, None)
    assert (len(store._values), len(store._indexes)) == (2, 0)
    store.put("dead-again", {}, 0)
    store.put("third", {}, None)
    assert len(store._values) == 4  # the interval again: nothing swept
    assert store.get("first") == {}


# -- close() --------------------------------------------------------------------------


def _served_a_token(middleware: Any) -> str:
    register(middleware, SERVICE_ID, SERVICE_SECRET, grant_types=["client_credentials"], scopes=["read"])
    app = webtest.TestApp(middleware)
    token = issue_token(app)
    app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=200)
    return token


@needs_proc
def test_middleware_close_closes_the_sqlite_file(tmp_path: Path) -> None:
    middleware = OAuth2Middleware(
        DemoApp(), issuer=ISSUER, require_https="false", store=sqlite_url(tmp_path), scopes="read"
    )
    _served_a_token(middleware)
    path = str(tmp_path / "store.db")
    in_threads(
        4, lambda: middleware.server.store.get("x")
    )  # connections of threads still alive are closed too
    assert files_of(path)
    middleware.close()
    assert files_of(path) == []


@needs_proc
def test_middleware_close_closes_memcached_and_the_client_store(
    tmp_path: Path, memcached_server: MemcachedServer
) -> None:
    middleware = OAuth2Middleware(
        DemoApp(),
        issuer=ISSUER,
        require_https="false",
        store=memcached_server.url,
        store_prefix=f"test-{uuid.uuid4().hex}:",
        client_store=sqlite_url(tmp_path),
        scopes="read",
    )
    _served_a_token(middleware)
    assert sockets_to(memcached_server.port) > 0
    assert files_of(str(tmp_path / "store.db"))
    middleware.close()
    assert sockets_to(memcached_server.port) == 0
    assert files_of(str(tmp_path / "store.db")) == []


@needs_proc
def test_middleware_close_closes_redis(redis_server: RedisServer) -> None:
    middleware = OAuth2Middleware(
        DemoApp(),
        issuer=ISSUER,
        require_https="false",
        store=redis_server.url,
        store_prefix=f"test-{uuid.uuid4().hex}:",
        scopes="read",
    )
    _served_a_token(middleware)
    assert sockets_to(redis_server.port) > 0
    middleware.close()
    assert sockets_to(redis_server.port) == 0


def test_middleware_close_leaves_a_store_passed_in_to_its_owner() -> None:
    store = MemoryStore()
    middleware = OAuth2Middleware(
        DemoApp(), issuer=ISSUER, require_https="false", store_backend=store, store="memory://", scopes="read"
    )
    token = _served_a_token(middleware)
    middleware.close()
    again = OAuth2Middleware(
        DemoApp(), issuer=ISSUER, require_https="false", store_backend=store, store="memory://", scopes="read"
    )
    webtest.TestApp(again).get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=200)


@needs_proc
def test_guard_only_filter_close_closes_its_store(tmp_path: Path) -> None:
    server = OAuth2Middleware(
        DemoApp(), issuer=ISSUER, require_https="false", store=sqlite_url(tmp_path), scopes="read"
    )
    token = _served_a_token(server)
    server.close()
    guard = guard_from_settings(DemoApp(), Settings.from_config({"store": sqlite_url(tmp_path)}))
    webtest.TestApp(guard).get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=200)
    assert files_of(str(tmp_path / "store.db"))
    guard.close()
    assert files_of(str(tmp_path / "store.db")) == []


# -- the SQLite file is the server's alone ----------------------------------------------


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common umask 022, under which files are world-readable unless made otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
def test_sqlite_file_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    store = open_store(StoreConfig(sqlite_url(tmp_path)))
    store.put("k", {"v": 1}, 60)
    raw = sqlite3.connect(tmp_path / "store.db")
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()
    files = [tmp_path / name for name in ("store.db", "store.db-wal", "store.db-shm")]
    assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}
    store.close()


@pytest.mark.usefixtures("usual_umask")
def test_sqlite_file_made_by_the_operator_keeps_its_mode(tmp_path: Path) -> None:
    (tmp_path / "store.db").touch(mode=0o640)
    store = open_store(StoreConfig(sqlite_url(tmp_path)))
    store.put("k", {"v": 1}, 60)
    assert _mode(tmp_path / "store.db") == 0o640
    store.close()


@pytest.mark.usefixtures("usual_umask")
def test_client_add_creates_an_owner_only_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "server.ini"
    config.write_text(
        f"[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nstore = {sqlite_url(tmp_path)}\nscopes = read\n"
    )
    argv = [
        "client",
        "add",
        str(config),
        "--client-id",
        "svc",
        "--grant",
        "client_credentials",
        "--scope",
        "read",
    ]
    assert main(argv) == 0, capsys.readouterr()
    assert _mode(tmp_path / "store.db") == 0o600
