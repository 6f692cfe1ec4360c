"""SQLite store (``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``).

One database file shared by every thread and every worker process on one
host, with nothing to install: the right store for a single machine running
``gunicorn --paste`` with several workers.

Why it is safe with threads and forked workers:

* the file is in WAL mode, so readers never wait for the writer, and every
  connection waits up to ``timeout`` seconds for a lock (``busy_timeout``)
  before giving up with :class:`~oauth_middleware.errors.StoreUnavailable`;
* each thread of each process opens its own connection, lazily, and it is
  closed when the thread ends; a connection opened before a ``fork()`` is
  never used nor closed by the child (SQLite forbids it: locks are per
  process and the file can be corrupted);
* the operations that must be atomic (``take``, ``add``, ``incr``, index
  updates) are single statements or ``BEGIN IMMEDIATE`` transactions, so
  SQLite's write lock serialises them across processes.

The schema is versioned with ``PRAGMA user_version`` and created or
upgraded on first use by :data:`MIGRATIONS`. A file the store creates is
readable and writable by its owner only (mode 0600, and so are its ``-wal``
and ``-shm``, and ``-changes``, the change mark of
:mod:`~oauth_middleware.stores.change_file`); a file that already exists keeps its mode. Expired rows are
deleted by a sweep of at most :data:`SWEEP_BATCH` rows per table.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

from ..errors import StoreUnavailable
from .base import StoreConfig, Value, expiry_time
from .change_file import ChangeFile

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SWEEP_BATCH", "SQLiteStore"]

#: Schema version this code reads and writes, kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 1

#: Statements that bring a file from version ``n - 1`` to ``n``. Released
#: entries are never edited (files in the field already ran them): a schema
#: change is a new entry and a bump of :data:`SCHEMA_VERSION`.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL)",
        # Partial indexes: only expiring rows are ever swept.
        "CREATE INDEX kv_expires ON kv (expires) WHERE expires IS NOT NULL",
        "CREATE TABLE idx (key TEXT NOT NULL, member TEXT NOT NULL, expires REAL,"
        " PRIMARY KEY (key, member)) WITHOUT ROWID",
        "CREATE INDEX idx_expires ON idx (expires) WHERE expires IS NOT NULL",
    ),
}

#: Expired rows are deleted at most this often per process (seconds).
_SWEEP_INTERVAL = 60.0

#: Most expired rows one sweep deletes from each table, so that the write
#: which runs it stays short however many rows expired. A full batch means
#: more may be waiting: the next write sweeps again, until a batch comes back
#: short.
SWEEP_BATCH = 1000

#: UPSERT (used by ``add``) appeared in SQLite 3.24 (2018).
_MIN_SQLITE = (3, 24, 0)

#: ``DELETE ... RETURNING`` makes ``take`` one statement; older SQLite gets a transaction.
_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

# The statements, written out in full (sqlite3 caches each one prepared per
# connection). "Live" is always: expires IS NULL OR expires > now.
_GET = "SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)"
_GET_COUNTER = "SELECT value, expires FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)"
_PUT = "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)"
# The DO UPDATE only fires over an expired row, so a live one is left alone
# and the statement reports no change.
_ADD = (
    "INSERT INTO kv (key, value, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE"
    " SET value = excluded.value, expires = excluded.expires"
    " WHERE kv.expires IS NOT NULL AND kv.expires <= ?"
)
_TAKE = "DELETE FROM kv WHERE key = ? RETURNING value, expires"
#: A counter's ``incr`` and ``decr`` as one statement each (RETURNING and built-in JSON functions,
#: SQLite 3.38): one implicit write transaction instead of BEGIN, SELECT, write and COMMIT. The
#: throttle makes four of these calls per client authentication, so on SQLite they were most of
#: the cost of issuing a token. An expired counter starts afresh at 1 with a new expiry; a live
#: one keeps its expiry, so a rate-limit window does not slide (UPDATE's right-hand sides all
#: read the row as it was).
_ONE_STATEMENT_COUNTERS = sqlite3.sqlite_version_info >= (3, 38, 0)
_INCR = (
    "INSERT INTO kv (key, value, expires) VALUES (?1, '{\"n\":1}', ?2) ON CONFLICT (key) DO UPDATE SET"
    " value = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?3 THEN excluded.value"
    " ELSE json_set(kv.value, '$.n', json_extract(kv.value, '$.n') + 1) END,"
    " expires = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?3 THEN excluded.expires"
    " ELSE kv.expires END"
    " RETURNING json_extract(value, '$.n')"
)


@functools.lru_cache(maxsize=8)
def _incr_many(count: int) -> str:
    """:data:`_INCR` for ``count`` keys (parameters: expiry, now, the keys), returning key and count."""
    rows = ", ".join(f"(?{3 + i}, '{{\"n\":1}}', ?1)" for i in range(count))
    return (  # Built of numbered placeholders only: the keys are bound as parameters.
        f"INSERT INTO kv (key, value, expires) VALUES {rows} ON CONFLICT (key) DO UPDATE SET"  # noqa: S608
        " value = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?2 THEN excluded.value"
        " ELSE json_set(kv.value, '$.n', json_extract(kv.value, '$.n') + 1) END,"
        " expires = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?2 THEN excluded.expires"
        " ELSE kv.expires END"
        " RETURNING key, json_extract(value, '$.n')"
    )


@functools.lru_cache(maxsize=8)
def _decr_many(count: int) -> str:
    """:data:`_DECR` for ``count`` keys (parameters: now, the keys)."""
    return (  # Numbered placeholders only, as above.
        "UPDATE kv SET value = json_set(value, '$.n', json_extract(value, '$.n') - 1)"  # noqa: S608
        f" WHERE key IN ({', '.join(f'?{2 + i}' for i in range(count))}) AND (expires IS NULL OR expires > ?1)"
        " AND json_extract(value, '$.n') > 0"
    )


@functools.lru_cache(maxsize=8)
def _incr_many_unless(count: int, blocks: int) -> str:
    """:func:`_incr_many` for ``count`` keys, counting none while one of ``blocks`` keys is live.

    Parameters: expiry, now, the keys, the block keys. An ``INSERT ... SELECT``
    whose ``WHERE NOT EXISTS`` reads the blocks inside the statement's own
    write transaction: the look and the count are one atomic step. Blocked,
    it inserts nothing and returns no row.
    """
    keys = ", ".join(f"(?{3 + i})" for i in range(count))
    block_keys = ", ".join(f"?{3 + count + i}" for i in range(blocks))
    return (  # Numbered placeholders only, as above.
        f"INSERT INTO kv (key, value, expires) SELECT column1, '{{\"n\":1}}', ?1 FROM (VALUES {keys})"  # noqa: S608
        f" WHERE NOT EXISTS (SELECT 1 FROM kv WHERE key IN ({block_keys}) AND (expires IS NULL OR expires > ?2))"
        " ON CONFLICT (key) DO UPDATE SET"
        " value = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?2 THEN excluded.value"
        " ELSE json_set(kv.value, '$.n', json_extract(kv.value, '$.n') + 1) END,"
        " expires = CASE WHEN kv.expires IS NOT NULL AND kv.expires <= ?2 THEN excluded.expires"
        " ELSE kv.expires END"
        " RETURNING key, json_extract(value, '$.n')"
    )


_DECR = (
    "UPDATE kv SET value = json_set(value, '$.n', json_extract(value, '$.n') - 1)"
    " WHERE key = ? AND (expires IS NULL OR expires > ?) AND json_extract(value, '$.n') > 0"
)
_INDEX_OTHERS = (
    "SELECT COUNT(*), MAX(expires IS NULL), MAX(expires) FROM idx"
    " WHERE key = ? AND member <> ? AND (expires IS NULL OR expires > ?)"
)
_INDEX_MEMBERS = "SELECT member FROM idx WHERE key = ? AND (expires IS NULL OR expires > ?)"
# Both find their rows through the partial indexes on ``expires``.
_SWEEP_KV = "DELETE FROM kv WHERE rowid IN (SELECT rowid FROM kv WHERE expires <= ? LIMIT ?)"
_SWEEP_IDX = "DELETE FROM idx WHERE (key, member) IN (SELECT key, member FROM idx WHERE expires <= ? LIMIT ?)"

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _translate_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn any ``sqlite3.Error`` raised by ``method`` into ``StoreUnavailable``."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    return wrapper


class SQLiteStore:
    """A :class:`~oauth_middleware.stores.base.Store` kept in one SQLite file.

    :param config: ``config.url`` names the file (relative paths are taken
        from the working directory at construction); ``config.timeout`` is
        how long a call waits for a lock held by another process.

    Example::

        store = SQLiteStore(StoreConfig("sqlite:////var/lib/oauth/oauth.db"))
        store.ping()  # creates the file and its schema, or raises StoreUnavailable
        store.put("at:abc", {"client_id": "app"}, ttl=3600)
    """

    def __init__(self, config: StoreConfig) -> None:
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreUnavailable(
                f"sqlite:// needs SQLite >= {'.'.join(map(str, _MIN_SQLITE))},"
                f" this Python has {sqlite3.sqlite_version}"
            )
        #: Absolute path of the database file.
        self.path = _database_path(config.url)
        self._timeout = config.timeout
        self.clock = config.clock
        # Connections by thread id, each with the pid that opened it. A dict
        # rather than a threading.local on purpose: after a fork the child
        # frees other threads' locals, which would close (and so touch) the
        # parent's SQLite handles; here they stay referenced and untouched.
        self._conns: dict[int, tuple[int, sqlite3.Connection]] = {}
        # What a threading.local does hold: one marker per thread, whose
        # finalizer closes the thread's connection when the thread ends (see
        # _release, which leaves other processes' connections alone).
        self._ends = threading.local()
        # Connections inherited from a parent process: kept alive, never used,
        # never closed.
        self._inherited: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._returning = _HAS_RETURNING
        self._next_sweep = self.clock.monotonic() + _SWEEP_INTERVAL
        #: Moves after each write that replaces or removes a value, in any process (:meth:`changes`).
        self._marks = ChangeFile(f"{self.path}-changes")

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    @_translate_errors
    def ping(self) -> None:
        """Open the file, create or check its schema, and read from it.

        Uses a short-lived connection of its own so that a server which pings
        at load time and then forks its workers holds no connection at the fork.
        """
        conn = self._open()
        try:
            conn.execute("SELECT 1 FROM kv LIMIT 1").fetchall()
        finally:
            conn.close()

    @_translate_errors
    def migrate(self) -> tuple[int, int]:
        """Create or upgrade the file's schema now; return the versions before (0: none) and after.

        What ``oauth-middleware store migrate`` runs; :meth:`ping` and every
        new connection do it too.
        """
        _create_owner_only(self.path)
        probe = sqlite3.connect(self.path, timeout=self._timeout)
        try:
            before = _user_version(probe)
        finally:
            probe.close()
        self.ping()
        return before, SCHEMA_VERSION

    def get(self, key: str) -> Value | None:
        """Return the live value under ``key``, or None."""
        # The hot path: no decorator, one cached statement.
        try:
            rows = self._connection().execute(_GET, (key, self.clock.time())).fetchall()
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        return json.loads(rows[0][0]) if rows else None

    @_translate_errors
    def put(self, key: str, value: Value, ttl: int | None) -> None:
        """Store ``value`` under ``key``, replacing what was there and its expiry."""
        conn = self._connection()
        conn.execute(_PUT, (key, _dump(value), expiry_time(ttl, self.clock)))
        self._marks.bump()
        self._maybe_sweep(conn)

    @_translate_errors
    def add(self, key: str, value: Value, ttl: int | None) -> bool:
        """Store ``value`` only if ``key`` holds no live value; True if stored.

        One UPSERT statement, so two processes adding the same key cannot both win.
        """
        conn = self._connection()
        stored = (
            conn.execute(_ADD, (key, _dump(value), expiry_time(ttl, self.clock), self.clock.time())).rowcount
            == 1
        )
        self._maybe_sweep(conn)
        return stored

    @_translate_errors
    def take(self, key: str) -> Value | None:
        """Atomically remove and return the live value under ``key``.

        An expired row is removed too but not returned.
        """
        now = self.clock.time()
        if self._returning:
            found = self._connection().execute(_TAKE, (key,)).fetchall()
        else:
            with self._transaction() as conn:
                found = conn.execute("SELECT value, expires FROM kv WHERE key = ?", (key,)).fetchall()
                if found:
                    conn.execute("DELETE FROM kv WHERE key = ?", (key,))
        if not found:
            return None
        self._marks.bump()
        value, expires = found[0]
        return None if expires is not None and expires <= now else _load(value)

    @_translate_errors
    def delete(self, *keys: str) -> None:
        """Remove the keys, values and indexes alike (missing keys are ignored)."""
        if not keys:
            return
        params = [(key,) for key in keys]
        with self._transaction() as conn:
            conn.executemany("DELETE FROM kv WHERE key = ?", params)
            conn.executemany("DELETE FROM idx WHERE key = ?", params)
        self._marks.bump()

    @_translate_errors
    def index_add(self, key: str, member: str, ttl: int | None) -> None:
        """Add ``member`` to the set ``key``, extending the set's life to ``ttl``.

        Like the memory store, the set expires as a whole: every member row
        carries the set's expiry, the latest one asked for, and ``None``
        (forever) wins. A set with no other live member starts afresh.
        """
        now = self.clock.time()
        deadline = expiry_time(ttl, self.clock)
        with self._transaction() as conn:
            others, forever, latest = conn.execute(_INDEX_OTHERS, (key, member, now)).fetchone()
            if not others:
                expires = deadline
            elif forever or deadline is None:
                expires = None
            else:
                expires = max(latest, deadline)
            # Drop the dead rows of an expired set so they do not come back to life.
            conn.execute("DELETE FROM idx WHERE key = ? AND expires <= ?", (key, now))
            conn.execute(
                "INSERT OR REPLACE INTO idx (key, member, expires) VALUES (?, ?, ?)", (key, member, expires)
            )
            conn.execute("UPDATE idx SET expires = ? WHERE key = ?", (expires, key))
        self._maybe_sweep(conn)

    @_translate_errors
    def index_discard(self, key: str, member: str) -> None:
        """Remove ``member`` from the set ``key``."""
        self._connection().execute("DELETE FROM idx WHERE key = ? AND member = ?", (key, member))

    @_translate_errors
    def index_members(self, key: str) -> set[str]:
        """Return the live members of the set ``key`` (empty when missing)."""
        rows = self._connection().execute(_INDEX_MEMBERS, (key, self.clock.time()))
        return {member for (member,) in rows.fetchall()}

    @_translate_errors
    def incr(self, key: str, ttl: int) -> int:
        """Add one to the counter ``key`` and return it.

        A new (or expired) counter expires after ``ttl``; counting up keeps
        the original expiry, so a rate-limit window does not slide.
        """
        now = self.clock.time()
        if _ONE_STATEMENT_COUNTERS:
            conn = self._connection()
            count = int(conn.execute(_INCR, (key, now + ttl, now)).fetchall()[0][0])
            self._maybe_sweep(conn)
            return count
        with self._transaction() as conn:
            rows = conn.execute(_GET_COUNTER, (key, now)).fetchall()
            if rows:
                count = int(_load(rows[0][0])["n"]) + 1
                expires = rows[0][1]
            else:
                count, expires = 1, now + ttl
            conn.execute(_PUT, (key, _dump({"n": count}), expires))
        self._maybe_sweep(conn)
        return count

    @_translate_errors
    def decr(self, key: str) -> None:
        """Take one back from the live counter ``key`` (never below zero), keeping its expiry."""
        if _ONE_STATEMENT_COUNTERS:
            self._connection().execute(_DECR, (key, self.clock.time()))
            return
        with self._transaction() as conn:
            rows = conn.execute(_GET_COUNTER, (key, self.clock.time())).fetchall()
            count = int(_load(rows[0][0]).get("n", 0)) if rows else 0
            if count > 0:
                conn.execute(_PUT, (key, _dump({"n": count - 1}), rows[0][1]))

    @_translate_errors
    def incr_many(self, keys: tuple[str, ...], ttl: int) -> tuple[int, ...]:
        """:meth:`incr` on each of ``keys``, in one statement (one write transaction)."""
        if not _ONE_STATEMENT_COUNTERS or len(set(keys)) != len(keys):
            return tuple(self.incr(key, ttl) for key in keys)
        now = self.clock.time()
        conn = self._connection()
        rows = conn.execute(_incr_many(len(keys)), (now + ttl, now, *keys)).fetchall()
        self._maybe_sweep(conn)
        # RETURNING gives rows in no promised order: they carry their key.
        counts = {key: int(count) for key, count in rows}
        return tuple(counts[key] for key in keys)

    @_translate_errors
    def decr_many(self, keys: tuple[str, ...]) -> None:
        """:meth:`decr` on each of ``keys``, in one statement."""
        if not _ONE_STATEMENT_COUNTERS or len(set(keys)) != len(keys):
            for key in keys:
                self.decr(key)
            return
        self._connection().execute(_decr_many(len(keys)), (self.clock.time(), *keys))

    def changes(self) -> bytes:
        """A mark that moves after each ``put``, ``take`` or ``delete`` by any store of this file.

        Read from memory shared by every process of the host (the file
        ``<database>-changes``, see :mod:`~oauth_middleware.stores.change_file`):
        the guard's token cache asks it on each hit (see
        :class:`~oauth_middleware.stores.base.ChangeStore`). Writes made to the
        database by other programs do not move it.

        :raises StoreUnavailable: the file cannot be created or mapped.
        """
        return self._marks.read()

    def close(self) -> None:
        """Close this process's connections, every thread's; a later call opens new ones."""
        pid = os.getpid()
        self._marks.close()
        with self._lock_of(pid):
            for ident in list(self._conns):
                # Popped one by one, as _release does: whichever pops a connection closes it.
                entry = self._conns.pop(ident, None)
                if entry is None:
                    continue
                owner, conn = entry
                if owner == pid:
                    with suppress(sqlite3.Error):
                        conn.close()
                else:
                    self._inherited.append(conn)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use in this process."""
        entry = self._conns.get(threading.get_ident())
        if entry is not None and entry[0] == os.getpid():
            return entry[1]
        return self._connect()

    def _connect(self) -> sqlite3.Connection:
        ident, pid = threading.get_ident(), os.getpid()
        conn = self._open()
        with self._lock_of(pid):
            old = self._conns.get(ident)
            self._conns[ident] = (pid, conn)
            if old is not None and old[0] != pid:
                # Opened by the parent before fork(): closing it here could
                # release or checkpoint on the parent's behalf, so keep it.
                self._inherited.append(old[1])
            elif old is not None:
                # Left by a thread whose end went unseen (its locals were never
                # freed) before a new thread reused its id.
                with suppress(sqlite3.Error):
                    old[1].close()
        end = _ThreadEnd()
        weakref.finalize(end, _release, self._conns, ident, pid, conn)
        # Outside the lock: this drops the thread's previous marker (left by
        # close() or by a fork), whose finalizer then runs, and finds nothing to do.
        self._ends.marker = end
        return conn

    def _lock_of(self, pid: int) -> threading.Lock:
        """The lock guarding ``_conns``, made anew in a forked child.

        A lock held by another thread at fork time stays held forever in the
        child, which would hang its first connection.
        """
        if self._lock_pid != pid:
            self._lock, self._lock_pid = threading.Lock(), pid
        return self._lock

    def _open(self) -> sqlite3.Connection:
        """A new connection in autocommit mode with the schema in place."""
        _create_owner_only(self.path)
        conn = sqlite3.connect(
            self.path,
            timeout=self._timeout,
            isolation_level=None,
            # close() may run on another thread; each connection is otherwise
            # only used by the thread that opened it.
            check_same_thread=False,
        )
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            # In WAL mode NORMAL never corrupts the file; a power cut may lose
            # the last commits, which for short-lived tokens is the right trade
            # against an fsync on every request.
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: takes SQLite's write lock up front.

        ``BEGIN IMMEDIATE`` rather than a deferred BEGIN: a deferred
        transaction that reads then writes can fail at once with "database is
        locked" when another process wrote meanwhile; IMMEDIATE waits its turn.
        """
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _maybe_sweep(self, conn: sqlite3.Connection) -> None:
        """Delete up to :data:`SWEEP_BATCH` expired rows per table, once per interval per process.

        After a full batch the next write sweeps again: a backlog drains a
        bounded batch per write instead of stalling one request.
        """
        now_mono = self.clock.monotonic()
        if now_mono < self._next_sweep:
            return
        self._next_sweep = now_mono + _SWEEP_INTERVAL
        now = self.clock.time()
        # The caller's write succeeded; a busy sweep just waits for next time.
        with suppress(sqlite3.Error):
            conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = [conn.execute(sql, (now, SWEEP_BATCH)).rowcount for sql in (_SWEEP_KV, _SWEEP_IDX)]
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            if max(deleted) >= SWEEP_BATCH:
                self._next_sweep = now_mono

    @_translate_errors
    def incr_many_unless(
        self, keys: tuple[str, ...], ttl: int, blocks: tuple[str, ...]
    ) -> tuple[int, ...] | None:
        """:meth:`incr_many` unless one of ``blocks`` holds a live value (then None, nothing counted);
        one statement, the look included (the throttle's look for blocks and its count)."""
        if not _ONE_STATEMENT_COUNTERS or not keys or len(set(keys)) != len(keys):
            # The look, then the count: as stores without this method do it.
            if any(self.get(block) is not None for block in blocks):
                return None
            return tuple(self.incr(key, ttl) for key in keys)
        now = self.clock.time()
        conn = self._connection()
        rows = conn.execute(
            _incr_many_unless(len(keys), len(blocks)), (now + ttl, now, *keys, *blocks)
        ).fetchall()
        self._maybe_sweep(conn)
        if not rows:
            return None
        counts = {key: int(count) for key, count in rows}
        return tuple(counts[key] for key in keys)


class _ThreadEnd:
    """The marker a thread keeps in a threading.local: its finalizer runs when the thread ends."""

    __slots__ = ("__weakref__",)


def _release(
    conns: dict[int, tuple[int, sqlite3.Connection]], ident: int, pid: int, conn: sqlite3.Connection
) -> None:
    """Close ``conn``, opened by thread ``ident`` of process ``pid``, now that the thread ended.

    Also runs when the store itself is dropped, and in a forked child for the
    parent's other threads, whose locals the child frees: those connections
    belong to the parent and are neither closed nor used here.
    """
    if os.getpid() != pid:
        return
    entry = conns.get(ident)
    # Gone or replaced: close() closed it already. Only this thread stores under
    # its id, so the entry cannot change between the check and the pop; close()
    # pops too, and whichever pops it closes it.
    if entry is not None and entry[1] is conn and conns.pop(ident, None) is not None:
        with suppress(sqlite3.Error):
            conn.close()


def _create_owner_only(path: str) -> None:
    """Create the database file with mode 0600 if it does not exist yet.

    SQLite would create it with the process's umask (often world-readable),
    and gives its ``-wal`` and ``-shm`` files the mode of the database file,
    so they are owner-only too. A file that exists keeps its mode: the
    operator chose it. Created here rather than under a changed umask, which
    is process-wide and would race with other threads.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        # It exists, or it cannot be made: then sqlite3 says why on the same path.
        return
    os.close(descriptor)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the file's schema to :data:`SCHEMA_VERSION`, or refuse a newer one."""
    version = _user_version(conn)
    if version == SCHEMA_VERSION:
        return
    _refuse_newer(version)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        version = _user_version(conn)
        _refuse_newer(version)
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
        # PRAGMA takes no parameters; the value is our own integer constant.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _refuse_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        # Writing to a schema we do not know could destroy a newer release's data.
        raise StoreUnavailable(
            f"database schema version {version} is newer than this oauth_middleware"
            f" supports ({SCHEMA_VERSION}); upgrade oauth_middleware"
        )


def _database_path(url: str) -> str:
    """The absolute file path named by a ``sqlite:///`` URL."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.scheme != "sqlite" or parts.netloc or not path.startswith("/") or len(path) < 2:
        raise StoreUnavailable(
            "expected sqlite:///relative/path.db or sqlite:////absolute/path.db"
            " (three slashes, then the path)"
        )
    if parts.query or parts.fragment:
        raise StoreUnavailable("a sqlite:// URL takes no query string or fragment")
    path = path[1:]
    if path == ":memory:" or path.startswith("file:"):
        raise StoreUnavailable("an in-memory SQLite database is not shared between workers; name a file")
    # Resolved now, so a later chdir (daemonising) does not move the database.
    return os.path.abspath(path)


def _dump(value: Value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _load(text: str) -> Any:
    return json.loads(text)


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    """A short message for ``exc``: SQLite's own reason, never our SQL."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StoreUnavailable(f"sqlite: {reason}")
