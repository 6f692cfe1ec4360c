"""The only place that renders HTTP: JSON bodies, challenges, redirects, pages.

Every response here that carries a token, a code or an error about one is
marked ``Cache-Control: no-store`` (RFC 6749 §5.1, RFC 6750 §3).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias
from urllib.parse import urlencode, urlsplit, urlunsplit

from webob import Response
from webob.util import status_reasons

from .errors import (
    BearerError,
    DPoPGuardError,
    FatalClientError,
    InsufficientScope,
    MethodNotAllowed,
    OAuthError,
    RedirectedError,
    TooManyRequests,
    UseDPoPNonce,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))

#: One compact encoder for every JSON body (``json.dumps`` builds one per call).
_JSON = json.JSONEncoder(separators=(",", ":"))

#: Seconds a client should wait before retrying when the store is down.
RETRY_AFTER = "5"


class JSONReply(NamedTuple):
    """A JSON response as a value (immutable): what our endpoints return; :func:`render` makes it HTTP.

    :param body: the JSON object.
    :param headers: headers of its own (a ``DPoP-Nonce``, a ``Cache-Control`` for public documents).
    :param cache: False (the default) adds ``Cache-Control: no-store``: it carries a
        token or an answer about one (RFC 6749 §5.1).
    :param status: 200 unless the endpoint creates something.

    Example::

        return JSONReply({"active": False})
    """

    body: Mapping[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    cache: bool = False
    status: int = 200


#: What an endpoint returns: a value, or (the authorization endpoint's pages and
#: redirects) a response already rendered by this module.
Reply: TypeAlias = "JSONReply | Response"


class RenderedJSON(NamedTuple):
    """A :class:`JSONReply` rendered: a WSGI app sending what :func:`json_response` would.

    The token endpoint's answer, built without a WebOb response: building and
    calling one was a tenth of a token request.

    :param status: the status line.
    :param headerlist: ``Content-Type``, ``Content-Length``, the no-store headers
        unless cacheable, then the reply's own.
    :param body: the encoded JSON.
    """

    status: str
    headerlist: list[tuple[str, str]]
    body: bytes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(self.status, self.headerlist)
        # HEAD: the headers of a GET, no body (as a WebOb response answers it).
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [self.body]


def render(reply: Reply) -> Response | RenderedJSON:
    """The HTTP response of an endpoint's reply (a WSGI app)."""
    if isinstance(reply, Response):
        return reply
    reason = status_reasons.get(reply.status)
    if reason is None:  # a status of a plug-in's own: WebOb says what it can
        response = json_response(reply.body, reply.status, cache=reply.cache)
        response.headerlist.extend(reply.headers)
        return response
    body = _JSON.encode(reply.body).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if not reply.cache:
        headers.extend(_NO_STORE)
    headers.extend(reply.headers)
    return RenderedJSON(f"{reply.status} {reason}", headers, body)


def json_response(body: Mapping[str, Any], status: int = 200, *, cache: bool = False) -> Response:
    """A JSON response; ``cache=False`` forbids caching (the default)."""
    response = Response(
        body=_JSON.encode(body).encode("utf-8"),
        status=status,
        content_type="application/json",
    )
    if not cache:
        response.headerlist.extend(_NO_STORE)
    return response


def error_body(error: OAuthError) -> dict[str, str]:
    """``{"error": ..., "error_description": ...}`` for an error."""
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    return body


def oauth_error(error: OAuthError, realm: str) -> Response:
    """Render an error of one of our own endpoints (RFC 6749 §5.2)."""
    response = json_response(error_body(error), error.status_code)
    if error.status_code == 401:
        # Every 401 carries a challenge (RFC 9110 §15.5.2), also when the client did not
        # try Basic: it names the HTTP scheme clients authenticate with here (RFC 6749 §2.3.1).
        response.headers["WWW-Authenticate"] = challenge("Basic", [("realm", realm)])
    elif isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(error.allowed)
    elif isinstance(error, TooManyRequests):
        throttled(response, error)
    elif isinstance(error, UseDPoPNonce):
        response.headers["DPoP-Nonce"] = error.nonce  # RFC 9449 §8
    if error.status_code == 503:
        response.headers["Retry-After"] = RETRY_AFTER
    return response


def no_content() -> Response:
    """An empty 204 answer (a deleted registration, RFC 7592 §2.3)."""
    response = Response(status=204)
    response.headerlist.extend(_NO_STORE)
    return response


def throttled(response: Response, error: TooManyRequests) -> Response:
    """Make ``response`` (a JSON error or the login page) a 429 with ``Retry-After``."""
    response.status = 429
    response.headers["Retry-After"] = str(error.retry_after)
    return response


#: What a quoted-string may hold (RFC 9110 §5.6.4): tab, space and visible ASCII. Other
#: characters (a line break above all) cannot be quoted; non-ASCII ones are refused too.
_QUOTABLE = re.compile(r"[\t\x20-\x7e]*")


def quoted_string(value: str) -> str:
    """``value`` as an RFC 9110 quoted-string: in double quotes, ``"`` and ``\\`` escaped.

    :raises ValueError: ``value`` has a character no quoted-string can carry
        (a control character such as a line break, or non-ASCII). Settings
        and error descriptions are checked long before, so this is a bug
        and must not become a header.
    """
    if not _QUOTABLE.fullmatch(value):
        raise ValueError(f"cannot put {value!r} in a quoted-string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(scheme: str, params: Iterable[tuple[str, str]]) -> str:
    """A ``WWW-Authenticate`` challenge: ``scheme`` and its auth-params, every value quoted.

    The one place challenges are written, so no value (a realm from the
    settings, a description, a scope) can add a parameter or a header line.

    >>> challenge("Bearer", [("realm", 'a"b'), ("error", "invalid_token")])
    'Bearer realm="a\\\\"b", error="invalid_token"'
    """
    return f"{scheme} " + ", ".join(f"{name}={quoted_string(value)}" for name, value in params)


def token_challenge(
    scheme: str, error: BearerError, realm: str, extra: Iterable[tuple[str, str]] = ()
) -> str:
    """The ``WWW-Authenticate`` value of a token type's ``scheme`` for a guard error (RFC 6750 §3).

    :param extra: the scheme's own auth-params, after ``realm`` (DPoP's ``algs``, RFC 9449 §7.1).
    """
    params = [("realm", realm), *extra]
    if error.error:
        params.append(("error", error.error))
        if error.description:
            params.append(("error_description", error.description))
    if isinstance(error, InsufficientScope) and error.required:
        params.append(("scope", " ".join(error.required)))
    return challenge(scheme, params)


def guard_error(
    error: BearerError, challenges: Iterable[str], *, resource_metadata: str | None = None
) -> Response:
    """Render a guard error: status, one ``WWW-Authenticate`` per challenge, and a JSON body.

    A request without credentials gets bare challenges and an empty JSON
    object: no error code or other error information (RFC 6750 §3.1). A
    5xx (store down, a bug) carries no challenge: the token is not at fault.

    :param resource_metadata: the URL of the protected resource metadata, added
        to every challenge (RFC 9728 §5.1), so a client finds where to get a token.
    """
    response = json_response(error_body(error) if error.error else {}, error.status_code)
    if error.status_code == 503:
        response.headers["Retry-After"] = RETRY_AFTER
    if error.status_code < 500:
        extra = "" if resource_metadata is None else f", resource_metadata={quoted_string(resource_metadata)}"
        for value in challenges:
            response.headers.add("WWW-Authenticate", value + extra)
    if isinstance(error, DPoPGuardError) and error.nonce is not None:
        response.headers["DPoP-Nonce"] = error.nonce  # RFC 9449 §9
    response.headers["Vary"] = "Authorization"
    return response


def bearer_error(error: BearerError, realm: str, *, resource_metadata: str | None = None) -> Response:
    """Render a guard error with a ``Bearer`` challenge: for the app's own checks (:mod:`.helpers`).

    :param resource_metadata: as for :func:`guard_error`.
    """
    return guard_error(error, [token_challenge("Bearer", error, realm)], resource_metadata=resource_metadata)


def redirect(
    location: str,
    params: Mapping[str, str] | Sequence[tuple[str, str]],
    *,
    fragment: bool = False,
    status: int = 302,
) -> Response:
    """Redirect to ``location`` with ``params`` added to its query or fragment.

    Parameters already in a registered redirect URI's query are kept
    (RFC 6749 §3.1.2).
    """
    scheme, netloc, path, query, _ = urlsplit(location)
    encoded = urlencode(params)
    if fragment:
        target = urlunsplit((scheme, netloc, path, query, encoded))
    else:
        target = urlunsplit((scheme, netloc, path, f"{query}&{encoded}" if query else encoded, ""))
    response = Response(status=status, location=target)
    response.headerlist.extend(_NO_STORE)
    return response


def html_page(title: str, body_html: str, status: int = 200) -> Response:
    """A small HTML page that may not be framed by another site."""
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>{body_html}</body></html>"
    )
    return html_document(page, status)


def html_document(page: str, status: int = 200) -> Response:
    """A whole HTML document (login and consent pages), never cached or framed."""
    response = Response(body=page.encode("utf-8"), status=status, content_type="text/html", charset="utf-8")
    response.headerlist.extend(_NO_STORE)
    # Clickjacking (RFC 6749 §10.13): no page of ours may be framed.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    # The page's URL carries state and PKCE challenges: keep it out of Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def set_cookie(response: Response, name: str, value: str, *, path: str, max_age: int, secure: bool) -> None:
    """Add a session cookie: HttpOnly, SameSite=Lax, Secure over https."""
    response.set_cookie(name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite="lax")


def authorization_response(
    redirect_uri: str,
    params: Mapping[str, str],
    *,
    state: str | None,
    issuer: str,
    fragment: bool = False,
    status: int = 302,
) -> Response:
    """Any authorization response (a code, a token or an error) back to the client's ``redirect_uri``.

    The one place every answer of the authorization endpoint is built: it
    echoes ``state`` (RFC 6749 §4.1.2) and names the issuer in ``iss``
    (RFC 9207 §2), so a client talking to several servers can tell which
    one answered (mix-up attacks).
    """
    answer = dict(params)
    if state is not None:
        answer["state"] = state
    if issuer:
        answer["iss"] = issuer
    return redirect(redirect_uri, answer, fragment=fragment, status=status)


def error_redirect(error: RedirectedError) -> Response:
    """Send an authorization error back to the client (RFC 6749 §4.1.2.1, §4.2.2.1)."""
    return authorization_response(
        error.redirect_uri,
        error_body(error),
        state=error.state,
        issuer=error.issuer,
        fragment=error.fragment,
        status=error.status_code,
    )


def render_error(error: OAuthError, realm: str) -> Response:
    """Render any error of our endpoints, choosing the form by its type.

    :class:`FatalClientError` becomes a page (never a redirect),
    :class:`RedirectedError` a redirect to the client, a :class:`BearerError`
    (an endpoint protected by a bearer token: client registration management)
    JSON with a ``Bearer`` challenge, anything else JSON.
    """
    if isinstance(error, BearerError):
        return bearer_error(error, realm)
    if isinstance(error, FatalClientError):
        return error_page(error)
    if isinstance(error, RedirectedError):
        return error_redirect(error)
    return oauth_error(error, realm)


def error_page(error: OAuthError) -> Response:
    """An HTML error page for errors that must not be redirected."""
    message = html.escape(error.description or error.error)
    return html_page(
        "Authorization error",
        f"<h1>Authorization error</h1><p><code>{html.escape(error.error)}</code>: {message}</p>",
        status=400,
    )
