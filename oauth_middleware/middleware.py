"""The WSGI entry point: answer our own paths, guard every other one."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from webob import Response

from .clock import SYSTEM_CLOCK, Clock
from .endpoints import routes
from .errors import MethodNotAllowed, OAuthError, ServerError, StoreUnavailable, TemporarilyUnavailable
from .guard import Guard
from .limits import cap_body
from .models import Client
from .outage import OutageLog
from .proxies import Origin, check_https, request_origin_once
from .request_context import read_request
from .responses import RenderedJSON, oauth_error, render, render_error
from .server import AuthorizationServer
from .settings import Settings
from .stores import Store
from .user_grants import UserGrant, list_grants, revoke_grants

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("oauth_middleware")


class OAuth2Middleware:
    """Authorization server and resource-server guard in one WSGI middleware.

    :param app: the WSGI application to protect.
    :param settings: converted settings; or pass ini-style keyword arguments.
    :param store_backend: an already open store to use instead of the ``store`` setting.
    :param clock: the time the server and its stores read (tests pass a fake one to move it).

    Example::

        app = OAuth2Middleware(app, issuer="https://auth.example.com", store="sqlite:///oauth.db")
    """

    def __init__(
        self,
        app: WSGIApplication,
        settings: Settings | None = None,
        *,
        store_backend: Store | None = None,
        clock: Clock = SYSTEM_CLOCK,
        **config: Any,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_config(config)
        self.server = AuthorizationServer(self.settings, store_backend, clock=clock)
        self.routes = routes(self.settings)
        #: Where client secrets, passwords, codes and tokens travel (HTTPS only), and
        #: endpoints that always read the store before they answer successfully.
        self.credential_paths = frozenset(path for path, e in self.routes.items() if e.credentials)
        self.guard = Guard(app, self.settings, self.server.tokens)
        # One log for the endpoints and the guard: one outage, one line per interval.
        self.outage: OutageLog = self.guard.outage

    def find_clients(self, **attributes: str) -> list[Client]:
        """The registered clients carrying all these attributes (``meta``), sorted by id.

        Example::

            middleware.find_clients(tenant="acme")  # every client registered with --meta tenant=acme
        """
        return self.server.repository.find_clients(attributes)

    def list_grants(self, user_id: str) -> list[UserGrant]:
        """The clients holding grants of ``user_id`` (codes, tokens, remembered consent), oldest first.

        Example::

            for grant in middleware.list_grants("alice"):
                print(grant.client_id, grant.since, " ".join(grant.scopes))
        """
        return list_grants(self.server.repository, user_id)

    def revoke_grants(self, user_id: str, client_id: str | None = None) -> list[UserGrant]:
        """End every grant of ``user_id`` (to ``client_id`` only, if given): codes, access and
        refresh tokens, remembered consent; return what was ended.

        For a password change or "log out everywhere" (see :mod:`oauth_middleware.user_grants`).

        Example::

            middleware.revoke_grants("alice")  # every client's tokens of alice stop working
        """
        return revoke_grants(self.server.repository, user_id, client_id)

    def close(self) -> None:
        """Close the stores the middleware opened: their files, connections and sockets.

        For a clean shutdown (tests, a process that builds and drops
        middlewares); a ``store_backend`` passed in is left to its owner.
        """
        self.server.close()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        endpoint = self.routes.get(path)
        if endpoint is None:
            return self.guard(environ, start_response)
        # No WebOb request here: the environ is read directly (most endpoints never need one).
        response: Response | RenderedJSON
        try:
            origin = self.admit(environ, path)
            if environ["REQUEST_METHOD"] not in endpoint.methods:
                raise MethodNotAllowed(endpoint.methods)
            context = read_request(environ, origin, form=endpoint.form)
            response = render(endpoint.handler(self.server, context))
            if endpoint.credentials:
                self.outage.succeeded()  # an outage seen here ends here too, guard traffic or not
        except OAuthError as error:
            response = render_error(error, self.settings.realm)
        except StoreUnavailable as exc:
            self.outage.failed(exc)
            response = oauth_error(TemporarilyUnavailable("the store is unavailable"), self.settings.realm)
        except Exception:
            # Never a traceback to the client; the log has it for the operator.
            log.exception("unexpected error on %s", path)
            response = oauth_error(ServerError("internal error"), self.settings.realm)
        return response(environ, start_response)

    def admit(self, environ: WSGIEnvironment, path: str) -> Origin:
        """Checks every request to our endpoints passes before an endpoint reads it; its origin.

        The scheme a trusted proxy reports becomes the request's own (issuer
        URLs, Secure cookies); plain HTTP is refused where credentials travel
        (``require_https``); the body is capped (``max_body_size``).

        :param path: the path the request was routed by.
        :raises OAuthError: ``invalid_request`` (an error page at the
            authorization endpoint) or 413.
        """
        settings = self.settings
        origin = request_origin_once(environ, settings.trusted_proxies)
        if origin.proxied:
            environ["wsgi.url_scheme"] = origin.scheme
        if settings.require_https and path in self.credential_paths:
            pages = (settings.authorize_path, settings.device_verification_path, settings.applications_path)
            check_https(origin, page=path in pages)
        cap_body(environ, settings.max_body_size)
        return origin
