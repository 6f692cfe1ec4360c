"""JWK Set endpoint (RFC 7517 §5): the public keys that verify our JWTs.

Routed only with ``token_format = jwt``. It lists the public half of every
verification key (so tokens signed before a rotation still verify) and
never an HS256 secret or a private member.
"""

from __future__ import annotations

from ..errors import ServerError
from ..request_context import RequestContext
from ..responses import JSONReply, Reply
from ..tokens.jwt import JWTTokens
from .base import Endpoint, EndpointContext


def jwks_endpoint(context: EndpointContext, request: RequestContext) -> Reply:
    """Serve ``{"keys": [...]}``; public and cacheable."""
    tokens = context.tokens
    if not isinstance(tokens, JWTTokens):
        raise ServerError("no JWT keys")  # not routed unless token_format = jwt
    return JSONReply(tokens.keys.jwks(), cache=True)


#: RFC 7517 §5; routed only with ``token_format = jwt`` (with opaque tokens there are no keys).
ENDPOINT = Endpoint(
    "jwks",
    jwks_endpoint,
    ("GET", "HEAD"),
    path_setting="jwks_path",
    metadata_name="jwks_uri",
    active=lambda settings: settings.token_format == "jwt",
)
