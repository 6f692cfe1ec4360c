"""Token endpoint (RFC 6749 §3.2): authenticate the client, run its grant."""

from __future__ import annotations

from ..errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from ..grants import TokenRequest
from ..request_context import RequestContext
from ..responses import JSONReply, Reply
from .base import Endpoint, EndpointContext


def token_endpoint(context: EndpointContext, request: RequestContext) -> Reply:
    """Answer a token request with a token (§5.1) or raise an error (§5.2)."""
    params = request.form
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    client = context.client_auth.authenticate(request)
    grant = context.grants.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType("this grant_type is not supported")
    if grant_type not in client.grant_types or (client.is_public and not grant.allows_public_clients):
        raise UnauthorizedClient(f"the client may not use the {grant_type} grant")
    token = grant.token_response(TokenRequest(params, client, request))
    return JSONReply(token.body, token.headers)


#: RFC 6749 §3.2.
ENDPOINT = Endpoint(
    "token",
    token_endpoint,
    ("POST",),
    form=True,
    path_setting="token_path",
    credentials=True,
    metadata_name="token_endpoint",
)
