"""MySQL 8 and MariaDB 10.6+ store (``mysql://``) with PyMySQL (the ``mysql`` extra).

URL: ``mysql://user:password@host:port/database?param=value&...``; the
parameters are PyMySQL's own connection arguments:

* TLS: ``ssl_ca``, ``ssl_cert``, ``ssl_key`` (paths), ``ssl_verify_cert``
  and ``ssl_verify_identity`` (``true``/``false``);
* timeouts in seconds: ``connect_timeout``, ``read_timeout`` and
  ``write_timeout`` (each defaults to ``store_timeout``);
* ``unix_socket``: a socket path instead of host and port.

Keys and values are ``utf8mb4`` with a binary collation, so ``at:ABC`` and
``at:abc`` are two keys (the server's default collation would fold case); a
key or index member is at most 255 characters. Sessions run in strict mode,
so a value that does not fit is an error, never silently cut.

Everything else (tables, statements, pool, fork safety) is in
:mod:`oauth_middleware.stores.sql`; this module is what MySQL spells its own way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import pymysql
import pymysql.cursors

from ..errors import ConfigError, StoreUnavailable
from .base import StoreConfig
from .sql import Connection, Cursor, SQLStore, Tables, transaction

__all__ = ["MySQL", "open_mysql"]

#: ER_LOCK_DEADLOCK: InnoDB rolled the statement's transaction back to break a deadlock.
_DEADLOCK = 1213

#: MariaDB has ``DELETE ... RETURNING`` from 10.5; MySQL 8 has not.
_MARIADB_RETURNING = (10, 5)


def _flag(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError("true or false")
    return value.lower() == "true"


def _seconds(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("a positive number of seconds")
    return number


#: URL query parameters: PyMySQL's argument names and how each is read.
_OPTIONS: dict[str, Callable[[str], Any]] = {
    "ssl_ca": str,
    "ssl_cert": str,
    "ssl_key": str,
    "ssl_verify_cert": _flag,
    "ssl_verify_identity": _flag,
    "connect_timeout": _seconds,
    "read_timeout": _seconds,
    "write_timeout": _seconds,
    "unix_socket": str,
}

_UTF8 = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"


class MySQL:
    """The MySQL/MariaDB spelling of the store's statements.

    :param config: the ``mysql://`` URL and ``timeout``.
    :raises ConfigError: on a malformed URL or unknown parameter (without the password).
    """

    name = "mysql"
    errors: tuple[type[BaseException], ...] = (pymysql.MySQLError,)

    def __init__(self, config: StoreConfig) -> None:
        parts = urlsplit(config.url)
        try:
            port = parts.port or 3306
        except ValueError:
            raise ConfigError("mysql:// URL has a bad port") from None
        database = unquote(parts.path.lstrip("/"))
        if not database or "/" in database:
            raise ConfigError("mysql:// URL must name the database: mysql://user:password@host:port/database")
        self.password = unquote(parts.password) if parts.password else None
        options: dict[str, Any] = dict.fromkeys(
            ("connect_timeout", "read_timeout", "write_timeout"), config.timeout
        )
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key not in _OPTIONS:
                raise ConfigError(f"unknown mysql:// parameter {key!r} (use {', '.join(_OPTIONS)})")
            try:
                options[key] = _OPTIONS[key](value)
            except ValueError as exc:
                raise ConfigError(f"mysql:// parameter {key}: {exc}") from None
        self._args: dict[str, Any] = {
            "host": parts.hostname or "localhost",
            "port": port,
            "user": unquote(parts.username or ""),
            "password": self.password or "",
            "database": database,
            "charset": "utf8mb4",
            "autocommit": True,
            # Strict: a key or value too long is an error, never cut (two cut keys could collide).
            "init_command": "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
            **options,
        }
        self.where = f"{self._args['host']}:{port}/{database}"
        #: ``DELETE ... RETURNING`` is there (MariaDB); found on the first connection.
        self.returning: bool | None = None

    def connect(self) -> Connection:
        """A new autocommit connection; the first tells MariaDB from MySQL."""
        conn: Connection = pymysql.connect(**self._args)
        if self.returning is None:
            cursor = conn.cursor()
            cursor.execute("SELECT VERSION()")
            self.returning = _has_returning(str(cursor.fetchall()[0][0]))
            cursor.close()
        return conn

    def retryable(self, exc: BaseException) -> bool:
        """A deadlock InnoDB broke."""
        return bool(exc.args) and exc.args[0] == _DEADLOCK

    def migrations(self, tables: Tables) -> dict[int, tuple[str, ...]]:
        """Released entries are never edited: a change is a new version."""
        t, bare = tables, tables.bare
        key = f"VARCHAR(255) {_UTF8} NOT NULL"
        return {
            1: (
                f"CREATE TABLE {t.kv} (id {key} PRIMARY KEY, body LONGTEXT {_UTF8}, counter BIGINT,"
                f" expires DOUBLE, INDEX {bare}kv_expires (expires)) ENGINE=InnoDB",
                f"CREATE TABLE {t.sets} (id {key} PRIMARY KEY, expires DOUBLE,"
                f" INDEX {bare}sets_expires (expires)) ENGINE=InnoDB",
                f"CREATE TABLE {t.members} (id {key}, member {key}, PRIMARY KEY (id, member)) ENGINE=InnoDB",
            )
        }

    def lock(self, cursor: Cursor, name: str) -> None:
        """``GET_LOCK``, waiting at most the read timeout."""
        cursor.execute("SELECT GET_LOCK(%s, %s)", (name, max(1, round(self._args["read_timeout"]))))
        if cursor.fetchall()[0][0] != 1:
            raise StoreUnavailable(f"mysql at {self.where}: another process holds the schema lock")

    def unlock(self, cursor: Cursor, name: str) -> None:
        """``RELEASE_LOCK``."""
        cursor.execute("SELECT RELEASE_LOCK(%s)", (name,))
        cursor.fetchall()

    def put(self, tables: Tables) -> str:
        """``ON DUPLICATE KEY UPDATE``."""
        return (
            f"INSERT INTO {tables.kv} (id, body, counter, expires) VALUES (%(id)s, %(body)s, NULL, %(expires)s)"
            " ON DUPLICATE KEY UPDATE body = VALUES(body), counter = NULL, expires = VALUES(expires)"
        )

    def add(self, tables: Tables) -> str:
        """Each column keeps its value over a live row, so the server reports 0 rows changed.

        MySQL assigns left to right, each seeing the ones before: ``expires``,
        which the conditions read, is assigned last.
        """
        dead = "expires IS NOT NULL AND expires <= %(now)s"
        return (
            f"INSERT INTO {tables.kv} (id, body, counter, expires) VALUES (%(id)s, %(body)s, NULL, %(expires)s)"
            f" ON DUPLICATE KEY UPDATE body = CASE WHEN {dead} THEN VALUES(body) ELSE body END,"
            f" counter = CASE WHEN {dead} THEN NULL ELSE counter END,"
            f" expires = CASE WHEN {dead} THEN VALUES(expires) ELSE expires END"
        )

    def incr(self, tables: Tables) -> str:
        """``LAST_INSERT_ID(expr)`` hands the count back in the reply, in the same round trip.

        ``body``, which the conditions read, is assigned last (see :meth:`add`).
        """
        dead = "(body IS NOT NULL OR (expires IS NOT NULL AND expires <= %(now)s))"
        return (
            f"INSERT INTO {tables.kv} (id, body, counter, expires)"
            " VALUES (%(id)s, NULL, LAST_INSERT_ID(1), %(expires)s)"
            f" ON DUPLICATE KEY UPDATE counter = LAST_INSERT_ID(CASE WHEN {dead} THEN 1 ELSE counter + 1 END),"
            f" expires = CASE WHEN {dead} THEN VALUES(expires) ELSE expires END, body = NULL"
        )

    def counted(self, cursor: Cursor) -> int:
        """The insert id of the reply, which ``LAST_INSERT_ID(expr)`` set."""
        return int(cast(pymysql.cursors.Cursor, cursor).lastrowid)

    def insert_if_absent(self, table: str, columns: str, key: str) -> str:
        """``ON DUPLICATE KEY UPDATE`` a no-op: 0 rows changed, and the row is locked."""
        marks = ", ".join(["%s"] * len(columns.split(",")))
        first = key.split(",")[0]
        return f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON DUPLICATE KEY UPDATE {first} = {first}"

    def take(self, cursor: Cursor, tables: Tables, key: str) -> Sequence[Any] | None:
        """``DELETE ... RETURNING`` on MariaDB; on MySQL 8 a transaction holding the row lock."""
        if self.returning:
            cursor.execute(f"DELETE FROM {tables.kv} WHERE id = %s RETURNING body, counter, expires", (key,))
            rows = cursor.fetchall()
        else:
            rows = transaction(cursor, lambda cur: self._select_then_delete(cur, tables, key))
        return rows[0] if rows else None

    @staticmethod
    def _select_then_delete(cursor: Cursor, tables: Tables, key: str) -> Sequence[Sequence[Any]]:
        cursor.execute(f"SELECT body, counter, expires FROM {tables.kv} WHERE id = %s FOR UPDATE", (key,))
        rows = cursor.fetchall()
        if rows:
            cursor.execute(f"DELETE FROM {tables.kv} WHERE id = %s", (key,))
        return rows


def _has_returning(version: str) -> bool:
    """True for a MariaDB server of 10.5 or later (``10.11.6-MariaDB-0+deb12u1``)."""
    if "mariadb" not in version.lower():
        return False
    numbers = version.split("-")[0].split(".")
    try:
        return (int(numbers[0]), int(numbers[1])) >= _MARIADB_RETURNING
    except (IndexError, ValueError):
        return False


def open_mysql(config: StoreConfig) -> SQLStore:
    """The store for a ``mysql://`` URL (registered in :data:`~oauth_middleware.stores.STORES`)."""
    return SQLStore(config, MySQL(config))
