"""Protected resource metadata (RFC 9728), served by the guard for its ``resource_identifier``.

A client that meets the guard's 401 finds the metadata URL in the
challenge's ``resource_metadata`` (§5.1), reads which authorization servers
issue tokens for this resource, with which scopes and how a token may be
sent, and asks one of them for a token with ``resource`` set to the
identifier (RFC 8707). The document is served at the well-known URL built
from the identifier (§3.1: ``/.well-known/oauth-protected-resource``
inserted between the host and the identifier's path), and its ``resource``
is exactly that identifier, which the client must check (§3.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .responses import json_response

if TYPE_CHECKING:
    from webob import Response

    from .settings import Settings

#: RFC 9728 §3: the well-known URI suffix.
WELL_KNOWN = "/.well-known/oauth-protected-resource"


def metadata_path(identifier: str) -> str:
    """The path of the metadata of the resource ``identifier`` (RFC 9728 §3.1).

    >>> metadata_path("https://api.example.com/mcp")
    '/.well-known/oauth-protected-resource/mcp'
    >>> metadata_path("https://api.example.com/")
    '/.well-known/oauth-protected-resource'
    """
    return WELL_KNOWN + urlsplit(identifier).path.rstrip("/")


def metadata_url(identifier: str) -> str:
    """The URL of the metadata of the resource ``identifier``: its origin, the path, its query (§3.1)."""
    parts = urlsplit(identifier)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{metadata_path(identifier)}{query}"


def protected_resource_metadata(settings: Settings) -> dict[str, Any]:
    """The RFC 9728 §2 document of the guard's ``resource_identifier``, from what the guard accepts.

    ``jwks_uri`` is the resource's own keys (for signed responses), which it does
    not have: the authorization server's JWKS is in that server's metadata.
    """
    document: dict[str, Any] = {"resource": settings.resource_identifier}
    if settings.issuer:
        document["authorization_servers"] = [settings.issuer]
    if settings.scopes:
        document["scopes_supported"] = list(settings.scopes)
    bearer = "Bearer" in settings.token_types
    sources = (
        ("header", settings.token_from_header),
        ("body", settings.token_from_body),
        ("query", settings.token_from_query),
    )
    # An empty list says bearer tokens are not accepted at all (DPoP only).
    document["bearer_methods_supported"] = [name for name, on in sources if on and bearer]
    if "DPoP" in settings.token_types:
        document["dpop_signing_alg_values_supported"] = list(settings.dpop_signing_algs)
        document["dpop_bound_access_tokens_required"] = not bearer
    return document


class ResourceMetadata:
    """The guard's metadata document, its path and URL, built once.

    :param settings: the guard's; ``resource_identifier`` must be set.

    Example::

        metadata = ResourceMetadata(settings)
        if environ["PATH_INFO"] == metadata.path:
            return metadata.response()(environ, start_response)
    """

    def __init__(self, settings: Settings) -> None:
        self.path = metadata_path(settings.resource_identifier)
        self.url = metadata_url(settings.resource_identifier)
        self.document = protected_resource_metadata(settings)
        self.max_age = settings.metadata_max_age

    def response(self) -> Response:
        """The document, public and cacheable for ``metadata_max_age`` like the server's own."""
        response = json_response(self.document, cache=True)
        response.headers["Cache-Control"] = f"public, max-age={self.max_age}"
        return response
