"""The one way the server reads a URL from the network, hardened against what a client could point it at.

Client ID metadata documents, clients' ``jwks_uri`` and the guard's
``jwks_url`` are all read here, so the limits hold in one place:

* ``https`` only; ``http`` only to a loopback address the
  ``fetch_allowed_networks`` setting allows (a test or a development set-up);
  no user info in the URL;
* the host name is resolved once, every address it resolves to is checked,
  and the connection goes to the checked address (a DNS answer that changes
  between the check and the connection, DNS rebinding, cannot move it);
* with ``restricted`` (URLs a client chose), an address that is not a global
  unicast one (RFC 6890 special-use: private, loopback, link-local, shared,
  multicast, reserved, unspecified) is refused unless the ``allowed``
  networks name it, so a client cannot make us reach into our own network
  (server-side request forgery);
* one deadline for the whole exchange, connection to last byte, so a server
  that trickles its answer cannot hold a worker longer than ``timeout``;
* at most ``limit`` bytes of body, a 200 status (no redirect is followed,
  none is even read), and a JSON body.

The answer is read whole (bounded) and then parsed by :mod:`http.client`, so
its chunked and length handling are the standard library's.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["FetchError", "Fetched", "Fetcher", "IPNetwork", "max_age"]

#: Sent as ``User-Agent`` with every fetch.
USER_AGENT = "oauth-middleware"
#: Bytes of status line and headers read beyond the body limit.
_HEADROOM = 16 * 1024
#: What a URL we fetch may hold: printable ASCII, nothing a request line could be split with.
_URL_CHARS = re.compile(r"[\x21-\x7e]+")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchError(Exception):
    """A fetch was refused or failed; the message says why in one line, without the body."""


@dataclass(frozen=True)
class Fetched:
    """A fetched JSON document.

    :param document: the parsed JSON value.
    :param max_age: seconds it may be cached, from ``Cache-Control`` (0 for
        ``no-store`` and ``no-cache``); None when the answer says nothing.
    """

    document: Any
    max_age: int | None


class Fetcher:
    """GETs JSON documents within fixed limits (see the module).

    :param timeout: seconds for the whole exchange, connection included.
    :param restricted: refuse special-use addresses (URLs a client chose); False
        for a URL the operator configured (the guard's ``jwks_url``).
    :param allowed: networks allowed even though special-use (``fetch_allowed_networks``);
        ``http`` is allowed to the loopback addresses among them.
    :param context: the TLS context; by default the system's trust store.

    Example::

        fetcher = Fetcher(timeout=5)
        fetched = fetcher.fetch("https://app.example/client.json", limit=5120, json_type=True)
    """

    def __init__(
        self,
        *,
        timeout: float,
        restricted: bool = True,
        allowed: Iterable[IPNetwork] = (),
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.restricted = restricted
        self.allowed = tuple(allowed)
        self.context = context or ssl.create_default_context()

    def fetch(self, url: str, limit: int, *, json_type: bool = False) -> Fetched:
        """GET ``url`` and parse its JSON body.

        :param limit: the largest body read, in bytes.
        :param json_type: refuse a ``Content-Type`` that is not JSON
            (``application/json`` or ``application/...+json``).
        :raises FetchError: the URL, its address or the answer is refused, or the exchange failed.
        """
        parts = urlsplit(url) if _URL_CHARS.fullmatch(url) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
            raise FetchError("only absolute http(s) URLs are fetched")
        if parts.username is not None or parts.password is not None:
            raise FetchError("a URL with user info is not fetched")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError("the URL has a bad port") from None
        deadline = time.monotonic() + self.timeout
        address = self._address(parts.hostname, port, parts.scheme)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        raw = self._exchange(
            parts.scheme, parts.hostname, parts.netloc, address, port, target, deadline, limit
        )
        return _parse(raw, limit, json_type)

    def _address(self, host: str, port: int, scheme: str) -> str:
        """The one address to connect to: every address ``host`` resolves to must pass."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise FetchError(f"cannot resolve {host}: {exc}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]
        if not addresses:
            raise FetchError(f"{host} has no address")
        for address in addresses:
            if not self._permitted(address):
                raise FetchError(f"{host} resolves to a special-use address ({address}), not fetched")
        if (
            scheme == "http"
            and self.restricted
            and not all(a.is_loopback and self._allowed(a) for a in addresses)
        ):
            raise FetchError("plain http is fetched only from an allowed loopback address")
        return str(addresses[0])

    def _permitted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if not self.restricted or self._allowed(address):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return self._permitted(address.ipv4_mapped)
        return address.is_global and not (address.is_multicast or address.is_reserved)

    def _allowed(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in self.allowed)

    def _exchange(
        self,
        scheme: str,
        host: str,
        netloc: str,
        address: str,
        port: int,
        target: str,
        deadline: float,
        limit: int,
    ) -> bytes:
        """Send the request to ``address`` and read the raw answer, by the deadline and within the limit."""
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: application/json\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        chunks: list[bytes] = []
        size = 0
        try:
            sock = socket.create_connection((address, port), timeout=_remaining(deadline))
            with sock:
                conn = self.context.wrap_socket(sock, server_hostname=host) if scheme == "https" else sock
                with conn:
                    conn.settimeout(_remaining(deadline))
                    conn.sendall(request)
                    while size <= limit + _HEADROOM:
                        conn.settimeout(_remaining(deadline))
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        chunks.append(chunk)
                        size += len(chunk)
        except (OSError, ssl.SSLError) as exc:  # timeouts are OSErrors too
            raise FetchError(_one_line(exc)) from None
        if size > limit + _HEADROOM:
            raise FetchError(f"the document is larger than {limit} bytes")
        return b"".join(chunks)


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline``; a timeout when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


class _Received:
    """The bytes of an answer, as the socket :class:`http.client.HTTPResponse` reads from."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.raw)


def _parse(raw: bytes, limit: int, json_type: bool) -> Fetched:
    """Status, headers and JSON body of a raw HTTP answer."""
    response = http.client.HTTPResponse(_Received(raw))  # type: ignore[arg-type]
    try:
        response.begin()
        body = response.read()
    except (http.client.HTTPException, ValueError) as exc:
        raise FetchError(f"not a usable HTTP answer ({type(exc).__name__})") from None
    if response.status != 200:
        # Redirects are answers like any other: their Location is never followed.
        raise FetchError(f"answered HTTP {response.status}, not 200")
    if len(body) > limit:
        raise FetchError(f"the document is larger than {limit} bytes")
    media_type = (response.getheader("Content-Type") or "").partition(";")[0].strip().lower()
    if json_type and not (
        media_type == "application/json" or re.fullmatch(r"application/\S+\+json", media_type)
    ):
        raise FetchError(f"the answer is {media_type or 'untyped'}, not JSON")
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise FetchError("the answer is not JSON") from None
    return Fetched(document, max_age(response.getheader("Cache-Control") or ""))


def _no_constant(name: str) -> Any:
    """Refuse ``NaN`` and ``Infinity``, which Python's parser takes and JSON does not have."""
    raise ValueError(f"{name} is not JSON")


def max_age(cache_control: str) -> int | None:
    """Seconds a ``Cache-Control`` value lets an answer be kept: 0 for ``no-store``/``no-cache``.

    >>> max_age("public, max-age=600"), max_age("no-store"), max_age("")
    (600, 0, None)
    """
    found: int | None = None
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 0
        if name == "max-age" and value.strip('"').isdigit():
            found = int(value.strip('"'))
    return found


def _one_line(exc: BaseException) -> str:
    """Why a connection failed, in one short line."""
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__
