"""Throttling of failed client authentications and failed user passwords.

Failures are counted in the store (``Store.incr``), so the count holds
across workers and hosts that share it. Each failure counts against
*subjects*:

* a failed client authentication (token, revocation and introspection
  endpoints) against the client id and the client's address;
* a wrong password (password grant, built-in login page) against the
  username and the address; not against the client, which all its users
  share.

A subject's counter lives ``throttle_window`` seconds from its first
failure. When it reaches ``throttle_max_failures`` the subject is blocked
for ``throttle_window`` seconds: requests naming it are answered 429 with
``Retry-After`` *before* any secret or password is checked, so a guesser
learns nothing more, right or wrong. Blocked requests are not counted.

A success does not reset the counters: a reset would let someone holding
one valid credential (their own client, their own account) wipe the count
of the address they guess from, and it would cost a store write on every
success. A store that cannot be reached raises ``StoreUnavailable`` here
like anywhere else: the request fails closed with 503, never unthrottled.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from webob import Request

from .clients import authenticate_client
from .errors import InvalidClient, TooManyRequests
from .models import Client
from .parsing import basic_credentials
from .proxies import request_origin
from .repository import Repository
from .settings import Settings

if TYPE_CHECKING:
    from .server import AuthorizationServer

log = logging.getLogger("oauth_middleware.throttle")

#: Client ids that could be registered (RFC 6749 VSCHAR, at most 200): only those get a counter.
_CLIENT_ID = re.compile(r"[\x20-\x7e]{1,200}")


class Throttle:
    """Counts failures per subject and refuses blocked subjects.

    :param repository: where counters and blocks are kept (``fail:`` and ``block:`` keys).
    :param settings: ``throttle``, ``throttle_max_failures``, ``throttle_window``
        and ``trusted_proxies`` (for the client's address).

    Example::

        subjects = throttle.client_subjects(request, params)
        throttle.check(subjects)            # TooManyRequests while blocked
        if not credentials_ok:
            throttle.failed(subjects)
    """

    def __init__(self, repository: Repository, settings: Settings) -> None:
        self.repository = repository
        self.enabled = settings.throttle
        self.max_failures = settings.throttle_max_failures
        self.window = settings.throttle_window
        self.trusted_proxies = settings.trusted_proxies

    def address_subject(self, request: Request) -> str:
        """``addr:<ip>`` of the request's client; IPv6 clients count per /64.

        A single host commonly owns a whole IPv6 /64, so counting each of its
        addresses apart would let it rotate through them.
        """
        address = request_origin(request.environ, self.trusted_proxies).address
        if address is None:
            return "addr:unknown"
        if isinstance(address, ipaddress.IPv6Address):
            return f"addr:{ipaddress.IPv6Network((address, 64), strict=False)}"
        return f"addr:{address}"

    def client_subjects(self, request: Request, params: Mapping[str, str]) -> tuple[str, ...]:
        """The subjects of a client authentication: its client id (if any) and its address."""
        client_id = params.get("client_id")
        try:
            credentials = basic_credentials(request.environ.get("HTTP_AUTHORIZATION", ""))
        except InvalidClient:
            credentials = None
        if credentials is not None:
            client_id = credentials[0]
        address = self.address_subject(request)
        if client_id is None or not _CLIENT_ID.fullmatch(client_id):
            return (address,)
        return (f"client:{client_id}", address)

    @staticmethod
    def user_subject(username: str) -> str:
        """``user:<sha256>`` of a username: a fixed-length key whatever the name holds."""
        return f"user:{hashlib.sha256(username.encode('utf-8', 'replace')).hexdigest()}"

    def check(self, subjects: Iterable[str]) -> None:
        """Refuse the request while any of ``subjects`` is blocked.

        :raises TooManyRequests: with the seconds left on the block.
        """
        if not self.enabled:
            return
        for subject in subjects:
            until = self.repository.blocked_until(subject)
            left = 0.0 if until is None else until - time.time()
            if left > 0:
                raise TooManyRequests(max(1, math.ceil(left)))

    def failed(self, subjects: Iterable[str]) -> None:
        """Count a failure against each subject; block those that reached the limit."""
        if not self.enabled:
            return
        for subject in subjects:
            if self.repository.count_failure(subject, self.window) < self.max_failures:
                continue
            until = time.time() + self.window
            if self.repository.block(subject, until, self.window):
                log.warning(
                    "throttling %s for %d s after %d failures", subject, self.window, self.max_failures
                )


def authenticate(server: AuthorizationServer, request: Request, params: Mapping[str, str]) -> Client:
    """:func:`~oauth_middleware.clients.authenticate_client` behind the throttle.

    A blocked client id or address is refused before its secret is looked
    at; a failed authentication is counted against both.

    :raises TooManyRequests: blocked.
    :raises InvalidClient: the authentication failed.
    """
    throttle = server.throttle
    subjects = throttle.client_subjects(request, params)
    throttle.check(subjects)
    try:
        return authenticate_client(server.repository, request, params)
    except InvalidClient:
        throttle.failed(subjects)
        raise
