"""PKCE checks (RFC 7636), pure functions."""

from __future__ import annotations

import pytest

from oauth_middleware import pkce
from oauth_middleware.errors import InvalidGrant, InvalidRequest

#: RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_matches_the_rfc_example():
    assert pkce.s256(RFC_VERIFIER) == RFC_CHALLENGE


@pytest.mark.parametrize(
    ("challenge", "method", "allow_plain", "expected"),
    [
        pytest.param(RFC_CHALLENGE, "S256", False, "S256", id="s256"),
        pytest.param(RFC_CHALLENGE, "plain", True, "plain", id="plain-allowed"),
        pytest.param(RFC_CHALLENGE, None, True, "plain", id="absent-means-plain"),
        pytest.param("a" * 128, "S256", False, "S256", id="longest"),
    ],
)
def test_good_challenges(challenge, method, allow_plain, expected):
    assert pkce.check_challenge(challenge, method, allow_plain=allow_plain) == expected


@pytest.mark.parametrize(
    ("challenge", "method", "allow_plain"),
    [
        pytest.param(RFC_CHALLENGE, "plain", False, id="plain-refused"),
        pytest.param(RFC_CHALLENGE, None, False, id="absent-means-plain-refused"),
        pytest.param(RFC_CHALLENGE, "s256", False, id="method-is-case-sensitive"),
        pytest.param("a" * 42, "S256", False, id="too-short"),
        pytest.param("a" * 129, "S256", False, id="too-long"),
        pytest.param("a" * 42 + "=", "S256", False, id="padding"),
        pytest.param("a" * 42 + " ", "S256", False, id="space"),
    ],
)
def test_bad_challenges(challenge, method, allow_plain):
    with pytest.raises(InvalidRequest):
        pkce.check_challenge(challenge, method, allow_plain=allow_plain)


def test_verify_accepts_the_right_verifier():
    pkce.verify(RFC_VERIFIER, RFC_CHALLENGE, "S256")
    pkce.verify(RFC_VERIFIER, RFC_VERIFIER, "plain")
    pkce.verify(None, None, None)  # a code without PKCE, redeemed without a verifier


@pytest.mark.parametrize(
    ("verifier", "challenge", "method"),
    [
        pytest.param(None, RFC_CHALLENGE, "S256", id="missing"),
        pytest.param(RFC_VERIFIER[:-1] + "l", RFC_CHALLENGE, "S256", id="wrong"),
        pytest.param(RFC_CHALLENGE, RFC_CHALLENGE, "S256", id="challenge-as-verifier"),
        pytest.param(RFC_VERIFIER, RFC_CHALLENGE, "plain", id="plain-mismatch"),
        pytest.param("short", pkce.s256("short"), "S256", id="malformed"),
        pytest.param(RFC_VERIFIER, None, None, id="downgrade"),
    ],
)
def test_verify_refuses(verifier, challenge, method):
    with pytest.raises(InvalidGrant):
        pkce.verify(verifier, challenge, method)
