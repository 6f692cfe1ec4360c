"""The login and consent pages: their CSRF tokens and their templates.

A form's CSRF token is an HMAC, under a key derived from ``session_secret``,
of the form's purpose, the browser's session id, the user and the whole
authorization request. A token therefore only works for the same browser
session, user and request it was shown for; nothing is stored for it.

Pages are :class:`string.Template` HTML files (built in, or replaced by the
``consent_template`` and ``login_template`` settings); every value is
HTML-escaped before it is put in.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import string
from collections.abc import Mapping
from importlib import resources
from urllib.parse import urlsplit

from webob import Response

from .authorization import AuthorizationRequest
from .responses import html_document
from .settings import Settings
from .users import Session


def csrf_token(
    key: bytes, purpose: str, session: Session, user_id: str | None, params: Mapping[str, str]
) -> str:
    """The CSRF token of a form.

    :param purpose: ``login`` or ``consent``, so one form's token never passes the other.
    :param session: the browser's session (its id binds the token to the browser).
    :param user_id: the user the consent page was shown to (None at login).
    :param params: the authorization request's parameters.
    """
    message = json.dumps([purpose, session.sid, user_id, sorted(params.items())], separators=(",", ":"))
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def check_csrf(
    key: bytes,
    purpose: str,
    session: Session | None,
    user_id: str | None,
    params: Mapping[str, str],
    presented: str | None,
) -> bool:
    """True when ``presented`` is the token :func:`csrf_token` gives (constant time)."""
    if session is None or not presented:
        return False
    expected = csrf_token(key, purpose, session, user_id, params)
    return hmac.compare_digest(expected.encode("ascii"), presented.encode("utf-8", "replace"))


def _builtin(name: str) -> str:
    return resources.files("oauth_middleware").joinpath(f"templates/{name}").read_text(encoding="utf-8")


class Pages:
    """Renders the login and consent pages.

    :param settings: the template settings (empty means the built-in page).
    :param csrf_key: key of the forms' CSRF tokens.
    """

    def __init__(self, settings: Settings, csrf_key: bytes) -> None:
        self.login_template = string.Template(settings.login_template or _builtin("login.html"))
        self.consent_template = string.Template(settings.consent_template or _builtin("consent.html"))
        self.csrf_key = csrf_key

    def login(
        self,
        request: AuthorizationRequest,
        session: Session,
        action_url: str,
        error: str = "",
        username: str = "",
    ) -> Response:
        """The login page for ``request``; ``error`` is shown above the form."""
        token = csrf_token(self.csrf_key, "login", session, None, request.params)
        values = {
            "action_url": html.escape(action_url),
            "hidden_fields": _hidden_fields(request.params, step="login", csrf_token=token),
            "client_name": html.escape(request.client.name or request.client.client_id),
            "client_id": html.escape(request.client.client_id),
            "error": f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
            "username": html.escape(username),
        }
        return html_document(self.login_template.safe_substitute(values))

    def consent(
        self, request: AuthorizationRequest, session: Session, user_id: str, action_url: str
    ) -> Response:
        """The consent page: who asks, for which scopes, approve or deny."""
        token = csrf_token(self.csrf_key, "consent", session, user_id, request.params)
        scope_items = "".join(f"<li><code>{html.escape(scope)}</code></li>" for scope in request.scopes)
        values = {
            "action_url": html.escape(action_url),
            "hidden_fields": _hidden_fields(request.params, step="consent", csrf_token=token),
            "client_name": html.escape(request.client.name or request.client.client_id),
            "client_id": html.escape(request.client.client_id),
            "scope_items": scope_items or "<li>no particular scope</li>",
            "user": html.escape(user_id),
            "redirect_host": html.escape(urlsplit(request.redirect_uri).netloc or request.redirect_uri),
        }
        return html_document(self.consent_template.safe_substitute(values))

    def check(
        self,
        purpose: str,
        session: Session | None,
        user_id: str | None,
        params: Mapping[str, str],
        token: str | None,
    ) -> bool:
        """Whether a posted form's CSRF token is right for this session, user and request."""
        return check_csrf(self.csrf_key, purpose, session, user_id, params, token)


def _hidden_fields(params: Mapping[str, str], **extra: str) -> str:
    fields = {**params, **extra}
    return "\n".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
