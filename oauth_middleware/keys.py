"""Signing and verification keys for JWT access tokens, loaded once at start-up.

Every key carries its ``kid`` and the one algorithm it may be used with, so
the algorithm of a token is decided by the key its ``kid`` names, never by
the token's own ``alg`` header (no ``none``, no HMAC with an RSA public key).

Keys come from PEM files, a JWKS file or HS256 secrets in the ini. One key
signs; every key verifies, so a rotation keeps the previous key as a
verification key until the last token it signed has expired. The ``kid`` of
a key without one is its RFC 7638 thumbprint, which the authorization server
and a resource server holding only the public half compute alike.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from .errors import ConfigError

if TYPE_CHECKING:
    from .settings import Settings

#: The algorithms a key may be pinned to. An RSA key is RS256 unless its JWK says PS256.
ALGORITHMS = ("HS256", "RS256", "PS256", "ES256", "EdDSA")
#: RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES = 32
#: Smallest RSA modulus we accept (NIST SP 800-131A).
MIN_RSA_BITS = 2048
#: JWK members that only a private or symmetric key has (RFC 7518 §6).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: RFC 7638 §3.2: the members a thumbprint is computed over, per key type.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}
_TO_JWK: dict[str, Callable[..., Any]] = {
    "RS256": RSAAlgorithm.to_jwk,
    "PS256": RSAAlgorithm.to_jwk,
    "ES256": ECAlgorithm.to_jwk,
    "EdDSA": OKPAlgorithm.to_jwk,
}
_PRIVATE_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)


@dataclass(frozen=True)
class Key:
    """One key, with its id and the one algorithm it may be used with.

    :param kid: the key id written in (and looked up from) token headers.
    :param alg: ``HS256``, ``RS256``, ``PS256`` (an RSA key whose JWK says so), ``ES256`` or ``EdDSA``.
    :param verifier: the public key object, or the HS256 secret bytes.
    :param signer: the private key object or the secret; None when the key
        only verifies.
    """

    kid: str
    alg: str
    verifier: Any
    signer: Any = None

    @property
    def symmetric(self) -> bool:
        """True for an HMAC secret, which must never be published."""
        return self.alg.startswith("HS")

    def public_jwk(self) -> dict[str, Any] | None:
        """The key as a public JWK (RFC 7517 §4), or None for a secret."""
        if self.symmetric:
            return None
        jwk = dict(_TO_JWK[self.alg](self.verifier, as_dict=True))
        jwk.pop("key_ops", None)  # RFC 7517 §4.3: "use" and "key_ops" should not both be set
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True)
class KeySet:
    """The key that signs new tokens and every key that verifies, by ``kid``.

    :param signing: the signing key; None on a guard that only verifies.
    :param verification: ``kid`` -> key, the signing key included.
    """

    signing: Key | None
    verification: Mapping[str, Key]

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set for ``/oauth/jwks``: public halves only, no secret."""
        keys = [key.public_jwk() for key in self.verification.values()]
        return {"keys": [jwk for jwk in keys if jwk is not None]}


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a JWK, base64url without padding."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode("ascii")


def secret_key(secret: bytes, setting: str, kid: str | None = None) -> Key:
    """An HS256 key from a shared secret of at least 32 bytes."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"{setting}: an HS256 secret needs at least {MIN_SECRET_BYTES} bytes")
    k = base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")
    return Key(kid or thumbprint({"kty": "oct", "k": k}), "HS256", secret, secret)


def algorithm_of(public: Any, setting: str) -> str:
    """The one algorithm a public key is used with, checking its size or curve."""
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise ConfigError(f"{setting}: RSA keys need at least {MIN_RSA_BITS} bits, got {public.key_size}")
        return "RS256"
    if isinstance(public, ec.EllipticCurvePublicKey):
        if not isinstance(public.curve, ec.SECP256R1):
            raise ConfigError(f"{setting}: ES256 needs a P-256 key, got {public.curve.name}")
        return "ES256"
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ConfigError(f"{setting}: unsupported key type {type(public).__name__} (use RSA, P-256 or Ed25519)")


def asymmetric_key(private: Any, public: Any, setting: str, kid: str | None = None) -> Key:
    """A key pair (or a public key alone) with its algorithm and ``kid``."""
    alg = algorithm_of(public, setting)
    jwk = _TO_JWK[alg](public, as_dict=True)
    return Key(kid or thumbprint(jwk), alg, public, private)


def load_pem(path: str, setting: str) -> Key:
    """Load a PEM private or public key; a private one can sign.

    :raises ConfigError: unreadable, encrypted or not a supported key.
    """
    data = _read(path, setting)
    private: Any = None
    try:
        if b"PRIVATE KEY-----" in data:
            private = serialization.load_pem_private_key(data, password=None)
            public = private.public_key()
        else:
            public = serialization.load_pem_public_key(data)
    except TypeError:
        raise ConfigError(f"{setting}: {path!r} is encrypted; give an unencrypted PEM file") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{setting}: {path!r} is not a PEM key") from None
    return asymmetric_key(private, public, setting)


def load_jwks(path: str, setting: str) -> list[Key]:
    """Load the keys of a JWKS file (RFC 7517 §5).

    :raises ConfigError: unreadable, not a JWK Set, or a key we cannot use.
    """
    data = _read(path, setting)
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"{setting}: {path!r} is not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{setting}: {path!r} is not a JWK Set with keys")
    return [_jwk_key(entry, f"{setting}: key {index} of {path!r}") for index, entry in enumerate(entries)]


def public_jwk_key(entry: Any, where: str) -> Key:
    """A verification-only key from a JWK another server published (its JWKS).

    The same checks as a key from a file (one algorithm, RSA size, P-256), and
    no private member and no ``oct`` secret: a key set fetched over the network
    is public, and a secret in it would let anyone who reads it mint tokens.

    :raises ConfigError: the JWK cannot be used; the message starts with ``where``.
    """
    if isinstance(entry, dict) and PRIVATE_MEMBERS.intersection(entry):
        raise ConfigError(f"{where} is a private or symmetric key, refused in a published key set")
    return _jwk_key(entry, where)


def jwk_set(document: Any) -> list[Mapping[str, Any]]:
    """The keys of a JWK Set document (RFC 7517 §5).

    :raises ValueError: it is not an object with a ``keys`` list of objects.
    """
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(key, dict) for key in keys):
        raise ValueError("not a JWK Set (an object with a list of keys)")
    return keys


def _jwk_key(entry: Any, where: str) -> Key:
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        raise ConfigError(f"{where} is not a signing JWK")
    kid = entry.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise ConfigError(f"{where} has a kid that is not a string")
    alg = entry.get("alg")
    if alg is not None and alg not in ALGORITHMS:
        raise ConfigError(f"{where} has alg {alg!r} (supported: {', '.join(ALGORITHMS)})")
    try:
        parsed = jwt.PyJWK(entry).key
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where} cannot be used: {exc}".replace("\n", " ")) from None
    if isinstance(parsed, bytes):
        key = secret_key(parsed, where, kid)
    else:
        private = parsed if isinstance(parsed, _PRIVATE_TYPES) else None
        key = asymmetric_key(private, private.public_key() if private else parsed, where, kid)
        if alg == "PS256" and key.alg == "RS256":
            # RSASSA-PSS with the same RSA key (RFC 7518 §3.5): pinned to it by the JWK's own alg,
            # so a PS256 key never verifies RS256 and the other way round.
            key = replace(key, alg="PS256")
    if alg is not None and alg != key.alg:
        raise ConfigError(f"{where} has alg {alg} but is a {key.alg} key")
    return key


def _read(path: str, setting: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path!r}: {exc.strerror}") from None


def load_keys(settings: Settings, *, signing: bool = True) -> KeySet:
    """Load every key the settings name and choose the signing key.

    :param settings: the ``jwt_*`` settings.
    :param signing: whether a signing key is required (the authorization
        server); a guard-only resource server only verifies.
    :raises ConfigError: a file cannot be used, two keys share a ``kid``,
        or there is no key to sign or verify with.
    """
    candidates: list[Key] = []  # keys that may sign, in order of preference
    keys: list[Key] = []
    if settings.jwt_signing_key:
        candidates.append(load_pem(settings.jwt_signing_key, "jwt_signing_key"))
    for index, secret in enumerate(settings.jwt_secret):
        key = secret_key(secret.encode("utf-8"), "jwt_secret")
        (candidates if index == 0 else keys).append(key)
    for path in settings.jwt_verification_keys:
        key = load_pem(path, "jwt_verification_keys")
        keys.append(Key(key.kid, key.alg, key.verifier))  # drop a private half: it never signs
    if settings.jwt_jwks_file:
        for key in load_jwks(settings.jwt_jwks_file, "jwt_jwks_file"):
            (candidates if key.signer is not None else keys).append(key)
    verification = _by_kid(candidates + keys)
    chosen = _choose_signing_key(settings, candidates)
    if signing and chosen is None:
        setting = "jwt_secret" if settings.jwt_algorithm == "HS256" else "jwt_signing_key"
        raise ConfigError(f"{setting}: token_format = jwt needs a {settings.jwt_algorithm} key to sign with")
    if not verification:
        raise ConfigError("jwt_verification_keys: token_format = jwt needs at least one key to verify with")
    return KeySet(chosen, verification)


def _choose_signing_key(settings: Settings, candidates: list[Key]) -> Key | None:
    if settings.jwt_signing_kid:
        for key in candidates:
            if key.kid == settings.jwt_signing_kid:
                if key.alg != settings.jwt_algorithm:
                    raise ConfigError(f"jwt_signing_kid: that key is {key.alg}, not {settings.jwt_algorithm}")
                return key
        raise ConfigError(f"jwt_signing_kid: no key that can sign has kid {settings.jwt_signing_kid!r}")
    if settings.jwt_signing_key and candidates[0].alg != settings.jwt_algorithm:
        raise ConfigError(f"jwt_signing_key: the key is {candidates[0].alg}, not {settings.jwt_algorithm}")
    return next((key for key in candidates if key.alg == settings.jwt_algorithm), None)


def _by_kid(keys: list[Key]) -> dict[str, Key]:
    result: dict[str, Key] = {}
    for key in keys:
        known = result.get(key.kid)
        if known is not None and (known.alg, _public_bytes(known)) != (key.alg, _public_bytes(key)):
            raise ConfigError(f"jwt_verification_keys: two different keys have kid {key.kid!r}")
        if known is None or known.signer is None:
            result[key.kid] = key
    return result


def _public_bytes(key: Key) -> bytes:
    if key.symmetric:
        return bytes(key.verifier)
    return bytes(
        key.verifier.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def generate_private_key(alg: str, rsa_bits: int = 2048) -> Any:
    """A new private key for ``RS256``, ``ES256`` or ``EdDSA`` (Ed25519)."""
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=max(rsa_bits, MIN_RSA_BITS))
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"cannot generate a key for {alg!r} (use RS256, ES256 or EdDSA)")


def public_key_path(path: str) -> str:
    """Where :func:`write_private_key` puts the public half of ``path``: ``KEY.pub.pem``."""
    return f"{path.removesuffix('.pem')}.pub.pem"


def write_private_key(path: str, alg: str, rsa_bits: int = 2048) -> Key:
    """Generate a key pair: the private key as an unencrypted PKCS#8 PEM readable by its
    owner only, its public half (SubjectPublicKeyInfo PEM, for the guards'
    ``jwt_verification_keys``) at :func:`public_key_path`.

    An existing file is never overwritten: it may be the key live tokens depend on.
    Both names are checked before either file is written.

    :returns: the key, whose ``kid`` the ini's ``jwt_signing_kid`` may name.
    :raises FileExistsError: ``path`` or the public file exists (``filename`` says which).
    :raises OSError: a file cannot be created.
    """
    public_path = public_key_path(path)
    for target in (path, public_path):
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
    private = generate_private_key(alg, rsa_bits)
    data = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # O_EXCL: never replace a file; mode 0600 from the start, no window where others can read it.
    _write_new(path, data, 0o600)
    public = private.public_key()
    _write_new(
        public_path,
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        0o644,
    )
    return asymmetric_key(private, public, "keys generate")


def _write_new(path: str, data: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
