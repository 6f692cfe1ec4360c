"""Dynamic client registration (RFC 7591) and its management (RFC 7592), off unless ``registration`` says.

A client posts its metadata as JSON to the registration endpoint and gets a
``client_id`` (a secret too when its method uses one), a registration
access token and the URL of its own registration, the client configuration
endpoint, where that token lets it read, replace and delete it. Stored are
the client (in the client store, like every other) and, beside it, the
registration: the token's SHA-256 and the descriptive metadata.

Before anything is read, a request counts against its address
(``registration_max_per_address`` per ``registration_window``); with
``registration = initial-access-token`` it must carry one of the
``initial_access_tokens``. The ``registration_policy`` hook sees the
metadata of every registration and update before it is validated
(:mod:`oauth_middleware.client_metadata`).
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, quote

from webob import Request

from ..client_metadata import RegisteredMetadata, client_information, registered_client
from ..clients import new_confidential_client_secret
from ..errors import (
    ConfigError,
    InvalidClientMetadata,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    TooManyRequests,
    describable,
)
from ..grants import grant_types_supported
from ..models import digest
from ..parsing import authorization_scheme
from ..profile import PROFILES
from ..records import RegistrationRecord
from ..responses import JSONReply, Reply, no_content
from ..secret_hash import check_secret
from ..throttle import counted_address
from .base import Endpoint

if TYPE_CHECKING:
    from ..clock import Clock
    from ..repository import Repository
    from ..request_context import RequestContext
    from ..settings import Settings


class RegistrationContext(Protocol):
    """What the registration endpoints use of the server."""

    @property
    def settings(self) -> Settings:
        """``registration`` and its settings, ``issuer``, the paths."""

    @property
    def repository(self) -> Repository:
        """Where clients and registrations are kept, and registration requests counted."""

    @property
    def clock(self) -> Clock:
        """The time of ``client_id_issued_at``."""


def register_endpoint(context: RegistrationContext, request: RequestContext) -> Reply:
    """Register a client from its metadata (RFC 7591 §3.1); 201 with its client information (§3.2.1)."""
    settings = context.settings
    _count(context, request)
    if settings.registration == "initial-access-token":
        initial = _bearer(request)
        if not any(check_secret(stored, initial) for stored in settings.initial_access_tokens):
            raise InvalidToken("the initial access token is not valid")
    metadata = _json_body(request)
    client_id = secrets.token_urlsafe(24)  # random, so never an https URL (a metadata document's id)
    secret, secret_hash = new_confidential_client_secret()
    registered = _registered(context, request, client_id, metadata, secret_hash)
    token = secrets.token_urlsafe(32)
    issued_at = int(context.clock.time())
    record = RegistrationRecord(digest(token), issued_at, registered.extra)
    context.repository.save_registration(registered.client, record)
    body = _information(context, registered, issued_at, token)
    if registered.client.secret_hash is not None:
        body["client_secret"] = secret
    return JSONReply(body, status=201)


def client_configuration_endpoint(context: RegistrationContext, request: RequestContext) -> Reply:
    """Read (GET), replace (PUT) or delete (DELETE) one's own registration (RFC 7592 §2)."""
    token = _bearer(request)
    client_id = _client_id(request)
    record = None if client_id is None else context.repository.find_registration(client_id)
    client = None if client_id is None else context.repository.get_client(client_id)
    # RFC 7592 §2.1: an unknown client, or another's token, is 401 alike (nothing to tell apart).
    if client is None or record is None or not check_secret(record.token_hash, token):
        raise InvalidToken("the registration access token is not valid for this client")
    if request.method == "DELETE":
        _deny_issued_tokens(context, client.client_id)
        context.repository.remove_client(client.client_id)
        return no_content()
    if request.method == "GET":
        registered = RegisteredMetadata(client, record.extra)
        return JSONReply(_information(context, registered, record.issued_at, token))
    return _update(context, request, record, client.secret_hash, token)


def _deny_issued_tokens(context: RegistrationContext, client_id: str) -> None:
    """Invalidate the client's access tokens issued so far (RFC 7592 §2.3), before it goes.

    Its refresh tokens and codes need nothing: they are redeemed by a client
    that no longer exists. The marker lasts until the last token issued now
    would have failed its expiry check anyway.
    """
    settings = context.settings
    until = int(context.clock.time()) + settings.access_token_ttl
    context.repository.deny_client_tokens(client_id, until, settings.access_token_ttl + settings.jwt_leeway)


def _update(
    context: RegistrationContext,
    request: RequestContext,
    record: RegistrationRecord,
    secret_hash: str | None,
    token: str,
) -> Reply:
    """Replace the client's metadata with the request's, validated as a registration (RFC 7592 §2.2)."""
    metadata = _json_body(request)
    client_id = _client_id(request)
    if not isinstance(metadata, dict) or metadata.get("client_id") != client_id or client_id is None:
        raise InvalidClientMetadata("client_id must be the registered client's")
    sent_secret = metadata.get("client_secret")
    if sent_secret is not None and not (
        isinstance(sent_secret, str) and secret_hash is not None and check_secret(secret_hash, sent_secret)
    ):
        raise InvalidClientMetadata("client_secret is not the client's (it cannot be chosen)")
    secret, new_hash = new_confidential_client_secret()
    registered = _registered(context, request, client_id, metadata, secret_hash or new_hash)
    updated = RegistrationRecord(record.token_hash, record.issued_at, registered.extra)
    context.repository.save_registration(registered.client, updated)
    body = _information(context, registered, record.issued_at, token)
    if registered.client.secret_hash == new_hash:
        body["client_secret"] = secret  # a method that now uses a secret: a new one
    return JSONReply(body)


def _registered(
    context: RegistrationContext,
    request: RequestContext,
    client_id: str,
    metadata: Any,
    secret_hash: str,
) -> RegisteredMetadata:
    """The client ``metadata`` describes, after the policy hook, checked (:mod:`..client_metadata`)."""
    settings = context.settings
    if settings.registration_policy is not None and isinstance(metadata, dict):
        # Members the server sets itself never reach the policy as if the client chose them.
        sent = {k: v for k, v in metadata.items() if k not in _SERVER_MEMBERS}
        metadata = settings.registration_policy(sent, Request(request.environ))
        if metadata is None:
            raise InvalidClientMetadata("the registration is refused by this server's policy")
    registered = registered_client(
        client_id,
        metadata,
        secret_hash=secret_hash,
        grants=grant_types_supported(settings),
        scopes=settings.registration_scopes or settings.scopes,
    )
    try:
        # A client the server's profile would refuse on every request is not registered.
        PROFILES[settings.profile].check_client(registered.client, "the client's")
    except ConfigError as exc:
        raise InvalidClientMetadata(describable(str(exc))) from None
    return registered


#: Members of a client information response the server sets (RFC 7591 §3.2.1, RFC 7592 §3).
_SERVER_MEMBERS = frozenset(
    {
        "client_id",
        "client_secret",
        "client_id_issued_at",
        "client_secret_expires_at",
        "registration_access_token",
        "registration_client_uri",
    }
)


def _information(
    context: RegistrationContext, registered: RegisteredMetadata, issued_at: int, token: str
) -> dict[str, Any]:
    """The client information response (RFC 7591 §3.2.1 with RFC 7592 §3's two members)."""
    settings = context.settings
    body = client_information(registered, issued_at)
    body["registration_access_token"] = token
    body["registration_client_uri"] = (
        f"{settings.issuer}{settings.registration_client_path}?client_id={quote(registered.client.client_id)}"
    )
    return body


def _count(context: RegistrationContext, request: RequestContext) -> None:
    """Count a registration request against its address; refuse it past the limit (429)."""
    settings = context.settings
    address = request.origin.address
    # An unknown address counts as one: registrations stay limited when addresses are not known.
    counted = "unknown" if address is None else counted_address(address)
    if context.repository.count_registration(counted, settings.registration_window) > (
        settings.registration_max_per_address
    ):
        raise TooManyRequests(settings.registration_window, "too many registrations, retry later")


def _bearer(request: RequestContext) -> str:
    """The Bearer token of the ``Authorization`` header.

    :raises MissingToken: none (a bare challenge, RFC 6750 §3.1).
    :raises InvalidToken: another scheme or a malformed token.
    """
    header = request.headers.get("Authorization")
    if header is None:
        raise MissingToken()
    scheme, token = authorization_scheme(header)
    if scheme != "bearer" or not token or len(token) > 512 or not token.isascii():
        raise InvalidToken("a Bearer token is required")
    return token


def _client_id(request: RequestContext) -> str | None:
    """The ``client_id`` of the configuration endpoint's query string (once), or None."""
    values = parse_qs(str(request.environ.get("QUERY_STRING", "")), max_num_fields=10).get("client_id", [])
    return values[0] if len(values) == 1 and len(values[0]) <= 200 else None


def _json_body(request: RequestContext) -> Any:
    """The parsed JSON body (already capped at ``max_body_size``).

    :raises InvalidRequest: not ``application/json``, or not JSON.
    """
    webob_request = Request(request.environ)
    if webob_request.content_type.lower() != "application/json":
        raise InvalidRequest("the body must be application/json")
    try:
        return json.loads(webob_request.body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise InvalidRequest("the body is not JSON") from None


def _registration_on(settings: Settings) -> bool:
    return settings.registration != "off"


#: RFC 7591 §3; routed and advertised as ``registration_endpoint`` unless ``registration = off``.
ENDPOINT = Endpoint(
    "registration",
    register_endpoint,
    ("POST",),
    path_setting="registration_path",
    credentials=True,
    metadata_name="registration_endpoint",
    active=_registration_on,
    advertised=_registration_on,
)

#: RFC 7592 §2: each client's ``registration_client_uri`` is this path with its ``client_id``.
CONFIGURATION_ENDPOINT = Endpoint(
    "client_configuration",
    client_configuration_endpoint,
    ("GET", "PUT", "DELETE"),
    path_setting="registration_client_path",
    credentials=True,
    active=_registration_on,
)
