"""Where a request really comes from, believing forwarding headers only from trusted proxies.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are written by whoever sends
the request, so they are read only when the direct peer (``REMOTE_ADDR``)
is one of the ``trusted_proxies``: an address in one of its networks, or,
with the keyword ``unix``, a peer on a Unix socket (a ``REMOTE_ADDR`` that
is missing or not an IP address: gunicorn gives an empty one, waitress
``localhost``). Then ``X-Forwarded-For`` is read right
to left: each proxy appends the address it saw, so the entries on the right
were written by our proxies and the first one that is not a trusted proxy
is the client. Everything left of it may be forged and is never looked at.
``X-Forwarded-Proto`` is taken from its last value, the one the nearest
trusted proxy set (a value a client sent ahead of it is never believed).

The result serves throttling (:mod:`oauth_middleware.throttle`) and the
HTTPS requirement (:func:`check_https`), which looks at the scheme alone:
no header and no address exempts a request from it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from .errors import FatalClientError, InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """The ``trusted_proxies`` setting: which direct peers may forward a client's address.

    :param networks: proxies by address (``10.0.0.0/8 ::1``).
    :param unix: a peer on a Unix socket is a proxy too (the keyword ``unix``).

    Example::

        TrustedProxies((ipaddress.ip_network("10.0.0.0/8"),), unix=True)
    """

    networks: tuple[IPNetwork, ...] = ()
    unix: bool = False

    def trusts(self, address: IPAddress) -> bool:
        """True when ``address`` is in one of the trusted networks."""
        return any(address in network for network in self.networks)

    def trusts_peer(self, peer: IPAddress | None) -> bool:
        """True when the direct peer is a trusted proxy; ``peer`` None is a Unix-socket peer."""
        return self.unix if peer is None else self.trusts(peer)


@dataclass(frozen=True)
class Origin:
    """The client of a request as far as it can be known.

    :param address: the client's IP address; None when it cannot be known
        (no IP address in ``REMOTE_ADDR`` and no trusted proxy to say, a
        malformed forwarded entry).
    :param scheme: ``https`` or ``http``, as the client used it.
    :param proxied: True when a trusted proxy reported ``address``.
    """

    address: IPAddress | None
    scheme: str
    proxied: bool = False


@functools.lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPAddress | None:
    """An IP address from ``REMOTE_ADDR`` or a forwarded entry, or None.

    Ports (``1.2.3.4:5678``, ``[2001:db8::1]:443``) are dropped, and an
    IPv4-mapped IPv6 address counts as the IPv4 address it carries.
    Cached (bounded): the same few peers come back on every request, and
    ``ipaddress`` parsing was a tenth of a token request.
    """
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def request_origin(environ: Mapping[str, Any], trusted: TrustedProxies) -> Origin:
    """The client's address and scheme for the WSGI ``environ``.

    :param trusted: the ``trusted_proxies`` setting.
    """
    scheme = "https" if environ.get("wsgi.url_scheme") == "https" else "http"
    peer = parse_ip(str(environ.get("REMOTE_ADDR") or ""))
    if not trusted.trusts_peer(peer):
        return Origin(peer, scheme)
    return Origin(
        forwarded_client(str(environ.get("HTTP_X_FORWARDED_FOR", "")), peer, trusted),
        forwarded_scheme(str(environ.get("HTTP_X_FORWARDED_PROTO", "")), scheme),
        proxied=True,
    )


#: The ``environ`` key where :func:`request_origin_once` keeps a request's origin.
ORIGIN_KEY = "oauth_middleware.origin"


def request_origin_once(environ: MutableMapping[str, Any], trusted: TrustedProxies) -> Origin:
    """:func:`request_origin`, computed once per request and kept in ``environ``.

    The HTTPS check, client authentication and the throttle all need the
    origin of the same request; they share one value.
    """
    origin = environ.get(ORIGIN_KEY)
    if not isinstance(origin, Origin):
        origin = environ[ORIGIN_KEY] = request_origin(environ, trusted)
    return origin


def forwarded_client(header: str, peer: IPAddress | None, trusted: TrustedProxies) -> IPAddress | None:
    """The client in an ``X-Forwarded-For`` that the trusted ``peer`` sent.

    Right to left, trusted proxies are skipped; the first other address is
    the client. An entry that is not an address (``unknown``, garbage) ends
    the walk with None: whoever wrote it, we cannot tell who the client is.
    When every entry is a trusted proxy, the leftmost one is the client; with
    no entry at all it is the peer (None for a Unix-socket peer: unknown).
    """
    client = peer
    for entry in reversed(header.split(",")):
        if not entry.strip():
            continue
        address = parse_ip(entry)
        if address is None:
            return None
        client = address
        if not trusted.trusts(address):
            break
    return client


def forwarded_scheme(header: str, default: str) -> str:
    """The last ``X-Forwarded-Proto`` value if it is ``http`` or ``https``, else ``default``."""
    last = header.rpartition(",")[2].strip().lower()
    return last if last in ("http", "https") else default


def check_https(origin: Origin, *, page: bool = False) -> None:
    """Refuse a plain-HTTP request (``require_https``).

    Nothing exempts one: ``Host`` is a header anyone writes, and a loopback
    or Unix-socket peer is what a reverse proxy on the same machine looks
    like, whoever its client is. Plain HTTP is for ``require_https = false``.

    :param page: the request is a browser's (the authorization endpoint),
        so the error is a page, never a redirect.
    :raises InvalidRequest: plain HTTP (``FatalClientError`` for a page).
    """
    if origin.scheme == "https":
        return
    message = "HTTPS is required"
    raise FatalClientError(message) if page else InvalidRequest(message)
