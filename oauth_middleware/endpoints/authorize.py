"""Authorization endpoint (RFC 6749 §3.1, §4.1, §4.2): login, consent, then a code or a token.

GET (or a POST without ``step``) is an authorization request: validate it,
then show the login page (or send the user to ``login_url``) when nobody is
logged in, else the consent page (or, with ``remember_consent``, answer at
once when the user already approved this confidential client and scope). A
POST with ``step=login`` checks the login form; ``step=consent`` carries the
user's decision. Both forms are bound to the browser session by a CSRF
token, and every answer to a POST is a 303 redirect (RFC 9700 §4.12), never
307.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from webob import Request, Response

from ..authorization import AuthorizationRequest, validate_request
from ..errors import AccessDenied, FatalClientError, InvalidRequest, TooManyRequests
from ..forms import form_items
from ..grants import offered_response_types
from ..grants.authorization_code import issue_code
from ..limits import too_long
from ..responses import redirect, throttled
from ..throttle import verify_password
from ..users import Session
from .base import Endpoint, with_webob

if TYPE_CHECKING:
    from ..server import AuthorizationServer

_FORM = "application/x-www-form-urlencoded"
#: Fields of our own login and consent forms, next to the request's parameters.
_FORM_FIELDS = ("step", "csrf_token", "username", "password", "decision")


def authorize_endpoint(server: AuthorizationServer, request: Request) -> Response:
    """Answer an authorization request, a login form or a consent decision."""
    if request.method == "GET":
        return show(server, request, _query_items(request), status=302)
    items = _form_items(request)
    form = {name: value for name, value in items if name in _FORM_FIELDS}
    if "step" not in form:
        return show(server, request, items, status=303)
    areq = validate_request(server, items, status=303)
    if len([name for name, _ in items if name in _FORM_FIELDS]) != len(form):
        raise areq.redirect_error(InvalidRequest("a form field is repeated"), 303)
    long_field = too_long(form.items())
    if long_field is not None:
        raise areq.redirect_error(InvalidRequest(f"{long_field} is too long"), 303)
    if form["step"] == "login":
        return login(server, request, areq, form)
    if form["step"] == "consent":
        return decide(server, request, areq, form)
    raise areq.redirect_error(InvalidRequest("unknown step"), 303)


def show(
    server: AuthorizationServer, request: Request, items: list[tuple[str, str]], *, status: int
) -> Response:
    """Validate an authorization request, then ask for a login or for consent."""
    areq = validate_request(server, items, status=status)
    session = server.users.sessions.load(request)
    user_id = server.users.current(request, session)
    if user_id is None:
        return ask_login(server, request, areq, session)
    if remembers_consent(server, areq) and server.repository.has_consent(
        user_id, areq.client.client_id, areq.scopes
    ):
        return approved(server, areq, user_id, status=status)
    return ask_consent(server, request, areq, session, user_id)


def remembers_consent(server: AuthorizationServer, areq: AuthorizationRequest) -> bool:
    """Whether an approval for this request is remembered, and may answer the next one.

    Never for a public client: anyone can send its ``client_id``, and a local
    program can listen on a loopback redirect URI, so only the user can
    tell the real app from an impostor (RFC 8252 §8.6, RFC 6749 §10.2).
    """
    return server.settings.remember_consent and not areq.client.is_public


def ask_login(
    server: AuthorizationServer, request: Request, areq: AuthorizationRequest, session: Session | None
) -> Response:
    """Send the user to ``login_url``, or show the built-in login page."""
    settings = server.settings
    if settings.login_url:
        return_to = f"{request.path_url}?{urlencode(areq.params)}"
        return redirect(settings.login_url, {"next": return_to}, status=303)
    if server.users.verify_password is None:
        raise FatalClientError("nobody is logged in and this server has no login page")
    fresh = session is None
    session = session or server.users.sessions.new(None)
    response = server.pages.login(areq, session, request.path)
    if fresh:
        server.users.sessions.attach(response, request, session, _cookie_path(server, request))
    return response


def ask_consent(
    server: AuthorizationServer,
    request: Request,
    areq: AuthorizationRequest,
    session: Session | None,
    user_id: str,
) -> Response:
    """Show the consent page; its CSRF token needs a session, so start one if needed."""
    fresh = session is None
    session = session or server.users.sessions.new(None)
    response = server.pages.consent(areq, session, user_id, request.path)
    if fresh:
        server.users.sessions.attach(response, request, session, _cookie_path(server, request))
    return response


def login(
    server: AuthorizationServer, request: Request, areq: AuthorizationRequest, form: dict[str, str]
) -> Response:
    """Check the login form; on success start a new session and go back to the request.

    Wrong passwords are throttled per username and address, like the password grant's.
    """
    session = server.users.sessions.load(request)
    if not server.pages.check("login", session, None, areq.params, form.get("csrf_token")):
        raise FatalClientError("the login form expired or did not come from this server, please start again")
    assert session is not None  # check() refuses a missing session
    username, password = form.get("username", ""), form.get("password", "")
    try:
        user_id = verify_password(
            server, request, username, password, where="login page", client_id=areq.client.client_id
        )
    except TooManyRequests as error:
        message = "Too many failed attempts. Please try again later."
        return throttled(
            server.pages.login(areq, session, request.path, error=message, username=username), error
        )
    if user_id is None:
        return server.pages.login(
            areq, session, request.path, error="Wrong username or password.", username=username
        )
    # A new session id at login: a session planted before it is worth nothing.
    response = redirect(request.path_url, areq.params, status=303)
    server.users.sessions.attach(
        response, request, server.users.sessions.new(user_id), _cookie_path(server, request)
    )
    return response


def decide(
    server: AuthorizationServer, request: Request, areq: AuthorizationRequest, form: dict[str, str]
) -> Response:
    """Apply the user's decision on the consent page (CSRF-checked)."""
    session = server.users.sessions.load(request)
    user_id = server.users.current(request, session)
    if user_id is None:
        return ask_login(server, request, areq, session)
    if not server.pages.check("consent", session, user_id, areq.params, form.get("csrf_token")):
        raise FatalClientError(
            "the consent form expired or did not come from this server, please start again"
        )
    decision = form.get("decision")
    if decision == "deny":
        raise areq.redirect_error(AccessDenied("the user denied the request"), 303)
    if decision != "approve":
        raise areq.redirect_error(InvalidRequest("decision must be approve or deny"), 303)
    if remembers_consent(server, areq):
        server.repository.save_consent(
            user_id, areq.client.client_id, areq.scopes, server.settings.consent_ttl
        )
    return approved(server, areq, user_id, status=303)


def approved(
    server: AuthorizationServer, areq: AuthorizationRequest, user_id: str, *, status: int
) -> Response:
    """Redirect back with a code (§4.1.2) or, for the implicit grant, a token (§4.2.2)."""
    params: dict[str, str]
    if areq.response_type == "code":
        params = {"code": issue_code(server, areq, user_id)}
    else:
        # RFC 6749 §4.2.2: no refresh token with the implicit grant.
        body = server.issuer.issue(
            client=areq.client, user_id=user_id, scopes=areq.scopes, grant_type="implicit"
        )
        params = {key: str(value) for key, value in body.items()}
    if areq.state is not None:
        params["state"] = areq.state
    return redirect(areq.redirect_uri, params, fragment=areq.fragment, status=status)


def _form_items(request: Request) -> list[tuple[str, str]]:
    if request.content_type.lower() != _FORM:
        raise FatalClientError(f"the body must be {_FORM}")
    return form_items(request, FatalClientError)


def _query_items(request: Request) -> list[tuple[str, str]]:
    try:
        return list(request.GET.items())
    except UnicodeDecodeError:
        raise FatalClientError("the query string is not valid UTF-8") from None


def _cookie_path(server: AuthorizationServer, request: Request) -> str:
    """The session cookie is only sent to the authorization endpoint."""
    return f"{request.script_name}{server.settings.authorize_path}"


#: RFC 6749 §3.1; advertised while it offers a response type (RFC 8414 §2).
ENDPOINT = Endpoint(
    "authorize",
    with_webob(authorize_endpoint),
    ("GET", "POST"),
    path_setting="authorize_path",
    credentials=True,
    metadata_name="authorization_endpoint",
    advertised=lambda settings: bool(offered_response_types(settings)),
)
