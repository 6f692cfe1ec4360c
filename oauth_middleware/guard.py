"""The resource-server guard (RFC 6750): every request to the app shows a token.

Path: the ``Authorization`` scheme picks the token type
(:mod:`oauth_middleware.token_types`), which extracts the credential
(:meth:`Guard.extract`) -> the token type verifies it with the token format
-> the first matching scope rule is enforced -> the token goes into the
environ -> the app runs, its response marked ``Vary: Authorization``. Nothing a client sends gets past the guard as an
exception: an unexpected one is logged and answered 500, the app never runs.

A ``Bearer`` header verified before is answered from the memo of verified
headers (:mod:`oauth_middleware.verified_headers`) while the token format's
stamp is unchanged: the expiry and the scope rule are still checked, the
rest of the way is skipped.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .audience import AudienceRule
from .errors import (
    BearerError,
    BearerUnavailable,
    GuardFailure,
    InsufficientScope,
    MissingToken,
    StoreUnavailable,
)
from .models import AccessToken
from .outage import OutageLog
from .parsing import authorization_scheme
from .resource_metadata import ENVIRON_KEY, ResourceMetadata
from .responses import guard_error
from .settings import ScopeRule, Settings
from .token_types import BearerToken, Presented, TokenType, enabled_token_types
from .tokens import TokenFormat
from .verified_headers import VerifiedHeaders

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from webob import Response

log = logging.getLogger("oauth_middleware.guard")


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
    :param settings: token types and sources, public paths, scope rules and realm.
    :param tokens: the token format that verifies tokens.
    :raises ConfigError: ``token_types`` names an unregistered token type.

    Example::

        app = Guard(app, Settings.from_config({"store": "memory://"}), tokens)
    """

    def __init__(self, app: WSGIApplication, settings: Settings, tokens: TokenFormat) -> None:
        self.app = app
        self.tokens = tokens
        #: The enabled token types, in the ``token_types`` order, and by lowercased scheme.
        self.token_types: tuple[TokenType, ...] = enabled_token_types(settings, tokens)
        self.by_scheme = {token_type.scheme.lower(): token_type for token_type in self.token_types}
        self.realm = settings.realm
        self.public_paths = settings.public_paths
        self.scope_rules = settings.scope_rules
        #: ``required_scopes`` of these rules by method and path, remembered (bounded): an app's
        #: requests keep to a few paths, and matching the rules was a tenth of the guard's time.
        self.required_scopes = functools.lru_cache(maxsize=256)(
            functools.partial(required_scopes, self.scope_rules)
        )
        #: Refuse a request no scope rule matches (``scope_rules_default = deny``).
        self.deny_unmatched = settings.scope_rules_default == "deny"
        #: Whether a token's scopes let it make a request, by method, path and scopes, remembered
        #: (bounded) for the memo's answers, which otherwise do little else.
        self.scopes_allow = functools.lru_cache(maxsize=1024)(self._scopes_allow)
        #: Token types with headers for the app's successful responses (``response_headers()``,
        #: an optional method: DPoP's next nonce); the Bearer path does not call anything.
        self.headers_of: dict[TokenType, Callable[[], tuple[tuple[str, str], ...]]] = {
            token_type: token_type.response_headers
            for token_type in self.token_types
            if hasattr(token_type, "response_headers")
        }
        #: Refuses a token meant for another resource (RFC 8707).
        self.audience = AudienceRule(settings)
        #: The protected resource metadata (RFC 9728), served when the guard knows its identifier.
        self.metadata = ResourceMetadata(settings) if settings.resource_identifier else None
        self.outage = OutageLog()
        #: Whether verifying a token reads the store, so that a verified token shows it is back
        #: (JWTs without revocation checks never touch it).
        self.reads_store = tokens.reads_store
        #: Bearer headers verified lately, answered again while the token format's stamp holds;
        #: None when the caches are off or bearer tokens are not read from the header.
        bearer = self.by_scheme.get("bearer")
        self.verified: VerifiedHeaders | None = None
        self.bearer: TokenType | None = None
        if isinstance(bearer, BearerToken) and bearer.sources.header and settings.guard_cache_size:
            self.verified, self.bearer = VerifiedHeaders(settings.guard_cache_size), bearer
        #: A query string may carry a second token, which the full way refuses (RFC 6750 §2).
        self.query_tokens = settings.token_from_query
        # Bound once: asked on every request the memo answers.
        self.now = tokens.clock.time
        self.token_stamp = tokens.stamp

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        metadata = self.metadata
        if (
            metadata is not None
            and path == metadata.path
            and environ.get("REQUEST_METHOD") in ("GET", "HEAD")
        ):
            return metadata.response()(environ, start_response)
        if metadata is not None:
            # For the app's own 401 and 403 (the helpers), on public paths too.
            environ[ENVIRON_KEY] = metadata.url
        if self.public_paths.matches(path):
            return self.app(environ, start_response)
        verified = self.verified
        header = environ.get("HTTP_AUTHORIZATION")
        if verified is not None and (entry := verified.get(header)) is not None:  # type: ignore[arg-type]
            token = entry[0]
            try:
                recalled = (
                    token.expires_at > self.now()
                    and entry[1] == self.token_stamp()
                    and self.scopes_allow(environ.get("REQUEST_METHOD", "GET"), path, token.scopes)
                    and not (self.query_tokens and "access_token=" in environ.get("QUERY_STRING", ""))
                )
            except Exception:
                recalled = False  # the full way below answers, and logs what went wrong
            if recalled:
                inject(environ, token)
                return self.app(environ, functools.partial(_vary_start, start_response))  # type: ignore[arg-type]
        presented = None
        try:
            presented = self.extract(environ)
            if presented is None:
                raise MissingToken()
            # Read before verifying: a token ended meanwhile moves it, and the verdict is not kept.
            # Only for what the memo keeps: a Bearer header (self.bearer is None without a memo).
            remember = presented.token_type is self.bearer and presented.source == "header"
            stamp = self.token_stamp() if remember else None
            token = self.authenticate(presented, environ, path)
        except BearerError as error:
            return self.error(error, presented)(environ, start_response)
        except Exception:
            # A bug, whatever the request: fail closed, the traceback for the operator only.
            log.exception("unexpected error in the guard on %r", path)
            return self.error(GuardFailure("internal error"), presented)(environ, start_response)
        inject(environ, token)
        headers_of = self.headers_of.get(presented.token_type) if self.headers_of else None
        if headers_of is None and presented.source == "header":
            if stamp is not None and verified is not None and header:
                verified.put(header, token, stamp)
            return self.app(environ, functools.partial(_vary_start, start_response))  # type: ignore[arg-type]
        extra = () if headers_of is None else headers_of()
        return self.app(
            environ, _mark_response(start_response, private=presented.source == "query", extra=extra)
        )

    def extract(self, environ: WSGIEnvironment) -> Presented | None:
        """The request's credential: the token type of the ``Authorization`` scheme finds it.

        Without a header naming an enabled scheme, each enabled type is asked
        in turn (a bearer token may be in a form body or the query string).

        :raises BearerError: a malformed credential (``invalid_request``).
        """
        header = environ.get("HTTP_AUTHORIZATION")
        if header:
            scheme, credentials = authorization_scheme(header)
            token_type = self.by_scheme.get(scheme)
            if token_type is not None:
                return token_type.extract(environ, credentials)
        for token_type in self.token_types:
            presented = token_type.extract(environ, None)
            if presented is not None:
                return presented
        return None

    def authenticate(self, presented: Presented, environ: WSGIEnvironment, path: str) -> AccessToken:
        """Return the valid token of a request, or raise the RFC 6750 error.

        :param presented: the credential the request presented, and its token type.
        :param environ: the request, for the token type and the scope rules' method.
        :param path: the request path, for the scope rules.
        """
        try:
            token = presented.token_type.verify(presented, environ)
        except StoreUnavailable as exc:
            self.outage.failed(exc)
            raise BearerUnavailable("the token store is unavailable, try again later") from None
        if self.reads_store:
            self.outage.succeeded()
        self.audience.check(token)
        error = self.scope_error(environ.get("REQUEST_METHOD", "GET"), path, token.scopes)
        if error is not None:
            raise error
        return token

    def scope_error(self, method: str, path: str, scopes: tuple[str, ...]) -> InsufficientScope | None:
        """What the first scope rule matching the request says of a token's ``scopes``: None to pass."""
        needed = self.required_scopes(method, path)
        if needed is None:
            return InsufficientScope((), "no scope rule allows this request") if self.deny_unmatched else None
        for scope in needed:
            if scope not in scopes:
                return InsufficientScope(needed)
        return None

    def _scopes_allow(self, method: str, path: str, scopes: tuple[str, ...]) -> bool:
        return self.scope_error(method, path, scopes) is None

    def error(self, error: BearerError, presented: Presented | None) -> Response:
        """Render a guard error, challenging with the presented token's type, else with every enabled one."""
        types = self.token_types if presented is None else (presented.token_type,)
        challenges = [token_type.challenge(error, self.realm) for token_type in types]
        url = None if self.metadata is None else self.metadata.url
        return guard_error(error, challenges, resource_metadata=url)


def _mark_response(
    start_response: StartResponse, *, private: bool, extra: tuple[tuple[str, str], ...] = ()
) -> StartResponse:
    """Wrap ``start_response`` so the app's response carries ``Vary: Authorization``.

    With ``private`` (a query token) it is also ``Cache-Control: private``
    (RFC 6750 §2.3): no shared cache keeps a response to a URL with a token.
    ``extra`` headers (the token type's, e.g. a ``DPoP-Nonce``) replace any the app set.
    """

    def start(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
        _vary_on_authorization(headers)
        if private:
            _make_private(headers)
        if extra:
            names = {name.lower() for name, _ in extra}
            headers[:] = [(name, value) for name, value in headers if name.lower() not in names]
            headers.extend(extra)
        return start_response(status, headers, exc_info)  # type: ignore[arg-type]

    return start  # type: ignore[return-value]


def _vary_start(
    start_response: StartResponse, status: str, headers: list[tuple[str, str]], exc_info: object = None
) -> object:
    """``start_response`` for the common case: a header token and no headers of its type.

    What :func:`_mark_response` does with ``private`` false and nothing
    extra; bound with :func:`functools.partial`, which costs less per
    request than a closure or an object.
    """
    _vary_on_authorization(headers)
    return start_response(status, headers, exc_info)  # type: ignore[arg-type]


def _vary_on_authorization(headers: list[tuple[str, str]]) -> None:
    """Add ``Authorization`` to the response's ``Vary`` (one header, added if the app set none)."""
    for name, _ in headers:
        # The length first: most names are not four letters, and lowering each was measurable.
        if len(name) == 4 and name.lower() == "vary":
            break
    else:
        headers.append(("Vary", "Authorization"))
        return
    for index, (name, value) in enumerate(headers):
        if len(name) == 4 and name.lower() == "vary":
            if "authorization" not in value.lower():
                headers[index] = (name, f"{value}, Authorization")
            return


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
