"""Our own HTTP endpoints, one module each; each is ``(server, request) -> Response``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from webob import Request, Response

from .authorize import authorize_endpoint
from .introspect import introspect_endpoint
from .jwks import jwks_endpoint
from .metadata import metadata_endpoint
from .revoke import revoke_endpoint
from .token import token_endpoint

if TYPE_CHECKING:
    from ..server import AuthorizationServer

Endpoint = Callable[["AuthorizationServer", Request], Response]


def routes(server: AuthorizationServer) -> dict[str, Endpoint]:
    """Exact ``PATH_INFO`` -> endpoint, from the path settings."""
    settings = server.settings
    table: dict[str, Endpoint] = {
        settings.authorize_path: authorize_endpoint,
        settings.token_path: token_endpoint,
        settings.revoke_path: revoke_endpoint,
        settings.introspect_path: introspect_endpoint,
        settings.metadata_path: metadata_endpoint,
    }
    if settings.token_format == "jwt":
        # With opaque tokens there are no keys to publish: the path stays the app's.
        table[settings.jwks_path] = jwks_endpoint
    return table
