"""Client registration rules: what ``client add``, ``clients_file`` and the Python API may register.

How a registered client authenticates is :mod:`oauth_middleware.client_auth`.
"""

from __future__ import annotations

import configparser
import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import replace
from urllib.parse import urlsplit

from .client_auth import AUTH_METHODS, auth_method
from .errors import ConfigError
from .models import Client, digest
from .parsing import scope_list
from .secret_hash import is_secret_hash
from .settings import asbool


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
    token_endpoint_auth_method: str | None = None,
    dpop_bound_access_tokens: bool = False,
) -> Client:
    """Check registration data and build a :class:`Client`.

    :param token_endpoint_auth_method: how it authenticates, a registered method
        that fits whether it has a secret; None: ``client_secret_basic`` for a
        confidential client, ``none`` for a public one.
    :param server_scopes: the server's ``scopes`` setting; when not empty, a
        registered scope must be one of them (it could never be granted).
    :param dpop_bound_access_tokens: its token requests must carry a DPoP proof (RFC 9449 §5.2).
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
    method = check_auth_method(token_endpoint_auth_method, public=secret_hash is None)
    return Client(
        client_id,
        secret_hash,
        uris,
        grants,
        responses,
        scope_tuple,
        name,
        method,
        dpop_bound_access_tokens=dpop_bound_access_tokens,
    )


def check_auth_method(name: str | None, *, public: bool) -> str:
    """The ``token_endpoint_auth_method`` to register, ``name`` or the default.

    :param public: the client has no secret.
    :raises ValueError: an unregistered method, or one that needs a secret the
        client lacks (or has one it would never use).
    """
    if name is None:
        return "none" if public else "client_secret_basic"
    method = auth_method(name)
    if method is None:
        raise ValueError(f"unknown client authentication method {name!r} (known: {', '.join(AUTH_METHODS)})")
    if method.uses_secret == public:
        kind = "public client (no secret)" if public else "client with a secret"
        raise ValueError(f"a {kind} cannot use the client authentication method {name}")
    return name


def load_clients_file(path: str, server_scopes: Iterable[str] = ()) -> list[Client]:
    """Read ``[client:ID]`` sections from an ini file (the ``clients_file`` setting).

    Keys: ``secret_hash`` (or ``public = true``), ``redirect_uris``, ``grants``,
    ``response_types``, ``scopes``, ``name``, ``token_endpoint_auth_method``,
    ``require_pushed_authorization_requests`` (RFC 9126 §6, a boolean),
    ``dpop_bound_access_tokens`` (RFC 9449 §5.2, a boolean).

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
    allowed_keys = {
        "secret_hash",
        "public",
        "redirect_uris",
        "grants",
        "response_types",
        "scopes",
        "name",
        "token_endpoint_auth_method",
        "require_pushed_authorization_requests",
        "dpop_bound_access_tokens",
    }
    for section in parser.sections():
        prefix, _, client_id = section.partition(":")
        if prefix != "client":
            raise ConfigError(f"clients_file: section [{section}] should be [client:ID]")
        values = parser[section]
        unknown = set(values) - allowed_keys
        if unknown:
            raise ConfigError(f"clients_file: [{section}] unknown key {sorted(unknown)[0]!r}")
        # The settings' strict boolean: a typo must not make a public client confidential.
        public = _flag(values, section, "public")
        require_par = _flag(values, section, "require_pushed_authorization_requests")
        dpop_bound = _flag(values, section, "dpop_bound_access_tokens")
        secret_hash = None if public else values.get("secret_hash", "").strip()
        if not public and not secret_hash:
            raise ConfigError(f"clients_file: [{section}] needs secret_hash or public = true")
        try:
            client = build_client(
                client_id,
                secret_hash=secret_hash,
                redirect_uris=values.get("redirect_uris", "").split(),
                grant_types=values.get("grants", "").split(),
                response_types=values.get("response_types", "").split(),
                scopes=values.get("scopes", "").split(),
                name=values.get("name", "").strip(),
                server_scopes=server_scopes,
                token_endpoint_auth_method=values.get("token_endpoint_auth_method", "").strip() or None,
                dpop_bound_access_tokens=dpop_bound,
            )
        except ValueError as exc:
            raise ConfigError(f"clients_file: [{section}] {exc}") from None
        clients.append(replace(client, require_pushed_authorization_requests=require_par))
    return clients


def _flag(values: Mapping[str, str], section: str, key: str) -> bool:
    """A ``true``/``false`` key of a ``clients_file`` section (absent: false), strictly."""
    try:
        return asbool(values.get(key, "false"))
    except ValueError as exc:
        raise ConfigError(f"clients_file: [{section}] {key}: {exc}") from None


def new_confidential_client_secret() -> tuple[str, str]:
    """A fresh secret and its stored hash (a SHA-256: 256 random bits need no slow hash)."""
    secret = generate_secret()
    return secret, digest(secret)
