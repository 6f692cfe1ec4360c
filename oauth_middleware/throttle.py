"""Throttling of failed client authentications and failed user passwords.

Failures are counted in the store, so the count holds across workers and
hosts that share it. An attempt counts against two counters:

* its *pair*, the client id (token, revocation and introspection
  endpoints) or the username (password grant, built-in login page)
  together with the client's address: at most ``throttle_max_failures``;
* its address alone, whatever it named: at most
  ``throttle_address_max_failures`` (one address trying many accounts).

A guesser is blocked where it guesses from, while the owner of the
credential, at another address, is not: a block per client id or username
would let anyone lock its owner out (RFC 6819 §5.1.4.2.3). A guesser spread
over many addresses gets ``throttle_max_failures`` guesses per address and
window; the 256 random bits of a generated client secret, and the strength
of users' passwords, are the defence there. An IPv6 client counts per /64,
which one host commonly owns whole.

**Counted first.** An attempt is counted *before* its credentials are
checked (``Store.incr`` is atomic) and given back (``Store.decr``) when they
prove right; a store that can do both counters in one operation does
(SQLite: one statement each way, the look for blocks inside the first).
An attempt that finds its counter full is never checked: it waits (up to a
second) for attempts still being checked to give their count back, and is
refused if none does. However many requests arrive at once, no
more credential checks fail per window than the limit allows, and a burst
of right ones is only held up for the milliseconds its checks take. When a failure fills a counter, its pair or
address is blocked for ``throttle_window`` seconds: 429 with
``Retry-After``, answered before anything is counted or checked, so blocked
requests never lengthen the block and even the right credential learns
nothing. A success gives back its own attempt only: a reset would let one
valid credential wipe the count of the address guessing from.

**Unknown address.** When the client's address cannot be known (a
Unix-socket peer that ``trusted_proxies`` does not name, a forwarded entry
that is not an address), the pair is counted with the address ``unknown``
and the address alone is not counted: every such request would share it,
and one guesser would lock out everybody. A client id or username can then
be blocked by anyone, for everyone, so a warning says once per process how
to make addresses known (``trusted_proxies = unix`` behind a Unix socket).

A store that cannot be reached raises ``StoreUnavailable`` here like
anywhere else: the request fails closed with 503, never unthrottled.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from webob import Request

from .clock import SYSTEM_CLOCK, Clock
from .errors import TooManyRequests
from .proxies import IPAddress, Origin, request_origin_once
from .records import BlockRecord
from .repository import Repository
from .request_context import RequestContext
from .settings import Settings
from .users import Identity, Users, log_failed_login

log = logging.getLogger("oauth_middleware.throttle")

#: Seconds an attempt waits for a counter full of attempts still being checked, and between looks.
MAX_WAIT, WAIT_STEP = 1.0, 0.05

#: Client ids that could be registered (RFC 6749 VSCHAR, at most 200): only those get a counter.
_CLIENT_ID = re.compile(r"[\x20-\x7e]{1,200}")


def normalize_username(username: str) -> str:
    """The default ``normalize_username``: spaces stripped, Unicode NFKC, casefolded.

    ``Alice``, `` alice `` and ``alice`` in full-width letters count as one user.
    """
    return unicodedata.normalize("NFKC", username).strip().casefold()


@functools.lru_cache(maxsize=4096)
def counted_address(address: IPAddress) -> str:
    """An address as the throttle counts it: an IPv6 address as its /64, which one host commonly owns.

    Cached (bounded), as :func:`.parse_ip` is: the same few peers come back on
    every request, and ``ipaddress`` formats an address slowly.
    """
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class Counter:
    """One count an attempt goes into.

    :param subject: ``addr:<address>|client:<id>``, ``addr:<address>|user:<sha256>``
        or ``addr:<address>`` (the key is ``fail:<subject>``, its block ``block:<subject>``).
    :param limit: failures it may hold before its subject is blocked.
    """

    subject: str
    limit: int


class Attempt:
    """An attempt counted against its counters, waiting for its credentials' verdict.

    :param throttle: the throttle that counted it.
    :param counts: each counter with the count this attempt brought it to.
    """

    def __init__(
        self, throttle: Throttle, counts: tuple[tuple[Counter, int], ...], subjects: tuple[str, ...]
    ) -> None:
        self.throttle = throttle
        self.counts = counts
        #: The subjects of ``counts``' counters, in order.
        self.subjects = subjects

    def succeeded(self) -> None:
        """Give the attempt back: right credentials are no failure."""
        if self.subjects:
            self.throttle.repository.give_back_attempts(self.subjects)

    def failed(self) -> None:
        """Keep the count; block the subjects whose counter this failure filled."""
        for counter, count in self.counts:
            if count >= counter.limit:
                self.throttle.block(counter)


class Throttle:
    """Counts attempts per pair and address, and refuses blocked ones.

    :param repository: where counters and blocks are kept (``fail:`` and ``block:`` keys).
    :param settings: ``throttle``, ``throttle_max_failures``,
        ``throttle_address_max_failures``, ``throttle_window``,
        ``normalize_username`` and ``trusted_proxies`` (for the client's address).
    :param clock: the time blocks end by, and the attempt's short wait waits on.

    Example::

        attempt = throttle.attempt(throttle.counters(throttle.origin(request), throttle.user_subject(name)))
        if check_password(name, password):      # TooManyRequests above when blocked
            attempt.succeeded()
        else:
            attempt.failed()
    """

    def __init__(self, repository: Repository, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.repository = repository
        self.clock = clock
        self.enabled = settings.throttle
        self.max_failures = settings.throttle_max_failures
        self.address_max_failures = settings.throttle_address_max_failures
        self.window = settings.throttle_window
        self.trusted_proxies = settings.trusted_proxies
        self.normalize = settings.normalize_username or normalize_username
        self._warned_unknown = False
        # Counters are values of the address and subject alone: built once per pair (bounded),
        # as counted_address formats an address once, not on every token request.
        self._counters = functools.lru_cache(maxsize=4096)(self._new_counters)

    def origin(self, request: Request | RequestContext) -> Origin:
        """Where ``request`` comes from, computed once per request (:func:`.request_origin_once`).

        An unknown address is worth a warning, once per process, when counting is on.
        """
        origin = request_origin_once(request.environ, self.trusted_proxies)
        if origin.address is None and self.enabled:
            self._warn_unknown(request)
        return origin

    def counters(self, origin: Origin, subject: str | None) -> tuple[Counter, ...]:
        """The counters of an attempt naming ``subject`` (None: nothing to name) from ``origin``.

        None at all with ``throttle = false``: an attempt against no counter is never refused.
        """
        if not self.enabled:
            return ()
        address = None if origin.address is None else counted_address(origin.address)
        return self._counters(address, subject)

    def _new_counters(self, address: str | None, subject: str | None) -> tuple[Counter, ...]:
        counters = []
        if subject is not None:
            counters.append(Counter(f"addr:{address or 'unknown'}|{subject}", self.max_failures))
        if address is not None:
            counters.append(Counter(f"addr:{address}", self.address_max_failures))
        return tuple(counters)

    @staticmethod
    def client_subject(client_id: str) -> str | None:
        """``client:<id>`` of the client id an attempt names, or None for one no client could have."""
        return f"client:{client_id}" if _CLIENT_ID.fullmatch(client_id) else None

    def user_subject(self, username: str) -> str:
        """``user:<sha256>`` of the normalised username: fixed length, never the name in clear."""
        counted = str(self.normalize(username))
        return f"user:{hashlib.sha256(counted.encode('utf-8', 'replace')).hexdigest()}"

    def attempt(self, counters: tuple[Counter, ...]) -> Attempt:
        """Count an attempt against ``counters`` before its credentials are checked.

        A counter can be full of attempts still being checked (a client's
        burst of concurrent requests) rather than of failures: the attempt then
        waits for them, up to :data:`MAX_WAIT` seconds, instead of being
        checked beyond the limit.

        :raises TooManyRequests: a subject is blocked, or a counter stayed full
            (then the attempt is not counted at all).
        """
        deadline = self.clock.monotonic() + MAX_WAIT
        while True:
            if not self.repository.counts_look_for_blocks:
                self._refuse_if_blocked(counters)
            attempt = self._count(counters)
            if attempt is not None:
                return attempt
            if self.clock.monotonic() >= deadline:
                raise TooManyRequests(1)
            self.clock.sleep(WAIT_STEP)

    def _count(self, counters: tuple[Counter, ...]) -> Attempt | None:
        """Count an attempt against every counter, or against none when one is full.

        The counters are counted together (one store operation where the store
        has one) and all given back when one of them went past its limit.

        :raises TooManyRequests: the store's operation looked for blocks too and found
            one (nothing was counted).
        """
        if not counters:
            return Attempt(self, (), ())
        subjects = tuple([counter.subject for counter in counters])
        counts = self.repository.count_attempts(subjects, self.window)
        if counts is None:
            self._refuse_if_blocked(counters)
            return None  # the block ended between the store's look and ours: try again
        for counter, count in zip(counters, counts, strict=True):
            if count > counter.limit:
                self.repository.give_back_attempts(subjects)  # not counted: it will not be checked
                return None
        return Attempt(self, tuple(zip(counters, counts, strict=True)), subjects)

    def clear(self, address: IPAddress | None, subject: str | None) -> tuple[str, ...]:
        """Forget the count and block of an address (None: unknown) and of its pair with ``subject``.

        :returns: the subjects cleared.
        """
        counted = None if address is None else counted_address(address)
        subjects = tuple(counter.subject for counter in self._counters(counted, subject))
        for cleared in subjects:
            self.repository.clear_throttle(cleared)
        return subjects

    def block(self, counter: Counter) -> None:
        """Block ``counter``'s subject for ``throttle_window`` seconds (an existing block stays)."""
        if self.repository.block(counter.subject, BlockRecord(self.clock.time() + self.window), self.window):
            log.warning(
                "throttling %s for %d s after %d failures", counter.subject, self.window, counter.limit
            )

    def _refuse_if_blocked(self, counters: tuple[Counter, ...]) -> None:
        for counter in counters:
            block = self.repository.find_block(counter.subject)
            left = 0.0 if block is None else block.until - self.clock.time()
            if left > 0:
                raise TooManyRequests(max(1, math.ceil(left)))

    def _warn_unknown(self, request: Request | RequestContext) -> None:
        if self._warned_unknown:
            return
        self._warned_unknown = True
        log.warning(
            "the client address is unknown (REMOTE_ADDR %r): failures are counted per client id "
            "and username alone, so anyone can block one for everyone. Behind a Unix socket, set "
            "trusted_proxies = unix and let the proxy send X-Forwarded-For.",
            str(request.environ.get("REMOTE_ADDR", ""))[:100],
        )


class PasswordContext(Protocol):
    """What checking a user's password asks for: the users and the throttle."""

    @property
    def throttle(self) -> Throttle:
        """Counts failed passwords per username and address."""
        ...

    @property
    def users(self) -> Users:
        """Checks a username and password (``verify_password``)."""
        ...


def verify_password(
    context: PasswordContext,
    request: Request | RequestContext,
    username: str,
    password: str,
    *,
    where: str,
    client_id: str,
) -> Identity | None:
    """The user for a username and password (password grant, login page), behind the throttle.

    :param context: the throttle and the users (a grant's or the login page's context).
    :param where: what asked, for the log line of a failure.
    :param client_id: the client the user logs in to, for the same line.
    :raises TooManyRequests: blocked: the password is not checked.
    """
    throttle = context.throttle
    attempt = throttle.attempt(throttle.counters(throttle.origin(request), throttle.user_subject(username)))
    user = context.users.check_password(username, password)
    if user is None:
        log_failed_login(where, username, client_id)
        attempt.failed()
        return None
    attempt.succeeded()
    return user
