"""Authorization endpoint (RFC 6749 §3.1, §4.1, §4.2): login, consent, then a code or a token.

Each request is validated as an authorization request (its parameters come
in the query, or in the body of a POST), parked as a
:class:`~oauth_middleware.interaction.PendingRequest` and handed to the
:class:`~oauth_middleware.interaction.Interaction`: a GET (or a POST
without ``step``) shows it, a POST with ``step`` is a login or consent form
about it. Parking is stateless: the forms carry the request's parameters
back, they are validated again on every POST, and the request's identity
(:attr:`~oauth_middleware.authorization.AuthorizationRequest.pending_id`, a
digest of the validated request) is what the forms' CSRF tokens are bound
to. The answer to a GET redirects with 302, to a POST with 303 (RFC 9700
§4.12), never 307: this module picks it, validation only raises. Every
answer names this server in ``iss`` (RFC 9207).

A pushed request (RFC 9126) is parked the same way, by its ``client_id``
and ``request_uri``: the forms carry those two, each step finds the stored
request again, and the decision (approval or denial) takes it from the
store, once. So the ``request_uri`` lives until the user decides (within
``par_ttl`` of the push), and a second decision on it, or any use after,
is an error page, never a second code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from webob import Request, Response

from ..authorization import AuthorizationRequest, RequestContext, use_pushed_request, validate_request
from ..errors import FatalClientError, OAuthError, RedirectedError
from ..forms import form_items
from ..grants import offered_response_types
from ..interaction import Interaction, PendingRequest
from ..responses import authorization_response, error_redirect
from ..users import Identity
from .base import Endpoint, with_webob

_FORM = "application/x-www-form-urlencoded"


class AuthorizeContext(RequestContext, Protocol):
    """What the authorization endpoint uses of the server."""

    @property
    def interaction(self) -> Interaction:
        """Login and consent."""

    def issue_code(self, request: AuthorizationRequest, user: Identity) -> str:
        """A stored code for an approved request (RFC 6749 §4.1.2), carrying the user's data."""

    def issue_token(self, request: AuthorizationRequest, user: Identity) -> Mapping[str, Any]:
        """The token response for an approved implicit request (RFC 6749 §4.2.2)."""


class AuthorizeWiring(Protocol):
    """What the endpoint registry hands the authorization endpoint: its context, built once by the wiring."""

    @property
    def authorize_context(self) -> AuthorizeContext:
        """The authorization endpoint's and the interaction's narrow view of the server."""


def authorize_endpoint(wiring: AuthorizeWiring, request: Request) -> Response:
    """Answer an authorization request, a login form or a consent decision."""
    return authorize(wiring.authorize_context, request)


def authorize(context: AuthorizeContext, request: Request) -> Response:
    """Validate the authorization request, park it, and let the interaction answer it."""
    # RFC 9700 §4.12: a 303 after a POST, so the browser does not post the form on to the client.
    status = 302 if request.method == "GET" else 303
    items = _query_items(request) if request.method == "GET" else _form_items(request)
    try:
        areq = validate_request(context, items)
    except RedirectedError as error:
        raise RedirectedError(
            error,
            redirect_uri=error.redirect_uri,
            state=error.state,
            fragment=error.fragment,
            status=status,
            issuer=context.settings.issuer,
        ) from None
    pending = parked(context, areq, status)
    if request.method == "GET" or all(name != "step" for name, _ in items):
        return context.interaction.start(request, pending)
    return context.interaction.resume(request, pending, items)


def parked(context: AuthorizeContext, areq: AuthorizationRequest, status: int) -> PendingRequest:
    """``areq`` as a pending request whose answers redirect back to the client with ``status``."""

    # Either answer ends a pushed request: its request_uri is taken first, so a replay gets nothing.
    def approve(user: Identity) -> Response:
        use_pushed_request(context, areq)
        return approved(context, areq, user, status=status)

    def deny(error: OAuthError) -> Response:
        use_pushed_request(context, areq)
        return error_redirect(areq.redirect_error(error, status, context.settings.issuer))

    return PendingRequest(
        id=areq.pending_id,
        client=areq.client,
        scopes=areq.scopes,
        destination=urlsplit(areq.redirect_uri).netloc or areq.redirect_uri,
        fields=areq.fields,
        approve=approve,
        deny=deny,
    )


def approved(
    context: AuthorizeContext, areq: AuthorizationRequest, user: Identity, *, status: int
) -> Response:
    """Redirect back with a code (§4.1.2) or, for the implicit grant, a token (§4.2.2)."""
    params: dict[str, str]
    if areq.response_type == "code":
        params = {"code": context.issue_code(areq, user)}
    else:
        params = {key: str(value) for key, value in context.issue_token(areq, user).items()}
    return authorization_response(
        areq.redirect_uri,
        params,
        state=areq.state,
        issuer=context.settings.issuer,
        fragment=areq.fragment,
        status=status,
    )


def _form_items(request: Request) -> list[tuple[str, str]]:
    if request.content_type.lower() != _FORM:
        raise FatalClientError(f"the body must be {_FORM}")
    return form_items(request, FatalClientError)


def _query_items(request: Request) -> list[tuple[str, str]]:
    try:
        return list(request.GET.items())
    except UnicodeDecodeError:
        raise FatalClientError("the query string is not valid UTF-8") from None


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
