"""The resource-server guard (RFC 6750): every request to the app shows a token.

Path: extract the bearer token (:func:`extract_token`, pure) -> the token
format verifies it -> the first matching scope rule is enforced -> the token
goes into the environ -> the app runs, its response marked
``Vary: Authorization``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl

from webob import Request

from .errors import (
    BearerError,
    BearerUnavailable,
    InsufficientScope,
    InvalidBearerRequest,
    MissingToken,
    StoreUnavailable,
)
from .forms import form_items
from .models import AccessToken
from .outage import OutageLog
from .parsing import bearer_from_header
from .responses import bearer_error
from .settings import ScopeRule, Settings
from .tokens import TokenFormat

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_FORM = "application/x-www-form-urlencoded"


class TokenSources(NamedTuple):
    """Where the guard looks for a token (RFC 6750 §2.1-2.3)."""

    header: bool = True
    body: bool = True
    query: bool = False


def extract_token(environ: WSGIEnvironment, sources: TokenSources) -> str | None:
    """Find the request's bearer token in the enabled sources.

    A token in more than one place is ``invalid_request`` (RFC 6750 §2).
    Reading a form body leaves it readable for the app (WebOb buffers it).

    :returns: the token, or None when the request carries none.
    """
    found: list[str] = []
    if sources.header:
        header = environ.get("HTTP_AUTHORIZATION")
        if header:
            token = bearer_from_header(header)
            if token is not None:
                found.append(token)
    if sources.query and "access_token=" in environ.get("QUERY_STRING", ""):
        found.extend(_access_tokens(parse_qsl(environ["QUERY_STRING"], keep_blank_values=True)))
    if (
        sources.body
        and environ.get("REQUEST_METHOD", "GET") != "GET"
        and environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() == _FORM
    ):
        found.extend(_access_tokens(_form_items(environ)))
    if len(found) > 1:
        raise InvalidBearerRequest("use exactly one way to send the access token")
    return found[0] if found else None


def _form_items(environ: WSGIEnvironment) -> Iterable[tuple[str, str]]:
    # Request.body buffers the input and rewinds it, so the app can read it after us.
    return form_items(Request(environ), InvalidBearerRequest)


def _access_tokens(items: Iterable[tuple[str, str]]) -> list[str]:
    tokens = [value for name, value in items if name == "access_token"]
    for token in tokens:
        if not token or not token.isascii() or not token.isprintable() or " " in token:
            raise InvalidBearerRequest("malformed access_token parameter")
    return tokens


def required_scopes(rules: tuple[ScopeRule, ...], method: str, path: str) -> tuple[str, ...]:
    """The scopes of the first rule matching ``method`` and ``path``, else none."""
    for rule in rules:
        if (rule.methods is None or method in rule.methods) and rule.paths.matches(path):
            return rule.scopes
    return ()


def inject(environ: WSGIEnvironment, token: AccessToken) -> None:
    """Put the validated token where the app expects it (see the contract)."""
    environ["oauth2.token"] = token
    environ["oauth2.user"] = token.user_id
    environ["oauth2.client_id"] = token.client_id
    environ["oauth2.scopes"] = token.scopes
    if token.user_id is not None:
        environ["REMOTE_USER"] = token.user_id


class Guard:
    """WSGI middleware that lets a request reach ``app`` only with a valid token.

    :param app: the protected WSGI application.
    :param settings: token sources, public paths, scope rules and realm.
    :param tokens: the token format that verifies tokens.

    Example::

        app = Guard(app, Settings.from_config({"store": "memory://"}), tokens)
    """

    def __init__(self, app: WSGIApplication, settings: Settings, tokens: TokenFormat) -> None:
        self.app = app
        self.tokens = tokens
        self.realm = settings.realm
        self.public_paths = settings.public_paths
        self.scope_rules = settings.scope_rules
        self.sources = TokenSources(
            settings.token_from_header, settings.token_from_body, settings.token_from_query
        )
        self.outage = OutageLog()
        #: Whether verifying a token reads the store, so that a verified token shows it is back
        #: (JWTs without revocation checks never touch it).
        self.reads_store = tokens.reads_store

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.public_paths.matches(path):
            return self.app(environ, start_response)
        try:
            token = self.authenticate(environ, path)
        except BearerError as error:
            return bearer_error(error, self.realm)(environ, start_response)
        inject(environ, token)
        return self.app(environ, _vary_on_authorization(start_response))

    def authenticate(self, environ: WSGIEnvironment, path: str) -> AccessToken:
        """Return the request's valid token, or raise the RFC 6750 error."""
        token_string = extract_token(environ, self.sources)
        if token_string is None:
            raise MissingToken()
        try:
            token = self.tokens.verify(token_string)
        except StoreUnavailable as exc:
            self.outage.failed(exc)
            raise BearerUnavailable("the token store is unavailable, try again later") from None
        if self.reads_store:
            self.outage.succeeded()
        needed = required_scopes(self.scope_rules, environ.get("REQUEST_METHOD", "GET"), path)
        if needed and not set(needed).issubset(token.scopes):
            raise InsufficientScope(needed)
        return token


def _vary_on_authorization(start_response: StartResponse) -> StartResponse:
    """Wrap ``start_response`` so the app's response carries ``Vary: Authorization``."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
        for index, (name, value) in enumerate(headers):
            if name.lower() == "vary":
                if "authorization" not in value.lower():
                    headers[index] = (name, f"{value}, Authorization")
                break
        else:
            headers.append(("Vary", "Authorization"))
        return start_response(status, headers, exc_info)  # type: ignore[arg-type]

    return start  # type: ignore[return-value]
