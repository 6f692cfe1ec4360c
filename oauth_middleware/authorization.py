"""The authorization request (RFC 6749 §4.1.1, §4.2.1; RFC 7636 §4.3), validated once.

Validation runs in two stages, because the answer to "may we redirect?"
depends on it: first the client and its redirect URI, whose errors are
:class:`~oauth_middleware.errors.FatalClientError` (an error page, never a
redirect: we must not become an open redirector); then everything else,
whose errors go back to the client as a
:class:`~oauth_middleware.errors.RedirectedError`.

A pushed request (RFC 9126) is validated the same way twice: when pushed
(:func:`validate_pushed_request`, every error answered to the client as
JSON) and when the browser brings its ``request_uri``
(:func:`validate_request`), since the client may have changed meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urlsplit

from . import pkce
from .clock import Clock
from .errors import (
    FatalClientError,
    InvalidRequest,
    InvalidRequestUri,
    OAuthError,
    RedirectedError,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from .grants import offered_response_types, response_types
from .limits import check_lengths, max_length
from .models import Client, digest
from .parsing import is_loopback_host, single_params
from .records import PushedRequestRecord
from .resource_indicators import ResourcePolicy
from .scopes import ScopePolicy
from .settings import Settings

#: The parameters of an authorization request that this server reads; the
#: login and consent forms carry exactly these through to the decision.
REQUEST_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "dpop_jkt",
    "resource",
)
#: The one request parameter that may be repeated (RFC 8707 §2): each names a resource.
_RESOURCE = "resource"
#: Parameters whose trust must be settled before any redirect (RFC 6749 §4.1.2.1).
_FATAL_PARAMS = ("client_id", "redirect_uri")
#: What every ``request_uri`` of a pushed request starts with (RFC 9126 §2.2); a random part follows.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
#: A ``dpop_jkt``: the unpadded base64url SHA-256 thumbprint of a key (RFC 9449 §10, RFC 7638).
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")


class Clients(Protocol):
    """Where registered clients and pushed requests are found (the repository)."""

    def get_client(self, client_id: str) -> Client | None:
        """The registered client with this id, or None."""

    def find_pushed_request(self, request_id: str) -> PushedRequestRecord | None:
        """The unused pushed request stored under this hash, or None."""

    def take_pushed_request(self, request_id: str) -> PushedRequestRecord | None:
        """Read and delete the pushed request stored under this hash, at once; None if gone."""


class ClientFinder(Protocol):
    """Where the client a request names is found: the registered ones, and metadata documents."""

    def find_client(self, client_id: str) -> Client | None:
        """The client with this id, or None.

        :raises FatalClientError: it names a client that exists but cannot be used
            (a metadata document that cannot be fetched): the description says why.
        """


class RequestContext(Protocol):
    """What validating an authorization request uses of the server."""

    @property
    def clients(self) -> ClientFinder:
        """Every client: registered ones and, when on, those of metadata documents."""

    @property
    def settings(self) -> Settings:
        """``response_types``, ``require_pkce``, ``allow_plain_pkce``."""

    @property
    def repository(self) -> Clients:
        """Pushed requests."""

    @property
    def scope_policy(self) -> ScopePolicy:
        """Which scopes a request gets."""

    @property
    def resource_policy(self) -> ResourcePolicy:
        """Which resources (RFC 8707) a request may name."""

    @property
    def clock(self) -> Clock:
        """The time pushed requests expire by."""


@dataclass(frozen=True)
class AuthorizationRequest:
    """A valid authorization request.

    :param client: the registered client.
    :param response_type: ``code`` or ``token``.
    :param redirect_uri: where the answer goes (validated against the registration).
    :param redirect_uri_given: whether the request named it; if so, the token
        request must name it too (RFC 6749 §4.1.3).
    :param scopes: the scopes the user is asked for.
    :param state: the client's ``state``, sent back unchanged.
    :param code_challenge: the PKCE challenge, for ``code``.
    :param code_challenge_method: ``S256`` or ``plain``, with a challenge.
    :param params: the request's own parameters, re-sent by the forms (of a
        pushed request: its ``client_id`` and ``request_uri``).
    :param request_uri: the ``request_uri`` of the pushed request it came from
        (RFC 9126), used up by the decision; None for a plain request.
    :param resources: the checked ``resource`` values (RFC 8707 §2.1): what the
        code's tokens are for (not in ``params``: the parameter may be repeated).
    """

    client: Client
    response_type: str
    redirect_uri: str
    redirect_uri_given: bool
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    params: Mapping[str, str]
    request_uri: str | None = None
    resources: tuple[str, ...] = ()

    @property
    def fragment(self) -> bool:
        """Whether the answer travels in the fragment (implicit grant, RFC 6749 §4.2.2)."""
        return self.response_type == "token"

    @property
    def dpop_jkt(self) -> str | None:
        """The DPoP key thumbprint the code is bound to (RFC 9449 §10), if the request named one."""
        return self.params.get("dpop_jkt")

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        """The parameters the login and consent forms re-send: ``params`` and, unless the
        request was pushed (its ``request_uri`` brings them back), each resource."""
        resources = () if self.request_uri is not None else self.resources
        return (*self.params.items(), *((_RESOURCE, resource) for resource in resources))

    @property
    def pending_id(self) -> str:
        """This request's identity while the user logs in and decides (what CSRF tokens bind to).

        A digest of everything validated: two requests that would be answered
        differently never share it.
        """
        fields = [
            self.client.client_id,
            self.response_type,
            self.redirect_uri,
            self.redirect_uri_given,
            self.scopes,
            self.state,
            self.code_challenge,
            self.code_challenge_method,
            self.dpop_jkt,
        ]
        if self.request_uri is not None:
            fields.append(self.request_uri)
        if self.resources:
            fields.append(self.resources)
        digest = hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode("utf-8")).hexdigest()
        return f"authorize:{digest}"

    def redirect_error(self, error: OAuthError, status: int, issuer: str = "") -> RedirectedError:
        """``error`` as a redirect back to this request's client, with ``status`` (302 or 303) and ``iss``."""
        return RedirectedError(
            error,
            redirect_uri=self.redirect_uri,
            state=self.state,
            fragment=self.fragment,
            status=status,
            issuer=issuer,
        )


def validate_request(server: RequestContext, items: Iterable[tuple[str, str]]) -> AuthorizationRequest:
    """Check an authorization request's parameters: a plain request, or ``client_id`` + ``request_uri``.

    :param server: what validation uses of the server.
    :param items: the request's parameters (query or form), unparsed.
    :raises FatalClientError: missing, unknown or mismatched client or redirect URI;
        :class:`~oauth_middleware.errors.InvalidRequestUri` for a ``request_uri``
        that is unknown, expired, used or another client's.
    :raises RedirectedError: any other problem, to be sent to the client (the
        endpoint that renders it picks the redirect status), among them a plain
        request where pushed ones are required (RFC 9126 §5, §6).
    """
    pairs = list(items)
    if any(name == "request_uri" for name, _ in pairs):
        return _pushed(server, pairs)
    request = _redirectable(server, pairs)
    if server.settings.require_pushed_authorization_requests or (
        request.client.require_pushed_authorization_requests
    ):
        # The client and redirect URI are good: the error may go back to the client.
        raise request.redirect_error(
            InvalidRequest("authorization requests must be pushed first (RFC 9126)"), 302
        )
    return request


def validate_pushed_request(
    server: RequestContext, client: Client, items: Iterable[tuple[str, str]]
) -> AuthorizationRequest:
    """Check the parameters of a request ``client`` pushes (RFC 9126 §2.1), before storing them.

    Errors are raised as themselves, for a JSON answer to the client (§2.3),
    never as a redirect or an error page.

    :param server: what validation uses of the server.
    :param client: the authenticated client that pushes.
    :param items: the pushed form.
    :raises OAuthError: ``invalid_request`` (also for a bad redirect URI, or a
        ``request_uri`` pushed), ``invalid_scope``, ``unauthorized_client``, ...
    """
    pairs = list(items)
    if any(name == "request_uri" for name, _ in pairs):
        raise InvalidRequest("request_uri cannot be pushed")
    if any(name == "client_id" and value != client.client_id for name, value in pairs):
        raise InvalidRequest("client_id is not the authenticated client")
    if not any(name == "client_id" for name, _ in pairs):
        pairs.append(("client_id", client.client_id))
    try:
        pairs, registered, redirect_uri = _trusted(server, pairs)
    except FatalClientError as error:
        raise InvalidRequest(error.description) from None
    return _complete(server, registered, redirect_uri, pairs)


def _redirectable(server: RequestContext, items: Iterable[tuple[str, str]]) -> AuthorizationRequest:
    """The request, its errors after the client and redirect URI raised as redirects."""
    pairs, client, redirect_uri = _trusted(server, items)
    states = [value for name, value in pairs if name == "state" and value]
    fragment = any(name == "response_type" and value == "token" for name, value in pairs)
    try:
        return _complete(server, client, redirect_uri, pairs)
    except (FatalClientError, RedirectedError):
        raise
    except OAuthError as error:
        # A repeated state is not echoed (which one?), nor an over-long one (the redirect carries it).
        state = states[0] if len(states) == 1 and len(states[0]) <= max_length("state") else None
        raise RedirectedError(error, redirect_uri=redirect_uri, state=state, fragment=fragment) from None


def _trusted(
    server: RequestContext, items: Iterable[tuple[str, str]]
) -> tuple[list[tuple[str, str]], Client, str]:
    """The parameters we read, the client and the redirect URI (errors: never redirected)."""
    pairs = [(name, value) for name, value in items if name in REQUEST_PARAMS]
    for name in _FATAL_PARAMS:
        if sum(1 for key, _ in pairs if key == name) > 1:
            raise FatalClientError(f"{name} is repeated")
    trusted = {name: value for name, value in pairs if name in _FATAL_PARAMS and value}
    client = _client(server, trusted.get("client_id"))
    return pairs, client, _redirect_uri(client, trusted.get("redirect_uri"))


def _complete(
    server: RequestContext, client: Client, redirect_uri: str, pairs: list[tuple[str, str]]
) -> AuthorizationRequest:
    check_lengths(pairs)
    resources = [value for name, value in pairs if name == _RESOURCE and value]
    params = single_params(pair for pair in pairs if pair[0] != _RESOURCE)
    return _checked(server, client, redirect_uri, params, resources)


def _pushed(server: RequestContext, pairs: list[tuple[str, str]]) -> AuthorizationRequest:
    """The pushed request ``client_id`` + ``request_uri`` name (RFC 9126 §4), validated again.

    Other parameters are ignored: the pushed ones are the request. The
    request stays stored until :func:`use_pushed_request` takes it.
    """
    client_ids = [value for name, value in pairs if name == "client_id"]
    request_uris = [value for name, value in pairs if name == "request_uri"]
    if len(client_ids) != 1 or len(request_uris) != 1:
        raise FatalClientError("client_id and request_uri are each required once")
    client_id, request_uri = client_ids[0], request_uris[0]
    record = server.repository.find_pushed_request(pushed_request_id(request_uri))
    # One answer for all four, so a guessed request_uri learns nothing.
    if record is None or record.expired(server.clock.time()) or record.client_id != client_id:
        raise InvalidRequestUri("request_uri is unknown, expired, already used or not this client's")
    resources = ((_RESOURCE, resource) for resource in record.resources)
    request = _redirectable(server, [*record.params.items(), *resources])
    return replace(
        request, params={"client_id": client_id, "request_uri": request_uri}, request_uri=request_uri
    )


def pushed_request_id(request_uri: str) -> str:
    """The store key part of a ``request_uri``: the hash of its random part (never stored in clear).

    A value without :data:`REQUEST_URI_PREFIX` gets an id nothing is stored under.
    """
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        return ""
    return digest(request_uri[len(REQUEST_URI_PREFIX) :])


def use_pushed_request(server: RequestContext, request: AuthorizationRequest) -> None:
    """Use up ``request``'s pushed request, if any, as it is answered: a ``request_uri`` is one-time.

    Taken atomically, so of concurrent decisions on one ``request_uri`` exactly one goes on.

    :raises InvalidRequestUri: it was used (or expired) meanwhile: a replay.
    """
    if request.request_uri is None:
        return
    if server.repository.take_pushed_request(pushed_request_id(request.request_uri)) is None:
        raise InvalidRequestUri("request_uri was already used")


def _client(server: RequestContext, client_id: str | None) -> Client:
    if client_id is None:
        raise FatalClientError("client_id is required")
    client = server.clients.find_client(client_id)
    if client is None:
        raise FatalClientError("unknown client_id")
    return client


def _redirect_uri(client: Client, requested: str | None) -> str:
    """The registered redirect URI the request names, or the only one registered (§3.1.2.3)."""
    if requested is None:
        if len(client.redirect_uris) != 1:
            raise FatalClientError("redirect_uri is required")
        return client.redirect_uris[0]
    if not any(redirect_uri_matches(registered, requested, client) for registered in client.redirect_uris):
        raise FatalClientError("redirect_uri is not registered for this client")
    return requested


def redirect_uri_matches(registered: str, requested: str, client: Client) -> bool:
    """Exact string match (RFC 9700 §4.1.3), except the port of a native client's loopback URI.

    RFC 8252 §7.3: a native app listens on whatever port the OS gives it, so
    for a public client's ``http`` loopback URI any port matches; every
    other part must still be identical.
    """
    if requested == registered:
        return True
    if not client.is_public:
        return False
    try:
        want, got = urlsplit(registered), urlsplit(requested)
        got.port  # noqa: B018 (a malformed port raises here)
    except ValueError:  # also a bracketed host that is no IPv6 address
        return False
    return (
        want.scheme == got.scheme == "http"
        and is_loopback_host(want.hostname)
        and want.hostname == got.hostname
        # No user info on either side: only the port may differ from the registration.
        and want.username is None
        and want.password is None
        and got.username is None
        and got.password is None
        and (want.path, want.query) == (got.path, got.query)
        and not got.fragment
        and "#" not in requested
    )


def _checked(
    server: RequestContext,
    client: Client,
    redirect_uri: str,
    params: Mapping[str, str],
    resources: list[str],
) -> AuthorizationRequest:
    response_type = _response_type(server, client, params.get("response_type"))
    scopes = server.scope_policy.resolve(params.get("scope"), client)
    targets = server.resource_policy.resolve(resources, client.resources)
    challenge, method = _pkce(server, client, response_type, params)
    dpop_jkt = params.get("dpop_jkt")
    if dpop_jkt is not None and not _JKT.fullmatch(dpop_jkt):
        # Caught here, not only at redemption: the client learns of its mistake with the request.
        raise InvalidRequest("dpop_jkt must be a base64url SHA-256 key thumbprint (RFC 9449 section 10)")
    return AuthorizationRequest(
        client=client,
        response_type=response_type,
        redirect_uri=redirect_uri,
        redirect_uri_given="redirect_uri" in params,
        scopes=scopes,
        state=params.get("state"),
        code_challenge=challenge,
        code_challenge_method=method,
        params=dict(params),
        resources=targets,
    )


def client_response_types(client: Client) -> frozenset[str]:
    """The response types a client may use, from its registration.

    A client registered for a grant serving a response type (``authorization_code``:
    ``code``, ``implicit``: ``token``) may use it even when its ``response_types`` is empty.
    """
    allowed = set(client.response_types)
    for response_type, grant in response_types().items():
        if grant.grant_type in client.grant_types:
            allowed.add(response_type)
    return frozenset(allowed)


def _response_type(server: RequestContext, client: Client, response_type: str | None) -> str:
    if response_type is None:
        raise InvalidRequest("response_type is required")
    if response_type not in offered_response_types(server.settings):
        raise UnsupportedResponseType("this response_type is not supported")
    if response_type not in client_response_types(client):
        raise UnauthorizedClient(f"the client may not use response_type {response_type}")
    return response_type


def _pkce(
    server: RequestContext, client: Client, response_type: str, params: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The PKCE challenge and method of a ``code`` request (RFC 7636 §4.4)."""
    if response_type != "code":
        return None, None
    challenge = params.get("code_challenge")
    if challenge is None:
        if "code_challenge_method" in params:
            raise InvalidRequest("code_challenge_method without code_challenge")
        if client.is_public or server.settings.require_pkce:
            raise InvalidRequest("code_challenge is required (PKCE, RFC 7636)")
        return None, None
    method = pkce.check_challenge(
        challenge, params.get("code_challenge_method"), allow_plain=server.settings.allow_plain_pkce
    )
    return challenge, method
