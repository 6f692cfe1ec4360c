"""memcached store (``memcache://``) with pymemcache.

Supported URLs::

    memcache://host[:port][,host[:port]...]        port 11211 by default

No password (the text protocol has no authentication), no TLS, no query
parameters. memcached is a cache: under memory pressure it evicts entries
before their expiry, so a token or client record may vanish early (which
fails closed: the token is simply unknown). Size the server so that it
does not evict, or keep clients in another store.

How the Store rules are kept:

* **Keys**: ``<prefix>v:<key>`` for values and counters, ``<prefix>i:<key>``
  for indexes. A key longer than memcached's 250 bytes, or with spaces,
  control or non-ASCII characters, becomes ``<prefix>v#<sha256 hex>`` (the
  ``#`` keeps hashed and plain keys apart).
* **Expiry**: memcached's clock ticks once a second, so an entry given ttl
  ``n`` may vanish up to a second early. Each value and index therefore
  carries its exact deadline inside (``{"v": value, "e": deadline}``) and is
  given one second more on the server; a read past the deadline is a miss.
  Expiries over 30 days are sent as absolute Unix times, since memcached
  reads larger numbers that way. Counters are bare numbers (so memcached's
  ``incr`` can add to them) and live between ``ttl`` and ``ttl + 1`` seconds.
* **Atomic take**: ``gets`` the value and its CAS token, then ``cas`` it
  with an expiry of -1, which memcached stores as already expired: a
  delete that only succeeds if nobody changed the entry since our ``gets``.
  Of two concurrent takes, the second ``cas`` fails (the first changed the
  CAS token, or the entry is gone), and the loser reads the key again and
  finds nothing. No tombstone is left behind, so ``add`` needs no special
  case.
* **Indexes** are JSON lists updated with a ``gets``/``cas`` loop; their
  expiry is the later of the current one and the new ttl. An index is one
  memcached item, so it is bound by the item size limit (1 MB by default:
  some ten thousand token keys per family).
* **Several servers**: each key lives on one server picked by rendezvous
  hashing of ``host:port``. pymemcache's ``HashClient`` is deliberately not
  used: while a server is failing it returns defaults instead of raising,
  and once it marks a server dead it moves that server's keys to the
  others, so a token revoked during an outage would come back with the
  server. Here an unreachable server is
  :class:`~oauth_middleware.errors.StoreUnavailable` for its keys, and
  nothing moves.

Example::

    store = MemcacheStore(StoreConfig("memcache://10.0.0.5:11211,10.0.0.6:11211"))
    store.put("at:abc", {"c": "client"}, ttl=3600)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

from pymemcache.client.base import Client, PooledClient  # type: ignore[import-untyped]
from pymemcache.exceptions import MemcacheClientError, MemcacheError  # type: ignore[import-untyped]

from ..errors import ConfigError, StoreUnavailable
from .base import StoreConfig, Value, expiry_time, index_deadline

#: memcached's default port.
_PORT = 11211

#: memcached keys are at most 250 bytes of printable, non-space ASCII.
_MAX_KEY = 250
_SAFE_KEY = re.compile(r"[\x21-\x7e]*")

#: Longest accepted prefix: leaves room for the namespace and a sha256 digest.
_MAX_PREFIX = _MAX_KEY - 70

#: memcached reads an expiry above 30 days as an absolute Unix time.
_RELATIVE_EXPIRY_LIMIT = 30 * 24 * 3600

#: An expiry memcached stores as already expired: our conditional delete.
_EXPIRED = -1

#: Rounds of a read-modify-``cas`` loop before giving up under contention.
_CAS_ATTEMPTS = 100

#: Error messages are cut to this length: one readable line in a log.
_MAX_MESSAGE = 200


def parse_url(url: str) -> tuple[tuple[str, int], ...]:
    """The ``(host, port)`` servers of a ``memcache://`` URL.

    :param url: the store URL.
    :raises ConfigError: on anything malformed.
    """
    parts = urlsplit(url)
    if parts.scheme != "memcache":
        raise ConfigError(f"not a memcache URL scheme: {parts.scheme!r}")
    if "@" in parts.netloc:
        raise ConfigError("memcache:// takes no user or password (memcached has no authentication)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("memcache:// takes only host:port[,host:port...], no path or query")
    servers = tuple(_parse_host(item) for item in parts.netloc.split(","))
    if len(set(servers)) != len(servers):
        raise ConfigError("memcache:// URL lists a server twice")
    return servers


def _parse_host(item: str) -> tuple[str, int]:
    if item.startswith("["):  # IPv6 literal: [::1]:11211
        host, _, rest = item[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ConfigError("memcache:// URL needs a host for every server")
    if not port_text:
        return host, _PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"memcache:// URL has a bad port {port_text!r} for host {host!r}")
    return host, int(port_text)


class _FreshClient(Client):  # type: ignore[misc]
    """A pymemcache client that drops a connection the server closed before using it.

    A pooled connection left idle while memcached restarted (or while a
    firewall timed it out) is dead, and pymemcache only finds out from the
    command that fails on it: after an outage every idle connection of the
    pool would cost one request a 503. Before each command, a non-blocking
    peek tells a healthy idle socket (nothing to read) from a closed one (end
    of file, a reset, or stray bytes of an aborted reply), which is dropped
    so that the command opens a fresh connection. redis-py checks its pooled
    connections the same way.
    """

    def _fetch_cmd(self, *args: Any, **kwargs: Any) -> Any:
        self._drop_if_closed()
        return super()._fetch_cmd(*args, **kwargs)

    def _store_cmd(self, *args: Any, **kwargs: Any) -> Any:
        self._drop_if_closed()
        return super()._store_cmd(*args, **kwargs)

    def _misc_cmd(self, *args: Any, **kwargs: Any) -> Any:
        self._drop_if_closed()
        return super()._misc_cmd(*args, **kwargs)

    def _drop_if_closed(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            sock.setblocking(False)
            try:
                sock.recv(1, socket.MSG_PEEK)
            finally:
                sock.settimeout(self.timeout)
        except BlockingIOError:
            return  # nothing to read: the connection is idle and alive
        except OSError:
            pass  # reset by the peer, or the socket is unusable
        self.close()


class _FreshPooledClient(PooledClient):  # type: ignore[misc]
    """pymemcache's pooled client, made of :class:`_FreshClient` connections."""

    client_class = _FreshClient


class MemcacheStore:
    """A :class:`~oauth_middleware.stores.base.Store` on memcached servers.

    Clients (one connection pool per server) are made on first use and made
    again in a forked child, so a store opened before gunicorn forks never
    shares sockets between workers. Every driver error becomes
    :class:`~oauth_middleware.errors.StoreUnavailable`; broken connections
    are dropped, so the store works again once the server is back.

    :param config: URL (see the module docstring), timeout and key prefix.
    :raises StoreUnavailable: when the URL or the prefix is unusable (so that
        :func:`~oauth_middleware.stores.open_store` reports it as a
        ``ConfigError`` naming the setting).
    """

    def __init__(self, config: StoreConfig) -> None:
        try:
            self._servers = parse_url(config.url)
        except ConfigError as exc:
            # open_store turns StoreUnavailable into a one-line error naming
            # the setting (``store: cannot open ...``), as for the other stores.
            raise StoreUnavailable(str(exc)) from None
        if len(config.prefix) > _MAX_PREFIX or not _SAFE_KEY.fullmatch(config.prefix):
            raise StoreUnavailable(
                f"memcached key prefix must be printable ASCII without spaces, at most {_MAX_PREFIX} chars"
            )
        self._prefix = config.prefix
        self._timeout = config.timeout
        self._names = [f"{host}:{port}" for host, port in self._servers]
        self._lock = threading.Lock()
        self._clients: dict[str, Any] | None = None
        self._pid = 0

    # -- Store protocol ----------------------------------------------------

    def ping(self) -> None:
        """Check every server answers."""
        for name, client in self._all_clients().items():
            with self._errors(name):
                client.version()

    def get(self, key: str) -> Value | None:
        """Return the live value under ``key``, or None."""
        mkey = self._key("v", key)
        with self._client(mkey) as client:
            raw = client.get(mkey)
        return _decode_value(raw)

    def put(self, key: str, value: Value, ttl: int | None) -> None:
        """Store ``value`` under ``key``, replacing it and its expiry."""
        mkey = self._key("v", key)
        deadline = expiry_time(ttl)
        with self._client(mkey) as client:
            client.set(mkey, _encode_value(value, deadline), expire=_expire(deadline), noreply=False)

    def add(self, key: str, value: Value, ttl: int | None) -> bool:
        """Store ``value`` only if ``key`` holds no live value; True if stored."""
        mkey = self._key("v", key)
        deadline = expiry_time(ttl)
        payload = _encode_value(value, deadline)
        with self._client(mkey) as client:
            for _ in range(_CAS_ATTEMPTS):
                if client.add(mkey, payload, expire=_expire(deadline), noreply=False):
                    return True
                raw, cas = client.gets(mkey)
                if raw is None:
                    continue  # gone since our add: try the add again
                if _decode_value(raw) is not None:
                    return False
                # Past its deadline but inside memcached's second of grace:
                # it counts as absent, so replace it if nobody else did.
                if client.cas(mkey, payload, cas, expire=_expire(deadline), noreply=False):
                    return True
        raise self._contended()

    def take(self, key: str) -> Value | None:
        """Atomically remove and return the live value under ``key``.

        A ``cas`` with an already-past expiry deletes the entry only if it is
        unchanged since our ``gets``; see the module docstring.
        """
        mkey = self._key("v", key)
        with self._client(mkey) as client:
            for _ in range(_CAS_ATTEMPTS):
                raw, cas = client.gets(mkey)
                if raw is None:
                    return None
                value = _decode_value(raw)
                if value is None:
                    return None
                stored = client.cas(mkey, b"", cas, expire=_EXPIRED, noreply=False)
                if stored:
                    return value
                if stored is None:
                    return None  # deleted or taken between our gets and cas
                # Changed (e.g. put again) since our gets: take the new value.
        raise self._contended()

    def delete(self, *keys: str) -> None:
        """Remove the values and the indexes named ``keys``."""
        by_server: dict[str, list[str]] = {}
        for key in keys:
            for namespace in ("v", "i"):
                mkey = self._key(namespace, key)
                by_server.setdefault(self._server_of(mkey), []).append(mkey)
        clients = self._all_clients()
        for name, mkeys in by_server.items():
            with self._errors(name):
                clients[name].delete_many(mkeys, noreply=False)

    def index_add(self, key: str, member: str, ttl: int | None) -> None:
        """Add ``member`` to the set ``key``; the set lives at least ``ttl``."""
        mkey = self._key("i", key)
        new_deadline = expiry_time(ttl)
        with self._client(mkey) as client:
            for _ in range(_CAS_ATTEMPTS):
                raw, cas = client.gets(mkey)
                members, deadline = _decode_index(raw)
                # A set with no other member starts afresh with the new ttl,
                # exactly like the memory store.
                fresh = not members - {member}
                members.add(member)
                deadline = index_deadline(deadline, new_deadline, fresh=fresh)
                payload = _encode_index(members, deadline)
                if raw is None:
                    done = client.add(mkey, payload, expire=_expire(deadline), noreply=False)
                else:
                    done = client.cas(mkey, payload, cas, expire=_expire(deadline), noreply=False)
                if done:
                    return
        raise self._contended()

    def index_discard(self, key: str, member: str) -> None:
        """Remove ``member`` from the set ``key``, keeping its expiry."""
        mkey = self._key("i", key)
        with self._client(mkey) as client:
            for _ in range(_CAS_ATTEMPTS):
                raw, cas = client.gets(mkey)
                members, deadline = _decode_index(raw)
                if member not in members:
                    return
                members.discard(member)
                # An emptied set is deleted (cas with a past expiry): the next
                # index_add starts a fresh one either way.
                expire = _expire(deadline) if members else _EXPIRED
                if client.cas(mkey, _encode_index(members, deadline), cas, expire=expire, noreply=False):
                    return
        raise self._contended()

    def index_members(self, key: str) -> set[str]:
        """Return the members of the set ``key`` (empty when missing)."""
        mkey = self._key("i", key)
        with self._client(mkey) as client:
            raw = client.get(mkey)
        return _decode_index(raw)[0]

    def incr(self, key: str, ttl: int) -> int:
        """Add one to the counter ``key``; a new counter expires after ``ttl``.

        ``incr`` first (one round trip when the counter exists); when it is
        missing, ``add`` it as 1 with the ttl; if another process added it
        first, ``incr`` again.
        """
        mkey = self._key("v", key)
        expire = _expire(expiry_time(ttl))
        with self._client(mkey) as client:
            for _ in range(_CAS_ATTEMPTS):
                try:
                    count = client.incr(mkey, 1, noreply=False)
                except MemcacheClientError:
                    # Not a number: a value put under this key. Only one past
                    # its deadline may become a counter.
                    raw, cas = client.gets(mkey)
                    if _decode_value(raw) is not None:
                        raise
                    if raw is not None and client.cas(mkey, b"1", cas, expire=expire, noreply=False):
                        return 1
                    continue
                if count is not None:
                    return int(count)
                if client.add(mkey, b"1", expire=expire, noreply=False):
                    return 1
        raise self._contended()

    def decr(self, key: str) -> None:
        """Take one back from the live counter ``key``.

        memcached's ``decr`` is atomic, stops at zero, keeps the expiry and
        does nothing to a missing key; a value that is not a counter is left alone.
        """
        mkey = self._key("v", key)
        with self._client(mkey) as client, suppress(MemcacheClientError):
            client.decr(mkey, 1, noreply=False)

    def close(self) -> None:
        """Close every connection; a later call opens new ones."""
        with self._lock:
            clients, self._clients = self._clients, None
        if clients is not None and self._pid == os.getpid():
            for name, client in clients.items():
                with self._errors(name):
                    client.close()

    # -- helpers -----------------------------------------------------------

    def _key(self, namespace: str, key: str) -> str:
        """The memcached key of ``key`` in ``namespace`` (``v`` or ``i``)."""
        plain = f"{self._prefix}{namespace}:{key}"
        if len(plain) <= _MAX_KEY and _SAFE_KEY.fullmatch(plain):
            return plain
        return f"{self._prefix}{namespace}#{hashlib.sha256(key.encode()).hexdigest()}"

    def _server_of(self, mkey: str) -> str:
        """The server holding ``mkey``: rendezvous (highest random weight) hashing.

        Stable across processes and hosts (no ``hash()``), and adding or
        removing a server only moves the keys that server wins or held.
        """
        if len(self._names) == 1:
            return self._names[0]
        return max(self._names, key=lambda name: hashlib.blake2b(f"{name}-{mkey}".encode()).digest())

    def _all_clients(self) -> dict[str, Any]:
        """This process's clients by ``host:port``, made on first use and after a fork."""
        pid = os.getpid()
        clients = self._clients
        if clients is not None and self._pid == pid:
            return clients
        with self._lock:
            if self._clients is None or self._pid != pid:
                # The parent's clients are dropped, not closed: their sockets
                # still belong to the parent process.
                self._clients = {
                    f"{host}:{port}": self._make_client((host, port)) for host, port in self._servers
                }
                self._pid = pid
            return self._clients

    def _make_client(self, server: tuple[str, int]) -> Any:
        return _FreshPooledClient(
            server,
            connect_timeout=self._timeout,
            timeout=self._timeout,
            no_delay=True,
            # Fail loudly: with ignore_exc a dead server would look like a
            # miss, and with noreply a refused write would look like success.
            ignore_exc=False,
            default_noreply=False,
        )

    @contextmanager
    def _client(self, mkey: str) -> Iterator[Any]:
        """Yield the client of the server holding ``mkey``, translating its errors."""
        name = self._server_of(mkey)
        with self._errors(name):
            yield self._all_clients()[name]

    @contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        """Turn driver errors from server ``name`` into a short ``StoreUnavailable``."""
        try:
            yield
        except (MemcacheError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise StoreUnavailable(
                f"memcached at {name}: {type(exc).__name__}: {detail}"[:_MAX_MESSAGE]
            ) from None

    def _contended(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"memcached: a key kept changing during {_CAS_ATTEMPTS} compare-and-set rounds"
        )


def _expire(deadline: float | None) -> int:
    """The memcached expiry for an entry whose exact deadline is ``deadline``.

    One second longer than the deadline, because memcached's clock ticks
    once a second and could otherwise drop the entry early; the deadline
    stored in the entry decides when it stops being returned.
    """
    if deadline is None:
        return 0  # memcached's "never"
    remaining = deadline - time.time()
    if remaining <= 0:
        return _EXPIRED
    seconds = math.ceil(remaining) + 1
    if seconds > _RELATIVE_EXPIRY_LIMIT:
        return int(time.time()) + seconds
    return seconds


def _encode_value(value: Value, deadline: float | None) -> bytes:
    return json.dumps({"v": value, "e": deadline}, separators=(",", ":")).encode()


def _decode_value(raw: bytes | None) -> Value | None:
    """The live value in ``raw`` (None when missing or past its deadline)."""
    if raw is None:
        return None
    if raw.isdigit():
        # A counter: shown as {"n": count}, as the memory store does.
        return {"n": int(raw)}
    envelope = _loads(raw)
    deadline = envelope.get("e")
    if deadline is not None and deadline <= time.time():
        return None
    value: Value = envelope["v"]
    return value


def _encode_index(members: set[str], deadline: float | None) -> bytes:
    return json.dumps({"m": sorted(members), "e": deadline}, separators=(",", ":")).encode()


def _decode_index(raw: bytes | None) -> tuple[set[str], float | None]:
    """Members and deadline of the index in ``raw`` (empty when missing or expired)."""
    if raw is None:
        return set(), None
    envelope = _loads(raw)
    deadline = envelope.get("e")
    if deadline is not None and deadline <= time.time():
        return set(), None
    return set(envelope["m"]), deadline


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        envelope = json.loads(raw)
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict):
        raise StoreUnavailable("memcached: an entry under our prefix is not ours (not a JSON object)")
    return envelope
