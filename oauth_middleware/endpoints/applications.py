"""The authorized-applications page (``applications_path``, off by default).

A logged-in user sees the clients holding their grants (since when, which
scopes) and revokes a client's with one button: a POST carrying a CSRF token
bound to the browser session and the user, answered with a 303 back to the
page. Nobody logged in: the interaction's login (``REMOTE_USER``,
``authenticate_user``, ``login_url`` or the built-in login page), parked as a
:class:`~oauth_middleware.interaction.PendingRequest` that comes back here.
The page has the headers of the consent page (no framing, no caching, no
referrer) and every value on it is HTML-escaped.
"""

from __future__ import annotations

from typing import Protocol

from webob import Request, Response

from ..errors import FatalClientError, OAuthError
from ..forms import form_items
from ..interaction import Interaction, Pages, PendingRequest, with_cookie
from ..models import Client
from ..repository import Repository
from ..responses import redirect
from ..settings import Settings
from ..user_grants import list_grants, revoke_grants
from ..users import Users
from .base import Endpoint, with_webob

#: The identity of the page as a pending request: its login and revoke forms' CSRF tokens name it.
PAGE_ID = "applications"

#: Whom the login page says the user signs in to.
_PAGE_CLIENT = Client("", None, name="your authorized applications")


class ApplicationsParts(Protocol):
    """What the page shares with the authorization endpoint: users, pages, the interaction."""

    @property
    def repository(self) -> Repository:
        """The user's grants and the clients."""

    @property
    def users(self) -> Users:
        """Who is logged in, and the session cookies."""

    @property
    def pages(self) -> Pages:
        """The page and the CSRF tokens."""

    @property
    def interaction(self) -> Interaction:
        """The login."""


class ApplicationsContext(Protocol):
    """What the page uses of the server."""

    @property
    def settings(self) -> Settings:
        """``applications_path``."""

    @property
    def authorize_context(self) -> ApplicationsParts:
        """Where the shared users, pages and interaction live."""


def applications_page(context: ApplicationsContext, request: Request) -> Response:
    """The list (GET), a revocation (POST), or the login while nobody is logged in."""
    parts = context.authorize_context
    if request.method == "POST" and request.content_type.lower() != "application/x-www-form-urlencoded":
        raise FatalClientError("the body must be application/x-www-form-urlencoded")
    items = form_items(request, FatalClientError) if request.method == "POST" else []
    page = _parked(request)
    session = parts.users.sessions.load(request)
    user = parts.users.current(request, session)
    if user is None:
        if request.method == "GET":
            return parts.interaction.start(request, page)
        return parts.interaction.resume(request, page, items)
    if request.method == "POST":
        form = dict(items)
        if form.get("step") == "login":  # a login form posted again after the login: nothing to do
            return redirect(request.path_url, {}, status=303)
        if not parts.pages.check("revoke", session, user.user_id, page, form.get("csrf_token")):
            raise FatalClientError("the form expired or did not come from this server, please start again")
        client_id = form.get("client_id")
        if client_id:
            revoke_grants(parts.repository, user.user_id, client_id)
        return redirect(request.path_url, {}, status=303)  # RFC 9700 §4.12: never 307
    session, cookie = parts.interaction.browser_session(request, session)
    grants = list_grants(parts.repository, user.user_id)
    clients = {g.client_id: c for g in grants if (c := parts.repository.get_client(g.client_id)) is not None}
    return with_cookie(
        parts.pages.applications(page, session, user.user_id, request.path, grants, clients), cookie
    )


def _parked(request: Request) -> PendingRequest:
    """The page as a pending request: a login for it comes back to it; it approves nothing."""

    def back(_: object) -> Response:
        return redirect(request.path_url, {}, status=303)

    def refused(error: OAuthError) -> Response:
        raise FatalClientError(error.description or error.error)

    return PendingRequest(
        id=PAGE_ID, client=_PAGE_CLIENT, scopes=(), destination="", fields={}, approve=back, deny=refused
    )


def _enabled(settings: Settings) -> bool:
    return bool(settings.applications_path)


#: Off until ``applications_path`` is set; passwords travel through its login form.
ENDPOINT = Endpoint(
    "applications",
    with_webob(applications_page),
    ("GET", "POST"),
    path_setting="applications_path",
    credentials=True,
    active=_enabled,
)
