"""DPoP proofs (RFC 9449): checked at the token endpoint and by the guard.

A proof is a JWT the client signs with its own key for one request: its
``htm`` and ``htu`` name the request, ``iat`` its time, ``jti`` makes it
single-use, ``ath`` ties it to the access token it accompanies and
``nonce`` (when the server asks for one) to the server's recent past.
:class:`ProofVerifier` runs the checks of §4.3 and returns the RFC 7638
thumbprint of the proof's key, the ``jkt`` tokens are bound to. Per proof:
one signature verification and one atomic store write (the ``jti``).

Server nonces (§8, §9) are stateless (:class:`Nonces`): an HMAC of the
current time slot under a key derived from ``session_secret``, so every
worker process and every guard sharing the ini accepts them without a
store; they rotate every ``dpop_proof_max_age`` seconds and the previous
slot's nonce is still accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote, urlsplit

import jwt
from webob import Request

from .clock import SYSTEM_CLOCK, Clock
from .errors import InvalidDPoPProof, UseDPoPNonce
from .keys import thumbprint
from .proxies import TrustedProxies, request_origin_once

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from .repository import Repository
    from .settings import Settings

__all__ = ["Nonces", "ProofVerifier", "access_token_hash", "normalized_url", "request_url"]

log = logging.getLogger("oauth_middleware.dpop")

#: JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: The key types a proof may carry: asymmetric ones (PyJWK checks their members when it loads the key).
_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})
#: Claims every proof carries (§4.2).
_REQUIRED = ["jti", "htm", "htu", "iat"]
#: A compact JWS: three base64url segments (a header value with a comma or space holds two proofs).
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
#: Longest proof read: an RSA-4096 key with its claims fits well within it.
MAX_PROOF_LENGTH = 8192
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def access_token_hash(token: str) -> str:
    """The ``ath`` of an access token: base64url SHA-256 of its ASCII, unpadded (§4.2)."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normalized_url(url: str) -> tuple[str, str, int | None, str] | None:
    """``url`` without query and fragment, normalised per RFC 3986 §6.2.2-6.2.3; None if it is no http(s) URL.

    Scheme and host are lowercased, a default port dropped, an empty path
    made ``/``, percent-encodings of unreserved characters decoded and the
    others uppercased, so that two spellings of one URL compare equal.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if port == _DEFAULT_PORTS[scheme]:
        port = None
    return scheme, parts.hostname.lower(), port, _normalized_path(parts.path or "/")


def _normalized_path(path: str) -> str:
    """Percent-encodings of unreserved characters decoded, every other one in uppercase."""

    def fix(match: re.Match[str]) -> str:
        char = unquote(match.group(0))
        return char if char in _UNRESERVED else match.group(0).upper()

    return re.sub(r"%[0-9A-Fa-f]{2}", fix, path)


def request_url(environ: WSGIEnvironment, trusted: TrustedProxies) -> str:
    """The URL a client sent ``environ`` to, without its query: behind a trusted proxy, the public scheme."""
    request = Request(environ)
    scheme = request_origin_once(environ, trusted).scheme
    return f"{scheme}://{request.host}{request.path}"


class Nonces:
    """Server-issued DPoP nonces without state: valid in every process that shares the key.

    :param secret: ``session_secret``; the nonce key is derived from it.
    :param period: seconds a nonce is current; the previous one is still accepted.
    :param clock: the time slots are counted by.
    """

    def __init__(self, secret: str, period: int, clock: Clock = SYSTEM_CLOCK) -> None:
        # Its own key: a nonce is no use as a session cookie or CSRF token, nor the reverse.
        self.key = hashlib.sha256(b"oauth_middleware/dpop-nonce\x00" + secret.encode("utf-8")).digest()
        self.period = period
        self.clock = clock

    def current(self) -> str:
        """The nonce of the current time slot, for a ``DPoP-Nonce`` header."""
        return self._for_slot(int(self.clock.time() // self.period))

    def accepts(self, nonce: object) -> bool:
        """Whether ``nonce`` is the current slot's or the previous one's."""
        if not isinstance(nonce, str):
            return False
        slot = int(self.clock.time() // self.period)
        given = nonce.encode("utf-8", "surrogatepass")  # bytes: compare_digest refuses a non-ASCII str
        return any(hmac.compare_digest(given, self._for_slot(s).encode("ascii")) for s in (slot, slot - 1))

    def _for_slot(self, slot: int) -> str:
        mac = hmac.new(self.key, slot.to_bytes(8, "big", signed=True), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(mac).decode("ascii")


class ProofVerifier:
    """Checks DPoP proofs (RFC 9449 §4.3) and records their ``jti`` against replay (§11.1).

    :param algorithms: the ``alg`` values accepted (``dpop_signing_algs``).
    :param max_age: how old (by ``iat``) a proof may be, in seconds (``dpop_proof_max_age``).
    :param leeway: seconds a proof's ``iat`` may lie in the future (clock skew, ``jwt_leeway``).
    :param repository: where used ``jti`` values are recorded, atomically.
    :param nonces: the server nonces a proof must carry, or None when nonces are off.
    :param trusted_proxies: whose ``X-Forwarded-Proto`` sets the public URL's scheme.
    :param clock: the time ``iat`` is checked by.

    Example::

        jkt = verifier.verify(environ, access_token=None)   # at the token endpoint
    """

    def __init__(
        self,
        *,
        algorithms: tuple[str, ...],
        max_age: int,
        leeway: int,
        repository: Repository,
        nonces: Nonces | None,
        trusted_proxies: TrustedProxies,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.algorithms = frozenset(algorithms)
        self.max_age = max_age
        self.leeway = leeway
        self.repository = repository
        self.nonces = nonces
        self.trusted_proxies = trusted_proxies
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, repository: Repository) -> ProofVerifier:
        """The verifier the DPoP settings describe, on the repository's store and clock."""
        clock = repository.clock
        nonces = (
            Nonces(settings.session_secret, settings.dpop_proof_max_age, clock)
            if settings.dpop_nonce
            else None
        )
        return cls(
            algorithms=settings.dpop_signing_algs,
            max_age=settings.dpop_proof_max_age,
            leeway=settings.jwt_leeway,
            repository=repository,
            nonces=nonces,
            trusted_proxies=settings.trusted_proxies,
            clock=clock,
        )

    def verify(self, environ: WSGIEnvironment, *, access_token: str | None) -> str:
        """Check the request's one ``DPoP`` proof; return its key's thumbprint (the ``jkt``).

        :param environ: the request: its ``DPoP`` header, method and URL.
        :param access_token: the token the proof must hash in ``ath`` (at the
            guard); None at the token endpoint.
        :raises InvalidDPoPProof: any check of §4.3 fails, or the ``jti`` was seen.
        :raises UseDPoPNonce: the proof lacks the current server nonce.
        :raises StoreUnavailable: the ``jti`` cannot be recorded.
        """
        proof = environ.get("HTTP_DPOP", "")
        if not proof or len(proof) > MAX_PROOF_LENGTH or not _COMPACT.fullmatch(proof):
            _invalid("the request must carry exactly one well-formed DPoP proof")
        header = _header(proof)
        alg, jwk_value = header.get("alg"), header.get("jwk")
        if header.get("typ") != "dpop+jwt":
            _invalid("the DPoP proof's typ must be dpop+jwt")
        if not isinstance(alg, str) or alg not in self.algorithms:
            _invalid("the DPoP proof's alg is not accepted")
        jwk_dict = _public_jwk(jwk_value)
        claims = self._claims(proof, alg, jwk_dict)
        self._check_request(claims, environ, access_token)
        jkt = thumbprint(jwk_dict)
        # Last, so that a proof refused for another reason never uses up its jti.
        if not self.repository.record_dpop_jti(f"{jkt}:{claims['jti']}", self.max_age + 2 * self.leeway):
            _invalid("the DPoP proof was already used")
        return jkt

    def _claims(self, proof: str, alg: str, jwk_dict: Mapping[str, Any]) -> dict[str, Any]:
        """The proof's claims, once its signature verifies with its own ``jwk``."""
        try:
            key = jwt.PyJWK(dict(jwk_dict), algorithm=alg)
            claims: dict[str, Any] = jwt.decode(
                proof,
                key.key,
                algorithms=[alg],
                # The times are checked by this server's clock, the audience is htu.
                options={
                    "require": _REQUIRED,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                },
            )
        except (jwt.PyJWKError, jwt.InvalidTokenError, ValueError, TypeError) as exc:
            log.info("DPoP proof rejected: %s", type(exc).__name__)
            _invalid("the DPoP proof's signature or claims are invalid")
        return claims

    def _check_request(
        self, claims: Mapping[str, Any], environ: WSGIEnvironment, access_token: str | None
    ) -> None:
        """``htm``, ``htu``, ``iat``, ``jti``, ``ath`` and ``nonce`` against the request and the time."""
        jti, iat = claims["jti"], claims["iat"]
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            _invalid("the DPoP proof's jti must be a short string")
        if claims["htm"] != environ.get("REQUEST_METHOD"):
            _invalid("the DPoP proof's htm does not match the request method")
        htu = claims["htu"]
        given = normalized_url(htu) if isinstance(htu, str) else None
        if given is None or given != normalized_url(request_url(environ, self.trusted_proxies)):
            _invalid("the DPoP proof's htu does not match the request URL")
        now = self.clock.time()
        if not _is_time(iat) or iat > now + self.leeway or iat < now - self.max_age - self.leeway:
            _invalid("the DPoP proof's iat is outside the accepted window")
        if access_token is not None:
            ath = claims.get("ath")
            expected = access_token_hash(access_token).encode("ascii")
            # Bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, not a 401).
            if not isinstance(ath, str) or not hmac.compare_digest(
                ath.encode("utf-8", "surrogatepass"), expected
            ):
                _invalid("the DPoP proof's ath does not match the access token")
        if self.nonces is not None and not self.nonces.accepts(claims.get("nonce")):
            raise UseDPoPNonce(self.nonces.current(), "the DPoP proof must carry the server's nonce")


def _header(proof: str) -> dict[str, Any]:
    """The JOSE header of a compact proof (the signature is checked afterwards, with its jwk)."""
    head = proof.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, RecursionError):
        _invalid("the DPoP proof's header is not JSON")
    if not isinstance(header, dict):
        _invalid("the DPoP proof's header is not a JSON object")
    return header


def _public_jwk(value: object) -> dict[str, Any]:
    """The proof's ``jwk``, if it is a public asymmetric key."""
    if not isinstance(value, dict):
        _invalid("the DPoP proof must carry its public key as jwk")
    if _PRIVATE_MEMBERS & value.keys():
        # §4.3 check 7: a private key in a proof is refused, never used.
        _invalid("the DPoP proof's jwk must not contain a private key")
    if value.get("kty") not in _KEY_TYPES:
        _invalid("the DPoP proof's jwk is not a public RSA, EC or OKP key")
    return value


def _is_time(value: object) -> bool:
    """A NumericDate: a finite number, not a boolean."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _invalid(description: str) -> NoReturn:
    """Log and raise ``invalid_dpop_proof``."""
    log.info("DPoP proof rejected: %s", description)
    raise InvalidDPoPProof(description)
