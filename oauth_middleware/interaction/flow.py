"""Login, then consent, then the decision: the interaction any pending request goes through.

A flow validates its own request, parks it as a
:class:`~oauth_middleware.interaction.PendingRequest` and hands it to
:meth:`Interaction.start` (showing it) or :meth:`Interaction.resume` (a
posted login or consent form). The interaction asks for a login (or sends
the user to ``login_url``) when nobody is logged in, then for consent (or,
with ``remember_consent``, answers at once when the user already approved
this confidential client and these scopes), and finally calls the pending
request's ``approve`` or ``deny``. Both forms carry a CSRF token bound to
the pending request, the browser session and the user. Every answer to a
posted form is a 303 (RFC 9700 §4.12), never 307.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import urlencode

from webob import Request, Response

from ..errors import AccessDenied, FatalClientError, InvalidRequest, TooManyRequests
from ..limits import too_long
from ..models import Client
from ..responses import redirect, set_cookie
from ..users import Cookie, Identity, Session, Users
from .pages import Pages
from .pending import PendingRequest

#: The fields of the login and consent forms, next to the pending request's own.
FORM_FIELDS = ("step", "csrf_token", "username", "password", "decision")


class InteractionContext(Protocol):
    """What the interaction uses of the authorization server."""

    @property
    def users(self) -> Users:
        """Who is logged in, and the session cookies."""

    @property
    def pages(self) -> Pages:
        """The login and consent pages."""

    @property
    def login_url(self) -> str:
        """The external login page (``login_url``); empty for the built-in one."""

    def remembers_consent(self, client: Client) -> bool:
        """Whether an approval for ``client`` is remembered and may answer the next request."""

    def has_consent(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> bool:
        """Whether the user approved these scopes for this client before."""

    def save_consent(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> None:
        """Remember the user's approval (for ``consent_ttl``)."""

    def check_password(
        self, request: Request, username: str, password: str, client_id: str
    ) -> Identity | None:
        """The user for these credentials (with their data), or None, behind the throttle.

        :raises TooManyRequests: too many failures: the password is not checked.
        """


class Interaction:
    """Runs login -> consent -> decision for a :class:`PendingRequest`.

    :param context: what it uses of the server.

    Example::

        interaction = Interaction(context)
        if request.method == "GET":
            return interaction.start(request, pending)
        return interaction.resume(request, pending, form_items)
    """

    def __init__(self, context: InteractionContext) -> None:
        self.context = context

    def start(self, request: Request, pending: PendingRequest) -> Response:
        """Show ``pending``: a login page, a consent page, or at once a remembered approval."""
        session = self.context.users.sessions.load(request)
        user = self.context.users.current(request, session)
        if user is None:
            return self._ask_login(request, pending, session)
        if self.context.remembers_consent(pending.client) and self.context.has_consent(
            user.user_id, pending.client.client_id, pending.scopes
        ):
            return pending.approve(user)
        return self._ask_consent(request, pending, session, user.user_id)

    def resume(self, request: Request, pending: PendingRequest, items: Iterable[tuple[str, str]]) -> Response:
        """Answer a posted login or consent form (``items``: the whole form) about ``pending``."""
        named = [(name, value) for name, value in items if name in FORM_FIELDS]
        form = dict(named)
        if len(named) != len(form):
            return pending.deny(InvalidRequest("a form field is repeated"))
        long_field = too_long(form.items())
        if long_field is not None:
            return pending.deny(InvalidRequest(f"{long_field} is too long"))
        if form.get("step") == "login":
            return self._login(request, pending, form)
        if form.get("step") == "consent":
            return self._decide(request, pending, form)
        return pending.deny(InvalidRequest("unknown step"))

    def _ask_login(self, request: Request, pending: PendingRequest, session: Session | None) -> Response:
        """Send the user to ``login_url``, or show the built-in login page."""
        if self.context.login_url:
            return_to = f"{request.path_url}?{urlencode(pending.fields)}"
            return redirect(self.context.login_url, {"next": return_to}, status=303)
        if self.context.users.verify_password is None:
            raise FatalClientError("nobody is logged in and this server has no login page")
        session, cookie = self.browser_session(request, session)
        return with_cookie(self.context.pages.login(pending, session, request.path), cookie)

    def _ask_consent(
        self, request: Request, pending: PendingRequest, session: Session | None, user_id: str
    ) -> Response:
        """Show the consent page; its CSRF token needs a session, so start one if needed."""
        session, cookie = self.browser_session(request, session)
        return with_cookie(self.context.pages.consent(pending, session, user_id, request.path), cookie)

    def _login(self, request: Request, pending: PendingRequest, form: Mapping[str, str]) -> Response:
        """Check the login form; on success start a new session and go back to the request.

        Wrong passwords are throttled per username and address, like the password grant's.
        """
        session = self.context.users.sessions.load(request)
        if session is None or not self.context.pages.check(
            "login", session, None, pending, form.get("csrf_token")
        ):
            raise FatalClientError(
                "the login form expired or did not come from this server, please start again"
            )
        username, password = form.get("username", ""), form.get("password", "")
        try:
            user = self.context.check_password(request, username, password, pending.client.client_id)
        except TooManyRequests as error:
            message = "Too many failed attempts. Please try again later."
            return self.context.pages.login(
                pending,
                session,
                request.path,
                error=message,
                username=username,
                retry_after=error.retry_after,
            )
        if user is None:
            return self.context.pages.login(
                pending, session, request.path, error="Wrong username or password.", username=username
            )
        # A new session id at login: a session planted before it is worth nothing.
        return with_cookie(
            redirect(request.path_url, pending.fields, status=303),
            self._cookie(request, self.context.users.sessions.new(user)),
        )

    def _decide(self, request: Request, pending: PendingRequest, form: Mapping[str, str]) -> Response:
        """Apply the user's decision on the consent page (CSRF-checked)."""
        session = self.context.users.sessions.load(request)
        user = self.context.users.current(request, session)
        if user is None:
            return self._ask_login(request, pending, session)
        if not self.context.pages.check("consent", session, user.user_id, pending, form.get("csrf_token")):
            raise FatalClientError(
                "the consent form expired or did not come from this server, please start again"
            )
        decision = form.get("decision")
        if decision == "deny":
            return pending.deny(AccessDenied("the user denied the request"))
        if decision != "approve":
            return pending.deny(InvalidRequest("decision must be approve or deny"))
        if self.context.remembers_consent(pending.client):
            self.context.save_consent(user.user_id, pending.client.client_id, pending.scopes)
        return pending.approve(user)

    def browser_session(self, request: Request, session: Session | None) -> tuple[Session, Cookie | None]:
        """The browser's session, or a new one with the cookie that starts it (a form's CSRF token needs one)."""
        if session is not None:
            return session, None
        fresh = self.context.users.sessions.new(None)
        return fresh, self._cookie(request, fresh)

    def _cookie(self, request: Request, session: Session) -> Cookie:
        """The cookie of ``session``, sent to this page only (Secure over https)."""
        return self.context.users.sessions.cookie(
            session, path=request.path, secure=request.scheme == "https"
        )


def with_cookie(response: Response, cookie: Cookie | None) -> Response:
    """``response`` (just built here) carrying ``cookie``, if any."""
    if cookie is not None:
        set_cookie(
            response,
            cookie.name,
            cookie.value,
            path=cookie.path,
            max_age=cookie.max_age,
            secure=cookie.secure,
        )
    return response
