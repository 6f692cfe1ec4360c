"""Who the user is, at the authorization endpoint and in the password grant.

At the authorization endpoint the logged-in user comes from, in order:
``REMOTE_USER`` set by an upstream WSGI component, the ``authenticate_user``
callable, and the session cookie of the built-in login page. Passwords are
checked by the ``verify_password`` callable.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webob import Request

from .clock import SYSTEM_CLOCK, Clock
from .settings import Settings

log = logging.getLogger("oauth_middleware.users")

#: Longest username passed to ``verify_password`` (and written to logs).
MAX_USERNAME = 200


@dataclass(frozen=True)
class Session:
    """A browser's session with the authorization endpoint.

    :param sid: random id; CSRF tokens are bound to it.
    :param user_id: who logged in on the built-in login page; None before login.
    :param expires_at: Unix time the session ends.
    """

    sid: str
    user_id: str | None
    expires_at: int


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

    def new(self, user_id: str | None) -> Session:
        """A fresh session with a new id (a new id on login defeats session fixation)."""
        return Session(secrets.token_urlsafe(16), user_id, int(self.clock.time()) + self.ttl)

    def encode(self, session: Session) -> str:
        """The signed cookie value of ``session``."""
        payload = json.dumps(
            {"i": session.sid, "u": session.user_id, "e": session.expires_at}, separators=(",", ":")
        )
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
            session = Session(str(data["i"]), data["u"], int(data["e"]))
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

    def current(self, request: Request, session: Session | None) -> str | None:
        """The logged-in user's id: ``REMOTE_USER``, then the callable, then the session."""
        remote = request.environ.get("REMOTE_USER")
        if remote:
            return str(remote)
        if self.authenticate_user is not None:
            user_id = self.authenticate_user(request)
            if user_id:
                return str(user_id)
        return session.user_id if session is not None else None

    def check_password(self, username: str, password: str) -> str | None:
        """The user id ``verify_password`` returns for these credentials, or None.

        A callable answering ``True`` means the username is the user id.
        """
        if self.verify_password is None or not username or len(username) > MAX_USERNAME:
            return None
        result = self.verify_password(username, password)
        if result is True:
            return username
        if isinstance(result, str) and result:
            return result
        return None


def log_failed_login(where: str, username: str, client_id: str) -> None:
    """Log a failed password check: who and for which client, never the password."""
    log.warning("%s: wrong username or password: username=%r client_id=%r", where, username[:100], client_id)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
