"""Pushed authorization request endpoint (RFC 9126): the client posts its request, gets a ``request_uri``.

The client authenticates exactly as at the token endpoint; the pushed
parameters are validated as a whole authorization request now, and any
problem is a JSON error to the client (§2.3), never a redirect. The request
is stored under the hash of the ``request_uri``'s random part, bound to the
client, for ``par_ttl`` seconds; the authorization endpoint uses it once.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Protocol

from ..authorization import REQUEST_URI_PREFIX, RequestContext, pushed_request_id, validate_pushed_request
from ..errors import InvalidRequest
from ..grants import offered_response_types
from ..profile import PROFILES
from ..records import PushedRequestRecord
from ..responses import JSONReply, Reply
from .base import Endpoint

if TYPE_CHECKING:
    from ..client_auth import ClientAuthenticator
    from ..repository import Repository
    from ..request_context import RequestContext as HTTPRequest


class PushContext(RequestContext, Protocol):
    """What the endpoint uses of the server: validation's context, client authentication, the store."""

    @property
    def repository(self) -> Repository:
        """Clients, and where pushed requests are kept."""

    @property
    def client_auth(self) -> ClientAuthenticator:
        """Authenticates the pushing client, as at the token endpoint (throttled)."""


def par_endpoint(context: PushContext, request: HTTPRequest) -> Reply:
    """Authenticate the client, validate its request, store it and answer its ``request_uri`` (§2.2)."""
    client = context.client_auth.authenticate(request)
    if PROFILES[context.settings.profile].par_requires_redirect_uri and "redirect_uri" not in request.form:
        raise InvalidRequest("redirect_uri is required in a pushed authorization request")
    resources = (("resource", resource) for resource in request.resources)
    validated = validate_pushed_request(context, client, [*request.form.items(), *resources])
    # 256 random bits: the request_uri is a bearer reference to the request until it is used.
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    ttl = context.settings.par_ttl
    record = PushedRequestRecord(
        client_id=client.client_id,
        params=dict(validated.params),
        expires_at=int(context.clock.time()) + ttl,
        resources=validated.resources,
    )
    context.repository.save_pushed_request(pushed_request_id(request_uri), record, ttl)
    return JSONReply({"request_uri": request_uri, "expires_in": ttl}, status=201)


#: RFC 9126 §2; routed and advertised (§5) while the authorization endpoint offers a response type.
ENDPOINT = Endpoint(
    "par",
    par_endpoint,
    ("POST",),
    form=True,
    path_setting="par_path",
    credentials=True,
    metadata_name="pushed_authorization_request_endpoint",
    active=lambda settings: bool(offered_response_types(settings)),
    advertised=lambda settings: bool(offered_response_types(settings)),
)
