"""Token endpoint (RFC 6749 §3.2): authenticate the client, check its DPoP proof, run its grant."""

from __future__ import annotations

from ..errors import InvalidDPoPProof, InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from ..grants import TokenRequest
from ..models import Client
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
    jkt = dpop_key(context, request, client)
    token = grant.token_response(TokenRequest(params, client, request, jkt))
    headers = token.headers
    if jkt is not None and context.dpop is not None and context.dpop.nonces is not None:
        headers = (*headers, ("DPoP-Nonce", context.dpop.nonces.current()))  # RFC 9449 §8.2
    return JSONReply(token.body, headers)


def dpop_key(context: EndpointContext, request: RequestContext, client: Client) -> str | None:
    """The thumbprint of the key of the request's valid DPoP proof; None for a bearer request.

    A proof is required when the server accepts no ``Bearer`` tokens or the
    client registered ``dpop_bound_access_tokens`` (RFC 9449 §5.2). With
    DPoP off, a ``DPoP`` header is ignored: the client gets a bearer token
    and sees it in ``token_type`` (§5).

    :raises InvalidDPoPProof: a required proof is missing, or the proof fails a check.
    """
    verifier = context.dpop
    required = client.dpop_bound_access_tokens or (
        verifier is not None and "Bearer" not in context.settings.token_types
    )
    if "HTTP_DPOP" not in request.environ:
        if required:
            raise InvalidDPoPProof("a DPoP proof is required")
        return None
    if verifier is None:
        if required:
            raise InvalidDPoPProof("this server does not accept DPoP proofs")
        return None
    return verifier.verify(request.environ, access_token=None)


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
