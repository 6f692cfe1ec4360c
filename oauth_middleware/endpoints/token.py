"""Token endpoint (RFC 6749 §3.2): authenticate the client, run its grant."""

from __future__ import annotations

from webob import Request, Response

from ..errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from ..grants import TokenRequest
from ..responses import json_response
from .base import Endpoint, EndpointContext
from .common import form_params


def token_endpoint(context: EndpointContext, request: Request) -> Response:
    """Answer a token request with a token (§5.1) or raise an error (§5.2)."""
    params = form_params(request)
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    client = context.client_auth.authenticate(request, params)
    grant = context.grants.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType("this grant_type is not supported")
    if grant_type not in client.grant_types or (client.is_public and not grant.allows_public_clients):
        raise UnauthorizedClient(f"the client may not use the {grant_type} grant")
    return json_response(grant.token_response(TokenRequest(params, client, request)))


#: RFC 6749 §3.2.
ENDPOINT = Endpoint(
    "token",
    token_endpoint,
    ("POST",),
    path_setting="token_path",
    credentials=True,
    metadata_name="token_endpoint",
)
