"""Redis store (``redis://``, ``rediss://``, ``redis+sentinel://``) with redis-py.

Supported URLs::

    redis://[[user]:password@]host[:port][/db]          plain TCP, port 6379, db 0
    rediss://[[user]:password@]host[:port][/db][?tls]   TLS
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]

``tls`` options for ``rediss://`` are query parameters: ``ssl_ca_certs``,
``ssl_certfile``, ``ssl_keyfile`` (paths) and ``ssl_cert_reqs`` (``required``,
the default, ``optional`` or ``none``). Sentinels listen on port 26379 by
default; the password (and user) authenticate to the master the sentinels
name, and the sentinels themselves are reached without a password or TLS.
Unix sockets and Redis Cluster are not supported. The server must be Redis
6.2 or later (``GETDEL``).

Layout: a value lives under ``<prefix>v:<key>`` as JSON, an index under
``<prefix>i:<key>`` as a Redis set, so a name can be both (as in the memory
store) without a ``WRONGTYPE`` clash, and ``delete`` removes both. A counter
is a plain integer under the value key; :meth:`RedisStore.get` reads it back
as ``{"n": count}`` exactly like the memory store.

Example::

    store = RedisStore(StoreConfig("redis://:secret@cache:6379/2", timeout=1.0))
    store.put("at:abc", {"c": "client"}, ttl=3600)
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from time import monotonic
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import RedisError
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from ..errors import ConfigError, StoreUnavailable
from .base import LOST, StoreConfig, Value

#: Default ports of a Redis server and of a Sentinel.
_REDIS_PORT = 6379
_SENTINEL_PORT = 26379

#: Query parameters accepted on ``rediss://`` URLs, passed on to redis-py.
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
_CERT_REQS = ("required", "optional", "none")

#: Seconds a subscription waits for a message before it looks at its stop event again.
_LISTEN_STEP = 0.05

#: Error messages are cut to this length: one readable line in a log.
_MAX_MESSAGE = 200

#: Add a member to an index and stretch its expiry (KEYS[1] = set, ARGV[1] =
#: member, ARGV[2] = ttl in seconds or "" for none). An empty (new) set takes
#: the new ttl; otherwise the set lives until the later of its current expiry
#: and the new one, and "no expiry" wins over any ttl. In Lua so that two
#: concurrent adds cannot interleave between reading and setting the expiry.
_INDEX_ADD = """
local others = redis.call('SCARD', KEYS[1]) - redis.call('SISMEMBER', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  redis.call('PERSIST', KEYS[1])
  return 1
end
local ttl_ms = tonumber(ARGV[2]) * 1000
local current = redis.call('PTTL', KEYS[1])
if others == 0 or (current >= 0 and current < ttl_ms) then
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
end
return 1
"""

#: Increment a counter and give it its ttl when this call created it, in one
#: step so that a crash between the two can never leave an immortal counter.
#: (``EXPIRE ... NX`` would need Redis 7; checking for 1 works everywhere.)
_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return n
"""

#: Take one back from a live counter: a missing (expired) key, or a value that
#: is not a counter, is left alone; DECR keeps the key's ttl.
_DECR = """
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class RedisURL:
    """The parts of a store URL that redis-py needs.

    :param hosts: ``(host, port)`` of the server, or of every sentinel.
    :param db: database number.
    :param username: ACL user (Redis 6), or None.
    :param password: password, or None; never put in a message.
    :param service: master name for ``redis+sentinel://``, else None.
    :param tls: redis-py ``ssl_*`` keyword arguments; empty without TLS.
    """

    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    service: str | None = None
    tls: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """``host:port`` (or the sentinels and service) for error messages."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.hosts)
        return f"{hosts}/{self.service}" if self.service else hosts


def parse_url(url: str) -> RedisURL:
    """Parse a ``redis://``, ``rediss://`` or ``redis+sentinel://`` URL.

    :param url: the store URL.
    :raises ConfigError: on anything malformed; the message never holds the
        password.
    """
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme not in ("redis", "rediss", "redis+sentinel"):
        raise ConfigError(f"not a Redis URL scheme: {scheme!r}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, password = _split_userinfo(userinfo)
    default_port = _SENTINEL_PORT if scheme == "redis+sentinel" else _REDIS_PORT
    hosts = tuple(_parse_host(item, default_port, scheme) for item in hostlist.split(","))
    if scheme != "redis+sentinel" and len(hosts) > 1:
        raise ConfigError(f"{scheme}:// takes one host; list several only with redis+sentinel://")
    segments = [unquote(s) for s in parts.path.split("/")[1:] if s]
    service = None
    if scheme == "redis+sentinel":
        if not segments:
            raise ConfigError("redis+sentinel:// needs the master's service name: .../service_name[/db]")
        service = segments.pop(0)
    if len(segments) > 1:
        raise ConfigError(f"{scheme}:// path must be /db, got {parts.path!r}")
    db = _parse_db(segments[0]) if segments else 0
    tls = _parse_query(parts.query, scheme)
    return RedisURL(hosts, db, username, password, service, tls)


def _split_userinfo(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None, unquote(password) if colon else None)


def _parse_host(item: str, default_port: int, scheme: str) -> tuple[str, int]:
    if item.startswith("["):  # IPv6 literal: [::1]:6379
        host, _, rest = item[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ConfigError(f"{scheme}:// URL needs a host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{scheme}:// URL has a bad port {port_text!r} for host {host!r}")
    return host, int(port_text)


def _parse_db(text: str) -> int:
    if not text.isdigit():
        raise ConfigError(f"Redis database must be a number, got {text!r}")
    return int(text)


def _parse_query(query: str, scheme: str) -> dict[str, str]:
    options = dict(parse_qsl(query, keep_blank_values=True))
    if not options:
        return {}
    if scheme != "rediss":
        raise ConfigError(f"{scheme}:// takes no query parameters (TLS options need rediss://)")
    unknown = sorted(set(options) - set(_TLS_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown rediss:// option {unknown[0]!r} (use {', '.join(_TLS_OPTIONS)})")
    if options.get("ssl_cert_reqs", "required") not in _CERT_REQS:
        raise ConfigError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
    return options


@dataclass(frozen=True)
class _Connection:
    """One process's client and the scripts registered on it.

    Scripts run with ``EVALSHA`` and are sent again after a server restart
    has emptied the script cache (redis-py does that on ``NOSCRIPT``).
    """

    client: redis.Redis
    index_add: Script
    incr: Script
    decr: Script


class RedisStore:
    """A :class:`~oauth_middleware.stores.base.Store` on a Redis server.

    The redis-py client (and its connection pool) is made on first use and
    made again in a forked child, so a store opened in a pre-forking master
    (gunicorn) never shares sockets with its workers. Every driver error
    becomes :class:`~oauth_middleware.errors.StoreUnavailable`; the pool
    reconnects on the next call, so the store works again as soon as the
    server is back.

    :param config: URL (see the module docstring), timeout and key prefix.
    :raises StoreUnavailable: when the URL is malformed (so that
        :func:`~oauth_middleware.stores.open_store` reports it as a
        ``ConfigError`` naming the setting).
    """

    def __init__(self, config: StoreConfig) -> None:
        try:
            self._url = parse_url(config.url)
        except ConfigError as exc:
            # open_store turns StoreUnavailable into a one-line error naming
            # the setting (``store: cannot open ...``), as for the other stores.
            raise StoreUnavailable(str(exc)) from None
        self._tls = config.url.startswith("rediss:")
        self._timeout = config.timeout
        self._prefix = config.prefix
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._pid = 0

    # -- Store protocol ----------------------------------------------------

    def ping(self) -> None:
        """Check the server answers (and the password is right)."""
        with self._errors():
            self._connection().client.ping()

    def get(self, key: str) -> Value | None:
        """Return the live value under ``key``, or None."""
        with self._errors():
            raw = self._connection().client.get(self._value_key(key))
        return _decode(raw)

    def put(self, key: str, value: Value, ttl: int | None) -> None:
        """Store ``value`` under ``key``, replacing it and its expiry."""
        with self._errors():
            client = self._connection().client
            if ttl is not None and ttl <= 0:
                # Redis refuses EX 0; a value that is dead on arrival is no value.
                client.delete(self._value_key(key))
            else:
                client.set(self._value_key(key), _encode(value), ex=ttl)

    def add(self, key: str, value: Value, ttl: int | None) -> bool:
        """Store ``value`` only if ``key`` holds no value (``SET NX``)."""
        with self._errors():
            client = self._connection().client
            if ttl is not None and ttl <= 0:
                return not client.exists(self._value_key(key))
            return bool(client.set(self._value_key(key), _encode(value), ex=ttl, nx=True))

    def take(self, key: str) -> Value | None:
        """Remove and return the value under ``key`` (``GETDEL``: one winner)."""
        with self._errors():
            raw = self._connection().client.getdel(self._value_key(key))
        return _decode(raw)

    def delete(self, *keys: str) -> None:
        """Remove the values and the indexes named ``keys``."""
        if not keys:
            return
        names = [self._value_key(k) for k in keys] + [self._index_key(k) for k in keys]
        with self._errors():
            self._connection().client.delete(*names)

    def index_add(self, key: str, member: str, ttl: int | None) -> None:
        """Add ``member`` to the set ``key``; the set lives at least ``ttl``."""
        with self._errors():
            self._connection().index_add(
                keys=[self._index_key(key)], args=[member, "" if ttl is None else ttl]
            )

    def index_discard(self, key: str, member: str) -> None:
        """Remove ``member`` from the set ``key``."""
        with self._errors():
            self._connection().client.srem(self._index_key(key), member)

    def index_members(self, key: str) -> set[str]:
        """Return the members of the set ``key`` (empty when missing)."""
        with self._errors():
            members = self._connection().client.smembers(self._index_key(key))
        return {m.decode() if isinstance(m, bytes) else m for m in members}

    def incr(self, key: str, ttl: int) -> int:
        """Add one to the counter ``key``; a new counter expires after ``ttl``."""
        with self._errors():
            return int(self._connection().incr(keys=[self._value_key(key)], args=[ttl]))

    def decr(self, key: str) -> None:
        """Take one back from the live counter ``key`` (never below zero, never creating it)."""
        with self._errors():
            self._connection().decr(keys=[self._value_key(key)])

    # -- ChannelStore ---------------------------------------------------------

    def publish(self, channel: str, message: str) -> None:
        """``PUBLISH`` ``message`` on ``<prefix>channel``."""
        with self._errors():
            self._connection().client.publish(f"{self._prefix}{channel}", message)

    def listen(
        self, channel: str, heartbeat: float, stop: threading.Event, busy: threading.Lock
    ) -> Iterator[int | str]:
        """``SUBSCRIBE`` to ``<prefix>channel`` on a connection of its own and yield its messages.

        A ``PING`` goes out after ``heartbeat`` seconds of silence; no answer
        within another ``heartbeat`` is a lost connection, as is any error: the
        caller subscribes again rather than trust redis-py to, since messages
        sent while it was away are lost. ``stop`` is looked at every
        :data:`_LISTEN_STEP` seconds.
        """
        client = self._client_for_url()
        pubsub = client.pubsub()
        try:
            with self._errors():
                pubsub.subscribe(f"{self._prefix}{channel}")
                sock = getattr(pubsub.connection, "_sock", None)
                if sock is None:
                    raise StoreUnavailable(f"redis at {self._url.where}: no subscription socket")
                fd = sock.fileno()
                heard, pinged = monotonic(), None
                while not stop.is_set():
                    ready = select.select((fd,), (), (), _LISTEN_STEP)[0]
                    now = monotonic()
                    if not ready:
                        if pinged is not None and now - pinged > heartbeat:
                            with busy:
                                yield LOST
                            raise StoreUnavailable(f"redis at {self._url.where}: no answer to PING")
                        if pinged is None and now - heard > heartbeat:
                            pubsub.ping()
                            pinged = now
                        continue
                    heard, pinged = now, None
                    with busy:
                        try:
                            # Everything read now, the parser's buffer included, before letting go.
                            while (message := pubsub.get_message(timeout=0)) is not None:
                                if message["type"] == "subscribe":
                                    yield fd
                                elif message["type"] == "message":
                                    data = message["data"]
                                    yield data.decode() if isinstance(data, bytes) else str(data)
                        except (RedisError, OSError):
                            yield LOST  # the caller hears of the loss before busy is let go
                            raise
        finally:
            with contextlib.suppress(RedisError, OSError):
                pubsub.close()
                client.close()

    def close(self) -> None:
        """Close the pool's connections; a later call opens new ones."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            with self._errors():
                conn.client.close()

    # -- helpers -----------------------------------------------------------

    def _value_key(self, key: str) -> str:
        return f"{self._prefix}v:{key}"

    def _index_key(self, key: str) -> str:
        return f"{self._prefix}i:{key}"

    def _connection(self) -> _Connection:
        """The client of this process, made on first use and after a fork."""
        pid = os.getpid()
        conn = self._conn
        if conn is not None and self._pid == pid:
            return conn
        with self._lock:
            if self._conn is None or self._pid != pid:
                # The parent's client is dropped, not closed: closing would shut
                # down sockets the parent process is still using.
                client = self._client_for_url()
                self._conn = _Connection(
                    client,
                    client.register_script(_INDEX_ADD),
                    client.register_script(_INCR),
                    client.register_script(_DECR),
                )
                self._pid = pid
            return self._conn

    def _client_for_url(self) -> redis.Redis:
        options: dict[str, Any] = {
            "db": self._url.db,
            "username": self._url.username,
            "password": self._url.password,
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
            # redis-py retries failed commands with backoff by default (ten
            # times in 6.x+): a dead server must fail fast so we answer 503.
            "retry": Retry(NoBackoff(), 0),
        }
        if self._url.service is not None:
            sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(self._url.hosts),
                sentinel_kwargs={
                    "socket_timeout": self._timeout,
                    "socket_connect_timeout": self._timeout,
                    "retry": Retry(NoBackoff(), 0),
                },
                **options,
            )
            master: redis.Redis = sentinel.master_for(self._url.service)  # type: ignore[no-untyped-call]
            return master
        host, port = self._url.hosts[0]
        if self._tls:
            options.update(ssl=True, **self._url.tls)
        return redis.Redis(host=host, port=port, **options)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn driver errors into a short ``StoreUnavailable`` without secrets."""
        try:
            yield
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(self._describe(exc)) from None

    def _describe(self, exc: BaseException) -> str:
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, MasterNotFoundError):
            # redis-py appends the repr of the last sentinel connection: noise.
            detail = detail.split(" : ", 1)[0] + " (sentinels down, or no such service)"
        message = f"redis at {self._url.where}: {type(exc).__name__}: {detail}"
        if self._url.password:
            message = message.replace(self._url.password, "***")
        return message[:_MAX_MESSAGE]


def _encode(value: Value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _decode(raw: bytes | str | None) -> Value | None:
    if raw is None:
        return None
    try:
        decoded = json.loads(raw)
    except ValueError:
        raise StoreUnavailable("redis: a value under our prefix is not JSON") from None
    # A counter written by INCR is a bare integer; the memory store shows it
    # as {"n": count}, so do we.
    if isinstance(decoded, int):
        return {"n": decoded}
    if not isinstance(decoded, dict):
        raise StoreUnavailable("redis: a value under our prefix is not a JSON object")
    return decoded
