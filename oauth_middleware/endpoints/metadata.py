"""Authorization server metadata (RFC 8414), generated from the settings and the registries.

Every member comes from what this server really offers: the endpoints it
routes (each declares its member), the grant types it enabled (each declares
its own members, such as the PKCE methods), the guard's token types and the
client authentication methods of :mod:`..clients`.
"""

from __future__ import annotations

from typing import Any

from ..client_auth import AUTH_METHODS, auth_method
from ..grants import grant_metadata, grant_types_supported, offered_response_types
from ..profile import PROFILES
from ..request_context import RequestContext
from ..resource_indicators import known_resources
from ..responses import JSONReply, Reply
from ..settings import Settings
from ..token_types import token_type_metadata
from .base import Endpoint, EndpointContext, routes


def metadata_endpoint(context: EndpointContext, request: RequestContext) -> Reply:
    """Serve the metadata document; it is public and may be cached for ``metadata_max_age``."""
    cache_control = ("Cache-Control", f"public, max-age={context.settings.metadata_max_age}")
    return JSONReply(server_metadata(context, context.settings.issuer), (cache_control,), cache=True)


def server_metadata(context: EndpointContext, issuer: str) -> dict[str, Any]:
    """The RFC 8414 §2 document for ``issuer``; endpoint URLs are ``issuer`` + path.

    :param context: the running server's, whose settings and routes are described.
    :param issuer: the issuer identifier, also the base of every endpoint URL.
    """
    settings = context.settings
    document: dict[str, Any] = {"issuer": issuer}
    for path, endpoint in routes(settings).items():
        if endpoint.metadata_name and endpoint.advertised(settings):
            document[endpoint.metadata_name] = issuer + path
    if settings.scopes:
        document["scopes_supported"] = list(settings.scopes)
    # RFC 8414 §2 makes this member REQUIRED; an empty list says no authorization endpoint.
    document["response_types_supported"] = list(offered_response_types(settings))
    document["grant_types_supported"] = grant_types_supported(settings)
    # A security profile (``profile``) narrows the methods and algorithms: only those it accepts are offered.
    profile = PROFILES[settings.profile]
    methods = [name for name in profile.methods(AUTH_METHODS) if _usable(name, settings)]
    document["token_endpoint_auth_methods_supported"] = methods
    # Public clients identify themselves to revoke their own tokens (RFC 7009 §5).
    document["revocation_endpoint_auth_methods_supported"] = methods
    document["introspection_endpoint_auth_methods_supported"] = [m for m in methods if m != "none"]
    # RFC 8414 §2: the algorithms the offered methods' assertions may use, at each endpoint.
    algorithms = profile.signing_algorithms(
        alg for name in methods for alg in getattr(auth_method(name), "signing_algorithms", ())
    )
    for name in ("token", "revocation", "introspection"):
        if algorithms:  # none without a method that signs assertions
            document[f"{name}_endpoint_auth_signing_alg_values_supported"] = algorithms
    if offered_response_types(settings):
        # RFC 9207 §3: every authorization response carries iss.
        document["authorization_response_iss_parameter_supported"] = True
        if settings.require_pushed_authorization_requests:
            document["require_pushed_authorization_requests"] = True  # RFC 9126 §5
    resources = known_resources(settings)
    if resources:
        document["protected_resources"] = list(resources)  # RFC 9728 §4
    if settings.client_id_metadata_documents:
        document["client_id_metadata_document_supported"] = (
            True  # draft-ietf-oauth-client-id-metadata-document
        )
    document.update(grant_metadata(settings))
    document.update(token_type_metadata(settings))
    return document


def _usable(name: str, settings: Settings) -> bool:
    """Whether method ``name`` can verify anything here: the setting it requires, if any, is set."""
    required = getattr(auth_method(name), "required_setting", None)
    return required is None or bool(getattr(settings, required))


#: RFC 8414 §3.
ENDPOINT = Endpoint("metadata", metadata_endpoint, ("GET", "HEAD"), path_setting="metadata_path")
