"""Device authorization endpoint (RFC 8628 §3.1, §3.2): a device asks, gets a device code and a user code.

The client authenticates exactly as at the token endpoint (a public client
by its ``client_id``) and must be allowed the device grant; its ``scope`` is
resolved by the scope policy. The answer tells the device where the user
goes (``verification_uri``, and ``verification_uri_complete`` with the user
code in it), how long the codes live and how often to poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlencode

from webob import Request

from ..errors import UnauthorizedClient
from ..grants import GrantContext
from ..grants.device_code import DeviceCodeGrant, start_device_authorization
from ..responses import JSONReply, Reply
from .base import Endpoint

if TYPE_CHECKING:
    from ..client_auth import ClientAuthenticator
    from ..request_context import RequestContext
    from ..settings import Settings


class DeviceContext(GrantContext, Protocol):
    """What the endpoint uses: the grant's context and client authentication."""

    @property
    def client_auth(self) -> ClientAuthenticator:
        """Authenticates the device's client, as at the token endpoint (throttled)."""
        ...


def device_grant_enabled(settings: Settings) -> bool:
    """Whether ``grants`` has the device grant: its two endpoints are served only then."""
    return DeviceCodeGrant.grant_type in settings.grants


def verification_uri(settings: Settings, request: RequestContext) -> str:
    """The user-code page's absolute URL: under ``issuer`` when set, else this request's host."""
    base = settings.issuer or str(Request(request.environ).application_url)
    return base.rstrip("/") + settings.device_verification_path


def device_authorization_endpoint(context: DeviceContext, request: RequestContext) -> Reply:
    """Authenticate the client, check its scopes, store the codes and answer them (§3.2)."""
    client = context.client_auth.authenticate(request)
    if DeviceCodeGrant.grant_type not in client.grant_types:
        raise UnauthorizedClient("the client may not use the device_code grant")
    scopes = context.scope_policy.resolve(request.form.get("scope"), client)
    resources = context.resource_policy.resolve(request.resources, client.resources)  # RFC 8707
    device_code, user_code = start_device_authorization(context, client, scopes, resources)
    uri = verification_uri(context.settings, request)
    body = {
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": uri,
        "verification_uri_complete": f"{uri}?{urlencode({'user_code': user_code})}",
        "expires_in": context.settings.device_code_ttl,
        "interval": context.settings.device_poll_interval,
    }
    return JSONReply(body)


#: RFC 8628 §3.1; advertised as ``device_authorization_endpoint`` (§4).
ENDPOINT = Endpoint(
    "device_authorization",
    device_authorization_endpoint,
    ("POST",),
    form=True,
    path_setting="device_authorization_path",
    credentials=True,
    metadata_name="device_authorization_endpoint",
    active=device_grant_enabled,
    advertised=device_grant_enabled,
)
