"""Authorization server metadata (RFC 8414), generated from the settings.

Every member comes from what this server really offers: the grants it
registered, the client authentication methods of :mod:`..clients`, the PKCE
methods it accepts, and the endpoints it routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webob import Request, Response

from ..client_auth import AUTH_METHODS
from ..responses import json_response
from .common import require_get

if TYPE_CHECKING:
    from ..server import AuthorizationServer


def metadata_endpoint(server: AuthorizationServer, request: Request) -> Response:
    """Serve the metadata document; it is public and may be cached for ``metadata_max_age``."""
    require_get(request)
    response = json_response(server_metadata(server, server.settings.issuer), cache=True)
    response.cache_control = f"public, max-age={server.settings.metadata_max_age}"
    return response


def server_metadata(server: AuthorizationServer, issuer: str) -> dict[str, Any]:
    """The RFC 8414 §2 document for ``issuer``; endpoint URLs are ``issuer`` + path.

    :param server: the running server, whose settings and registries are described.
    :param issuer: the issuer identifier, also the base of every endpoint URL.
    """
    settings = server.settings
    response_types = response_types_supported(server)
    document: dict[str, Any] = {"issuer": issuer}
    if response_types:
        document["authorization_endpoint"] = issuer + settings.authorize_path
    document["token_endpoint"] = issuer + settings.token_path
    if settings.token_format == "jwt":
        document["jwks_uri"] = issuer + settings.jwks_path
    if settings.scopes:
        document["scopes_supported"] = list(settings.scopes)
    # RFC 8414 §2 makes this member REQUIRED; an empty list says no authorization endpoint.
    document["response_types_supported"] = response_types
    document["grant_types_supported"] = grant_types_supported(server)
    document["token_endpoint_auth_methods_supported"] = list(AUTH_METHODS)
    document["revocation_endpoint"] = issuer + settings.revoke_path
    # Public clients identify themselves to revoke their own tokens (RFC 7009 §5).
    document["revocation_endpoint_auth_methods_supported"] = list(AUTH_METHODS)
    document["introspection_endpoint"] = issuer + settings.introspect_path
    document["introspection_endpoint_auth_methods_supported"] = [m for m in AUTH_METHODS if m != "none"]
    if "code" in response_types:
        document["code_challenge_methods_supported"] = pkce_methods(server)
    return document


def response_types_supported(server: AuthorizationServer) -> list[str]:
    """``code`` when offered with its grant enabled; ``token`` (implicit) when offered."""
    offered = server.settings.response_types
    types = ["code"] if "code" in offered and "authorization_code" in server.grants else []
    return [*types, "token"] if "token" in offered else types


def grant_types_supported(server: AuthorizationServer) -> list[str]:
    """The grants registered at the token endpoint, plus ``implicit`` when offered."""
    implicit = ["implicit"] if "token" in server.settings.response_types else []
    return [*server.grants, *implicit]


def pkce_methods(server: AuthorizationServer) -> list[str]:
    """``S256``, and ``plain`` only when ``allow_plain_pkce`` is on."""
    return ["S256", "plain"] if server.settings.allow_plain_pkce else ["S256"]
