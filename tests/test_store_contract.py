"""The store contract: every backend behaves like the memory store.

The first part runs once per backend of ``store_fixtures.BACKENDS``; the
second part covers what only the SQLite file store has to get right
(processes, forks, schema versions, unusable paths).
"""

# The fixtures are imported rather than put in a conftest, so that they win
# over any fixture of the same name there; test arguments then shadow the
# imported names, which is how pytest fixtures work, not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_clock import FakeClock
from store_fixtures import Backend, backend, sqlite_url, store, timed_store  # noqa: F401

from oauth_middleware.errors import ConfigError, StoreUnavailable
from oauth_middleware.stores import Store, StoreConfig, open_store
from oauth_middleware.stores.sqlite import SCHEMA_VERSION, SQLiteStore

THREADS = 20


def run_together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released at the same instant; return the results."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return results


# -- key/value ---------------------------------------------------------------


def test_missing_key_is_none(store: Store) -> None:
    assert store.get("nothing") is None


def test_put_then_get(store: Store) -> None:
    store.put("k", {"a": 1}, 60)
    assert store.get("k") == {"a": 1}


def test_put_replaces(store: Store) -> None:
    store.put("k", {"a": 1}, 60)
    store.put("k", {"b": 2}, None)
    assert store.get("k") == {"b": 2}


def test_keys_are_independent(store: Store) -> None:
    store.put("k1", {"n": 1}, None)
    store.put("k2", {"n": 2}, None)
    assert (store.get("k1"), store.get("k2")) == ({"n": 1}, {"n": 2})


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({}, id="empty"),
        pytest.param({"user": "zoë", "note": "日本語 ✓ \U0001f511", "quote": "\"'\\"}, id="unicode"),
        pytest.param(
            {
                "scopes": ["read", "write"],
                "extra": {"deep": {"list": [1, 2.5, None, True, False, {"x": []}]}},
            },
            id="nested",
        ),
        pytest.param({"big": 2**53, "neg": -7, "float": 0.1, "empty": "", "null": None}, id="scalars"),
    ],
)
def test_values_round_trip(store: Store, value: dict[str, Any]) -> None:
    store.put("k", value, None)
    assert store.get("k") == value
    assert store.take("k") == value


def test_unicode_keys(store: Store) -> None:
    store.put("at:ключ:🔑", {"ok": True}, None)
    assert store.get("at:ключ:🔑") == {"ok": True}


# -- add ---------------------------------------------------------------------


def test_add_stores_only_when_absent(store: Store) -> None:
    assert store.add("k", {"first": True}, 60) is True
    assert store.add("k", {"second": True}, 60) is False
    assert store.get("k") == {"first": True}


def test_add_after_delete(store: Store) -> None:
    store.put("k", {"old": True}, None)
    store.delete("k")
    assert store.add("k", {"new": True}, None) is True
    assert store.get("k") == {"new": True}


def test_concurrent_add_has_one_winner(store: Store) -> None:
    results = run_together(THREADS, lambda i: store.add("nonce", {"by": i}, 60))
    assert results.count(True) == 1
    assert store.get("nonce") == {"by": results.index(True)}


# -- take --------------------------------------------------------------------


def test_take_returns_once(store: Store) -> None:
    store.put("code", {"c": 1}, 60)
    assert store.take("code") == {"c": 1}
    assert store.take("code") is None
    assert store.get("code") is None


def test_take_missing_is_none(store: Store) -> None:
    assert store.take("nothing") is None


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_take_has_one_winner(store: Store, round_: int) -> None:
    store.put("code", {"round": round_}, 60)
    results = run_together(THREADS, lambda i: store.take("code"))
    assert [r for r in results if r is not None] == [{"round": round_}]


# -- delete ------------------------------------------------------------------


def test_delete_several_keys(store: Store) -> None:
    for key in ("a", "b", "c"):
        store.put(key, {"k": key}, None)
    store.delete("a", "c", "missing")
    assert (store.get("a"), store.get("b"), store.get("c")) == (None, {"k": "b"}, None)


def test_delete_nothing(store: Store) -> None:
    store.put("a", {}, None)
    store.delete()
    assert store.get("a") == {}


def test_delete_removes_an_index(store: Store) -> None:
    store.index_add("family:f", "at:1", 60)
    store.put("at:1", {"t": 1}, 60)
    store.delete("at:1", "family:f")
    assert store.index_members("family:f") == set()
    assert store.get("at:1") is None


# -- indexes -----------------------------------------------------------------


def test_index_add_discard_members(store: Store) -> None:
    assert store.index_members("family:f") == set()
    store.index_add("family:f", "at:1", 60)
    store.index_add("family:f", "rt:1", 60)
    store.index_add("family:f", "rt:1", 60)
    assert store.index_members("family:f") == {"at:1", "rt:1"}
    store.index_discard("family:f", "at:1")
    store.index_discard("family:f", "never-there")
    store.index_discard("no-such-index", "x")
    assert store.index_members("family:f") == {"rt:1"}


def test_index_members_may_be_json_text(store: Store) -> None:
    """A user's grants are JSON members (issue 18): quotes, braces, spaces and non-ASCII come back as added."""
    grants = [
        '{"c":"native","e":2000000000,"f":"a1","s":["read","write"],"t":1}',
        '{"c":"caf\u00e9 app","e":2000000000,"f":null,"s":[],"t":2}',
        '{"c":"x y","k":1,"s":["ünïcode"]}',
    ]
    for member in grants:
        store.index_add("grants:u", member, 60)
    assert store.index_members("grants:u") == set(grants)
    store.index_discard("grants:u", grants[1])
    assert store.index_members("grants:u") == {grants[0], grants[2]}


def test_indexes_are_separate(store: Store) -> None:
    store.index_add("i1", "m", None)
    store.index_add("i2", "n", None)
    assert (store.index_members("i1"), store.index_members("i2")) == ({"m"}, {"n"})


def test_index_members_is_a_copy(store: Store) -> None:
    store.index_add("i", "m", None)
    store.index_members("i").add("intruder")
    assert store.index_members("i") == {"m"}


def test_index_and_value_may_share_a_key(store: Store) -> None:
    store.put("k", {"v": 1}, None)
    store.index_add("k", "m", None)
    assert store.get("k") == {"v": 1}
    assert store.index_members("k") == {"m"}


# -- counters ----------------------------------------------------------------


def test_incr_counts(store: Store) -> None:
    assert [store.incr("hits", 60) for _ in range(3)] == [1, 2, 3]
    assert store.incr("other", 60) == 1


def test_concurrent_incr_counts_every_call(store: Store) -> None:
    results = run_together(THREADS, lambda i: store.incr("hits", 60))
    assert sorted(results) == list(range(1, THREADS + 1))


def test_decr_gives_one_back(store: Store) -> None:
    assert [store.incr("hits", 60) for _ in range(3)] == [1, 2, 3]
    store.decr("hits")
    assert store.incr("hits", 60) == 3


def test_decr_never_creates_a_counter_nor_goes_below_zero(store: Store) -> None:
    store.decr("missing")
    assert store.get("missing") is None
    assert store.incr("missing", 60) == 1
    store.decr("missing")
    store.decr("missing")
    assert store.incr("missing", 60) == 1


def test_decr_leaves_a_value_alone(store: Store) -> None:
    store.put("value", {"v": 1}, 60)
    store.decr("value")
    assert store.get("value") == {"v": 1}


def test_concurrent_incr_and_decr_lose_no_count(store: Store) -> None:
    for _ in range(THREADS):  # high enough that no give-back meets zero
        store.incr("hits", 60)
    run_together(THREADS, lambda i: store.incr("hits", 60) if i % 2 else store.decr("hits"))
    assert store.incr("hits", 60) == THREADS + 1  # as many given back as added


# -- expiry (one short sleep per networked backend) ---------------------------------


def test_expiry(timed_store: tuple[Store, Callable[[float], None]], backend: Backend) -> None:
    store, pass_time = timed_store
    store.put("gone", {"v": 1}, 1)
    store.put("taken-late", {"v": 1}, 1)
    store.put("re-added", {"v": 1}, 1)
    store.put("kept", {"v": 1}, 1)
    store.put("kept", {"v": 2}, None)  # a put replaces the expiry too
    store.put("long", {"v": 1}, 60)
    store.index_add("idx-gone", "m", 1)
    store.index_add("idx-latest", "short", 1)
    store.index_add("idx-latest", "long", 60)
    store.index_add("idx-forever", "short", 1)
    store.index_add("idx-forever", "forever", None)
    store.index_add("idx-forever-first", "forever", None)
    store.index_add("idx-forever-first", "short", 1)
    store.index_add("idx-reborn", "old", 1)
    assert store.incr("count", 1) == 1
    assert store.incr("count", 60) == 2  # keeps the first call's expiry
    store.decr("count")  # keeps it too
    assert store.get("gone") == {"v": 1}
    assert store.index_members("idx-gone") == {"m"}

    pass_time(1 + backend.expiry_slack)

    assert store.get("gone") is None
    assert store.take("taken-late") is None
    assert store.add("re-added", {"v": 2}, 60) is True
    assert store.get("re-added") == {"v": 2}
    assert store.get("kept") == {"v": 2}
    assert store.get("long") == {"v": 1}
    assert store.index_members("idx-gone") == set()
    assert store.index_members("idx-latest") == {"short", "long"}
    assert store.index_members("idx-forever") == {"short", "forever"}
    assert store.index_members("idx-forever-first") == {"short", "forever"}
    store.index_add("idx-reborn", "new", 60)
    assert store.index_members("idx-reborn") == {"new"}
    assert store.incr("count", 60) == 1


# -- SQLite only ---------------------------------------------------------------

needs_fork = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    opened = SQLiteStore(StoreConfig(sqlite_url(tmp_path)))
    opened.ping()
    yield opened
    opened.close()


def _take_all(store: SQLiteStore, keys: list[str], barrier: Any, results: Any) -> None:
    barrier.wait(timeout=30)
    results.put(sorted(key for key in keys if store.take(key) is not None))


@needs_fork
def test_sqlite_processes_take_once(sqlite_store: SQLiteStore) -> None:
    keys = [f"code:{i}" for i in range(30)]
    for key in keys:
        sqlite_store.put(key, {"k": key}, 60)  # the parent holds a connection at fork time
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_take_all, args=(sqlite_store, keys, barrier, results)) for _ in range(4)]
    for proc in procs:
        proc.start()
    won = [results.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    assert sorted(key for keys_won in won for key in keys_won) == sorted(keys)


def _report_connection(store: SQLiteStore, parent_conn_id: int, results: Any) -> None:
    conn = store._connection()
    store.put("from-child", {"pid": os.getpid()}, 60)
    results.put((id(conn) != parent_conn_id, store.get("from-parent")))


@needs_fork
def test_sqlite_connection_is_not_reused_after_fork(sqlite_store: SQLiteStore) -> None:
    sqlite_store.put("from-parent", {"v": 1}, 60)
    parent_conn = sqlite_store._connection()
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    proc = ctx.Process(target=_report_connection, args=(sqlite_store, id(parent_conn), results))
    proc.start()
    fresh, seen = results.get(timeout=30)
    proc.join(timeout=30)
    assert proc.exitcode == 0
    assert fresh, "the child reused the connection opened before fork()"
    assert seen == {"v": 1}
    assert sqlite_store._connection() is parent_conn
    assert sqlite_store.get("from-child") == {"pid": proc.pid}


def test_sqlite_threads_get_their_own_connections(sqlite_store: SQLiteStore) -> None:
    conns = run_together(4, lambda i: sqlite_store._connection())
    assert len({id(conn) for conn in conns}) == 4


def test_sqlite_take_without_returning(sqlite_store: SQLiteStore) -> None:
    sqlite_store._returning = False  # the path taken on SQLite < 3.35
    sqlite_store.put("code", {"c": 1}, 60)
    results = run_together(THREADS, lambda i: sqlite_store.take("code"))
    assert [r for r in results if r is not None] == [{"c": 1}]
    sqlite_store.put("old", {"c": 1}, 0)
    assert sqlite_store.take("old") is None


def test_sqlite_schema_is_versioned(sqlite_store: SQLiteStore) -> None:
    raw = sqlite3.connect(sqlite_store.path)
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    tables = {name for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    raw.close()
    assert {"kv", "idx"} <= tables


def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "store.db")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(ConfigError, match=r"^store: .*schema version \d+ is newer") as caught:
        open_store(StoreConfig(sqlite_url(tmp_path)))
    assert "\n" not in str(caught.value)
    raw = sqlite3.connect(tmp_path / "store.db")
    assert raw.execute("SELECT name FROM sqlite_master").fetchall() == []  # left untouched
    raw.close()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="a-directory"),
        pytest.param("missing/store.db", id="missing-directory"),
    ],
)
def test_sqlite_unopenable_path_fails_at_load(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path / name}" if name else f"sqlite:///{tmp_path}"
    with pytest.raises(ConfigError) as caught:
        open_store(StoreConfig(url))
    message = str(caught.value)
    assert message.startswith("store: cannot open ")
    assert "unable to open database file" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param("sqlite:///:memory:", "in-memory", id="memory"),
        pytest.param("sqlite://host/store.db", "three slashes", id="netloc"),
        pytest.param("sqlite://", "three slashes", id="no-path"),
        pytest.param("sqlite:///store.db?mode=ro", "no query string", id="query"),
    ],
)
def test_sqlite_bad_url_fails_at_load(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=rf"^store: .*{reason}"):
        open_store(StoreConfig(url))


def test_sqlite_relative_path_is_from_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    opened = SQLiteStore(StoreConfig("sqlite:///rel.db"))
    monkeypatch.chdir("/")  # resolved at construction, not at first use
    opened.ping()
    assert opened.path == str(tmp_path / "rel.db")
    assert (tmp_path / "rel.db").is_file()


def test_sqlite_quoted_absolute_path(tmp_path: Path) -> None:
    opened = SQLiteStore(StoreConfig(f"sqlite:///{tmp_path}/with%20space.db"))
    opened.ping()
    assert (tmp_path / "with space.db").is_file()


def test_sqlite_data_survives_reopening(tmp_path: Path) -> None:
    first = SQLiteStore(StoreConfig(sqlite_url(tmp_path)))
    first.put("k", {"v": "é"}, None)
    first.index_add("i", "m", 60)
    first.incr("c", 60)
    first.close()
    second = open_store(StoreConfig(sqlite_url(tmp_path)))
    assert second.get("k") == {"v": "é"}
    assert second.index_members("i") == {"m"}
    assert second.incr("c", 60) == 2
    second.close()


def test_sqlite_usable_after_close(sqlite_store: SQLiteStore) -> None:
    sqlite_store.put("k", {"v": 1}, None)
    sqlite_store.close()
    assert sqlite_store.get("k") == {"v": 1}


def test_sqlite_lock_past_timeout_is_unavailable(tmp_path: Path) -> None:
    opened = SQLiteStore(StoreConfig(sqlite_url(tmp_path), timeout=0.1))
    opened.put("k", {"v": 1}, None)
    other = sqlite3.connect(opened.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        with pytest.raises(StoreUnavailable, match=r"^sqlite: database is locked$"):
            opened.put("k", {"v": 2}, None)
        with pytest.raises(StoreUnavailable, match=r"^sqlite: database is locked$"):
            opened.incr("c", 60)
        assert opened.get("k") == {"v": 1}  # WAL: readers are not blocked
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert opened.incr("c", 60) == 1  # the failed transaction was rolled back
    opened.close()


def test_sqlite_unreadable_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "store.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match=r"^store: cannot open .*: sqlite: file is not a database$"):
        open_store(StoreConfig(sqlite_url(tmp_path)))


def test_sqlite_sweep_removes_expired_rows(sqlite_store: SQLiteStore) -> None:
    sqlite_store.put("dead", {}, 0)
    sqlite_store.index_add("dead-index", "m", 0)
    sqlite_store.put("live", {}, 60)
    sqlite_store._next_sweep = 0.0  # as if a minute had passed
    sqlite_store.put("trigger", {}, None)
    raw = sqlite3.connect(sqlite_store.path)
    assert sorted(key for (key,) in raw.execute("SELECT key FROM kv")) == ["live", "trigger"]
    assert raw.execute("SELECT COUNT(*) FROM idx").fetchone() == (0,)
    raw.close()


def test_sqlite_concurrent_index_adds(sqlite_store: SQLiteStore) -> None:
    run_together(THREADS, lambda i: sqlite_store.index_add("family:f", f"at:{i}", 60))
    assert sqlite_store.index_members("family:f") == {f"at:{i}" for i in range(THREADS)}


# -- SQLite: several counters in one statement (BatchCounterStore) ----------------


def test_sqlite_incr_many_counts_each_key_as_incr_does(sqlite_store: SQLiteStore) -> None:
    assert sqlite_store.incr("b", 60) == 1
    assert sqlite_store.incr_many(("a", "b"), 60) == (1, 2)
    assert sqlite_store.incr_many(("b", "a"), 60) == (3, 2)  # in the order asked, whatever SQLite returns
    assert sqlite_store.incr("a", 60) == 3


def test_sqlite_incr_many_starts_an_expired_counter_afresh_and_keeps_a_live_ones_expiry(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    opened = SQLiteStore(StoreConfig(sqlite_url(tmp_path), clock=clock))
    try:
        assert opened.incr_many(("a", "b"), 10) == (1, 1)
        clock.advance(6)
        assert opened.incr_many(("a", "b"), 10) == (2, 2)  # the window does not slide
        clock.advance(5)
        assert opened.incr_many(("a", "b"), 10) == (1, 1)  # expired: counted afresh
    finally:
        opened.close()


def test_sqlite_decr_many_gives_one_back_to_each_and_never_creates_one(sqlite_store: SQLiteStore) -> None:
    assert sqlite_store.incr_many(("a", "b"), 60) == (1, 1)
    assert sqlite_store.incr("a", 60) == 2
    sqlite_store.decr_many(("a", "b", "missing"))
    assert sqlite_store.get("missing") is None
    sqlite_store.decr_many(("b",))  # never below zero
    assert sqlite_store.incr_many(("a", "b"), 60) == (2, 1)


def test_sqlite_concurrent_incr_many_counts_every_call(sqlite_store: SQLiteStore) -> None:
    results = run_together(THREADS, lambda i: sqlite_store.incr_many(("a", "b"), 60))
    assert sorted(a for a, _ in results) == list(range(1, THREADS + 1))
    assert sorted(b for _, b in results) == list(range(1, THREADS + 1))


def test_sqlite_incr_many_unless_counts_nothing_while_a_block_is_live(tmp_path: Path) -> None:
    clock = FakeClock()
    opened = SQLiteStore(StoreConfig(sqlite_url(tmp_path), clock=clock))
    try:
        blocks = ("block:a", "block:b")
        assert opened.incr_many_unless(("a", "b"), 60, blocks) == (1, 1)
        opened.put("block:b", {"u": 1}, 10)
        assert opened.incr_many_unless(("a", "b"), 60, blocks) is None
        assert opened.incr_many_unless(("b", "a"), 60, ("block:b",)) is None
        assert (opened.get("a"), opened.get("b")) == ({"n": 1}, {"n": 1})  # neither was counted
        clock.advance(11)  # the block is over
        assert opened.incr_many_unless(("b", "a"), 60, blocks) == (2, 2)
    finally:
        opened.close()


def test_sqlite_concurrent_incr_many_unless_counts_every_call(sqlite_store: SQLiteStore) -> None:
    results = run_together(THREADS, lambda i: sqlite_store.incr_many_unless(("a", "b"), 60, ("block:a",)))
    assert sorted(a for a, _ in results) == list(range(1, THREADS + 1))
    assert sorted(b for _, b in results) == list(range(1, THREADS + 1))


# -- the change mark the guard's token cache asks (ChangeStore): SQLite and memory ----


def _change_writes(store: Store) -> list[Callable[[], object]]:
    """The writes that replace or remove a value, each over a value written just before."""
    return [
        lambda: store.put("k", {"v": 2}, None),
        lambda: store.take("k"),
        lambda: store.delete("k"),
    ]


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_changes_move_when_a_value_is_replaced_or_removed_and_not_on_reads_counts_or_adds(
    tmp_path: Path, kind: str
) -> None:
    url = sqlite_url(tmp_path) if kind == "sqlite" else "memory://"
    changing = open_store(StoreConfig(url))
    try:
        assert changing.changes() == changing.changes()  # type: ignore[attr-defined]
        for write in _change_writes(changing):
            changing.put("k", {"v": 1}, None)
            before = changing.changes()  # type: ignore[attr-defined]
            changing.get("k")
            changing.add("new", {"v": 1}, 60)
            changing.incr("counter", 60)
            changing.decr("counter")
            assert changing.changes() == before  # type: ignore[attr-defined]
            write()
            assert changing.changes() != before  # type: ignore[attr-defined]
    finally:
        changing.close()


def test_sqlite_changes_move_on_a_write_by_any_store_of_the_file_and_outlive_a_reopen(
    sqlite_store: SQLiteStore, tmp_path: Path
) -> None:
    first = sqlite_store.changes()
    assert sqlite_store.changes() == first  # nothing written
    other = SQLiteStore(StoreConfig(sqlite_url(tmp_path)))  # another process, as far as SQLite knows
    try:
        other.put("k", {"v": 1}, None)
    finally:
        other.close()
    moved = sqlite_store.changes()
    assert moved != first
    run_together(1, lambda i: sqlite_store.delete("k"))  # this store, another thread
    assert sqlite_store.changes() != moved
    # The mark lives in a file next to the database: closing and reopening is no change.
    before = sqlite_store.changes()
    sqlite_store.close()
    assert sqlite_store.changes() == before
    assert os.stat(f"{sqlite_store.path}-changes").st_mode & 0o777 == 0o600


def _delete_in_child(store: SQLiteStore, results: Any) -> None:
    results.put(store.changes())
    store.delete("k")


@needs_fork
def test_sqlite_changes_are_shared_with_forked_children(sqlite_store: SQLiteStore) -> None:
    # A child inherits the parent's token cache and the mark it last saw: a write in any
    # process moves the mark every process reads, so neither serves an entry ended since.
    before = sqlite_store.changes()
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    proc = ctx.Process(target=_delete_in_child, args=(sqlite_store, results))
    proc.start()
    seen = results.get(timeout=30)
    proc.join(timeout=30)
    assert proc.exitcode == 0
    assert seen == before
    assert sqlite_store.changes() != before  # the child's delete
