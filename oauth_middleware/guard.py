"""The resource-server guard (RFC 6750): every request to the app shows a token.

Path: extract the bearer token (:func:`extract_token`) -> the token format
verifies it -> the first matching scope rule is enforced -> the token goes
into the environ -> the app runs, its response marked ``Vary:
Authorization``. Nothing a client sends gets past the guard as an
exception: an unexpected one is logged and answered 500, the app never runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, NamedTuple

from .errors import (
    BearerError,
    BearerUnavailable,
    GuardFailure,
    InsufficientScope,
    InvalidBearerRequest,
    MissingToken,
    StoreUnavailable,
)
from .forms import small_body
from .models import AccessToken
from .outage import OutageLog
from .parsing import access_tokens, bearer_from_header
from .responses import bearer_error
from .settings import ScopeRule, Settings
from .tokens import TokenFormat

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("oauth_middleware.guard")

_FORM = "application/x-www-form-urlencoded"


class TokenSources(NamedTuple):
    """Where the guard looks for a token (RFC 6750 §2.1-2.3)."""

    header: bool = True
    body: bool = True
    query: bool = False


class Bearer(NamedTuple):
    """A token as the request presented it."""

    token: str
    #: Where it was found: a query token makes the response ``Cache-Control: private``.
    source: Literal["header", "query", "body"]


def extract_token(environ: WSGIEnvironment, sources: TokenSources, body_limit: int) -> Bearer | None:
    """Find the request's bearer token in the enabled sources.

    The body is searched only when neither the header nor the query string
    has a token, only outside GET, and only when it has at most
    ``body_limit`` bytes: a larger body is not read and holds no token. A
    token in more than one place the guard looks is ``invalid_request``
    (RFC 6750 §2). Reading a body leaves it readable for the app.

    :returns: the token, or None when the request carries none.
    """
    found: list[Bearer] = []
    if sources.header:
        header = environ.get("HTTP_AUTHORIZATION")
        if header:
            token = bearer_from_header(header)
            if token is not None:
                found.append(Bearer(token, "header"))
    if sources.query and "access_token=" in (query := environ.get("QUERY_STRING", "")):
        found.extend(Bearer(token, "query") for token in access_tokens(query))
    if (
        not found
        and sources.body
        and environ.get("REQUEST_METHOD", "GET") != "GET"
        and environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() == _FORM
    ):
        body = small_body(environ, body_limit)
        if body:
            found.extend(Bearer(token, "body") for token in access_tokens(body.decode("latin-1")))
    if len(found) > 1:
        raise InvalidBearerRequest("use exactly one way to send the access token")
    return found[0] if found else None


def required_scopes(rules: tuple[ScopeRule, ...], method: str, path: str) -> tuple[str, ...] | None:
    """The scopes of the first rule matching ``method`` and ``path``; None when no rule matches."""
    for rule in rules:
        if (rule.methods is None or method in rule.methods) and rule.paths.matches(path):
            return rule.scopes
    return None


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
        #: Refuse a request no scope rule matches (``scope_rules_default = deny``).
        self.deny_unmatched = settings.scope_rules_default == "deny"
        self.sources = TokenSources(
            settings.token_from_header, settings.token_from_body, settings.token_from_query
        )
        self.body_limit = settings.max_body_size
        self.outage = OutageLog()
        #: Whether verifying a token reads the store, so that a verified token shows it is back
        #: (JWTs without revocation checks never touch it).
        self.reads_store = tokens.reads_store

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.public_paths.matches(path):
            return self.app(environ, start_response)
        try:
            bearer = extract_token(environ, self.sources, self.body_limit)
            if bearer is None:
                raise MissingToken()
            token = self.authenticate(bearer.token, environ.get("REQUEST_METHOD", "GET"), path)
        except BearerError as error:
            return bearer_error(error, self.realm)(environ, start_response)
        except Exception:
            # A bug, whatever the request: fail closed, the traceback for the operator only.
            log.exception("unexpected error in the guard on %r", path)
            return bearer_error(GuardFailure("internal error"), self.realm)(environ, start_response)
        inject(environ, token)
        return self.app(environ, _mark_response(start_response, private=bearer.source == "query"))

    def authenticate(self, token_string: str, method: str, path: str) -> AccessToken:
        """Return the valid token of a request, or raise the RFC 6750 error.

        :param token_string: the token the request presented.
        :param method: the request method, for the scope rules.
        :param path: the request path, for the scope rules.
        """
        try:
            token = self.tokens.verify(token_string)
        except StoreUnavailable as exc:
            self.outage.failed(exc)
            raise BearerUnavailable("the token store is unavailable, try again later") from None
        if self.reads_store:
            self.outage.succeeded()
        needed = required_scopes(self.scope_rules, method, path)
        if needed is None:
            if self.deny_unmatched:
                raise InsufficientScope((), "no scope rule allows this request")
        elif not set(needed).issubset(token.scopes):
            raise InsufficientScope(needed)
        return token


def _mark_response(start_response: StartResponse, *, private: bool) -> StartResponse:
    """Wrap ``start_response`` so the app's response carries ``Vary: Authorization``.

    With ``private`` (a query token) it is also ``Cache-Control: private``
    (RFC 6750 §2.3): no shared cache keeps a response to a URL with a token.
    """

    def start(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
        for index, (name, value) in enumerate(headers):
            if name.lower() == "vary":
                if "authorization" not in value.lower():
                    headers[index] = (name, f"{value}, Authorization")
                break
        else:
            headers.append(("Vary", "Authorization"))
        if private:
            _make_private(headers)
        return start_response(status, headers, exc_info)  # type: ignore[arg-type]

    return start  # type: ignore[return-value]


def _make_private(headers: list[tuple[str, str]]) -> None:
    """Add ``private`` to ``Cache-Control``, dropping a ``public`` the app set."""
    directives: list[str] = []
    for name, value in headers:
        if name.lower() == "cache-control":
            directives.extend(d.strip() for d in value.split(",") if d.strip())
    headers[:] = [(name, value) for name, value in headers if name.lower() != "cache-control"]
    names = {d.split("=", 1)[0].strip().lower() for d in directives}
    kept = [d for d in directives if d.split("=", 1)[0].strip().lower() != "public"]
    if not names & {"private", "no-store"}:
        kept.append("private")
    headers.append(("Cache-Control", ", ".join(kept)))
