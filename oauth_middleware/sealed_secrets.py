"""Client secrets the server must read back: those of ``client_secret_jwt`` clients, sealed at rest.

A ``client_secret_jwt`` assertion (RFC 7523 §2.2) is an HMAC keyed with the
client's secret, so the server needs the secret itself to check one: a hash,
as every other client secret is kept (:mod:`.secret_hash`), cannot verify an
HMAC. Such a secret is therefore kept encrypted, never in clear: AES-256-GCM
under a key derived with HKDF-SHA256 from the ``client_secret_key`` setting,
with the client id as associated data (a sealed secret copied to another
client does not open). A copy of the store alone reveals no secret; a copy
of the store *and* the ini does, which is the trade-off against the
asymmetric ``private_key_jwt``, where the server holds nothing secret.

The secret must be at least as long as the HMAC's hash (RFC 7518 §3.2): 32
bytes for HS256, 48 for HS384, 64 for HS512 (:func:`check_hmac_secret`).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["HMAC_ALGORITHMS", "SecretSealer", "check_hmac_secret", "generate_hmac_secret", "is_sealed"]

#: The HMAC algorithms a ``client_secret_jwt`` assertion may use, and the fewest secret bytes each needs.
HMAC_ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}
#: What a sealed secret starts with: the format, so another one can follow.
_PREFIX = "aesgcm1:"
_SEALED = re.compile(re.escape(_PREFIX) + r"[A-Za-z0-9_-]{80,1400}")
#: AES-GCM nonce bytes (random per seal: a secret is sealed a handful of times under one key).
_NONCE = 12


def is_sealed(value: str) -> bool:
    """Whether ``value`` has the form :meth:`SecretSealer.seal` writes."""
    return _SEALED.fullmatch(value) is not None


def check_hmac_secret(secret: str, alg: str | None) -> None:
    """Refuse a secret too short for ``alg`` (RFC 7518 §3.2); without an algorithm, for every HMAC one.

    :raises ValueError: naming the length needed.
    """
    needed = HMAC_ALGORITHMS[alg] if alg is not None else max(HMAC_ALGORITHMS.values())
    if len(secret.encode("utf-8")) < needed:
        which = alg or "HS512 (no signing algorithm given: any HMAC one may be used)"
        raise ValueError(f"a client_secret_jwt secret needs at least {needed} bytes for {which}")


def generate_hmac_secret() -> str:
    """A new ``client_secret_jwt`` secret: 512 random bits, 86 characters, enough for HS512."""
    return secrets.token_urlsafe(64)


class SecretSealer:
    """Seals and opens ``client_secret_jwt`` secrets with the key derived from ``client_secret_key``.

    :param key_text: the ``client_secret_key`` setting (32 characters or more).

    Example::

        sealer = SecretSealer(settings.client_secret_key)
        sealed = sealer.seal("app", secret)      # what the store keeps
        sealer.open("app", sealed) == secret      # True
    """

    def __init__(self, key_text: str) -> None:
        hkdf = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"oauth_middleware/client-secret-jwt"
        )
        self._aead = AESGCM(hkdf.derive(key_text.encode("utf-8")))

    def seal(self, client_id: str, secret: str) -> str:
        """``secret`` encrypted for ``client_id``, as text for the store."""
        nonce = secrets.token_bytes(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode("utf-8"), client_id.encode("utf-8"))
        return _PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, client_id: str, sealed: str) -> str | None:
        """The secret sealed for ``client_id``; None when another key (or client) sealed it, or it is damaged."""
        if not is_sealed(sealed):
            return None
        body = sealed[len(_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], client_id.encode("utf-8"))
            return plain.decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError):
            return None
