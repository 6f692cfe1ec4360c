"""How secrets are stored: hashes that say what they are, checked in constant time.

A client's ``secret_hash`` has one of two forms, and both verify:

* 64 hex digits: the SHA-256 of a secret the server generated. Such a secret
  has 256 random bits, so a fast unsalted hash loses nothing (and every
  ``secret_hash`` written by version 0.1 has this form).
* ``pbkdf2_sha256$ITERATIONS$SALT$HASH``: a secret an operator chose
  (``client add --secret``, ``client hash --secret``). A chosen secret may be
  guessable, so every guess against a copy of the store must cost a salted,
  slow derivation (PBKDF2-HMAC-SHA256, :data:`SECRET_ITERATIONS` rounds).

The demo's user passwords use the same PBKDF2 form (:func:`pbkdf2_hash`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict

#: PBKDF2-HMAC-SHA256 rounds for an operator-chosen client secret (OWASP's 2023 figure).
SECRET_ITERATIONS = 600_000
#: A generated secret's stored form.
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: A chosen secret's (or a demo password's) stored form.
_PBKDF2 = re.compile(r"pbkdf2_sha256\$([1-9][0-9]{0,6})\$([0-9a-f]{16,128})\$([0-9a-f]{64})")
#: How many verified (stored hash, secret) pairs :func:`check_secret` remembers.
_VERIFIED_SIZE = 1024


def digest(secret: str) -> str:
    """SHA-256 hex digest of a token or generated secret: what we store instead of it.

    Tokens and generated secrets carry >= 256 bits of entropy, so an unsalted
    fast hash is enough to make a leaked store useless to an attacker.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def pbkdf2_hash(secret: str, *, iterations: int = SECRET_ITERATIONS, salt: str | None = None) -> str:
    """A salted ``pbkdf2_sha256$ITERATIONS$SALT$HASH`` string (128-bit random salt by default)."""
    salt = salt or secrets.token_hex(16)
    derived = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), bytes.fromhex(salt), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${derived.hex()}"


def is_pbkdf2_hash(stored: str) -> bool:
    """Whether ``stored`` is a well-formed :func:`pbkdf2_hash` string."""
    return _PBKDF2.fullmatch(stored) is not None


def check_pbkdf2(stored: str, secret: str) -> bool:
    """Whether ``secret`` matches a :func:`pbkdf2_hash` string (constant-time compare)."""
    match = _PBKDF2.fullmatch(stored)
    if match is None:
        return False
    derived = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), bytes.fromhex(match[2]), int(match[1]))
    return hmac.compare_digest(derived.hex(), match[3])


def is_secret_hash(value: str) -> bool:
    """Whether ``value`` is a client ``secret_hash`` in either form."""
    return _SHA256.fullmatch(value) is not None or is_pbkdf2_hash(value)


class _Verified:
    """The (stored hash, secret) pairs that passed a PBKDF2 check in this process, bounded.

    Without it every token request of a client with a chosen secret would
    cost a slow derivation; with it, only the first one per process and
    wrong guesses do (and those are throttled). A pair is kept as a SHA-256
    of both, in memory only: the store never sees it.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._pairs: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, pair: str) -> bool:
        with self._lock:
            if pair not in self._pairs:
                return False
            self._pairs.move_to_end(pair)
            return True

    def add(self, pair: str) -> None:
        with self._lock:
            self._pairs[pair] = None
            while len(self._pairs) > self.size:
                self._pairs.popitem(last=False)


_verified = _Verified(_VERIFIED_SIZE)


def check_secret(stored: str, secret: str) -> bool:
    """Whether ``secret`` matches a client's ``secret_hash`` of either form, in constant time.

    The presented value is always hashed first, so presenting the stored hash
    itself never authenticates.
    """
    if not is_pbkdf2_hash(stored):
        return hmac.compare_digest(digest(secret), stored)
    pair = digest(f"{stored}\x00{secret}")
    if pair in _verified:
        return True
    if not check_pbkdf2(stored, secret):
        return False
    _verified.add(pair)
    return True
