"""What a client authentication method is, their registry, and reading a request's credentials.

A method (RFC 7591 §2 ``token_endpoint_auth_method`` names) says how it
recognises its credentials in a request and how it verifies them against
the client. :func:`read_credentials` asks every registered method once per
request; the one that recognises its credentials decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..errors import ConfigError, InvalidClient, InvalidRequest
from ..models import Client
from ..registry import Registry

__all__ = [
    "AUTH_METHODS",
    "ClientAuthMethod",
    "ClientCredentials",
    "auth_method",
    "read_credentials",
    "register_auth_method",
]


@dataclass(frozen=True)
class ClientCredentials:
    """The client credentials of one request, read once.

    :param method: the name of the method that recognised them.
    :param client_id: the client they name.
    :param proof: what the method verifies (a secret, an assertion); None
        when the request only names its client (``none``).
    """

    method: str
    client_id: str
    proof: str | None = None


class ClientAuthMethod(Protocol):
    """One client authentication method; instances must be safe to share between threads.

    Example, a method reading a header (registered with :func:`register_auth_method`)::

        class HeaderToken:
            name = "header_token"
            uses_secret = True

            def credentials(self, headers, form):
                token = headers.get("X-Client-Token")
                if token is None:
                    return None
                return ClientCredentials(self.name, form.get("client_id", ""), token)

            def verify(self, client, credentials):
                return client.check_secret(credentials.proof or "")

    Two optional attributes shape what the server metadata offers (RFC 8414 §2):
    ``signing_algorithms``, the JWS algorithms its assertions may use (listed in
    ``*_endpoint_auth_signing_alg_values_supported``), and ``required_setting``,
    the name of a setting without which it cannot verify anything (the method is
    then not listed).
    """

    #: Its ``token_endpoint_auth_method`` name, the same as its registry name.
    name: str
    #: Whether a client registered for it has a secret (``client_secret_*``) or not (``none``).
    uses_secret: bool

    def credentials(self, headers: Mapping[str, str], form: Mapping[str, str]) -> ClientCredentials | None:
        """Its credentials in a request, or None when the request does not use it.

        :param headers: the request headers (names case-insensitive).
        :param form: the form parameters, each present once.
        :raises InvalidClient: its credentials are there but malformed.
        """
        ...

    def verify(self, client: Client, credentials: ClientCredentials) -> bool:
        """True when ``credentials`` prove the request comes from ``client``."""
        ...


#: Client authentication methods by name; plug-ins register in ``oauth_middleware.client_auth``.
AUTH_METHODS: Registry[ClientAuthMethod] = Registry(
    "client authentication method", "oauth_middleware.client_auth"
)


def register_auth_method(method: ClientAuthMethod, *, replace: bool = False) -> ClientAuthMethod:
    """Register ``method`` under its own :attr:`~ClientAuthMethod.name`.

    :param replace: allow replacing a method of that name.
    :raises ConfigError: the name is taken (without ``replace``).
    """
    return AUTH_METHODS.register(method.name, method, replace=replace)


def auth_method(name: str) -> ClientAuthMethod | None:
    """The method registered as ``name``, or None.

    :raises ConfigError: it declares another name (an entry point named
        unlike its method), which would make its credentials unverifiable.
    """
    method = AUTH_METHODS.get(name)
    if method is not None and method.name != name:
        raise ConfigError(f"client authentication method {name!r} declares the name {method.name!r}")
    return method


def read_credentials(headers: Mapping[str, str], form: Mapping[str, str]) -> ClientCredentials:
    """The client credentials of a request, from whichever registered method recognises them.

    Credentials without a proof (``none``: a ``client_id`` alone) count only
    when no method found a proof.

    :raises InvalidRequest: two methods at once (RFC 6749 §2.3), or a body
        ``client_id`` naming another client than the credentials.
    :raises InvalidClient: no credentials at all, or malformed ones.
    """
    proven: list[ClientCredentials] = []
    named: list[ClientCredentials] = []
    malformed: list[InvalidClient] = []
    for name in AUTH_METHODS.names():
        # Names were checked against their methods when the server was built (ClientAuthenticator).
        method = AUTH_METHODS.get(name)
        try:
            credentials = None if method is None else method.credentials(headers, form)
        except InvalidClient as error:  # used, though badly: still a second method beside another
            malformed.append(error)
            continue
        if credentials is not None:
            (named if credentials.proof is None else proven).append(credentials)
    if len(proven) + len(malformed) > 1:
        raise InvalidRequest("use only one client authentication method")
    if malformed:
        raise malformed[0]
    if not proven and not named:
        raise InvalidClient("client authentication is required")
    credentials = (proven or named)[0]
    if form.get("client_id", credentials.client_id) != credentials.client_id:
        raise InvalidRequest("client_id in the body differs from the authenticated client")
    return credentials
