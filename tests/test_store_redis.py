"""Redis-specific behaviour of :mod:`oauth_middleware.stores.redis`.

The shared semantics (get/put/take/indexes...) are in the contract suite;
this module covers what only Redis has: URLs, key layout and expiries as
seen by Redis itself, the pool across failures and forks, Sentinel and TLS.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import servers
from servers import RedisServer, Server, find_binary, free_port
from store_outage import check_outage_then_restart

from oauth_middleware.errors import ConfigError, StoreUnavailable
from oauth_middleware.stores import StoreConfig, open_store
from oauth_middleware.stores.redis import RedisStore, RedisURL, parse_url

PASSWORD = "s3cr3t-Pa55word"

#: The session's server (a fixture bound by assignment, not imported by name,
#: so that test arguments named after it are not flagged as redefinitions).
redis_server = servers.redis_server


@pytest.fixture
def prefix() -> str:
    """A prefix of its own for each test, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def store(redis_server: RedisServer, prefix: str) -> Iterator[RedisStore]:
    """A store on the session's server, under a fresh prefix."""
    opened = RedisStore(StoreConfig(redis_server.url, timeout=1.0, prefix=prefix))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain redis-py client on the same server, to look behind the store."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        client.close()


# -- URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("redis://cache", RedisURL((("cache", 6379),)), id="host-only"),
        pytest.param("redis://cache:6380/3", RedisURL((("cache", 6380),), db=3), id="port-db"),
        pytest.param("redis://cache/", RedisURL((("cache", 6379),)), id="trailing-slash"),
        pytest.param(
            f"redis://:{PASSWORD}@cache:6379/0",
            RedisURL((("cache", 6379),), password=PASSWORD),
            id="password",
        ),
        pytest.param(
            "redis://app:p%40ss@cache/1",
            RedisURL((("cache", 6379),), db=1, username="app", password="p@ss"),
            id="acl-user-quoted",
        ),
        pytest.param("redis://[::1]:7000/2", RedisURL((("::1", 7000),), db=2), id="ipv6"),
        pytest.param(
            "rediss://cache:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required",
            RedisURL((("cache", 6380),), tls={"ssl_ca_certs": "/etc/ca.pem", "ssl_cert_reqs": "required"}),
            id="tls-options",
        ),
        pytest.param(
            "redis+sentinel://s1,s2:26380/mymaster",
            RedisURL((("s1", 26379), ("s2", 26380)), service="mymaster"),
            id="sentinel",
        ),
        pytest.param(
            f"redis+sentinel://:{PASSWORD}@s1:26379/mymaster/4",
            RedisURL((("s1", 26379),), db=4, password=PASSWORD, service="mymaster"),
            id="sentinel-db-password",
        ),
    ],
)
def test_parse_url(url: str, expected: RedisURL) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(f"redis://:{PASSWORD}@cache:port/0", "bad port", id="bad-port"),
        pytest.param(f"redis://:{PASSWORD}@cache:70000/0", "bad port", id="port-range"),
        pytest.param(f"redis://:{PASSWORD}@cache/zero", "database must be a number", id="bad-db"),
        pytest.param(f"redis://:{PASSWORD}@cache/0/1", "path must be /db", id="deep-path"),
        pytest.param(f"redis://:{PASSWORD}@/0", "needs a host", id="no-host"),
        pytest.param(f"redis://:{PASSWORD}@a,b/0", "one host", id="two-hosts"),
        pytest.param(f"redis://:{PASSWORD}@cache/0?ssl_ca_certs=x", "no query", id="query-without-tls"),
        pytest.param(f"rediss://:{PASSWORD}@cache/0?verify=no", "unknown rediss:// option", id="tls-typo"),
        pytest.param(f"rediss://:{PASSWORD}@cache/0?ssl_cert_reqs=maybe", "ssl_cert_reqs", id="cert-reqs"),
        pytest.param(f"redis+sentinel://:{PASSWORD}@s1:26379", "service name", id="sentinel-no-service"),
    ],
)
def test_bad_url_is_a_config_error_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as parsing:
        parse_url(url)
    assert PASSWORD not in str(parsing.value)
    with pytest.raises(ConfigError, match=message) as caught:
        open_store(StoreConfig(url))
    assert str(caught.value).startswith("store: cannot open redis")
    assert PASSWORD not in str(caught.value)


def test_unreachable_server_is_a_fast_config_error_without_the_password() -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        open_store(StoreConfig(url, timeout=0.5))
    assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert message.startswith("store:")
    assert PASSWORD not in message
    assert "\n" not in message


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A ``redis-server`` that wants a password other than :data:`PASSWORD`."""
    server = RedisServer(tmp_path_factory.mktemp("redis-auth"), extra=["--requirepass", "the-right-one"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_wrong_password_is_unavailable_without_the_password(password_server: RedisServer) -> None:
    url = password_server.url.replace("redis://", f"redis://:{PASSWORD}@")
    store = RedisStore(StoreConfig(url, timeout=1.0))
    with pytest.raises(StoreUnavailable) as caught:
        store.ping()
    assert PASSWORD not in str(caught.value)
    assert caught.value.__cause__ is None
    with pytest.raises(ConfigError) as at_load:
        open_store(StoreConfig(url, timeout=1.0))
    assert str(at_load.value).startswith("store: cannot open redis://:***@127.0.0.1:")
    assert PASSWORD not in str(at_load.value)
    right = password_server.url.replace("redis://", "redis://:the-right-one@")
    RedisStore(StoreConfig(right)).ping()


# -- keys, values and expiries as Redis sees them -------------------------------


def test_every_key_is_under_the_prefix(store: RedisStore, raw: redis.Redis, prefix: str) -> None:
    store.put("a", {"x": 1}, 60)
    store.index_add("family:f", "a", 60)
    store.incr("count", 60)
    keys = {k.decode() for k in raw.scan_iter(match="*") if k.decode().startswith(prefix)}
    assert keys == {f"{prefix}v:a", f"{prefix}i:family:f", f"{prefix}v:count"}
    assert raw.get(f"{prefix}v:a") == b'{"x":1}'


def test_prefixes_isolate_stores_on_one_server(redis_server: RedisServer) -> None:
    one = RedisStore(StoreConfig(redis_server.url, prefix="one:"))
    two = RedisStore(StoreConfig(redis_server.url, prefix="two:"))
    one.put("k", {"who": "one"}, 60)
    one.index_add("idx", "m", 60)
    assert two.get("k") is None
    assert two.index_members("idx") == set()
    assert two.add("k", {"who": "two"}, 60)
    assert one.get("k") == {"who": "one"}
    two.delete("k", "idx")
    assert one.get("k") == {"who": "one"}
    assert one.index_members("idx") == {"m"}
    one.delete("k", "idx")


def test_ttl_becomes_a_redis_expiry(store: RedisStore, raw: redis.Redis, prefix: str) -> None:
    store.put("short", {"x": 1}, 100)
    store.put("forever", {"x": 2}, None)
    assert 99 <= raw.ttl(f"{prefix}v:short") <= 100
    assert raw.ttl(f"{prefix}v:forever") == -1
    store.put("short", {"x": 3}, None)  # replacing drops the old expiry
    assert raw.ttl(f"{prefix}v:short") == -1


def test_values_indexes_and_counters_expire(store: RedisStore) -> None:
    # Redis keeps the ttl itself: one real wait for the three kinds of entry.
    store.put("k", {"x": 1}, 1)
    store.index_add("fam", "a", 1)
    assert store.incr("tries", 1) == 1
    assert store.incr("tries", 1) == 2
    assert store.get("k") == {"x": 1}
    assert store.index_members("fam") == {"a"}
    time.sleep(1.1)
    assert store.get("k") is None
    assert store.take("k") is None
    assert store.add("k", {"x": 2}, 60)
    assert store.index_members("fam") == set()
    assert store.incr("tries", 1) == 1


def test_zero_ttl_stores_nothing(store: RedisStore) -> None:
    store.put("k", {"x": 1}, 60)
    store.put("k", {"x": 2}, 0)
    assert store.get("k") is None
    assert store.add("k", {"x": 3}, 0)
    assert store.get("k") is None


# -- indexes and counters ----------------------------------------------------------


def test_index_without_ttl_never_expires(store: RedisStore, raw: redis.Redis, prefix: str) -> None:
    store.index_add("clients", "c1", None)
    store.index_add("clients", "c2", 3)
    assert raw.ttl(f"{prefix}i:clients") == -1


def test_counter_gets_its_ttl_once(store: RedisStore, raw: redis.Redis, prefix: str) -> None:
    assert store.incr("tries", 100) == 1
    raw.expire(f"{prefix}v:tries", 50)  # a later incr must not stretch the window
    assert store.incr("tries", 100) == 2
    assert 0 < raw.ttl(f"{prefix}v:tries") <= 50
    assert store.get("tries") == {"n": 2}


def test_delete_removes_values_and_indexes(store: RedisStore) -> None:
    store.put("both", {"x": 1}, 60)
    store.index_add("both", "m", 60)
    store.put("other", {"x": 2}, 60)
    store.delete("both", "missing")
    store.delete()
    assert store.get("both") is None
    assert store.index_members("both") == set()
    assert store.get("other") == {"x": 2}


def test_scripts_survive_a_script_cache_flush(store: RedisStore, raw: redis.Redis) -> None:
    store.index_add("fam", "a", 60)
    assert store.incr("n", 60) == 1
    raw.script_flush()  # what a restart or failover does to EVALSHA
    store.index_add("fam", "b", 60)
    assert store.incr("n", 60) == 2
    assert store.index_members("fam") == {"a", "b"}


# -- failures, recovery and forks ---------------------------------------------------


def test_server_down_is_unavailable_and_the_store_recovers(redis_server: RedisServer, prefix: str) -> None:
    store = RedisStore(StoreConfig(redis_server.url, timeout=0.5, prefix=prefix))
    check_outage_then_restart(store, redis_server, r"^redis at 127\.0\.0\.1:")
    store.put("k", {"x": 3}, 60)
    assert store.get("k") == {"x": 3}
    store.index_add("i", "m", 60)  # scripts are loaded again on the new server
    assert store.incr("n", 60) == 1


def test_forked_child_gets_its_own_connections(store: RedisStore) -> None:
    store.put("k", {"from": "parent"}, 60)
    parent_connection = store._connection()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        ok = store._connection() is not parent_connection and store.get("k") == {"from": "parent"}
        store.put("k", {"from": "child"}, 60)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._connection() is parent_connection
    assert store.get("k") == {"from": "child"}


# -- Sentinel and TLS -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sentinel(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A Sentinel watching the session's server as master ``mymaster``."""
    directory = tmp_path_factory.mktemp("sentinel")
    port = free_port()
    conf = directory / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
        f"sentinel monitor mymaster 127.0.0.1 {redis_server.port} 1\n"
    )
    binary = find_binary("redis-server", "redis-server")
    server = Server(
        "redis-sentinel", [binary, str(conf), "--sentinel"], port, b"PING\r\n", b"+PONG", directory / "log"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_sentinel_url_finds_the_master(sentinel: Server, redis_server: RedisServer, prefix: str) -> None:
    url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{sentinel.port}/mymaster/0"
    store = open_store(StoreConfig(url, timeout=1.0, prefix=prefix))
    store.put("k", {"via": "sentinel"}, 60)
    direct = RedisStore(StoreConfig(redis_server.url, prefix=prefix))
    assert direct.get("k") == {"via": "sentinel"}
    store.close()


def test_sentinel_with_unknown_service_is_a_config_error(sentinel: Server) -> None:
    with pytest.raises(ConfigError, match=r"^store: .*MasterNotFoundError"):
        open_store(StoreConfig(f"redis+sentinel://127.0.0.1:{sentinel.port}/nosuchmaster", timeout=1.0))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A TLS-only ``redis-server`` with a self-signed certificate for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("redis-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = find_binary("openssl", "openssl")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    argv = [find_binary("redis-server", "redis-server"), "--port", "0", "--tls-port", str(port)]
    argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(directory)]
    argv += ["--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-auth-clients", "no"]
    # A TLS port does not answer a plain-text probe; any accepted connection will do.
    server = Server("redis-server (TLS)", argv, port, b"", b"", directory / "log")
    server.start()
    try:
        yield server, cert
    finally:
        server.stop()


def test_rediss_url_talks_tls(tls_server: tuple[Server, Path], prefix: str) -> None:
    server, cert = tls_server
    url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={cert}"
    store = open_store(StoreConfig(url, timeout=2.0, prefix=prefix))
    store.put("k", {"tls": True}, 60)
    assert store.get("k") == {"tls": True}
    store.close()


def test_rediss_rejects_an_untrusted_certificate(tls_server: tuple[Server, Path]) -> None:
    server, _ = tls_server
    with pytest.raises(ConfigError, match=r"^store: .*(certificate|SSL)"):
        open_store(StoreConfig(f"rediss://127.0.0.1:{server.port}/0", timeout=2.0))


def test_rediss_without_verification_when_asked(tls_server: tuple[Server, Path], prefix: str) -> None:
    server, _ = tls_server
    store = open_store(StoreConfig(f"rediss://127.0.0.1:{server.port}/0?ssl_cert_reqs=none", prefix=prefix))
    store.put("k", {"tls": "unverified"}, 60)
    assert store.get("k") == {"tls": "unverified"}
    store.close()
