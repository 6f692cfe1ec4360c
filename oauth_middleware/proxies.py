"""Where a request really comes from, believing forwarding headers only from trusted proxies.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are written by whoever sends
the request, so they are read only when the direct peer (``REMOTE_ADDR``)
is one of the ``trusted_proxies``. Then ``X-Forwarded-For`` is read right
to left: each proxy appends the address it saw, so the entries on the right
were written by our proxies and the first one that is not a trusted proxy
is the client. Everything left of it may be forged and is never looked at.
``X-Forwarded-Proto`` is taken from its last value, the one the nearest
trusted proxy set (a value a client sent ahead of it is never believed).

The result serves throttling (:mod:`oauth_middleware.throttle`) and the
HTTPS requirement (:func:`check_https`).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .clients import is_loopback_host
from .errors import FatalClientError, InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Origin:
    """The client of a request as far as it can be known.

    :param address: the client's IP address; None when it cannot be known
        (no or a malformed ``REMOTE_ADDR``, a malformed forwarded entry).
    :param scheme: ``https`` or ``http``, as the client used it.
    :param proxied: True when a trusted proxy reported ``address``.
    :param no_peer: True when the WSGI server gave no ``REMOTE_ADDR`` at all
        (in-process callers such as WebTest); never True behind a proxy.
    """

    address: IPAddress | None
    scheme: str
    proxied: bool = False
    no_peer: bool = False


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


def is_trusted(address: IPAddress, trusted: Iterable[IPNetwork]) -> bool:
    """True when ``address`` is in one of the ``trusted`` networks."""
    return any(address in network for network in trusted)


def request_origin(environ: Mapping[str, Any], trusted: tuple[IPNetwork, ...]) -> Origin:
    """The client's address and scheme for the WSGI ``environ``.

    :param trusted: the ``trusted_proxies`` setting.
    """
    remote = str(environ.get("REMOTE_ADDR") or "")
    scheme = "https" if environ.get("wsgi.url_scheme") == "https" else "http"
    peer = parse_ip(remote)
    if peer is None or not is_trusted(peer, trusted):
        return Origin(peer, scheme, no_peer=not remote)
    return Origin(
        forwarded_client(str(environ.get("HTTP_X_FORWARDED_FOR", "")), peer, trusted),
        forwarded_scheme(str(environ.get("HTTP_X_FORWARDED_PROTO", "")), scheme),
        proxied=True,
    )


def forwarded_client(header: str, peer: IPAddress, trusted: tuple[IPNetwork, ...]) -> IPAddress | None:
    """The client in an ``X-Forwarded-For`` that the trusted ``peer`` sent.

    Right to left, trusted proxies are skipped; the first other address is
    the client. An entry that is not an address (``unknown``, garbage) ends
    the walk with None: whoever wrote it, we cannot tell who the client is.
    When every entry is a trusted proxy, the leftmost one is the client.
    """
    client = peer
    for entry in reversed(header.split(",")):
        if not entry.strip():
            continue
        address = parse_ip(entry)
        if address is None:
            return None
        client = address
        if not is_trusted(address, trusted):
            break
    return client


def forwarded_scheme(header: str, default: str) -> str:
    """The last ``X-Forwarded-Proto`` value if it is ``http`` or ``https``, else ``default``."""
    last = header.rpartition(",")[2].strip().lower()
    return last if last in ("http", "https") else default


def is_local(origin: Origin, host: str) -> bool:
    """True for a request to a loopback ``Host`` from a loopback client (or no peer at all).

    Both must hold: a proxy on the same machine makes every request come from
    127.0.0.1, but it forwards the public ``Host``, so its traffic is not
    local; and nobody outside the machine sends ``Host: localhost`` by mistake.

    :param host: the ``Host`` header (with or without a port).
    """
    try:
        hostname = urlsplit(f"//{host}").hostname
    except ValueError:
        return False
    if not is_loopback_host(hostname):
        return False
    if origin.address is None:
        return origin.no_peer
    return origin.address.is_loopback


def check_https(origin: Origin, host: str, *, page: bool = False) -> None:
    """Refuse a plain-HTTP request unless it is local (see :func:`is_local`).

    :param page: the request is a browser's (the authorization endpoint),
        so the error is a page, never a redirect.
    :raises InvalidRequest: HTTP from elsewhere (``FatalClientError`` for a page).
    """
    if origin.scheme == "https" or is_local(origin, host):
        return
    message = "HTTPS is required"
    raise FatalClientError(message) if page else InvalidRequest(message)
