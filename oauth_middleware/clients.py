"""Client registration rules and client authentication at the token endpoint.

Authentication methods (RFC 6749 §2.3, RFC 8414 names) are a table of small
functions; the request's shape picks one, and using two at once is refused.
"""

from __future__ import annotations

import configparser
import ipaddress
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

from webob import Request

from .errors import ConfigError, InvalidClient, InvalidRequest
from .models import Client, digest
from .parsing import basic_credentials, scope_list
from .repository import Repository
from .secret_hash import is_secret_hash
from .settings import asbool

log = logging.getLogger("oauth_middleware.clients")


def generate_secret() -> str:
    """A new client secret: 256 bits from :mod:`secrets`."""
    return secrets.token_urlsafe(32)


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP literals (RFC 8252 §7.3)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_redirect_uri(uri: str) -> str:
    """Validate a redirect URI for registration (RFC 6749 §3.1.2, RFC 9700 §4.1).

    Absolute, no fragment; ``http`` only for loopback hosts; private-use
    schemes (``com.example.app:/cb``) allowed for native apps.
    """
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "#" in uri or any(ch.isspace() for ch in uri):
        raise ValueError(f"redirect URI must be absolute without a fragment: {uri!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"plain http redirect URIs are only allowed for loopback hosts: {uri!r}")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise ValueError(f"redirect URI has no host: {uri!r}")
    return uri


def build_client(
    client_id: str,
    *,
    secret_hash: str | None,
    redirect_uris: Iterable[str] = (),
    grant_types: Iterable[str] = (),
    response_types: Iterable[str] = (),
    scopes: Iterable[str] = (),
    name: str = "",
    server_scopes: Iterable[str] = (),
) -> Client:
    """Check registration data and build a :class:`Client`.

    :param server_scopes: the server's ``scopes`` setting; when not empty, a
        registered scope must be one of them (it could never be granted).
    :raises ValueError: with a message naming the bad argument.
    """
    # RFC 6749 appendix A.1: client_id = *VSCHAR; we also refuse edge spaces.
    if not re.fullmatch(r"[\x21-\x7e]([\x20-\x7e]{0,198}[\x21-\x7e])?", client_id):
        raise ValueError(f"client id must be 1-200 printable ASCII characters: {client_id!r}")
    if secret_hash is not None and not is_secret_hash(secret_hash):
        raise ValueError(
            "secret hash must be what 'oauth-middleware client hash' prints "
            "(64 hex digits, or pbkdf2_sha256$ITERATIONS$SALT$HASH)"
        )
    # Imported here: the grant modules import the throttle, which imports this module.
    from .grants import GRANTS
    from .grants import response_types as known_response_types

    grants = tuple(dict.fromkeys(grant_types))
    for grant in grants:
        declared = GRANTS.get(grant)
        if declared is None:
            raise ValueError(f"unknown grant {grant!r} (known: {', '.join(GRANTS.names())})")
        if secret_hash is None and not declared.allows_public_clients:
            raise ValueError(f"a public client cannot use the {grant} grant")
    responses = tuple(dict.fromkeys(response_types))
    known_responses = known_response_types()
    for response_type in responses:
        if response_type not in known_responses:
            raise ValueError(f"unknown response type {response_type!r} (known: {', '.join(known_responses)})")
    uris = tuple(check_redirect_uri(uri) for uri in dict.fromkeys(redirect_uris))
    try:
        scope_tuple = scope_list(" ".join(scopes))
    except Exception:
        raise ValueError(f"invalid scope in {' '.join(scopes)!r}") from None
    known = tuple(server_scopes)
    for scope in scope_tuple:
        if known and scope not in known:
            raise ValueError(f"scope {scope} is not in the server's scopes ({' '.join(known)})")
    return Client(client_id, secret_hash, uris, grants, responses, scope_tuple, name)


def load_clients_file(path: str, server_scopes: Iterable[str] = ()) -> list[Client]:
    """Read ``[client:ID]`` sections from an ini file (the ``clients_file`` setting).

    Keys: ``secret_hash`` (or ``public = true``), ``redirect_uris``, ``grants``,
    ``response_types``, ``scopes``, ``name``.

    :param server_scopes: the server's ``scopes`` setting (see :func:`build_client`).

    :raises ConfigError: naming ``clients_file``, the section and the problem.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"clients_file: cannot read {path!r}: {exc}".replace("\n", " ")) from None
    clients = []
    allowed_keys = {"secret_hash", "public", "redirect_uris", "grants", "response_types", "scopes", "name"}
    for section in parser.sections():
        prefix, _, client_id = section.partition(":")
        if prefix != "client":
            raise ConfigError(f"clients_file: section [{section}] should be [client:ID]")
        values = parser[section]
        unknown = set(values) - allowed_keys
        if unknown:
            raise ConfigError(f"clients_file: [{section}] unknown key {sorted(unknown)[0]!r}")
        try:
            public = asbool(values.get("public", "false"))
        except ValueError as exc:
            # The settings' strict boolean: a typo must not make a public client confidential.
            raise ConfigError(f"clients_file: [{section}] public: {exc}") from None
        secret_hash = None if public else values.get("secret_hash", "").strip()
        if not public and not secret_hash:
            raise ConfigError(f"clients_file: [{section}] needs secret_hash or public = true")
        try:
            clients.append(
                build_client(
                    client_id,
                    secret_hash=secret_hash,
                    redirect_uris=values.get("redirect_uris", "").split(),
                    grant_types=values.get("grants", "").split(),
                    response_types=values.get("response_types", "").split(),
                    scopes=values.get("scopes", "").split(),
                    name=values.get("name", "").strip(),
                    server_scopes=server_scopes,
                )
            )
        except ValueError as exc:
            raise ConfigError(f"clients_file: [{section}] {exc}") from None
    return clients


# -- authentication at the token, revocation and introspection endpoints ----


def _secret_basic(repository: Repository, request: Request, params: Mapping[str, str]) -> Client:
    credentials = basic_credentials(request.environ.get("HTTP_AUTHORIZATION", ""))
    assert credentials is not None  # chosen only when the header is Basic
    client_id, secret = credentials
    if params.get("client_id", client_id) != client_id:
        raise InvalidRequest("client_id in the body differs from the authenticated client")
    return _check_secret(repository, client_id, secret)


def _secret_post(repository: Repository, request: Request, params: Mapping[str, str]) -> Client:
    if "client_id" not in params:
        raise InvalidClient("client_secret without client_id")
    return _check_secret(repository, params["client_id"], params["client_secret"])


def _none(repository: Repository, request: Request, params: Mapping[str, str]) -> Client:
    client = repository.get_client(params["client_id"])
    if client is None or not client.is_public:
        # A confidential client must prove who it is (RFC 6749 §3.2.1).
        _failed(params["client_id"], "no credentials" if client else "unknown client")
        raise InvalidClient("client authentication failed")
    return client


def _check_secret(repository: Repository, client_id: str, secret: str) -> Client:
    client = repository.get_client(client_id)
    if client is None or not client.check_secret(secret):
        _failed(client_id, "unknown client" if client is None else "wrong secret")
        raise InvalidClient("client authentication failed")
    return client


def _failed(client_id: str, reason: str) -> None:
    log.warning("client authentication failed: client_id=%r reason=%s", client_id[:100], reason)


#: RFC 8414 ``token_endpoint_auth_methods_supported`` -> how to check it.
AUTH_METHODS: dict[str, Callable[[Repository, Request, Mapping[str, str]], Client]] = {
    "client_secret_basic": _secret_basic,
    "client_secret_post": _secret_post,
    "none": _none,
}


def authentication_method(request: Request, params: Mapping[str, str]) -> str:
    """Which method the request uses; more than one is ``invalid_request``."""
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    uses_basic = header[:6].lower() == "basic "
    if uses_basic and "client_secret" in params:
        raise InvalidRequest("use only one client authentication method")
    if uses_basic:
        return "client_secret_basic"
    if "client_secret" in params:
        return "client_secret_post"
    if "client_id" in params:
        return "none"
    raise InvalidClient("client authentication is required")


def authenticate_client(repository: Repository, request: Request, params: Mapping[str, str]) -> Client:
    """Authenticate the client of a token, revocation or introspection request.

    :returns: the client; a public client only identifies itself.
    :raises InvalidClient: unknown client, wrong secret or missing credentials.
    """
    method = authentication_method(request, params)
    return AUTH_METHODS[method](repository, request, params)


def new_confidential_client_secret() -> tuple[str, str]:
    """A fresh secret and its stored hash (a SHA-256: 256 random bits need no slow hash)."""
    secret = generate_secret()
    return secret, digest(secret)
