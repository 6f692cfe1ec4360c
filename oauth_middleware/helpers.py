"""Helpers for the applications behind the guard: read the token, demand a scope.

The guard already enforces the ``scope_rules`` of the ini file. These helpers
are for checks that belong in the application: one WSGI sub-application, or
one view of a framework, that needs a scope the path rules do not express.
They only read what the guard put in the environ (see the contract) and
render errors with :func:`oauth_middleware.responses.bearer_error`, so a 401
or 403 from here looks exactly like one from the guard: with the guard's
``resource_identifier`` set, it names the protected resource metadata too
(``environ['oauth2.resource_metadata']``, RFC 9728 §5.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from webob import Response

from .errors import BearerError, InsufficientScope, MissingToken, OAuthError
from .models import AccessToken
from .parsing import scope_list
from .resource_metadata import ENVIRON_KEY
from .responses import bearer_error
from .settings import Settings, header_text

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: The ``realm`` setting's default, used when none is given.
DEFAULT_REALM: str = Settings.realm


def current_token(environ: WSGIEnvironment) -> AccessToken | None:
    """The access token the guard validated for this request, or None.

    None on a public path, or when the application does not run behind the
    guard at all.

    :param environ: the WSGI environ (Flask and Pyramid ``request.environ``,
        Django ``request.META``, Bottle ``request.environ``).
    """
    token = environ.get("oauth2.token")
    return token if isinstance(token, AccessToken) else None


def scope_error(environ: WSGIEnvironment, scopes: Iterable[str]) -> BearerError | None:
    """The RFC 6750 error of a request whose token lacks ``scopes``, or None if it has them all.

    :param environ: the WSGI environ of the request.
    :param scopes: every scope the request needs.
    :returns: :class:`MissingToken` when there is no token (401),
        :class:`InsufficientScope` naming ``scopes`` when one is missing (403).
    """
    token = current_token(environ)
    if token is None:
        return MissingToken()
    needed = tuple(scopes)
    if not set(needed).issubset(token.scopes):
        return InsufficientScope(needed)
    return None


def scope_denial(environ: WSGIEnvironment, *scopes: str, realm: str | None = None) -> Response | None:
    """The error response to send when the request's token lacks ``scopes``, else None.

    For views of a framework: a :class:`webob.Response` (a WSGI application)
    with the guard's status, JSON body and ``WWW-Authenticate`` challenge.
    Flask and Pyramid views can return it as it is; for other frameworks copy
    its ``status_code``, ``headerlist`` and ``body`` into their response.

    :param environ: the WSGI environ of the request.
    :param scopes: every scope the view needs.
    :param realm: the realm named in the challenge: the filter's ``realm``
        setting; None for that setting's default (``oauth2``).

    Example::

        denied = scope_denial(request.environ, "write")
        if denied is not None:
            return denied
    """
    # Both checked on every call, so a bad argument fails on the first request, not the first error.
    needed, checked_realm = _checked_scopes(scopes), _checked_realm(realm)
    error = scope_error(environ, needed)
    return None if error is None else _denial(environ, error, checked_realm)


def require_scope(*scopes: str, realm: str | None = None) -> Callable[[WSGIApplication], WSGIApplication]:
    """Wrap a WSGI application so that it only runs for tokens with all of ``scopes``.

    A request without a token (a public path, or no guard in front) gets the
    guard's 401; a token without one of the scopes gets 403
    ``insufficient_scope`` naming the scopes (RFC 6750 §3.1).

    :param scopes: every scope the wrapped application needs.
    :param realm: the realm named in the challenge: the filter's ``realm``
        setting; None for that setting's default (``oauth2``).
    :raises ValueError: no scope, a malformed scope or a realm that cannot be quoted.

    Example::

        admin = require_scope("admin")(admin_app)
    """
    needed = _checked_scopes(scopes)
    checked_realm = _checked_realm(realm)

    def wrap(app: WSGIApplication) -> WSGIApplication:
        return ScopeRequired(app, needed, checked_realm)

    return wrap


class ScopeRequired:
    """WSGI middleware that lets a request reach ``app`` only if its token has ``scopes``.

    Made by :func:`require_scope`; see there.

    :param app: the WSGI application to protect.
    :param scopes: every scope ``app`` needs.
    :param realm: the realm named in the challenge.
    """

    def __init__(self, app: WSGIApplication, scopes: tuple[str, ...], realm: str) -> None:
        self.app = app
        self.scopes = scopes
        self.realm = realm

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        error = scope_error(environ, self.scopes)
        if error is not None:
            return _denial(environ, error, self.realm)(environ, start_response)
        return self.app(environ, start_response)


def _denial(environ: WSGIEnvironment, error: BearerError, realm: str) -> Response:
    """The guard's answer to ``error``, naming the metadata URL the guard left in the environ, if any."""
    url = environ.get(ENVIRON_KEY)
    return bearer_error(error, realm, resource_metadata=url if isinstance(url, str) else None)


def _checked_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """The scopes, each one scope token; refused at once rather than never matching."""
    if not scopes:
        raise ValueError("name at least one scope")
    for scope in scopes:
        try:
            valid = scope_list(scope) == (scope,)
        except OAuthError:
            valid = False
        if not valid:
            raise ValueError(f"not a single scope token (RFC 6749 §3.3): {scope!r}")
    return tuple(dict.fromkeys(scopes))


def _checked_realm(realm: str | None) -> str:
    if realm is None:
        return DEFAULT_REALM
    # The same rule as the ``realm`` setting, without its stripping: the value is used as given.
    try:
        valid = header_text(realm) == realm
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"realm cannot be put in a challenge: {realm!r}")
    return realm
