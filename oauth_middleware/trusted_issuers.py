"""Trusted issuers: other servers whose signed JWTs this server accepts as grants or subject tokens.

The JWT bearer grant (RFC 7523 §2.1) takes an assertion from one of them,
and token exchange (RFC 8693) takes their JWTs as subject and actor tokens.
They are configured in the ``trusted_issuers_file``, one ``[issuer:ISSUER]``
section each (the style of ``clients_file``)::

    [issuer:https://idp.example.com]
    jwks_uri = https://idp.example.com/jwks    ; or jwks = {"keys": [...]}
    subjects = alice bob service-*              ; exact, or a prefix ending in *
    scopes = read                               ; at most these are granted
    signing_algs = ES256                        ; default: RS256 PS256 ES256 EdDSA
    max_lifetime = 300                          ; seconds a JWT may be valid

What every JWT from them must meet (signature, ``aud`` naming this server,
``exp`` within ``max_lifetime``, ``nbf``/``iat``, a ``jti``) is checked by
:class:`~oauth_middleware.peer_jwts.PeerJWTs`, as for client assertions;
this module adds the issuer's own keys, algorithms and subjects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from .errors import ConfigError
from .keys import Key, jwk_set, public_jwk_key
from .parsing import is_loopback_host, scope_list
from .peer_jwts import MAX_JWT_LENGTH, PEER_ALGORITHMS, PeerJWTs
from .settings import read_ini_file

log = logging.getLogger("oauth_middleware.clients")

#: The keys of an ``[issuer:...]`` section.
SECTION_KEYS = frozenset({"jwks", "jwks_uri", "subjects", "scopes", "signing_algs", "max_lifetime"})
#: Default and largest ``max_lifetime``, in seconds.
DEFAULT_MAX_LIFETIME, LONGEST_MAX_LIFETIME = 300, 86400


@dataclass(frozen=True)
class TrustedIssuer:
    """One trusted issuer, as its ``[issuer:...]`` section describes it.

    :param issuer: its identifier, the ``iss`` of its JWTs.
    :param subjects: the subjects it may speak for: exact values, or prefixes
        written with a trailing ``*`` (``*`` alone: any subject).
    :param scopes: the most a token issued on its word may carry.
    :param algorithms: the algorithms its JWTs may be signed with.
    :param max_lifetime: longest one of its JWTs may be valid, in seconds.
    :param keys: its public keys, when given inline (``jwks``).
    :param jwks_uri: where its public keys are published, instead.
    """

    issuer: str
    subjects: tuple[str, ...]
    scopes: tuple[str, ...]
    algorithms: tuple[str, ...]
    max_lifetime: int
    keys: tuple[Key, ...] = ()
    jwks_uri: str | None = None

    def allows_subject(self, subject: str) -> bool:
        """Whether the issuer may speak for ``subject``."""
        return any(
            subject.startswith(pattern[:-1]) if pattern.endswith("*") else subject == pattern
            for pattern in self.subjects
        )


@dataclass(frozen=True)
class PeerToken:
    """A verified JWT of a trusted issuer.

    :param issuer: the issuer that signed it.
    :param claims: its claims (``iss``, ``sub``, ``aud``, ``exp``, ``jti`` at least).
    """

    issuer: TrustedIssuer
    claims: Mapping[str, Any]

    @property
    def subject(self) -> str:
        """Its ``sub``: whom it speaks for."""
        return str(self.claims["sub"])


class TrustedIssuers:
    """The trusted issuers of one server, and the verification of their JWTs.

    :param issuers: by issuer identifier.
    :param jwts: the server's checks of peer JWTs (audience, clock, fetched key sets).

    Example::

        issuers = TrustedIssuers.load("trusted_issuers.ini", jwts)
        token = issuers.verify(assertion)   # None unless signed, timely, for a subject allowed
    """

    def __init__(self, issuers: Mapping[str, TrustedIssuer], jwts: PeerJWTs) -> None:
        self.issuers = dict(issuers)
        self.jwts = jwts

    @classmethod
    def load(cls, path: str, jwts: PeerJWTs) -> TrustedIssuers:
        """The issuers of the ``trusted_issuers_file`` at ``path`` (none for an empty path).

        :raises ConfigError: one line naming ``trusted_issuers_file``, the section and the problem.
        """
        return cls(load_trusted_issuers(path) if path else {}, jwts)

    def verify(self, token: str) -> PeerToken | None:
        """``token`` if a trusted issuer signed it for a subject it may speak for, and it is timely.

        Not single use: the JWT bearer grant records the ``jti`` itself.

        :raises TemporarilyUnavailable: the issuer's ``jwks_uri`` cannot be fetched
            and the token's key is not among those fetched before.
        """
        if len(token) > MAX_JWT_LENGTH:
            return None
        try:
            named = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except (jwt.InvalidTokenError, RecursionError):
            return None
        issuer = self.issuers.get(named) if isinstance(named, str) else None
        if issuer is None:
            log.info("JWT from an issuer that is not trusted refused")
            return None
        claims = self.jwts.claims(
            token,
            algorithms=issuer.algorithms,
            keys=lambda kid: self.jwts.keys(kid, jwks_uri=issuer.jwks_uri, jwks=issuer.keys),
            max_lifetime=issuer.max_lifetime,
        )
        if claims is None or claims["iss"] != issuer.issuer:
            return None
        if not issuer.allows_subject(claims["sub"]):
            log.info("JWT of %s refused: subject not allowed", issuer.issuer)
            return None
        return PeerToken(issuer, claims)


def load_trusted_issuers(path: str) -> dict[str, TrustedIssuer]:
    """Read the ``[issuer:ISSUER]`` sections of ``path``.

    :raises ConfigError: naming ``trusted_issuers_file``, the section and the problem.
    """
    parser = read_ini_file(path, "trusted_issuers_file")
    issuers = {}
    for section in parser.sections():
        try:
            issuer = _issuer(section, parser[section])
        except ValueError as exc:
            raise ConfigError(f"trusted_issuers_file: [{section}] {exc}") from None
        issuers[issuer.issuer] = issuer
    return issuers


def _issuer(section: str, values: Mapping[str, str]) -> TrustedIssuer:
    """One section as a :class:`TrustedIssuer`.

    :raises ValueError: what is wrong in it.
    """
    prefix, _, issuer = section.partition(":")
    if prefix != "issuer" or not issuer.strip():
        raise ValueError("should be [issuer:ISSUER]")
    unknown = set(values) - SECTION_KEYS
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
    subjects = tuple(values.get("subjects", "").split())
    if not subjects:
        raise ValueError("subjects: required (the subjects this issuer may speak for; * for any)")
    algorithms = tuple(values.get("signing_algs", " ".join(PEER_ALGORITHMS)).split())
    if not algorithms or set(algorithms) - set(PEER_ALGORITHMS):
        raise ValueError(f"signing_algs: expected some of {' '.join(PEER_ALGORITHMS)}")
    lifetime = values.get("max_lifetime", str(DEFAULT_MAX_LIFETIME)).strip()
    if not lifetime.isdigit() or not 0 < int(lifetime) <= LONGEST_MAX_LIFETIME:
        raise ValueError(f"max_lifetime: expected seconds from 1 to {LONGEST_MAX_LIFETIME}, got {lifetime!r}")
    try:
        scopes = scope_list(values.get("scopes", ""))
    except Exception:
        raise ValueError(f"scopes: not a scope list: {values['scopes']!r}") from None
    keys, jwks_uri = _keys(values, algorithms)
    return TrustedIssuer(issuer.strip(), subjects, scopes, algorithms, int(lifetime), keys, jwks_uri)


def _keys(values: Mapping[str, str], algorithms: tuple[str, ...]) -> tuple[tuple[Key, ...], str | None]:
    """The section's ``jwks`` (parsed) or ``jwks_uri`` (checked): exactly one of them."""
    text, jwks_uri = values.get("jwks", "").strip(), values.get("jwks_uri", "").strip() or None
    if bool(text) == (jwks_uri is not None):
        raise ValueError("needs the issuer's public keys: jwks or jwks_uri (one of them)")
    if jwks_uri is not None:
        parts = urlsplit(jwks_uri)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname)):
            raise ValueError(f"jwks_uri: must be https (http only on loopback): {jwks_uri!r}")
        return (), jwks_uri
    try:
        entries = jwk_set(json.loads(text))
        keys = tuple(public_jwk_key(entry, f"jwks: key {index}") for index, entry in enumerate(entries))
    except (ValueError, TypeError) as exc:  # ConfigError is a ValueError
        raise ValueError(f"jwks: {exc}") from None
    if not any(key.alg in algorithms for key in keys):
        raise ValueError(f"jwks: expected public keys of the signing_algs ({' '.join(algorithms)})")
    return keys, None
