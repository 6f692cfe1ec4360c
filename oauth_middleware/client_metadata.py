"""Client metadata (RFC 7591 §2) checked and made a :class:`~oauth_middleware.models.Client`.

Both ways a client describes itself come through here: a dynamic
registration (and its update, RFC 7592 §2.2) and a client ID metadata
document. What is checked, beyond :func:`~oauth_middleware.clients.build_client`:

* redirect URIs as RFC 8252 has native apps use them: a private-use scheme
  with a dot (``com.example.app:/cb``, §7.1), ``http`` on a loopback host with
  any port (§7.3), ``https`` elsewhere; never a fragment (``invalid_redirect_uri``);
* grant and response types consistent with each other (§2.1) and enabled here;
  the password grant is never registered dynamically (RFC 9700 §2.4);
* the authentication method registered in
  :data:`~oauth_middleware.client_auth.AUTH_METHODS`, with keys
  (``jwks`` or ``jwks_uri``, not both) for ``private_key_jwt``;
* scopes among those the server lets such clients have (least privilege).

Members this server does not know are ignored (RFC 7591 §2); the
descriptive ones it knows are kept and shown back. Error descriptions name
the member, never echo its value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .client_auth import auth_method
from .clients import build_client
from .errors import InvalidClientMetadata, InvalidRedirectUri, UnapprovedSoftwareStatement, describable
from .grants import response_types as grant_response_types
from .keys import jwk_set
from .models import Client
from .parsing import is_loopback_host

__all__ = [
    "DESCRIPTIVE",
    "RegisteredMetadata",
    "check_redirect_uri",
    "client_information",
    "registered_client",
]

#: Members of RFC 7591 §2 kept as sent and shown back, besides those a :class:`Client` holds.
DESCRIPTIVE = (
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "software_id",
    "software_version",
)
#: Grants never registered by a client itself: it would collect users' passwords (RFC 9700 §2.4).
_NOT_SELF_SERVICE = frozenset({"password"})
#: Longest string member accepted, in characters.
_MAX_TEXT = 2000
#: Most items in a list member (redirect URIs, contacts, grant types).
_MAX_ITEMS = 20
#: A private-use URI scheme (RFC 8252 §7.1): a reverse domain name, so it holds a dot.
_PRIVATE_SCHEME = re.compile(r"[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+")


@dataclass(frozen=True)
class RegisteredMetadata:
    """A client as its metadata registers it.

    :param client: what the server keeps and authenticates.
    :param extra: the descriptive members (:data:`DESCRIPTIVE`) sent.
    """

    client: Client
    extra: Mapping[str, Any] = field(default_factory=dict)


def registered_client(
    client_id: str,
    metadata: Any,
    *,
    secret_hash: str | None,
    grants: Iterable[str],
    scopes: Iterable[str],
    default_method: str = "client_secret_basic",
) -> RegisteredMetadata:
    """Check client ``metadata`` (a parsed JSON object) and build the client it describes.

    :param secret_hash: the hash of its secret, kept only when its method uses one
        (the caller compares ``client.secret_hash`` to learn whether to hand the secret out).
    :param grants: the grant types it may register (those the server offers).
    :param scopes: the scopes it may register; a scope outside them is refused.
    :param default_method: the ``token_endpoint_auth_method`` when none is sent
        (RFC 7591 §2: ``client_secret_basic``); ``private_key_jwt`` when keys are sent.
    :raises InvalidClientMetadata: naming the member at fault.
    :raises InvalidRedirectUri: a redirect URI this server does not allow.
    :raises UnapprovedSoftwareStatement: a ``software_statement`` (none is approved here).
    """
    if not isinstance(metadata, dict):
        raise InvalidClientMetadata("the client metadata must be a JSON object")
    if "software_statement" in metadata:
        raise UnapprovedSoftwareStatement("this server approves no software statement")
    grant_types = _strings(metadata, "grant_types", ["authorization_code"])
    refused = [g for g in grant_types if g not in grants or g in _NOT_SELF_SERVICE]
    if refused:
        raise InvalidClientMetadata("grant_types has a grant type this server does not register")
    response_types = _response_types(metadata, grant_types)
    redirect_uris = [check_redirect_uri(uri) for uri in _strings(metadata, "redirect_uris", [])]
    if not redirect_uris and any(_redirects(g) for g in grant_types):
        raise InvalidRedirectUri("redirect_uris is required for the grant types registered")
    keyed = metadata.get("jwks") is not None or metadata.get("jwks_uri") is not None
    # Keys without a method mean the method that uses them, as for every other registration.
    method = _text(metadata, "token_endpoint_auth_method") or ("private_key_jwt" if keyed else default_method)
    declared = auth_method(method)
    if declared is None:
        raise InvalidClientMetadata("token_endpoint_auth_method is not supported here")
    scope = _text(metadata, "scope") or ""
    allowed = set(scopes)
    if any(s not in allowed for s in scope.split()):
        raise InvalidClientMetadata("scope has a scope this server does not register for such clients")
    dpop_bound = metadata.get("dpop_bound_access_tokens", False)
    if not isinstance(dpop_bound, bool):
        raise InvalidClientMetadata("dpop_bound_access_tokens must be true or false")
    try:
        client = build_client(
            client_id,
            secret_hash=secret_hash if declared.uses_secret else None,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            response_types=response_types,
            scopes=scope.split(),
            name=_text(metadata, "client_name") or "",
            token_endpoint_auth_method=method,
            dpop_bound_access_tokens=dpop_bound,
            jwks=_jwks(metadata),
            jwks_uri=_text(metadata, "jwks_uri"),
            token_endpoint_auth_signing_alg=_text(metadata, "token_endpoint_auth_signing_alg"),
        )
    except ValueError as exc:
        raise InvalidClientMetadata(describable(str(exc))) from None
    return RegisteredMetadata(client, _descriptive(metadata))


def check_redirect_uri(uri: str) -> str:
    """A redirect URI a client may register itself (RFC 8252 §7, RFC 9700 §4.1).

    :raises InvalidRedirectUri: a fragment, a plain-http URI off loopback, a
        scheme that is neither http(s) nor private-use (with a dot), or no host for http(s).
    """
    parts = urlsplit(uri)
    if "#" in uri or any(ch.isspace() or not ch.isprintable() for ch in uri) or not parts.scheme:
        raise InvalidRedirectUri("a redirect URI must be absolute, without a fragment")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname or parts.username is not None or parts.password is not None:
            raise InvalidRedirectUri("an http(s) redirect URI needs a host and no user info")
        if scheme == "http" and not is_loopback_host(parts.hostname):
            raise InvalidRedirectUri("a plain http redirect URI is only allowed on a loopback host")
    elif not _PRIVATE_SCHEME.fullmatch(scheme):
        raise InvalidRedirectUri("a native redirect URI scheme must be a reverse domain name (RFC 8252)")
    return uri


def client_information(registered: RegisteredMetadata, issued_at: int) -> dict[str, Any]:
    """The client information members (RFC 7591 §3.2.1) of a registered client, without its credentials.

    :param issued_at: its ``client_id_issued_at``.
    """
    client = registered.client
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": issued_at,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
    }
    if client.secret_hash is not None:
        body["client_secret_expires_at"] = 0  # never (RFC 7591 §3.2.1)
    if client.scopes:
        body["scope"] = " ".join(client.scopes)
    if client.name:
        body["client_name"] = client.name
    if client.jwks:
        body["jwks"] = {"keys": [dict(key) for key in client.jwks]}
    if client.jwks_uri:
        body["jwks_uri"] = client.jwks_uri
    if client.token_endpoint_auth_signing_alg:
        body["token_endpoint_auth_signing_alg"] = client.token_endpoint_auth_signing_alg
    if client.dpop_bound_access_tokens:
        body["dpop_bound_access_tokens"] = True
    body.update(registered.extra)
    return body


def _redirects(grant_type: str) -> bool:
    """Whether a grant type sends the user back through a redirect URI."""
    return any(cls.grant_type == grant_type for cls in grant_response_types().values())


def _response_types(metadata: Mapping[str, Any], grant_types: list[str]) -> list[str]:
    """The response types, consistent with the grant types (RFC 7591 §2.1).

    Absent, they are those the grant types serve (``code`` for
    ``authorization_code``), so a client-credentials client need not send an empty list.
    """
    serving = grant_response_types()
    implied = [name for name, cls in serving.items() if cls.grant_type in grant_types]
    types = _strings(metadata, "response_types", implied)
    for name in types:
        if name not in serving or serving[name].grant_type not in grant_types:
            raise InvalidClientMetadata("response_types does not match grant_types (RFC 7591 section 2.1)")
    if set(implied) - set(types):
        raise InvalidClientMetadata("grant_types needs a response type response_types lacks")
    return types


def _strings(metadata: Mapping[str, Any], name: str, default: list[str]) -> list[str]:
    """A member that is a list of strings, or ``default`` when absent."""
    value = metadata.get(name)
    if value is None:
        return list(default)
    if not isinstance(value, list) or len(value) > _MAX_ITEMS or not all(_is_text(item) for item in value):
        raise InvalidClientMetadata(f"{name} must be a list of at most {_MAX_ITEMS} strings")
    return list(dict.fromkeys(value))


def _text(metadata: Mapping[str, Any], name: str) -> str | None:
    """A member that is a string, or None when absent."""
    value = metadata.get(name)
    if value is None:
        return None
    if not _is_text(value):
        raise InvalidClientMetadata(f"{name} must be a string of at most {_MAX_TEXT} characters")
    return str(value)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_TEXT and value.isprintable()


def _jwks(metadata: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The keys of the ``jwks`` member, a JWK Set (RFC 7591 §2); none when absent."""
    value = metadata.get("jwks")
    if value is None:
        return []
    try:
        return jwk_set(value)
    except ValueError:
        raise InvalidClientMetadata("jwks must be a JWK Set (an object with a list of keys)") from None


def _descriptive(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The descriptive members sent, checked: URLs are http(s), contacts a list of strings."""
    kept: dict[str, Any] = {}
    for name in DESCRIPTIVE:
        if name not in metadata or metadata[name] is None:
            continue
        if name == "contacts":
            kept[name] = _strings(metadata, name, [])
            continue
        value = _text(metadata, name)
        if name.endswith("_uri") and urlsplit(str(value)).scheme not in ("https", "http"):
            # A javascript: or data: URI shown on a page would be the client's script on our origin.
            raise InvalidClientMetadata(f"{name} must be an http(s) URL")
        kept[name] = value
    return kept
