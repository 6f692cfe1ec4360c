"""Introspection endpoint (RFC 7662): resource servers ask whether a token is active.

Only the confidential clients listed in ``introspection_clients`` may ask,
which keeps the endpoint from being a token-scanning oracle (§4). An
unknown, expired or revoked token is ``{"active": false}`` and nothing more
(§2.2). Revocation is always checked here, for JWTs too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..errors import AccessDenied, InvalidClient, InvalidRequest
from ..models import Client, digest
from ..parsing import scope_string
from ..request_context import RequestContext
from ..responses import JSONReply, Reply
from ..tokens.issuer import DPOP_TOKEN_TYPE
from .base import Endpoint, EndpointContext

log = logging.getLogger("oauth_middleware.introspect")


def introspect_endpoint(context: EndpointContext, request: RequestContext) -> Reply:
    """Describe ``token`` to an authorized resource server (RFC 7662 §2.2)."""
    params = request.form
    client = context.client_auth.authenticate(request)
    check_may_introspect(context, client)
    token = params.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    issuer = context.settings.issuer
    if params.get("token_type_hint") == "refresh_token":
        body = refresh_token_info(context, token, issuer) or access_token_info(context, token, issuer)
    else:
        body = access_token_info(context, token, issuer) or refresh_token_info(context, token, issuer)
    log.info("introspection by client_id=%r: active=%s", client.client_id, body is not None)
    return JSONReply(body or {"active": False})


def check_may_introspect(context: EndpointContext, client: Client) -> None:
    """Only authenticated clients named in ``introspection_clients`` may introspect.

    :raises InvalidClient: a public client, which cannot authenticate.
    :raises AccessDenied: an authenticated client that is not listed.
    """
    if client.is_public:
        raise InvalidClient("introspection needs client authentication")
    if client.client_id not in context.settings.introspection_clients:
        log.warning("client %r may not introspect tokens", client.client_id)
        raise AccessDenied("the client may not introspect tokens")


def access_token_info(context: EndpointContext, token: str, issuer: str) -> dict[str, Any] | None:
    """The members for an active access token, or None."""
    access = context.tokens.introspect(token)
    if access is None:
        return None
    body = _members(issuer, access.client_id, access.user_id, access.scopes, access.expires_at)
    body["token_type"] = context.issuer.token_type if access.jkt is None else DPOP_TOKEN_TYPE
    if access.jkt is not None:
        body["cnf"] = {"jkt": access.jkt}  # RFC 9449 §6.2
    if access.act is not None:
        body["act"] = dict(access.act)  # RFC 8693 §4.1, RFC 7662 §2.2
    # The token's own resources (RFC 8707; a JWT's aud), else the default audience every token had before.
    audience = access.audience or context.settings.audience
    if audience:
        body["aud"] = list(audience)
    if context.settings.token_format == "jwt":
        body["jti"] = access.token_id
    _add_data(context, body, access.extra)
    return body


def refresh_token_info(context: EndpointContext, token: str, issuer: str) -> dict[str, Any] | None:
    """The members for a live refresh token, or None."""
    record = context.repository.find_refresh_token(digest(token))
    if record is None or record.expired(context.clock.time()):
        return None
    body = _members(issuer, record.client_id, record.user_id, record.scopes, record.expires_at)
    if record.audience:
        body["aud"] = list(record.audience)  # the resources of the grant (RFC 8707)
    _add_data(context, body, record.extra)
    return body


def _add_data(context: EndpointContext, body: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """The token's data, in the member named like its JWT claim (``jwt_extra_claim``).

    One member whose name is never one introspection sets itself (RFC 7662
    §2.2), so the data can never override ``active``, ``sub`` or ``scope``.
    """
    if extra:
        body[context.settings.jwt_extra_claim] = dict(extra)


def _members(
    issuer: str, client_id: str, user_id: str | None, scopes: tuple[str, ...], expires_at: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"active": True, "client_id": client_id, "iss": issuer}
    if expires_at is not None:
        body["exp"] = expires_at
    body["sub"] = user_id if user_id is not None else client_id
    if user_id is not None:
        body["username"] = user_id
    if scopes:
        body["scope"] = scope_string(scopes)
    return body


#: RFC 7662 §2.
ENDPOINT = Endpoint(
    "introspect",
    introspect_endpoint,
    ("POST",),
    form=True,
    path_setting="introspect_path",
    credentials=True,
    metadata_name="introspection_endpoint",
)
