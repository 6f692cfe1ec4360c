"""The login and consent pages: their CSRF tokens and their templates.

A form's CSRF token is an HMAC, under a key derived from ``session_secret``,
of the form's purpose, the pending request's identity
(:attr:`~oauth_middleware.interaction.PendingRequest.id`), the browser's
session id and the user. A token therefore only works for the same pending
request, browser session and user it was shown for; nothing is stored for it.

Pages are :class:`string.Template` HTML files (built in, or replaced by the
``consent_template`` and ``login_template`` settings); every value is
HTML-escaped before it is put in. The consent template may show the client's
attributes as ``$meta_NAME`` (empty for a client without that attribute).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import string
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING

from webob import Response

from ..responses import html_document
from ..settings import Settings
from ..users import Session
from .pending import PendingRequest

if TYPE_CHECKING:
    from ..models import Client
    from ..user_grants import UserGrant


def csrf_token(key: bytes, purpose: str, session: Session, user_id: str | None, pending_id: str) -> str:
    """The CSRF token of a form.

    :param purpose: ``login`` or ``consent``, so one form's token never passes the other.
    :param session: the browser's session (its id binds the token to the browser).
    :param user_id: the user the consent page was shown to (None at login).
    :param pending_id: the identity of the pending request the form decides.
    """
    message = json.dumps([purpose, session.sid, user_id, pending_id], separators=(",", ":"))
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _builtin(name: str) -> str:
    return resources.files("oauth_middleware").joinpath(f"templates/{name}").read_text(encoding="utf-8")


class Pages:
    """Renders the login and consent pages and checks their CSRF tokens.

    :param settings: the template settings (empty means the built-in page).
    :param csrf_key: key of the forms' CSRF tokens.
    """

    def __init__(self, settings: Settings, csrf_key: bytes) -> None:
        self.login_template = string.Template(settings.login_template or _builtin("login.html"))
        self.consent_template = string.Template(settings.consent_template or _builtin("consent.html"))
        # A client without an attribute the template names shows nothing there, not ``$meta_x``.
        self.consent_meta = dict.fromkeys(_meta_names(self.consent_template), "")
        self.csrf_key = csrf_key
        self.applications_template = string.Template(_builtin("applications.html"))

    def login(
        self,
        pending: PendingRequest,
        session: Session,
        action_url: str,
        *,
        error: str = "",
        username: str = "",
        retry_after: int | None = None,
    ) -> Response:
        """The login page for ``pending``; ``error`` is shown above the form.

        With ``retry_after`` (the user is throttled) it is a 429 with ``Retry-After``.
        """
        token = csrf_token(self.csrf_key, "login", session, None, pending.id)
        values = {
            "action_url": html.escape(action_url),
            "hidden_fields": _hidden_fields(pending.fields, step="login", csrf_token=token),
            "client_name": html.escape(pending.client.name or pending.client.client_id),
            "client_id": html.escape(pending.client.client_id),
            "error": f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
            "username": html.escape(username),
        }
        page = self.login_template.safe_substitute(values)
        if retry_after is None:
            return html_document(page)
        response = html_document(page, 429)
        response.headers["Retry-After"] = str(retry_after)
        return response

    def consent(self, pending: PendingRequest, session: Session, user_id: str, action_url: str) -> Response:
        """The consent page: who asks, for which scopes, approve or deny."""
        token = csrf_token(self.csrf_key, "consent", session, user_id, pending.id)
        scope_items = "".join(f"<li><code>{html.escape(scope)}</code></li>" for scope in pending.scopes)
        values = {
            "action_url": html.escape(action_url),
            "hidden_fields": _hidden_fields(pending.fields, step="consent", csrf_token=token),
            "client_name": html.escape(pending.client.name or pending.client.client_id),
            "client_id": html.escape(pending.client.client_id),
            "scope_items": scope_items or "<li>no particular scope</li>",
            "user": html.escape(user_id),
            "redirect_host": html.escape(pending.destination),
            **self.consent_meta,
            **{f"meta_{key}": html.escape(value) for key, value in pending.client.meta.items()},
        }
        return html_document(self.consent_template.safe_substitute(values))

    def applications(
        self,
        page: PendingRequest,
        session: Session,
        user_id: str,
        action_url: str,
        grants: Sequence[UserGrant],
        clients: Mapping[str, Client],
    ) -> Response:
        """The authorized-applications page: each client holding grants, and its revoke button.

        :param page: the page as a pending request (its id binds the revoke forms' CSRF token).
        :param clients: the registered clients among ``grants``' (a removed one shows its id).
        """
        token = csrf_token(self.csrf_key, "revoke", session, user_id, page.id)
        items = []
        for grant in grants:
            client = clients.get(grant.client_id)
            name = (client.name if client is not None else "") or grant.client_id
            description = client.meta.get("description", "") if client is not None else ""
            scopes = " ".join(f"<code>{html.escape(scope)}</code>" for scope in grant.scopes) or "none"
            since = time.strftime("%Y-%m-%d", time.gmtime(grant.since))
            items.append(
                f"<li><strong>{html.escape(name)}</strong> (<code>{html.escape(grant.client_id)}</code>)"
                + (f'<br><span class="muted">{html.escape(description)}</span>' if description else "")
                + f"<br>Since {since}; scopes: {scopes}"
                + f'<br><form method="post" action="{html.escape(action_url)}">'
                + _hidden_fields({"client_id": grant.client_id}, csrf_token=token)
                + '<button type="submit">Revoke</button></form></li>'
            )
        listing = f"<ul>{''.join(items)}</ul>" if items else "<p>None.</p>"
        values = {"user": html.escape(user_id), "applications": listing}
        return html_document(self.applications_template.safe_substitute(values))

    def check(
        self,
        purpose: str,
        session: Session | None,
        user_id: str | None,
        pending: PendingRequest,
        presented: str | None,
    ) -> bool:
        """Whether a posted form's CSRF token is right for this request, session and user (constant time)."""
        if session is None or not presented:
            return False
        expected = csrf_token(self.csrf_key, purpose, session, user_id, pending.id)
        return hmac.compare_digest(expected.encode("ascii"), presented.encode("utf-8", "replace"))


def _meta_names(template: string.Template) -> set[str]:
    """The ``$meta_NAME`` placeholders of a template (client attributes it shows)."""
    names = set()
    for match in template.pattern.finditer(template.template):
        name = match.group("named") or match.group("braced")
        if name and name.startswith("meta_"):
            names.add(name)
    return names


def _hidden_fields(fields: Mapping[str, str] | Sequence[tuple[str, str]], **extra: str) -> str:
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    merged = [*((name, value) for name, value in pairs if name not in extra), *extra.items()]
    return "\n".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in merged
    )
