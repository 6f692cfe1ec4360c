"""What an endpoint declares: the middleware routes it and the metadata advertises it from this."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from webob import Request, Response

from ..errors import ConfigError
from ..registry import Registry
from ..request_context import RequestContext
from ..responses import Reply

if TYPE_CHECKING:
    from ..client_auth import ClientAuthenticator
    from ..clock import Clock
    from ..dpop import ProofVerifier
    from ..grants import Grant
    from ..repository import Repository
    from ..settings import Settings
    from ..tokens import TokenFormat
    from ..tokens.issuer import TokenIssuer


class EndpointContext(Protocol):
    """What the token, revocation, introspection, metadata and JWKS endpoints use.

    Built once by the wiring (:mod:`oauth_middleware.server`); a plug-in's
    endpoint receives the same. Read-only; shared between threads.
    """

    @property
    def settings(self) -> Settings:
        """The converted settings."""
        ...

    @property
    def clock(self) -> Clock:
        """The time refresh tokens expire by."""
        ...

    @property
    def repository(self) -> Repository:
        """Clients, refresh tokens and revocations."""
        ...

    @property
    def tokens(self) -> TokenFormat:
        """The access-token format: introspection and revocation."""
        ...

    @property
    def issuer(self) -> TokenIssuer:
        """The access-token issuer (its ``token_type``)."""
        ...

    @property
    def client_auth(self) -> ClientAuthenticator:
        """Authenticates the client of a token, revocation or introspection request."""
        ...

    @property
    def grants(self) -> Mapping[str, Grant]:
        """The token endpoint's grants by ``grant_type``, built with their context."""
        ...

    @property
    def dpop(self) -> ProofVerifier | None:
        """Checks the DPoP proofs of token requests; None when ``token_types`` has no ``DPoP``."""
        ...


#: The context a handler receives: :class:`EndpointContext`, or the authorization
#: endpoint's own (its login and consent parts).
ContextT = TypeVar("ContextT")


def always(settings: Settings) -> bool:
    """The default of :attr:`Endpoint.active` and :attr:`Endpoint.advertised`: yes."""
    return True


@dataclass(frozen=True)
class Endpoint(Generic[ContextT]):
    """One of our HTTP endpoints, as a registry entry.

    :param name: its name in :data:`~oauth_middleware.endpoints.ENDPOINTS` (and in
        the ``endpoints`` setting, for one without a path setting).
    :param handler: ``(context, request) -> reply``; it runs only for ``methods``.
        ``context`` is an :class:`EndpointContext` (the authorization endpoint
        receives a wider one of its own), ``request`` the
        :class:`~oauth_middleware.request_context.RequestContext`; the reply is
        a :class:`~oauth_middleware.responses.JSONReply`, rendered by the middleware.
    :param form: whether it reads a form-encoded body: the edge parses it once
        into ``request.form`` and refuses another content type (``invalid_request``).
    :param methods: the methods it answers; any other is 405 with ``Allow``.
    :param path_setting: the setting holding its path (the built-in endpoints).
    :param path: the default path of an endpoint without ``path_setting`` (a
        plug-in's); such an endpoint is routed only when the ``endpoints``
        setting names it, which may move it.
    :param credentials: whether client secrets, passwords, codes or tokens
        travel through it: plain HTTP is refused there (``require_https``),
        and its successes end a store outage (they read the store).
    :param metadata_name: the server metadata member (RFC 8414 §2) holding its URL.
    :param active: whether it is routed with these settings (the JWKS only with JWTs).
    :param advertised: whether its URL is in the metadata with these settings.

    Example::

        ENDPOINTS.register("hello", Endpoint("hello", hello, ("GET",), path="/oauth/hello"))
    """

    name: str
    handler: Callable[[ContextT, RequestContext], Reply]
    methods: tuple[str, ...]
    form: bool = False
    path_setting: str = ""
    path: str = ""
    credentials: bool = False
    metadata_name: str = ""
    active: Callable[[Settings], bool] = always
    advertised: Callable[[Settings], bool] = always


def with_webob(
    handler: Callable[[ContextT, Request], Response],
) -> Callable[[ContextT, RequestContext], Reply]:
    """A handler written against a WebOb request (the authorization endpoint's pages and cookies)."""

    def handle(context: ContextT, request: RequestContext) -> Reply:
        return handler(context, Request(request.environ, charset="utf-8"))

    return handle


#: name -> endpoint; the package registers its own in ``endpoints/__init__.py``, entry points
#: of ``oauth_middleware.endpoints`` add to it.
ENDPOINTS: Registry[Endpoint[Any]] = Registry("endpoint", "oauth_middleware.endpoints")


def routes(settings: Settings) -> dict[str, Endpoint[Any]]:
    """Exact ``PATH_INFO`` -> endpoint: the active built-in ones and those ``endpoints`` names.

    :raises ConfigError: ``endpoints`` names an unknown endpoint or one with a
        path setting of its own, or two endpoints share a path.
    """
    extra = dict(word.partition("=")[::2] for word in settings.endpoints)
    for name in extra:
        endpoint = ENDPOINTS.get(name)
        if endpoint is None:
            raise ConfigError(f"endpoints: unknown endpoint {name!r} (known: {', '.join(ENDPOINTS)})")
        if endpoint.path_setting:
            raise ConfigError(
                f"endpoints: {name} is always on; its path is the {endpoint.path_setting} setting"
            )
    table: dict[str, Endpoint[Any]] = {}
    for name in ENDPOINTS.names():
        endpoint = ENDPOINTS.get(name)
        if endpoint is None:
            continue  # unregistered meanwhile (a test's cleanup)
        if endpoint.path_setting:
            if not endpoint.active(settings):
                continue  # e.g. the JWKS with opaque tokens: the path stays the app's
            path = str(getattr(settings, endpoint.path_setting))
        elif name in extra and endpoint.active(settings):
            path = extra[name] or endpoint.path
        else:
            continue
        if path in table:
            raise ConfigError(f"endpoints: {name} and {table[path].name} both want the path {path}")
        table[path] = endpoint
    return table
