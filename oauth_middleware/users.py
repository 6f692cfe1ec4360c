"""Who the user is, at the authorization endpoint and in the password grant.

At the authorization endpoint the logged-in user comes from, in order:
``REMOTE_USER`` set by an upstream WSGI component, the ``authenticate_user``
callable, and the session cookie of the built-in login page. Passwords are
checked by the ``verify_password`` callable. Each may answer data for the
user's tokens with the user id (see :mod:`oauth_middleware.token_data`).

The session cookie is ``base64url(json).base64url(hmac)``: HMAC-SHA256 under
a key derived from ``session_secret``, with its expiry inside the signed
part, so a cookie cannot be forged, altered or kept alive past its time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from webob import Request

from .clock import SYSTEM_CLOCK, Clock
from .settings import Settings
from .token_data import UPSTREAM_DATA_KEY, checked, split_user

log = logging.getLogger("oauth_middleware.users")

#: Longest username passed to ``verify_password`` (and written to logs).
MAX_USERNAME = 200


class Identity(str):
    """Who the user is: the user id, carrying the data their tokens are to carry.

    A ``str`` (the id itself), so a flow whose ``approve`` takes the user id
    (:class:`~oauth_middleware.interaction.PendingRequest`) keeps working.

    :param user_id: the user's id.
    :param data: what the hook that found the user returned with it (checked:
        JSON, within ``token_data_max_bytes``); empty when nothing.
    """

    data: Mapping[str, Any]

    def __new__(cls, user_id: str, data: Mapping[str, Any] | None = None) -> Identity:
        identity = super().__new__(cls, user_id)
        identity.data = MappingProxyType(dict(data or {}))
        return identity

    @property
    def user_id(self) -> str:
        """The user id, as a plain ``str``."""
        return str.__str__(self)

    @classmethod
    def of(cls, user: str) -> Identity:
        """``user`` as an identity: itself, or a plain user id with no data."""
        return user if isinstance(user, Identity) else cls(user)


@dataclass(frozen=True)
class Session:
    """A browser's session with the authorization endpoint.

    :param sid: random id; CSRF tokens are bound to it.
    :param user_id: who logged in on the built-in login page; None before login.
    :param expires_at: Unix time the session ends.
    :param data: the data ``verify_password`` returned at login, for the user's tokens.
    """

    sid: str
    user_id: str | None
    expires_at: int
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> Identity | None:
        """Who logged in on this session, with their data; None before login."""
        return None if self.user_id is None else Identity(self.user_id, self.data)


@dataclass(frozen=True)
class Cookie:
    """A cookie to set on a response (rendered by :func:`~oauth_middleware.responses.set_cookie`).

    :param name: cookie name.
    :param value: its (signed) value.
    :param path: the only path it is sent to.
    :param max_age: seconds it lives.
    :param secure: whether it is sent over https only.
    """

    name: str
    value: str
    path: str
    max_age: int
    secure: bool


class SessionCookies:
    """Signs, reads and sets the session cookie.

    :param key: HMAC key (derived from ``session_secret``).
    :param name: cookie name.
    :param ttl: session lifetime in seconds.
    :param clock: the time sessions expire by.

    Example::

        cookies = SessionCookies(key, "oauth2_session", 3600)
        session = cookies.load(request) or cookies.new(None)
    """

    def __init__(self, key: bytes, name: str, ttl: int, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.key = key
        self.name = name
        self.ttl = ttl
        self.clock = clock

    def new(self, user: Identity | None) -> Session:
        """A fresh session with a new id (a new id on login defeats session fixation)."""
        expires_at = int(self.clock.time()) + self.ttl
        if user is None:
            return Session(secrets.token_urlsafe(16), None, expires_at)
        return Session(secrets.token_urlsafe(16), user.user_id, expires_at, user.data)

    def encode(self, session: Session) -> str:
        """The signed cookie value of ``session`` (its data signed, not encrypted: the user may read it)."""
        fields: dict[str, Any] = {"i": session.sid, "u": session.user_id, "e": session.expires_at}
        if session.data:
            fields["d"] = dict(session.data)
        payload = json.dumps(fields, separators=(",", ":"))
        body = _b64(payload.encode("utf-8"))
        return f"{body}.{_b64(self._sign(body))}"

    def load(self, request: Request) -> Session | None:
        """The request's valid, unexpired session, or None."""
        try:
            value = request.cookies.get(self.name)
        except UnicodeDecodeError:  # WebOb decodes every cookie of the header as UTF-8
            return None
        if not value:
            return None
        body, _, signature = value.partition(".")
        try:
            if not hmac.compare_digest(_unb64(signature), self._sign(body)):
                return None
            data = json.loads(_unb64(body))
            session = Session(str(data["i"]), data["u"], int(data["e"]), dict(data.get("d", {})))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if session.expires_at > self.clock.time() else None

    def cookie(self, session: Session, *, path: str, secure: bool) -> Cookie:
        """The cookie that carries ``session``, sent to ``path`` only (and over https only if ``secure``)."""
        max_age = max(1, session.expires_at - int(self.clock.time()))
        return Cookie(self.name, self.encode(session), path, max_age, secure)

    def _sign(self, body: str) -> bytes:
        return hmac.new(self.key, body.encode("ascii"), hashlib.sha256).digest()


class Users:
    """Finds the logged-in user and checks passwords, as the settings say.

    :param settings: ``authenticate_user`` and ``verify_password``.
    :param sessions: the session cookies of the built-in login page.
    """

    def __init__(self, settings: Settings, sessions: SessionCookies) -> None:
        self.authenticate_user: Callable[[Request], Any] | None = settings.authenticate_user
        self.verify_password: Callable[[str, str], Any] | None = settings.verify_password
        self.sessions = sessions
        self.data_limit = settings.token_data_max_bytes

    def current(self, request: Request, session: Session | None) -> Identity | None:
        """The logged-in user: ``REMOTE_USER``, then the callable, then the session.

        An upstream component setting ``REMOTE_USER`` may put the user's data in
        ``environ['oauth2.user_data']``; ``authenticate_user`` may answer
        ``(user_id, data)``.
        """
        environ = request.environ
        remote = environ.get("REMOTE_USER")
        if remote:
            data = checked(environ.get(UPSTREAM_DATA_KEY), source="REMOTE_USER", limit=self.data_limit)
            return Identity(str(remote), data)
        if self.authenticate_user is not None:
            user_id, data = split_user(
                self.authenticate_user(request), source="authenticate_user", limit=self.data_limit
            )
            if user_id:
                return Identity(str(user_id), data)
        return session.identity if session is not None else None

    def check_password(self, username: str, password: str) -> Identity | None:
        """The user ``verify_password`` answers for these credentials, or None.

        The callable answers the user id, ``True`` (the username is the user id)
        or either with the data for the user's tokens: ``(user_id, data)``.
        """
        if self.verify_password is None or not username or len(username) > MAX_USERNAME:
            return None
        result, data = split_user(
            self.verify_password(username, password), source="verify_password", limit=self.data_limit
        )
        if result is True:
            return Identity(username, data)
        if isinstance(result, str) and result:
            return Identity(result, data)
        return None


def log_failed_login(where: str, username: str, client_id: str) -> None:
    """Log a failed password check: who and for which client, never the password."""
    log.warning("%s: wrong username or password: username=%r client_id=%r", where, username[:100], client_id)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
