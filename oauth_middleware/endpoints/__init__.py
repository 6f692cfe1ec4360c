"""Our own HTTP endpoints, one module each; each is ``(server, request) -> Response``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from webob import Request, Response

from .authorize import authorize_endpoint
from .token import token_endpoint

if TYPE_CHECKING:
    from ..server import AuthorizationServer

Endpoint = Callable[["AuthorizationServer", Request], Response]


def routes(server: AuthorizationServer) -> dict[str, Endpoint]:
    """Exact ``PATH_INFO`` -> endpoint, from the path settings."""
    settings = server.settings
    return {
        settings.authorize_path: authorize_endpoint,
        settings.token_path: token_endpoint,
    }
