"""Revocation endpoint (RFC 7009): a client withdraws one of its own tokens.

The client authenticates as at the token endpoint (a public client only
identifies itself). ``token_type_hint`` picks which lookup runs first, but
both run, since a hint may be wrong (§2.1). Revoking a refresh token revokes
its whole family, so every access token issued from it too. A token that is
unknown, expired or already revoked answers 200 like a success (§2.2): the
caller's goal, an unusable token, is reached.
"""

from __future__ import annotations

import logging

from ..errors import InvalidGrant, InvalidRequest
from ..models import Client, digest
from ..request_context import RequestContext
from ..responses import JSONReply, Reply
from .base import Endpoint, EndpointContext

log = logging.getLogger("oauth_middleware.revoke")


def revoke_endpoint(context: EndpointContext, request: RequestContext) -> Reply:
    """Revoke the ``token`` of an authenticated client; 200 whether or not it was live."""
    params = request.form
    client = context.client_auth.authenticate(request)
    token = params.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    if params.get("token_type_hint") == "refresh_token":
        revoked = revoke_refresh_token(context, client, token) or revoke_access_token(context, client, token)
    else:
        revoked = revoke_access_token(context, client, token) or revoke_refresh_token(context, client, token)
    if not revoked:
        log.info("revocation of an unknown or inactive token: client_id=%r", client.client_id)
    return JSONReply({})


def revoke_access_token(context: EndpointContext, client: Client, token: str) -> bool:
    """Revoke an active access token of ``client``; False when ``token`` is not one."""
    access = context.tokens.introspect(token)
    if access is None:
        return False
    check_owner(client, access.client_id)
    context.tokens.revoke(access)
    log.info("access token revoked: client_id=%r", client.client_id)
    return True


def revoke_refresh_token(context: EndpointContext, client: Client, token: str) -> bool:
    """Revoke a live refresh token of ``client`` and its family; False when not one."""
    token_id = digest(token)
    record = context.repository.find_refresh_token(token_id)
    if record is None:
        return False
    check_owner(client, record.client_id)
    context.repository.take_refresh_token(token_id)
    context.repository.revoke_family(record.family)
    log.info("refresh token and its family revoked: client_id=%r", client.client_id)
    return True


def check_owner(client: Client, owner: str) -> None:
    """Refuse to revoke a token issued to another client (RFC 7009 §2.1).

    :raises InvalidGrant: the token belongs to someone else (RFC 6749 §5.2:
        "issued to another client").
    """
    if owner != client.client_id:
        log.warning("client %r tried to revoke a token of client %r", client.client_id, owner)
        raise InvalidGrant("the token was issued to another client")


#: RFC 7009 §2.
ENDPOINT = Endpoint(
    "revoke",
    revoke_endpoint,
    ("POST",),
    form=True,
    path_setting="revoke_path",
    credentials=True,
    metadata_name="revocation_endpoint",
)
