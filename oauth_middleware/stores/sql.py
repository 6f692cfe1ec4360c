"""What the PostgreSQL and MySQL/MariaDB stores share: the tables, the statements, the pool.

:class:`SQLStore` is the :class:`~oauth_middleware.stores.base.Store`; a
:class:`Dialect` (:mod:`.postgresql`, :mod:`.mysql`) adds only what the two
databases spell differently: how to connect, the upserts, the atomic take,
the DDL and the advisory lock around a migration.

Tables (``<p>`` is the ``store_table_prefix`` setting, which may name a
schema or database first: ``auth.oauth_``):

=================  ==========================================================
``<p>meta``        ``schema_version``: the schema this code reads and writes
``<p>kv``          values (JSON text in ``body``) and counters (``counter``),
                   each with its expiry as a Unix time (``expires``, NULL:
                   never)
``<p>sets``        one row per index with the index's expiry
``<p>members``     the members of each index
=================  ==========================================================

Rules the statements keep:

* expiry is kept by the store's clock (like SQLite), passed into every
  statement, so the hosts' clocks decide, not the database's; a read never
  returns an expired row, and writes sweep at most :data:`SWEEP_BATCH`
  expired rows per table per interval and process;
* ``take``, ``add``, ``incr`` and ``decr`` are single statements (or, for
  ``take`` on MySQL 8, a transaction holding the row lock): the database
  decides who wins, never Python reading then writing;
* an index is locked through its ``sets`` row while a member is added, so
  concurrent adds cannot lose each other's expiry;
* every connection is in autocommit mode: a guard lookup is one round trip;
* connections belong to the process that opened them (see :class:`Pool`).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Protocol, TypeVar

from ..errors import ConfigError, StoreUnavailable
from .base import StoreConfig, Value, expiry_time, index_deadline

__all__ = ["SCHEMA_VERSION", "SWEEP_BATCH", "Dialect", "Pool", "SQLStore", "Tables", "transaction"]

#: Schema version this code reads and writes, kept in the ``<p>meta`` table.
SCHEMA_VERSION = 1

#: Expired rows are deleted at most this often per process (seconds).
_SWEEP_INTERVAL = 60.0

#: Most expired rows (values, indexes) one sweep deletes; a full batch means
#: more may be waiting, and the next write sweeps again.
SWEEP_BATCH = 1000

#: How often a transaction the database rolled back to break a deadlock is tried.
_ATTEMPTS = 3

#: A table prefix: an optional schema (or MySQL database) and dot, then a name start.
_PREFIX = re.compile(r"(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)\Z")

#: Longest table name both databases take (MySQL: 64, PostgreSQL: 63).
_MAX_NAME = 63

_T = TypeVar("_T")


class Cursor(Protocol):
    """The part of a DB-API cursor the store uses."""

    rowcount: int

    def execute(self, query: Any, params: Sequence[Any] | dict[str, Any] = ...) -> Any: ...

    def fetchall(self) -> Sequence[Sequence[Any]]: ...

    def close(self) -> None: ...


class Connection(Protocol):
    """The part of a DB-API connection the store uses (in autocommit mode)."""

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


class Tables:
    """The names of the store's tables for one prefix.

    :param prefix: ``store_table_prefix``, e.g. ``oauth_`` or ``auth.oauth_``.
    :raises ConfigError: if it is not an SQL identifier (it is put in SQL text).
    """

    def __init__(self, prefix: str) -> None:
        match = _PREFIX.match(prefix)
        if match is None or len(match.group(2)) + len("members_pkey") > _MAX_NAME:
            raise ConfigError(
                f"store_table_prefix {prefix!r} must be letters, digits and _ (at most"
                f" {_MAX_NAME - len('members_pkey')}), optionally after schema_name."
            )
        #: The schema (or database) named before the dot, or None.
        self.schema = match.group(1)
        #: The prefix without its schema: index names take it.
        self.bare = match.group(2)
        self.meta = f"{prefix}meta"
        self.kv = f"{prefix}kv"
        self.sets = f"{prefix}sets"
        self.members = f"{prefix}members"


class Dialect(Protocol):
    """What one database spells its own way; everything else is in :class:`SQLStore`.

    Statements use ``%s`` placeholders, or ``%(name)s`` where a parameter
    is used twice (both drivers take both).
    """

    #: URL scheme, first word of every error message (``postgresql``).
    name: str
    #: ``host:port/database`` for error messages; never the password.
    where: str
    #: The URL's password, blanked out of every message (None: none).
    password: str | None
    #: The driver's exception classes, all turned into ``StoreUnavailable``.
    errors: tuple[type[BaseException], ...]

    def connect(self) -> Connection:
        """A new connection in autocommit mode, with the timeouts applied."""

    def retryable(self, exc: BaseException) -> bool:
        """True for a deadlock or serialization failure the database rolled back."""

    def migrations(self, tables: Tables) -> dict[int, tuple[str, ...]]:
        """The DDL bringing the schema from version ``n - 1`` to ``n``."""

    def lock(self, cursor: Cursor, name: str) -> None:
        """Take the session-wide advisory lock ``name`` (waits; raises on timeout)."""

    def unlock(self, cursor: Cursor, name: str) -> None:
        """Release the advisory lock ``name``."""

    def put(self, tables: Tables) -> str:
        """Upsert ``%(id)s, %(body)s, %(expires)s``, replacing any row (and a counter)."""

    def add(self, tables: Tables) -> str:
        """Insert ``%(id)s, %(body)s, %(expires)s``, or replace a row that expired by
        ``%(now)s``; the rowcount is non-zero only if it stored the value."""

    def incr(self, tables: Tables) -> str:
        """Upsert the counter ``%(id)s`` (expiring at ``%(expires)s`` when new): one more,
        or 1 over a row dead by ``%(now)s`` or holding a value; :meth:`counted` reads it."""

    def counted(self, cursor: Cursor) -> int:
        """The count the :meth:`incr` statement just executed on ``cursor`` left."""

    def insert_if_absent(self, table: str, columns: str, key: str) -> str:
        """``INSERT INTO table (columns) VALUES (...)`` doing nothing when ``key`` exists."""

    def take(self, cursor: Cursor, tables: Tables, key: str) -> Sequence[Any] | None:
        """Delete the row ``key`` and return its ``(body, counter, expires)``, atomically."""


class Pool:
    """At most ``size`` connections of one process, opened when first needed.

    A connection that failed is closed rather than given back, and so are the
    idle ones (a server restart broke them all): the next call connects
    afresh, so a store works again as soon as its server does, without a
    restart and without handing out dead connections first.

    :param connect: opens one connection.
    :param size: most connections open at once (``store_pool_size``).
    :param timeout: seconds a call waits for a free connection.
    :param errors: the driver's exceptions (a failed connection is dropped).
    """

    def __init__(
        self,
        connect: Callable[[], Connection],
        size: int,
        timeout: float,
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._errors = errors
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for the ``with`` block, given back after it."""
        if not self._slots.acquire(timeout=self._timeout):
            raise StoreUnavailable(f"all {self._size} connections busy for {self._timeout:g}s")
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            try:
                yield conn
            except BaseException as exc:
                _close_quietly(conn)
                if isinstance(exc, self._errors):
                    self.close()
                raise
            with self._lock:
                self._idle.append(conn)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close the idle connections (those in use are closed when given back, if they fail)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close_quietly(conn)


def _close_quietly(conn: Connection) -> None:
    with suppress(Exception):
        conn.close()


class SQLStore:
    """A :class:`~oauth_middleware.stores.base.Store` in a PostgreSQL or MySQL/MariaDB database.

    Open it through :func:`~oauth_middleware.stores.open_store` with a
    ``postgresql://`` or ``mysql://`` URL (see those modules).

    :param config: the URL, ``timeout`` (connecting and waiting for a
        connection), ``pool_size``, ``table_prefix`` and the clock expiry is
        kept by.
    :param dialect: the database's own spelling.

    Example::

        store = open_store(StoreConfig("postgresql://oauth:pw@db/app", table_prefix="oauth_"))
        store.put("at:abc", {"c": "client"}, ttl=3600)
    """

    def __init__(self, config: StoreConfig, dialect: Dialect) -> None:
        self.dialect = dialect
        self.tables = Tables(config.table_prefix)
        self.clock = config.clock
        self._timeout = config.timeout
        self._pool_size = config.pool_size
        self._pool: Pool | None = None
        self._pool_pid = 0
        # Pools made by a parent before fork(): kept referenced and never used
        # nor closed here, since closing would end the parent's sessions.
        self._inherited: list[Pool] = []
        self._lock = threading.Lock()
        self._lock_pid = os.getpid()
        self._schema_ready = False
        self._next_sweep = self.clock.monotonic() + _SWEEP_INTERVAL
        t = self.tables
        live = "(expires IS NULL OR expires > %s)"
        self._get = f"SELECT body, counter FROM {t.kv} WHERE id = %s AND {live}"
        self._put = dialect.put(t)
        self._add = dialect.add(t)
        self._incr = dialect.incr(t)
        self._decr = f"UPDATE {t.kv} SET counter = counter - 1 WHERE id = %s AND counter > 0 AND {live}"
        self._members = (
            f"SELECT m.member FROM {t.members} m JOIN {t.sets} s ON s.id = m.id"
            f" WHERE s.id = %s AND (s.expires IS NULL OR s.expires > %s)"
        )
        self._set_insert = dialect.insert_if_absent(t.sets, "id, expires", "id")
        self._member_insert = dialect.insert_if_absent(t.members, "id, member", "id, member")

    def __repr__(self) -> str:
        return f"SQLStore({self.dialect.name}://{self.dialect.where}, {self.tables.kv[:-2]!r})"

    # -- Store protocol ----------------------------------------------------

    def ping(self) -> None:
        """Connect, create or check the schema, and read from it."""
        self._run(lambda cur: cur.execute(f"SELECT 1 FROM {self.tables.meta} WHERE name = ''"))

    def get(self, key: str) -> Value | None:
        """Return the live value under ``key``, or None (one statement, one round trip)."""
        rows = self._run(lambda cur: _rows(cur, self._get, (key, self.clock.time())))
        return _value(rows[0][0], rows[0][1]) if rows else None

    def put(self, key: str, value: Value, ttl: int | None) -> None:
        """Store ``value`` under ``key``, replacing what was there and its expiry."""
        params = {"id": key, "body": _dump(value), "expires": expiry_time(ttl, self.clock)}
        self._write(lambda cur: cur.execute(self._put, params))

    def add(self, key: str, value: Value, ttl: int | None) -> bool:
        """Store ``value`` only if ``key`` holds no live value; True if stored (one statement)."""
        params = {
            "id": key,
            "body": _dump(value),
            "expires": expiry_time(ttl, self.clock),
            "now": self.clock.time(),
        }
        return self._write(lambda cur: _count(cur, self._add, params) > 0)

    def take(self, key: str) -> Value | None:
        """Atomically remove and return the live value under ``key`` (an expired row goes too)."""
        now = self.clock.time()
        row = self._run(lambda cur: self.dialect.take(cur, self.tables, key))
        if row is None or (row[2] is not None and row[2] <= now):
            return None
        return _value(row[0], row[1])

    def delete(self, *keys: str) -> None:
        """Remove the keys, values and indexes alike (missing keys are ignored)."""
        if not keys:
            return
        marks = ", ".join(["%s"] * len(keys))
        t = self.tables

        def remove(cur: Cursor) -> None:
            for table in (t.kv, t.members, t.sets):
                cur.execute(f"DELETE FROM {table} WHERE id IN ({marks})", keys)

        self._run(lambda cur: transaction(cur, remove))

    def index_add(self, key: str, member: str, ttl: int | None) -> None:
        """Add ``member`` to the set ``key``, extending the set's life to ``ttl``.

        The set expires as a whole, at the latest deadline asked for (``None``,
        forever, wins); a set that had expired starts afresh without its old
        members. Its ``sets`` row is locked meanwhile, so concurrent adds queue.
        """
        deadline = expiry_time(ttl, self.clock)
        self._write(lambda cur: transaction(cur, lambda c: self._index_add(c, key, member, deadline)))

    def _index_add(self, cur: Cursor, key: str, member: str, deadline: float | None) -> None:
        t = self.tables
        if not _count(cur, self._set_insert, (key, deadline)):
            rows = _rows(cur, f"SELECT expires FROM {t.sets} WHERE id = %s FOR UPDATE", (key,))
            if not rows:
                # Swept between the two statements: the retry finds no row and creates one.
                raise _SetVanished
            current = rows[0][0]
            fresh = current is not None and current <= self.clock.time()
            if fresh:
                cur.execute(f"DELETE FROM {t.members} WHERE id = %s", (key,))
            expires = index_deadline(current, deadline, fresh=fresh)
            if expires != current:
                cur.execute(f"UPDATE {t.sets} SET expires = %s WHERE id = %s", (expires, key))
        cur.execute(self._member_insert, (key, member))

    def index_discard(self, key: str, member: str) -> None:
        """Remove ``member`` from the set ``key``."""
        sql = f"DELETE FROM {self.tables.members} WHERE id = %s AND member = %s"
        self._run(lambda cur: cur.execute(sql, (key, member)))

    def index_members(self, key: str) -> set[str]:
        """Return the members of the live set ``key`` (empty when missing or expired)."""
        rows = self._run(lambda cur: _rows(cur, self._members, (key, self.clock.time())))
        return {member for (member,) in rows}

    def incr(self, key: str, ttl: int) -> int:
        """Add one to the counter ``key`` and return it (one statement).

        A new (or expired) counter expires after ``ttl``; counting up keeps
        the first expiry, so a rate-limit window does not slide.
        """
        params = {"id": key, "expires": expiry_time(ttl, self.clock), "now": self.clock.time()}

        def count(cur: Cursor) -> int:
            cur.execute(self._incr, params)
            return self.dialect.counted(cur)

        return self._write(count)

    def decr(self, key: str) -> None:
        """Take one back from the live counter ``key`` (never below zero), keeping its expiry."""
        self._run(lambda cur: cur.execute(self._decr, (key, self.clock.time())))

    def close(self) -> None:
        """Close this process's idle connections; a later call opens new ones."""
        pid = os.getpid()
        with self._lock_of(pid):
            pool = self._pool if self._pool_pid == pid else None
        if pool is not None:
            pool.close()

    # -- schema ------------------------------------------------------------

    def migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema now; return the versions before and after.

        What ``oauth-middleware store migrate`` runs. The store also does this
        by itself on first use when the schema is behind, so this is for
        operators whose application user may not run DDL.
        """
        return self._run(self._migrate, check_schema=False)

    def _migrate(self, cur: Cursor) -> tuple[int, int]:
        t = self.tables
        # One migration at a time per set of tables (workers starting together).
        lock = f"oauth_middleware:{t.kv}"[:64]
        self.dialect.lock(cur, lock)
        try:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {t.meta} (name VARCHAR(64) PRIMARY KEY, value INTEGER NOT NULL)"
            )
            rows = _rows(cur, f"SELECT value FROM {t.meta} WHERE name = 'schema_version'", ())
            before = int(rows[0][0]) if rows else 0
            if before > SCHEMA_VERSION:
                # Writing to a schema we do not know could destroy a newer release's data.
                raise StoreUnavailable(
                    f"database schema version {before} is newer than this oauth_middleware"
                    f" supports ({SCHEMA_VERSION}); upgrade oauth_middleware"
                )
            steps = self.dialect.migrations(t)
            for step in range(before + 1, SCHEMA_VERSION + 1):
                for statement in steps[step]:
                    cur.execute(statement)
            if before == 0:
                insert = f"INSERT INTO {t.meta} (name, value) VALUES ('schema_version', %s)"
                cur.execute(insert, (SCHEMA_VERSION,))
            elif before < SCHEMA_VERSION:
                update = f"UPDATE {t.meta} SET value = %s WHERE name = 'schema_version'"
                cur.execute(update, (SCHEMA_VERSION,))
        finally:
            self.dialect.unlock(cur, lock)
        return before, SCHEMA_VERSION

    def _check_schema(self, cur: Cursor) -> None:
        """Migrate if the schema is behind (the first call of each store object)."""
        try:
            rows = _rows(cur, f"SELECT value FROM {self.tables.meta} WHERE name = 'schema_version'", ())
        except self.dialect.errors:
            rows = []  # no meta table yet: _migrate makes it, or says why it cannot
        if not rows or int(rows[0][0]) != SCHEMA_VERSION:
            self._migrate(cur)
        self._schema_ready = True

    # -- plumbing ------------------------------------------------------------

    def _pool_here(self) -> Pool:
        """This process's pool, made on first use and again in a forked child."""
        pid = os.getpid()
        pool = self._pool
        if pool is not None and self._pool_pid == pid:
            return pool
        with self._lock_of(pid):
            if self._pool is None or self._pool_pid != pid:
                if self._pool is not None:
                    self._inherited.append(self._pool)
                self._pool = Pool(self.dialect.connect, self._pool_size, self._timeout, self.dialect.errors)
                self._pool_pid = pid
            return self._pool

    def _lock_of(self, pid: int) -> threading.Lock:
        """The lock guarding the pool, made anew in a forked child.

        A lock another thread held at fork() stays held forever in the child.
        """
        if self._lock_pid != pid:
            self._lock, self._lock_pid = threading.Lock(), pid
        return self._lock

    def _run(self, work: Callable[[Cursor], _T], *, check_schema: bool = True) -> _T:
        """Run ``work`` on a cursor of a pooled connection; driver errors become ``StoreUnavailable``.

        A deadlock the database broke by rolling ``work`` back is tried again,
        and so is an index add whose row a sweep deleted meanwhile.
        """
        for attempt in range(_ATTEMPTS):
            try:
                with self._pool_here().connection() as conn:
                    cur = conn.cursor()
                    try:
                        if check_schema and not self._schema_ready:
                            self._check_schema(cur)
                        return work(cur)
                    finally:
                        cur.close()
            except _SetVanished:
                continue
            except self.dialect.errors as exc:
                if attempt + 1 < _ATTEMPTS and self.dialect.retryable(exc):
                    continue
                raise self._unavailable(exc) from None
            except OSError as exc:
                raise self._unavailable(exc) from None
        raise StoreUnavailable(f"{self.dialect.name}: an index row was swept under {_ATTEMPTS} adds in a row")

    def _write(self, work: Callable[[Cursor], _T]) -> _T:
        """:meth:`_run` for a write, which may also sweep expired rows."""
        result = self._run(work)
        self._maybe_sweep()
        return result

    def _maybe_sweep(self) -> None:
        """Delete up to :data:`SWEEP_BATCH` expired values and indexes, once per interval per process."""
        now_mono = self.clock.monotonic()
        if now_mono < self._next_sweep:
            return
        self._next_sweep = now_mono + _SWEEP_INTERVAL
        # The caller's write succeeded; a failed sweep just waits for next time.
        with suppress(StoreUnavailable):
            if self._run(lambda cur: transaction(cur, self._sweep)) >= SWEEP_BATCH:
                self._next_sweep = now_mono

    def _sweep(self, cur: Cursor) -> int:
        t, now = self.tables, self.clock.time()
        found = 0
        for table, dependent in ((t.kv, None), (t.sets, t.members)):
            # SKIP LOCKED: a row an index_add holds is being revived, not swept.
            select = f"SELECT id FROM {table} WHERE expires <= %s LIMIT %s FOR UPDATE SKIP LOCKED"
            ids = [row[0] for row in _rows(cur, select, (now, SWEEP_BATCH))]
            if not ids:
                continue
            found = max(found, len(ids))
            marks = ", ".join(["%s"] * len(ids))
            if dependent is not None:
                cur.execute(f"DELETE FROM {dependent} WHERE id IN ({marks})", ids)
            cur.execute(f"DELETE FROM {table} WHERE id IN ({marks})", ids)
        return found

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        """A one-line message for ``exc``: where, and the driver's reason; never the password."""
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        message = f"{self.dialect.name} at {self.dialect.where}: {reason}"
        if self.dialect.password:
            message = message.replace(self.dialect.password, "***")
        return StoreUnavailable(message[:300])


class _SetVanished(Exception):
    """An index's row was swept while a member was being added: add again."""


def transaction(cursor: Cursor, work: Callable[[Cursor], _T]) -> _T:
    """Run ``work`` in one transaction on an autocommit connection's ``cursor``."""
    cursor.execute("BEGIN")
    try:
        result = work(cursor)
    except BaseException:
        with suppress(Exception):
            cursor.execute("ROLLBACK")
        raise
    cursor.execute("COMMIT")
    return result


def _rows(cur: Cursor, sql: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
    cur.execute(sql, params)
    return cur.fetchall()


def _count(cur: Cursor, sql: str, params: Sequence[Any] | dict[str, Any]) -> int:
    """Run ``sql``; the number of rows it inserted or changed."""
    cur.execute(sql, params)
    return cur.rowcount


def _dump(value: Value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _value(body: str | None, counter: int | None) -> Value:
    """A row as the memory store shows it: the JSON body, or a counter as ``{"n": count}``."""
    if body is None:
        return {"n": int(counter or 0)}
    decoded: Value = json.loads(body)
    return decoded
