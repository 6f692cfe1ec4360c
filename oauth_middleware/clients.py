"""Client registration rules: what ``client add``, ``clients_file`` and the Python API may register.

How a registered client authenticates is :mod:`oauth_middleware.client_auth`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from .client_auth import AUTH_METHODS, auth_method
from .client_auth.assertions import ASSERTION_ALGORITHMS
from .errors import ConfigError
from .keys import jwk_set, public_jwk_key
from .models import Client, digest
from .parsing import is_loopback_host, scope_list
from .resource_indicators import resource_uris
from .sealed_secrets import HMAC_ALGORITHMS, is_sealed
from .secret_hash import is_secret_hash
from .settings import asbool, read_ini_file


def generate_secret() -> str:
    """A new client secret: 256 bits from :mod:`secrets`."""
    return secrets.token_urlsafe(32)


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
    jwks: Iterable[Mapping[str, Any]] = (),
    jwks_uri: str | None = None,
    token_endpoint_auth_signing_alg: str | None = None,
    secret_sealed: str | None = None,
    resources: Iterable[str] = (),
    meta: Mapping[str, str] | None = None,
) -> Client:
    """Check registration data and build a :class:`Client`.

    :param token_endpoint_auth_method: how it authenticates, a registered method
        that fits whether it has a secret; None: ``client_secret_basic`` for a
        confidential client, ``none`` for a public one.
    :param server_scopes: the server's ``scopes`` setting; when not empty, a
        registered scope must be one of them (it could never be granted).
    :param dpop_bound_access_tokens: its token requests must carry a DPoP proof (RFC 9449 §5.2).
    :param jwks: its public keys, for ``private_key_jwt`` (the default method with keys).
    :param jwks_uri: where its public keys are published, instead of ``jwks``.
    :param token_endpoint_auth_signing_alg: the one algorithm its assertions may use.
    :param secret_sealed: for ``client_secret_jwt`` (and only then), its secret
        sealed by :class:`~oauth_middleware.sealed_secrets.SecretSealer`.
    :param resources: the resources (RFC 8707 absolute URIs) it may ask tokens for; none: any.
    :param meta: the operator's own attributes (see :func:`check_attribute`).
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

    keys = tuple(dict(key) for key in jwks)
    grants = tuple(dict.fromkeys(grant_types))
    for grant in grants:
        declared = GRANTS.get(grant)
        if declared is None:
            raise ValueError(f"unknown grant {grant!r} (known: {', '.join(GRANTS.names())})")
        public = secret_hash is None and secret_sealed is None and not keys and jwks_uri is None
        if public and not declared.allows_public_clients:
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
    has_keys = bool(keys) or jwks_uri is not None
    if token_endpoint_auth_method is None and has_keys:
        token_endpoint_auth_method = "private_key_jwt"
    elif token_endpoint_auth_method is None and secret_sealed is not None:
        token_endpoint_auth_method = "client_secret_jwt"
    if secret_sealed is not None and not is_sealed(secret_sealed):
        raise ValueError("secret_sealed must be what 'oauth-middleware client seal' prints")
    method = check_auth_method(
        token_endpoint_auth_method, public=secret_hash is None and secret_sealed is None
    )
    check_sealed_secret(method, secret_hash, secret_sealed, token_endpoint_auth_signing_alg)
    check_client_keys(method, keys, jwks_uri, token_endpoint_auth_signing_alg)
    try:
        resource_tuple = resource_uris(resources)
    except ValueError as exc:
        raise ValueError(f"resource: {exc}") from None
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
        jwks=keys,
        jwks_uri=jwks_uri,
        token_endpoint_auth_signing_alg=token_endpoint_auth_signing_alg,
        secret_sealed=secret_sealed,
        resources=resource_tuple,
        meta=dict(check_attribute(key, value) for key, value in (meta or {}).items()),
    )


def check_sealed_secret(method: str, secret_hash: str | None, sealed: str | None, alg: str | None) -> None:
    """A ``client_secret_jwt`` client has a sealed secret and an HMAC algorithm (if any); no other has either.

    :raises ValueError: a hashed secret for ``client_secret_jwt`` (an HMAC cannot be
        checked with a hash), a sealed one for another method, or a non-HMAC algorithm.
    """
    if method != "client_secret_jwt":
        if sealed is not None:
            raise ValueError(f"a sealed secret is for client_secret_jwt, not {method}")
        return
    if secret_hash is not None or sealed is None:
        raise ValueError(
            "a client_secret_jwt client needs its secret sealed (secret_sealed), not hashed: "
            "the server checks an HMAC with the secret itself"
        )
    if alg is not None and alg not in HMAC_ALGORITHMS:
        raise ValueError(f"signing algorithm {alg!r} is not one of {', '.join(HMAC_ALGORITHMS)}")


#: What a client attribute's name may be: a template identifier, so the consent
#: template can name it (``$meta_logo_uri``).
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

#: Longest attribute value (a description, a URL), in characters.
MAX_ATTRIBUTE_VALUE = 2000


def check_attribute(name: str, value: str) -> tuple[str, str]:
    """Check one client attribute; return it.

    :raises ValueError: a name that is not 1-64 letters, digits and ``_`` (not
        starting with a digit), or a value with control characters or longer
        than :data:`MAX_ATTRIBUTE_VALUE`.
    """
    if not _ATTRIBUTE_NAME.fullmatch(name):
        raise ValueError(f"attribute name must be 1-64 letters, digits or _ (not first a digit): {name!r}")
    if len(value) > MAX_ATTRIBUTE_VALUE or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError(
            f"attribute {name} must be at most {MAX_ATTRIBUTE_VALUE} characters without control characters"
        )
    return name, value


def parse_attribute(text: str) -> tuple[str, str]:
    """``key=value`` (``--meta``, ``--where``) as a checked attribute.

    :raises ValueError: no ``=``, or a bad name or value (see :func:`check_attribute`).
    """
    name, equals, value = text.partition("=")
    if not equals:
        raise ValueError(f"expected key=value, got {text!r}")
    return check_attribute(name.strip(), value.strip())


def check_client_keys(
    method: str, jwks: tuple[Mapping[str, Any], ...], jwks_uri: str | None, alg: str | None
) -> None:
    """Check a client's keys against its method (RFC 7591 §2: ``jwks`` or ``jwks_uri``, not both).

    :raises ValueError: keys for a method that does not use them, none for
        ``private_key_jwt``, both, a key that is not a public asymmetric
        signing key, or an algorithm that is not asymmetric or no key's.
    """
    if method == "client_secret_jwt":
        if jwks or jwks_uri is not None:
            raise ValueError("keys are for private_key_jwt, not client_secret_jwt")
        return
    if method != "private_key_jwt":
        if jwks or jwks_uri is not None or alg is not None:
            raise ValueError(f"keys and a signing algorithm are for private_key_jwt, not {method}")
        return
    if bool(jwks) == (jwks_uri is not None):
        raise ValueError("a private_key_jwt client needs its public keys: jwks or jwks_uri (one of them)")
    if jwks_uri is not None:
        parts = urlsplit(jwks_uri)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname)):
            raise ValueError(f"jwks_uri must be https (http only on loopback): {jwks_uri!r}")
    if alg is not None and alg not in ASSERTION_ALGORITHMS:
        raise ValueError(f"signing algorithm {alg!r} is not one of {', '.join(ASSERTION_ALGORITHMS)}")
    algorithms = set()
    for index, entry in enumerate(jwks):
        try:
            algorithms.add(public_jwk_key(entry, f"key {index} of jwks").alg)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    if algorithms - set(ASSERTION_ALGORITHMS) or (alg is not None and jwks and alg not in algorithms):
        raise ValueError(
            f"jwks must hold asymmetric keys ({', '.join(ASSERTION_ALGORITHMS)}) of the signing algorithm"
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
    ``dpop_bound_access_tokens`` (RFC 9449 §5.2, a boolean), and for
    ``private_key_jwt`` (instead of ``secret_hash``) ``jwks`` (a JWK Set in
    JSON) or ``jwks_uri``, and ``token_endpoint_auth_signing_alg``; for
    ``client_secret_jwt``, ``secret_sealed`` (what ``client seal`` prints);
    ``resources`` (RFC 8707: the only resources it may ask tokens for); and any
    number of attributes ``meta.NAME = value``.

    :param server_scopes: the server's ``scopes`` setting (see :func:`build_client`).

    :raises ConfigError: naming ``clients_file``, the section and the problem.
    """
    parser = read_ini_file(path, "clients_file")
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
        "jwks",
        "jwks_uri",
        "secret_sealed",
        "token_endpoint_auth_signing_alg",
        "resources",
    }
    for section in parser.sections():
        prefix, _, client_id = section.partition(":")
        if prefix != "client":
            raise ConfigError(f"clients_file: section [{section}] should be [client:ID]")
        values = parser[section]
        meta = {key[5:]: value.strip() for key, value in values.items() if key.startswith("meta.")}
        unknown = {key for key in values if not key.startswith("meta.")} - allowed_keys
        if unknown:
            raise ConfigError(f"clients_file: [{section}] unknown key {sorted(unknown)[0]!r}")
        # The settings' strict boolean: a typo must not make a public client confidential.
        public = _flag(values, section, "public")
        require_par = _flag(values, section, "require_pushed_authorization_requests")
        dpop_bound = _flag(values, section, "dpop_bound_access_tokens")
        jwks_uri = values.get("jwks_uri", "").strip() or None
        jwks = _jwks(values, section)
        secret_hash = None if public else values.get("secret_hash", "").strip() or None
        sealed = None if public else values.get("secret_sealed", "").strip() or None
        if secret_hash is None and sealed is None and not public and not jwks and jwks_uri is None:
            raise ConfigError(
                f"clients_file: [{section}] needs secret_hash or public = true "
                "(or jwks or jwks_uri, or secret_sealed)"
            )
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
                jwks=jwks,
                jwks_uri=jwks_uri,
                token_endpoint_auth_signing_alg=values.get("token_endpoint_auth_signing_alg", "").strip()
                or None,
                secret_sealed=sealed,
                resources=values.get("resources", "").split(),
                meta=meta,
            )
        except ValueError as exc:
            raise ConfigError(f"clients_file: [{section}] {exc}") from None
        clients.append(replace(client, require_pushed_authorization_requests=require_par))
    return clients


def _jwks(values: Mapping[str, str], section: str) -> list[Mapping[str, Any]]:
    """The ``jwks`` key of a ``clients_file`` section: a JWK Set in JSON (absent: no keys)."""
    text = values.get("jwks", "").strip()
    if not text:
        return []
    try:
        return jwk_set(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"clients_file: [{section}] jwks: {exc}") from None


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
