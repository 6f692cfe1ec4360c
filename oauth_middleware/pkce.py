"""Proof Key for Code Exchange (RFC 7636): pure checks, no I/O.

The authorization endpoint validates the ``code_challenge`` a client sends
(:func:`check_challenge`); the token endpoint later checks the
``code_verifier`` against it (:func:`verify`), in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from .errors import InvalidGrant, InvalidRequest

#: RFC 7636 §4.1: code-verifier = 43*128unreserved.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
#: RFC 7636 §4.2: a challenge has the same alphabet and length limits.
_CHALLENGE = _VERIFIER
#: The transforms of RFC 7636 §4.2, strongest first.
METHODS = ("S256", "plain")


def s256(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(code_verifier)))`` without padding (§4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_challenge(challenge: str, method: str | None, *, allow_plain: bool) -> str:
    """Validate an authorization request's challenge and return its method.

    :param challenge: the ``code_challenge`` parameter.
    :param method: the ``code_challenge_method`` parameter; absent means
        ``plain`` (RFC 7636 §4.3).
    :param allow_plain: whether the ``plain`` transform is accepted at all.
    :raises InvalidRequest: malformed challenge or unsupported method (§4.4.1).
    """
    method = method or "plain"
    if method not in METHODS or (method == "plain" and not allow_plain):
        raise InvalidRequest("transform algorithm not supported, use code_challenge_method=S256")
    if not _CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be 43 to 128 unreserved characters")
    return method


def verify(verifier: str | None, challenge: str | None, method: str | None) -> None:
    """Check a token request's ``code_verifier`` against the code's challenge.

    A verifier sent for a code issued without a challenge is refused too:
    accepting it would let an attacker who injects a code obtained without
    PKCE pass as a PKCE client (the downgrade attack of RFC 9700 §4.8.2).

    :raises InvalidGrant: missing, malformed, unexpected or wrong verifier.
    """
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant("code_verifier sent for a code issued without code_challenge")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required for this code")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant("code_verifier must be 43 to 128 unreserved characters")
    expected = s256(verifier) if method == "S256" else verifier
    if not hmac.compare_digest(expected.encode("ascii"), challenge.encode("ascii")):
        raise InvalidGrant("code_verifier does not match the code_challenge")
