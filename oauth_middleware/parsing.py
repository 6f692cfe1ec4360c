"""Pure parsers: Authorization scheme, bearer token, Basic credentials, scopes, form parameters.

No I/O, no WebOb: strings in, values or an :class:`OAuthError` out, so each
one can be tested (and fuzzed) on its own.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

from .errors import InvalidBearerRequest, InvalidClient, InvalidRequest, InvalidScope

#: RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
#: RFC 6749 appendix A: client_id and secret are VSCHAR (%x20-7E).
_VSCHAR = re.compile(r"[\x20-\x7e]*")


def authorization_scheme(value: str) -> tuple[str, str]:
    """Split an ``Authorization`` header value into its scheme, lowercased, and its credentials.

    The guard picks the token type by the scheme (RFC 9110 §11.1: schemes
    are case-insensitive); ``Bearerabc`` is the scheme ``bearerabc``.

    >>> authorization_scheme("  Bearer abc ")
    ('bearer', 'abc')
    """
    scheme, _, credentials = value.strip().partition(" ")
    return scheme.lower(), credentials.strip()


def bearer_token(credentials: str) -> str:
    """Check the credentials of an ``Authorization: Bearer`` header: one b64token (RFC 6750 §2.1).

    :raises InvalidBearerRequest: no or a malformed token (RFC 6750 §3.1).
    """
    if not (
        _is_b64token(credentials) if len(credentials) <= _MEMO_LENGTH else _B64TOKEN.fullmatch(credentials)
    ):
        raise InvalidBearerRequest("malformed bearer token")
    return credentials


#: Longest credentials whose verdict :func:`_is_b64token` remembers (a JWT access token fits).
_MEMO_LENGTH = 4096


@functools.lru_cache(maxsize=256)
def _is_b64token(credentials: str) -> bool:
    """Whether ``credentials`` is one b64token; remembered (bounded in count and length).

    A client sends the same token on request after request, and scanning a
    JWT's several hundred characters was a sixth of the guard's time for a
    cached JWT; the hash the look-up computes is kept by the string, so the
    token format's own look-up of it costs nothing more.
    """
    return _B64TOKEN.fullmatch(credentials) is not None


#: Most ``&``-separated parts of a form (body or query string) searched for ``access_token``.
MAX_FORM_FIELDS = 1000


def access_tokens(form: str, max_fields: int = MAX_FORM_FIELDS) -> list[str]:
    """The ``access_token`` values of a form-encoded body or query string (RFC 6750 §2.2, §2.3).

    Only the fields named ``access_token`` are decoded, so the others may be
    in any charset: a Latin-1 form is no error. A form of more than
    ``max_fields`` parts is not searched at all (no token), which keeps the
    work bounded whatever a client sends.

    :param form: the form as WSGI gives strings: its bytes read as Latin-1.
    :raises InvalidBearerRequest: an ``access_token`` that is empty, not
        printable ASCII, or holds a space.
    """
    fields = form.split("&", max_fields)
    if len(fields) > max_fields:
        return []
    tokens = []
    for field in fields:
        name, _, value = field.partition("=")
        if name != "access_token" and unquote_plus(name, encoding="latin-1") != "access_token":
            continue
        try:
            token = unquote_plus(value, errors="strict")
        except UnicodeDecodeError:
            token = ""
        if not token or not token.isascii() or not token.isprintable() or " " in token:
            raise InvalidBearerRequest("malformed access_token parameter")
        tokens.append(token)
    return tokens


def basic_credentials(value: str) -> tuple[str, str] | None:
    """Return ``(client_id, client_secret)`` of an ``Authorization: Basic`` header.

    Both parts are form-urlencoded before base64 (RFC 6749 §2.3.1), so they
    are decoded again here. Another scheme gives None; a broken Basic header
    is ``invalid_client`` with a Basic challenge.
    """
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("malformed Basic credentials")
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if not client_id or not _VSCHAR.fullmatch(client_id) or not _VSCHAR.fullmatch(secret):
        raise InvalidClient("malformed Basic credentials")
    return client_id, secret


def scope_list(value: str) -> tuple[str, ...]:
    """Split a space-delimited scope string into its scope tokens, in order, once each.

    :raises InvalidScope: a token has characters RFC 6749 §3.3 forbids.
    """
    tokens = value.split(" ")
    result: list[str] = []
    for token in tokens:
        if not token:
            continue
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidScope("scope contains a character that is not allowed")
        if token not in result:
            result.append(token)
    return tuple(result)


def scope_string(scopes: Iterable[str]) -> str:
    """Join scope tokens into the space-delimited form used on the wire."""
    return " ".join(scopes)


def single_params(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Collapse request parameters into a dict, refusing repeated names.

    RFC 6749 §3.1 and §3.2: request and response parameters MUST NOT be
    included more than once. Empty values count as absent (§3.1).
    """
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in items:
        # An empty value still counts as an occurrence: ``a=&a=x`` is as repeated as ``a=x&a=``.
        if name in seen:
            raise InvalidRequest(f"parameter {_safe(name)} is repeated")
        seen.add(name)
        if value != "":
            params[name] = value
    return params


def _safe(text: str) -> str:
    """``text`` reduced to characters allowed in an error description."""
    cleaned = "".join(ch for ch in text[:40] if ch.isascii() and ch.isprintable() and ch not in '"\\')
    return cleaned or "?"


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
