"""Client authentication at the token, revocation, introspection and PAR endpoints, behind the throttle."""

from __future__ import annotations

import logging
from typing import Protocol

from ..errors import InvalidClient, TemporarilyUnavailable
from ..models import Client
from ..proxies import Origin
from ..request_context import RequestContext
from ..throttle import Throttle
from .assertions import ClientAssertions
from .base import AUTH_METHODS, ClientCredentials, auth_method, read_credentials

log = logging.getLogger("oauth_middleware.clients")


class ClientSource(Protocol):
    """Where the client a request names is found: the registered ones, and metadata documents."""

    def get_client(self, client_id: str) -> Client | None:
        """The client with this id, or None."""


class ClientAuthenticator:
    """Reads a request's client credentials once and verifies them with the client's own method.

    A client authenticates only with its registered ``token_endpoint_auth_method``
    (:meth:`~oauth_middleware.models.Client.accepts_method`): a client
    registered for ``client_secret_basic`` that posts its secret is refused.
    Every attempt is counted by the throttle before it is checked.

    :param clients: where clients are found (registered ones and, when on, metadata documents).
    :param throttle: counts failed attempts per client id and address.
    :param assertions: verifies client assertions (``private_key_jwt``,
        ``client_secret_jwt``); without it, methods that need it
        (:class:`ContextualAuthMethod`) prove nothing.
    :param methods: the only methods that may pass (a security profile's); None: every one.
    :raises ConfigError: a registered method cannot be loaded or declares
        another name than it is registered under.

    Example::

        client = ClientAuthenticator(directory, throttle).authenticate(request)
    """

    def __init__(
        self,
        clients: ClientSource,
        throttle: Throttle,
        assertions: ClientAssertions | None = None,
        methods: tuple[str, ...] | None = None,
    ) -> None:
        self.clients = clients
        self.throttle = throttle
        self.assertions = assertions
        self.methods = methods
        for name in AUTH_METHODS:
            auth_method(name)  # a broken or misnamed plug-in is a one-line error at load time

    def authenticate(self, request: RequestContext) -> Client:
        """The client of a request: its credentials read once, counted against its origin.

        :param request: the request's context: its headers, form and origin.
        :returns: the client; a public client only identifies itself.
        :raises InvalidClient: unknown client, wrong or malformed credentials, a
            method the client is not registered for, or no credentials.
        :raises InvalidRequest: two methods at once.
        :raises TooManyRequests: blocked: the credentials are not looked at.
        """
        origin = self.throttle.origin(request)
        try:
            credentials = read_credentials(request.headers, request.form)
        except InvalidClient:
            # Garbage credentials are a failed guess of their address like a wrong secret.
            self.throttle.attempt(self.throttle.counters(origin, None)).failed()
            raise
        return self.verify(credentials, origin)

    def verify(self, credentials: ClientCredentials, origin: Origin) -> Client:
        """The client ``credentials`` prove, counted against ``origin``'s counters.

        :raises InvalidClient: they prove none (the failure is counted).
        :raises TooManyRequests: blocked.
        :raises TemporarilyUnavailable: the client's ``jwks_uri`` cannot be fetched
            (the attempt is not counted as a failure).
        """
        subject = self.throttle.client_subject(credentials.client_id)
        attempt = self.throttle.attempt(self.throttle.counters(origin, subject))
        client = self.clients.get_client(credentials.client_id)
        try:
            reason = _failure(client, credentials, self.assertions, self.methods)
        except TemporarilyUnavailable:
            attempt.succeeded()  # our outage is not the client's failed guess
            raise
        if client is None or reason is not None:
            attempt.failed()
            log.warning(
                "client authentication failed: client_id=%r reason=%s", credentials.client_id[:100], reason
            )
            raise InvalidClient("client authentication failed")
        attempt.succeeded()
        return client


def _failure(
    client: Client | None,
    credentials: ClientCredentials,
    assertions: ClientAssertions | None,
    methods: tuple[str, ...] | None,
) -> str | None:
    """Why ``credentials`` do not prove ``client``, or None when they do."""
    if client is None:
        return "unknown client"
    if methods is not None and credentials.method not in methods:
        return f"method {credentials.method} is not allowed by the profile"
    # The registered method is checked first: a secret sent the wrong way is never compared.
    if not client.accepts_method(credentials.method):
        return f"method {credentials.method} is not the client's"
    method = AUTH_METHODS.get(credentials.method)
    if method is None:  # unregistered since the credentials were read
        return "unknown method"
    # A ContextualAuthMethod, found by its attribute: isinstance() with a runtime-checkable
    # Protocol inspects the class on every call, microseconds on every token request.
    verify_in = getattr(method, "verify_in", None)
    if verify_in is not None:
        verified = assertions is not None and bool(verify_in(assertions, client, credentials))
    else:
        verified = method.verify(client, credentials)
    if verified:
        return None
    if credentials.proof is None:
        return "no credentials"
    return "wrong secret" if method.uses_secret else "wrong credentials"
