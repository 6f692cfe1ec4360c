"""What only the PostgreSQL and MySQL/MariaDB stores have to get right.

The store contract itself runs on them in ``test_store_contract.py`` (and the
races, the at-rest dump and failing closed in their modules); here: URLs and
settings, the schema and ``oauth-middleware store migrate``, passwords kept
out of messages, TLS, forked workers, the pool limit, sweeping, table
prefixes with a schema, MySQL 8's ``take`` without ``RETURNING``, and a
database as the durable ``client_store`` of a Redis or memcached token store.
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest
from conftest import SERVICE_ID, issue_token
from fake_clock import FakeClock
from servers import DB_PASSWORD, Server, shared_mariadb, shared_memcached, shared_postgres, shared_redis
from store_fixtures import fresh_table_prefix, sqlite_url
from test_store_contract import THREADS, run_together

from oauth_middleware.cli import main
from oauth_middleware.errors import ConfigError, StoreUnavailable
from oauth_middleware.stores import STORES, StoreConfig, open_store
from oauth_middleware.stores.sql import SCHEMA_VERSION, SQLStore

#: Backend name -> the session's server of that kind.
SERVERS: dict[str, Callable[[pytest.FixtureRequest], Server]] = {
    "postgresql": shared_postgres,
    "mysql": shared_mariadb,
}


@pytest.fixture(params=list(SERVERS))
def url(request: pytest.FixtureRequest) -> str:
    """The URL of each database server (with its password)."""
    server: Any = SERVERS[request.param](request)
    return str(server.url)


def opened(url: str, **options: Any) -> SQLStore:
    options.setdefault("table_prefix", fresh_table_prefix())
    store = open_store(StoreConfig(url, **options))
    assert isinstance(store, SQLStore)
    return store


@pytest.fixture
def sql_store(url: str) -> Iterator[SQLStore]:
    store = opened(url)
    yield store
    store.close()


def raw(store: SQLStore, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run ``sql`` on a connection of its own; its rows."""
    conn = store.dialect.connect()
    try:
        cursor = conn.cursor()
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        conn.close()


# -- URLs, settings and passwords ------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_url", "message"),
    [
        pytest.param("mysql://u:secret-pw@h:99999/db", "bad port", id="mysql-port"),
        pytest.param("mysql://u:secret-pw@h/", "must name the database", id="mysql-no-database"),
        pytest.param(
            "mysql://u:secret-pw@h/db?sslmode=require", "unknown mysql:// parameter", id="mysql-param"
        ),
        pytest.param("mysql://u:secret-pw@h/db?read_timeout=0", "read_timeout", id="mysql-timeout"),
        pytest.param("mysql://u:secret-pw@h/db?ssl_verify_cert=yes", "true or false", id="mysql-flag"),
        pytest.param("postgresql://u:secret-pw@h/db?no_such=1", "postgresql:// URL", id="postgresql-param"),
    ],
)
def test_bad_url_is_one_line_without_the_password(bad_url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        open_store(StoreConfig(bad_url))
    text = str(caught.value)
    assert text.startswith("store: ") and "\n" not in text
    assert "secret-pw" not in text


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("", id="empty"),
        pytest.param("oauth-", id="dash"),
        pytest.param("a.b.c_", id="two-dots"),
        pytest.param("x; DROP TABLE users; --", id="injection"),
        pytest.param("p" * 60, id="too-long"),
    ],
)
def test_bad_table_prefix_is_refused_at_load(url: str, prefix: str) -> None:
    with pytest.raises(ConfigError, match="store: store_table_prefix"):
        open_store(StoreConfig(url, table_prefix=prefix))


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(lambda url: url.replace(DB_PASSWORD, "wrong-pw-Xy9"), id="wrong-password"),
        pytest.param(lambda url: url.rsplit("/", 1)[0] + "/no_such_db", id="no-database"),
    ],
)
def test_unusable_database_fails_at_load_without_the_password(url: str, wrong: Callable[[str], str]) -> None:
    bad = wrong(url)
    with pytest.raises(ConfigError, match=r"^store: cannot open ") as caught:
        open_store(StoreConfig(bad, table_prefix=fresh_table_prefix()))
    text = str(caught.value)
    assert "\n" not in text
    assert DB_PASSWORD not in text and "wrong-pw-Xy9" not in text
    assert ":***@" in text


def test_tls_asked_for_in_the_url_is_never_dropped(url: str) -> None:
    """The drivers' own TLS parameters reach them: against a server without TLS the store refuses to start."""
    tls = "sslmode=require" if url.startswith("postgresql") else "ssl_verify_cert=true"
    with pytest.raises(ConfigError, match=r"(?i)ssl") as caught:
        open_store(StoreConfig(f"{url}?{tls}", table_prefix=fresh_table_prefix()))
    assert DB_PASSWORD not in str(caught.value)


def test_stopped_server_message_holds_no_password(url: str, request: pytest.FixtureRequest) -> None:
    store = opened(url, timeout=0.5)
    server = SERVERS[urlscheme(url)](request)
    server.stop()
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.get("k")
    finally:
        server.start()
    assert DB_PASSWORD not in str(caught.value)
    assert str(caught.value).startswith(f"{urlscheme(url)} at 127.0.0.1:")
    assert store.get("k") is None  # and it works again without a new store


def urlscheme(url: str) -> str:
    return url.split(":", 1)[0]


# -- schema -------------------------------------------------------------------------------


def test_schema_is_versioned(sql_store: SQLStore) -> None:
    meta = sql_store.tables.meta
    assert raw(sql_store, f"SELECT value FROM {meta} WHERE name = 'schema_version'") == [(SCHEMA_VERSION,)]


def test_newer_schema_is_refused(url: str) -> None:
    store = opened(url)
    prefix = store.tables.meta[: -len("meta")]
    raw(store, f"UPDATE {store.tables.meta} SET value = 99 WHERE name = 'schema_version'")
    with pytest.raises(ConfigError, match="schema version 99 is newer"):
        open_store(StoreConfig(url, table_prefix=prefix))


def test_workers_starting_together_create_the_schema_once(url: str) -> None:
    prefix = fresh_table_prefix()
    # Made without open_store's ping, so that each one's first call creates the schema.
    factory = STORES.get(urlscheme(url))
    assert factory is not None
    stores = [factory(StoreConfig(url, table_prefix=prefix)) for _ in range(8)]
    run_together(8, lambda i: stores[i].put(f"k{i}", {"i": i}, 60))
    assert [stores[0].get(f"k{i}") for i in range(8)] == [{"i": i} for i in range(8)]


def test_table_prefix_may_name_a_schema(url: str) -> None:
    setup = opened(url)
    if url.startswith("postgresql"):
        schema = f"s{uuid.uuid4().hex[:8]}"
        raw(setup, f"CREATE SCHEMA {schema}")
    else:
        schema = "oauth"  # a MySQL schema is a database: the one this user may use
    store = opened(url, table_prefix=f"{schema}.oauth_")
    store.put("k", {"v": 1}, None)
    assert raw(store, f"SELECT body FROM {schema}.oauth_kv WHERE id = 'k'") == [('{"v":1}',)]


def test_keys_differing_in_case_are_different_keys(sql_store: SQLStore) -> None:
    # MySQL's default collation folds case: at:ABC would find at:abc's token.
    sql_store.put("at:abc", {"v": "lower"}, 60)
    assert sql_store.get("at:ABC") is None
    assert sql_store.add("at:ABC", {"v": "upper"}, 60) is True
    assert sql_store.take("at:abc") == {"v": "lower"}


def test_overlong_key_is_never_cut(sql_store: SQLStore) -> None:
    # Cut to MySQL's 255 characters, two keys would become one; PostgreSQL keeps any length.
    if sql_store.dialect.name == "mysql":
        with pytest.raises(StoreUnavailable, match="Data too long"):
            sql_store.put("k" * 256, {"v": 1}, 60)
    else:
        sql_store.put("k" * 256, {"v": 1}, 60)
        assert sql_store.get("k" * 256) == {"v": 1}
    assert sql_store.get("k" * 255) is None


# -- oauth-middleware store migrate ------------------------------------------------------------


def ini(tmp_path: Path, **settings: str) -> str:
    path = tmp_path / "app.ini"
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    path.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        f"[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n{lines}"
    )
    return str(path)


def test_store_migrate_creates_then_reports(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ini(
        tmp_path,
        store=url,
        store_table_prefix=fresh_table_prefix(),
        client_store=sqlite_url(tmp_path, "c.db"),
    )
    assert main(["store", "migrate", config]) == 0
    out = capsys.readouterr().out
    assert f"store: {urlscheme(url)}://" in out and "schema created (version 1)" in out
    assert "client_store: sqlite:///" in out
    assert DB_PASSWORD not in out and ":***@" in out
    assert main(["store", "migrate", config]) == 0
    assert capsys.readouterr().out.count("schema up to date (version 1)") == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"store": "postgresql://u:secret-pw@127.0.0.1:1/db"}, "store: cannot open", id="down"),
        pytest.param({"store": "mysql://u:secret-pw@h/db?bad=1"}, "unknown mysql:// parameter", id="bad-url"),
        pytest.param({"store": "nosuch://x"}, "unknown store scheme", id="scheme"),
        pytest.param({"store_pool_size": "0"}, "store_pool_size", id="pool-size"),
        pytest.param({"store_table_prefix": "a-b"}, "store_table_prefix", id="prefix"),
    ],
)
def test_store_migrate_bad_config_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: dict[str, str], message: str
) -> None:
    settings = {"store": "mysql://u:p@127.0.0.1:1/db", **settings}
    assert main(["store", "migrate", ini(tmp_path, **settings)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "secret-pw" not in err


def test_store_migrate_sqlite_and_redis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    config = ini(tmp_path, store=sqlite_url(tmp_path), client_store=shared_redis(request).url)
    assert main(["store", "migrate", config]) == 0
    out = capsys.readouterr().out
    assert "store: sqlite:///" in out and "schema created (version 1)" in out
    assert "client_store: redis://" in out and "no schema to migrate" in out


# -- processes, pool, sweep -----------------------------------------------------------------


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_forked_child_opens_its_own_connections(sql_store: SQLStore) -> None:
    sql_store.put("k", {"v": 1}, 60)  # the parent's pool now holds a connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child() -> None:
        results.put((sql_store.get("k"), sql_store.take("k")))
        sql_store.close()

    process = context.Process(target=child)
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert results.get(timeout=5) == ({"v": 1}, {"v": 1})
    # The child neither used nor closed the parent's connection.
    assert sql_store.get("k") is None
    sql_store.put("k", {"v": 2}, 60)
    assert sql_store.get("k") == {"v": 2}


def test_pool_limit_answers_unavailable_within_the_timeout(url: str) -> None:
    store = opened(url, pool_size=1, timeout=0.3)
    pool = store._pool_here()
    with pool.connection(), pytest.raises(StoreUnavailable, match="all 1 connections busy"):
        store.get("k")
    assert store.get("k") is None


def test_threads_share_the_pool(sql_store: SQLStore) -> None:
    results = run_together(THREADS, lambda i: sql_store.incr("n", 60))
    assert sorted(results) == list(range(1, THREADS + 1))


def test_sweep_removes_expired_rows(url: str) -> None:
    clock = FakeClock()
    store = opened(url, clock=clock)
    for i in range(3):
        store.put(f"gone{i}", {"i": i}, 1)
        store.index_add(f"set{i}", "m", 1)
    store.put("kept", {"v": 1}, None)
    clock.advance(61)  # past the ttl and the sweep interval
    store.put("trigger", {}, None)
    t = store.tables
    assert raw(store, f"SELECT id FROM {t.kv} ORDER BY id") == [("kept",), ("trigger",)]
    assert raw(store, f"SELECT id FROM {t.sets}") == []
    assert raw(store, f"SELECT id FROM {t.members}") == []


def test_mysql_8_take_without_returning(request: pytest.FixtureRequest) -> None:
    store = opened(shared_mariadb(request).url)
    store.dialect.returning = False  # type: ignore[attr-defined]  # as on MySQL 8
    store.put("code", {"c": 1}, 60)
    results = run_together(THREADS, lambda i: store.take("code"))
    assert [r for r in results if r is not None] == [{"c": 1}]
    store.put("old", {"c": 1}, 60)
    assert store.take("old") == {"c": 1} and store.take("old") is None


def test_mysql_dialect_knows_mariadb_from_mysql() -> None:
    from oauth_middleware.stores.mysql import _has_returning

    assert _has_returning("10.11.6-MariaDB-0+deb12u1")
    assert not _has_returning("10.4.30-MariaDB")
    assert not _has_returning("8.0.36")
    assert not _has_returning("8.4.0-0ubuntu0.24.04.1")


# -- a durable client_store beside Redis or memcached ----------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "clients"),
    [
        pytest.param(shared_memcached, shared_postgres, id="memcache-postgresql"),
        pytest.param(shared_redis, shared_mariadb, id="redis-mysql"),
    ],
)
def test_database_as_client_store_for_a_token_cache(
    request: pytest.FixtureRequest,
    make_middleware: Callable[..., Any],
    tokens: Callable[[pytest.FixtureRequest], Any],
    clients: Callable[[pytest.FixtureRequest], Any],
) -> None:
    prefix = fresh_table_prefix()
    middleware = make_middleware(
        store=tokens(request).url,
        store_prefix=f"t{uuid.uuid4().hex[:12]}:",
        client_store=clients(request).url,
        store_table_prefix=prefix,
    )
    app = webtest.TestApp(middleware)
    token = issue_token(app)
    assert app.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json["client_id"] == SERVICE_ID
    client_store = middleware.server.repository.client_store
    assert isinstance(client_store, SQLStore)
    rows = raw(client_store, f"SELECT id FROM {client_store.tables.kv}")
    assert rows == [(f"client:{SERVICE_ID}",)]  # the client, and nothing of the token
