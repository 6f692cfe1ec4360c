"""PostgreSQL store (``postgresql://``) with psycopg 3 (the ``postgresql`` extra).

URL: ``postgresql://user:password@host:port/database?param=value&...``, read
by libpq itself, so every libpq connection parameter works under its own
name (``postgres://`` too). The ones that matter here:

* TLS: ``sslmode`` (``verify-full`` checks the server's certificate and
  name), ``sslrootcert``, ``sslcert``, ``sslkey``;
* timeouts: ``connect_timeout`` (whole seconds, at least 2: libpq's rule;
  default ``store_timeout`` rounded up) and ``options=-c statement_timeout=MS``
  (default ``store_timeout``), which bounds a statement waiting for a lock;
  and, on our side, every wait for an answer ends after 1.5 times ``store_timeout``
  (psycopg waits for ever by default), so a server that accepts and never
  answers (frozen, or a partition) fails the call closed instead of holding
  the request;
* ``application_name`` (default ``oauth_middleware``).

Everything else (tables, statements, pool, fork safety) is in
:mod:`oauth_middleware.stores.sql`; this module is what PostgreSQL spells its
own way. PostgreSQL 12 or later.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..errors import ConfigError
from .base import StoreConfig
from .sql import Connection, Cursor, SQLStore, Tables

__all__ = ["PostgreSQL", "open_postgresql"]

#: SQLSTATEs of a transaction PostgreSQL rolled back to let another go on.
_RETRYABLE = frozenset({"40001", "40P01"})


class _BoundedConnection(psycopg.Connection[Any]):
    """A connection whose every wait for the server ends after :attr:`wait_timeout` seconds.

    psycopg's own waits have no deadline (a frozen server holds the call until
    TCP gives up); the server's ``statement_timeout`` cannot help when the
    server itself does not run. A wait that times out raises psycopg's
    ``OperationalError``, so the pool drops the connection and the call is a 503.
    """

    #: Seconds; set for each connection from ``store_timeout``.
    wait_timeout: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """psycopg's wait, with :attr:`wait_timeout` when the caller gives none."""
        return super().wait(gen, interval, self.wait_timeout if timeout is None else timeout)


class PostgreSQL:
    """The PostgreSQL spelling of the store's statements.

    :param config: the ``postgresql://`` URL and ``timeout``.
    :raises ConfigError: on a URL libpq cannot parse (without the password).
    """

    name = "postgresql"
    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(self, config: StoreConfig) -> None:
        try:
            params: dict[str, Any] = conninfo_to_dict(config.url)
        except psycopg.Error as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            password = urlsplit(config.url).password
            if password:
                reason = reason.replace(password, "***")
            raise ConfigError(f"postgresql:// URL: {reason}") from None
        self.password: str | None = params.get("password") or None
        params.setdefault("connect_timeout", str(max(2, math.ceil(config.timeout))))
        params.setdefault("options", f"-c statement_timeout={max(1, round(config.timeout * 1000))}")
        params.setdefault("application_name", "oauth_middleware")
        self._params = params
        # Longer than statement_timeout: a server that runs answers with its own error first.
        self._wait_timeout = 1.5 * config.timeout
        self.where = (
            f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
        )

    def connect(self) -> Connection:
        """A new autocommit connection whose waits are bounded."""
        connection = _BoundedConnection.connect(autocommit=True, **self._params)
        connection.wait_timeout = self._wait_timeout
        return connection

    def retryable(self, exc: BaseException) -> bool:
        """A deadlock or serialization failure."""
        return getattr(exc, "sqlstate", None) in _RETRYABLE

    def migrations(self, tables: Tables) -> dict[int, tuple[str, ...]]:
        """Released entries are never edited: a change is a new version."""
        t, bare = tables, tables.bare
        return {
            1: (
                f"CREATE TABLE {t.kv} (id TEXT PRIMARY KEY, body TEXT, counter BIGINT,"
                " expires DOUBLE PRECISION)",
                # Partial indexes: only expiring rows are ever swept.
                f"CREATE INDEX {bare}kv_expires ON {t.kv} (expires) WHERE expires IS NOT NULL",
                f"CREATE TABLE {t.sets} (id TEXT PRIMARY KEY, expires DOUBLE PRECISION)",
                f"CREATE INDEX {bare}sets_expires ON {t.sets} (expires) WHERE expires IS NOT NULL",
                f"CREATE TABLE {t.members} (id TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (id, member))",
            )
        }

    def lock(self, cursor: Cursor, name: str) -> None:
        """``pg_advisory_lock`` on a number made from ``name``."""
        cursor.execute("SELECT pg_advisory_lock(%s)", (_lock_id(name),))

    def unlock(self, cursor: Cursor, name: str) -> None:
        """``pg_advisory_unlock``."""
        cursor.execute("SELECT pg_advisory_unlock(%s)", (_lock_id(name),))

    def put(self, tables: Tables) -> str:
        """``ON CONFLICT DO UPDATE``."""
        return (
            f"INSERT INTO {tables.kv} (id, body, counter, expires) VALUES (%(id)s, %(body)s, NULL, %(expires)s)"
            " ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, counter = NULL, expires = EXCLUDED.expires"
        )

    def add(self, tables: Tables) -> str:
        """The update only fires over a dead row, so a live one reports no change."""
        return (
            f"INSERT INTO {tables.kv} AS k (id, body, counter, expires)"
            " VALUES (%(id)s, %(body)s, NULL, %(expires)s) ON CONFLICT (id) DO UPDATE"
            " SET body = EXCLUDED.body, counter = NULL, expires = EXCLUDED.expires"
            " WHERE k.expires IS NOT NULL AND k.expires <= %(now)s"
        )

    def incr(self, tables: Tables) -> str:
        """``RETURNING`` gives the count in the same round trip."""
        dead = "(k.body IS NOT NULL OR (k.expires IS NOT NULL AND k.expires <= %(now)s))"
        return (
            f"INSERT INTO {tables.kv} AS k (id, body, counter, expires) VALUES (%(id)s, NULL, 1, %(expires)s)"
            f" ON CONFLICT (id) DO UPDATE SET counter = CASE WHEN {dead} THEN 1 ELSE k.counter + 1 END,"
            f" expires = CASE WHEN {dead} THEN EXCLUDED.expires ELSE k.expires END, body = NULL"
            " RETURNING counter"
        )

    def counted(self, cursor: Cursor) -> int:
        """The ``RETURNING`` row."""
        return int(cursor.fetchall()[0][0])

    def insert_if_absent(self, table: str, columns: str, key: str) -> str:
        """``ON CONFLICT DO NOTHING``."""
        marks = ", ".join(["%s"] * len(columns.split(",")))
        return f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ({key}) DO NOTHING"

    def take(self, cursor: Cursor, tables: Tables, key: str) -> Sequence[Any] | None:
        """``DELETE ... RETURNING``: one statement, one winner."""
        cursor.execute(f"DELETE FROM {tables.kv} WHERE id = %s RETURNING body, counter, expires", (key,))
        rows = cursor.fetchall()
        return rows[0] if rows else None


def _lock_id(name: str) -> int:
    return zlib.crc32(name.encode())


def open_postgresql(config: StoreConfig) -> SQLStore:
    """The store for a ``postgresql://`` URL (registered in :data:`~oauth_middleware.stores.STORES`)."""
    return SQLStore(config, PostgreSQL(config))
