"""memcached-specific behaviour of :mod:`oauth_middleware.stores.memcache`.

The shared semantics are in the contract suite; this module covers what
only memcached has: URLs, key hashing, expiries against memcached's coarse
clock, compare-and-set under contention, several servers, failures and
forks.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import servers
from pymemcache.client.base import Client  # type: ignore[import-untyped]
from servers import MemcachedServer, free_port
from store_outage import check_outage_then_restart

from oauth_middleware.errors import ConfigError, StoreUnavailable
from oauth_middleware.stores import StoreConfig, open_store
from oauth_middleware.stores.memcache import MemcacheStore, parse_url

#: The session's server (a fixture bound by assignment, not imported by name,
#: so that test arguments named after it are not flagged as redefinitions).
memcached_server = servers.memcached_server


@pytest.fixture
def prefix() -> str:
    """A prefix of its own for each test, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def store(memcached_server: MemcachedServer, prefix: str) -> Iterator[MemcacheStore]:
    """A store on the session's server, under a fresh prefix."""
    opened = MemcacheStore(StoreConfig(memcached_server.url, timeout=1.0, prefix=prefix))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def raw(memcached_server: MemcachedServer) -> Iterator[Client]:
    """A plain pymemcache client on the same server, to look behind the store."""
    client = Client(("127.0.0.1", memcached_server.port), default_noreply=False)
    try:
        yield client
    finally:
        client.close()


def run_together(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``count`` threads released at once; their results."""
    barrier = threading.Barrier(count)
    results: list[object] = []

    def run(i: int) -> None:
        barrier.wait()
        results.append(work(i))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# -- URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("memcache://cache", (("cache", 11211),), id="host-only"),
        pytest.param("memcache://cache:11212/", (("cache", 11212),), id="port-slash"),
        pytest.param("memcache://a:1,b,c:3", (("a", 1), ("b", 11211), ("c", 3)), id="several"),
        pytest.param("memcache://[::1]:11311", (("::1", 11311),), id="ipv6"),
    ],
)
def test_parse_url(url: str, expected: tuple[tuple[str, int], ...]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("memcache://:hunter22@cache", "no user or password", id="password"),
        pytest.param("memcache://cache:port", "bad port", id="bad-port"),
        pytest.param("memcache://cache:0", "bad port", id="port-zero"),
        pytest.param("memcache://cache,", "needs a host", id="empty-host"),
        pytest.param("memcache://a:1,a:1", "twice", id="duplicate"),
        pytest.param("memcache://cache/0", "no path or query", id="path"),
        pytest.param("memcache://cache?timeout=1", "no path or query", id="query"),
    ],
)
def test_bad_url_is_a_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_url(url)
    with pytest.raises(ConfigError, match=message) as caught:
        open_store(StoreConfig(url))
    assert str(caught.value).startswith("store: cannot open memcache://")
    assert "hunter22" not in str(caught.value)


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("has space:", id="space"),
        pytest.param("tab\t", id="control"),
        pytest.param("newline\n", id="newline"),
        pytest.param("x" * 200, id="long"),
    ],
)
def test_unusable_prefix_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"^store: .*prefix must be printable ASCII"):
        open_store(StoreConfig("memcache://cache", prefix=prefix))


def test_unreachable_server_is_a_fast_config_error() -> None:
    url = f"memcache://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        open_store(StoreConfig(url, timeout=0.5))
    assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert message.startswith(f"store: cannot open {url}: memcached at 127.0.0.1:")
    assert "\n" not in message


# -- keys ------------------------------------------------------------------------


def test_plain_keys_are_readable_under_the_prefix(store: MemcacheStore, raw: Client, prefix: str) -> None:
    store.put("at:abc", {"x": 1}, 60)
    store.index_add("family:f", "at:abc", 60)
    assert raw.get(f"{prefix}v:at:abc") is not None
    assert raw.get(f"{prefix}i:family:f") is not None


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 300, id="long"),
        pytest.param("has space", id="space"),
        pytest.param("line\nbreak", id="newline"),
        pytest.param("tab\tkey", id="control"),
        pytest.param("clé", id="non-ascii"),
    ],
)
def test_unsafe_keys_are_hashed(store: MemcacheStore, raw: Client, prefix: str, key: str) -> None:
    store.put(key, {"x": key}, 60)
    assert store.get(key) == {"x": key}
    assert raw.get(f"{prefix}v#{hashlib.sha256(key.encode()).hexdigest()}") is not None
    assert store.take(key) == {"x": key}
    assert store.get(key) is None
    store.index_add(key, "m", 60)
    assert store.index_members(key) == {"m"}
    assert store.incr(key, 60) == 1


def test_longest_plain_key_is_not_hashed(store: MemcacheStore, raw: Client, prefix: str) -> None:
    key = "k" * (250 - len(f"{prefix}v:"))
    store.put(key, {"x": 1}, 60)
    assert raw.get(f"{prefix}v:{key}") is not None
    store.put(key + "k", {"x": 2}, 60)
    assert store.get(key) == {"x": 1}
    assert store.get(key + "k") == {"x": 2}


def test_prefixes_isolate_stores_on_one_server(memcached_server: MemcachedServer) -> None:
    one = MemcacheStore(StoreConfig(memcached_server.url, prefix="one:"))
    two = MemcacheStore(StoreConfig(memcached_server.url, prefix="two:"))
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


# -- expiries ---------------------------------------------------------------------


def test_values_live_exactly_their_ttl_and_counters_restart(store: MemcacheStore) -> None:
    # memcached keeps the ttl itself: one real wait, in steps, for every kind of entry.
    # memcached alone could drop a 1-second entry at its next clock tick, or
    # keep it almost a second too long; the deadline in the entry decides.
    store.put("k", {"x": 1}, 1)
    store.put("dead", {"x": 1}, 1)
    assert store.incr("tries", 1) == 1
    assert store.incr("tries", 1) == 2
    assert store.get("tries") == {"n": 2}
    assert store.get("k") == {"x": 1}
    time.sleep(0.8)
    assert store.get("k") == {"x": 1}
    time.sleep(0.3)
    assert store.get("k") is None
    assert store.take("k") is None
    assert store.add("k", {"x": 2}, 60)  # replaces the dead entry memcached still holds
    assert store.get("k") == {"x": 2}
    assert store.incr("dead", 60) == 1  # a dead value becomes a counter
    time.sleep(1.2)  # counters are native memcached numbers: up to 1 s of slack
    assert store.incr("tries", 1) == 1


def test_no_ttl_never_expires(store: MemcacheStore, raw: Client, prefix: str) -> None:
    store.put("k", {"x": 1}, None)
    store.index_add("i", "m", None)
    assert b'"e":null' in raw.get(f"{prefix}v:k")
    assert b'"e":null' in raw.get(f"{prefix}i:i")


def test_zero_ttl_stores_nothing(store: MemcacheStore) -> None:
    # memcached reads an expiry of 0 as "never": a ttl of 0 must not mean that.
    store.put("k", {"x": 1}, 0)
    assert store.get("k") is None
    assert store.add("k", {"x": 2}, 0)
    assert store.get("k") is None


def test_ttl_over_thirty_days_is_kept(store: MemcacheStore) -> None:
    # Sent as a relative 31 days, memcached would read it as a time in 1970.
    store.put("k", {"x": 1}, 31 * 24 * 3600)
    store.index_add("i", "m", 90 * 24 * 3600)
    assert store.incr("n", 40 * 24 * 3600) == 1
    assert store.get("k") == {"x": 1}
    assert store.index_members("i") == {"m"}
    assert store.incr("n", 40 * 24 * 3600) == 2


# -- concurrency -------------------------------------------------------------------


def test_twenty_threads_add_to_one_index(store: MemcacheStore) -> None:
    run_together(20, lambda i: store.index_add("fam", f"m{i}", 60))
    assert store.index_members("fam") == {f"m{i}" for i in range(20)}
    run_together(20, lambda i: store.index_discard("fam", f"m{i}") if i % 2 else None)
    assert store.index_members("fam") == {f"m{i}" for i in range(0, 20, 2)}


def test_take_sees_a_value_put_again(store: MemcacheStore) -> None:
    store.put("k", {"v": 1}, 60)
    assert store.take("k") == {"v": 1}
    store.put("k", {"v": 2}, 60)
    assert store.take("k") == {"v": 2}
    assert store.take("k") is None


# -- several servers -----------------------------------------------------------------


@pytest.fixture
def second_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    """Another ``memcached``, for tests with two servers."""
    server = MemcachedServer(tmp_path_factory.mktemp("memcached2"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_keys_spread_over_servers_and_stay_put_when_one_dies(
    memcached_server: MemcachedServer, second_server: MemcachedServer, prefix: str
) -> None:
    url = f"memcache://127.0.0.1:{memcached_server.port},127.0.0.1:{second_server.port}"
    store = MemcacheStore(StoreConfig(url, timeout=0.5, prefix=prefix))
    keys = [f"k{i}" for i in range(40)]
    for key in keys:
        store.put(key, {"key": key}, 60)
    on_second = {key for key in keys if Client(("127.0.0.1", second_server.port)).get(f"{prefix}v:{key}")}
    assert 0 < len(on_second) < len(keys)
    assert all(store.get(key) == {"key": key} for key in keys)

    second_server.stop()
    for key in keys:
        if key in on_second:
            with pytest.raises(StoreUnavailable, match=f"memcached at 127.0.0.1:{second_server.port}"):
                store.get(key)
            with pytest.raises(StoreUnavailable):
                store.put(key, {"moved": True}, 60)  # never written to the other server
        else:
            assert store.get(key) == {"key": key}
    with pytest.raises(StoreUnavailable):
        store.ping()

    second_server.start()  # empty again, but the first server's keys never moved
    assert all(store.get(key) is None for key in on_second)
    assert all(store.get(key) == {"key": key} for key in keys if key not in on_second)
    store.close()


# -- failures, recovery and forks ---------------------------------------------------


def test_server_down_is_unavailable_and_the_store_recovers(
    memcached_server: MemcachedServer, prefix: str
) -> None:
    store = MemcacheStore(StoreConfig(memcached_server.url, timeout=0.5, prefix=prefix))
    check_outage_then_restart(store, memcached_server, r"^memcached at 127\.0\.0\.1:")
    store.put("k", {"x": 3}, 60)
    assert store.get("k") == {"x": 3}
    assert store.incr("n", 60) == 1


def test_idle_pooled_connections_survive_a_server_restart(
    memcached_server: MemcachedServer, prefix: str
) -> None:
    store = MemcacheStore(StoreConfig(memcached_server.url, timeout=0.5, prefix=prefix))
    # Eight threads at once leave eight idle connections in the pool.
    run_together(8, lambda i: [store.put(f"k{i}", {"i": i}, 60) for _ in range(20)])
    memcached_server.restart()  # every pooled connection is now closed by the server
    try:
        # The first command on each dead connection would fail without the check.
        for i in range(20):
            store.put(f"k{i}", {"i": i}, 60)
        # Eight at once: every pooled connection is used again.
        values = run_together(8, lambda i: store.get(f"k{i}"))
        assert sorted(value["i"] for value in values) == list(range(8))  # type: ignore[index]
    finally:
        store.close()


def test_healthy_idle_connections_are_reused(store: MemcacheStore, raw: Client) -> None:
    store.put("k", {"x": 1}, 60)
    before = int(raw.stats()[b"total_connections"])
    for _ in range(50):
        assert store.get("k") == {"x": 1}
    # raw's own stats calls reuse its one connection: nothing new was opened.
    assert int(raw.stats()[b"total_connections"]) == before


def test_forked_child_gets_its_own_connections(store: MemcacheStore) -> None:
    store.put("k", {"from": "parent"}, 60)
    parent_clients = store._all_clients()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        ok = store._all_clients() is not parent_clients and store.get("k") == {"from": "parent"}
        store.put("k", {"from": "child"}, 60)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._all_clients() is parent_clients
    assert store.get("k") == {"from": "child"}
