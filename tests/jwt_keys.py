"""Keys on disk and settings for the JWT tests, plus an app that echoes what the guard injected."""

from __future__ import annotations

import base64
import functools
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from oauth_middleware.keys import load_pem

ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"
#: An HS256 secret of the minimum length.
SECRET = "s" * 32
SECRET_2 = "t" * 40
ME = "/api/me"


def pem(key: Any, *, private: bool = True) -> bytes:
    """``key`` as an unencrypted PEM (its public half when ``private`` is false)."""
    if private:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@functools.lru_cache(maxsize=1)
def _private_keys() -> dict[str, Any]:
    """Generated once per test run: RSA is slow to make."""
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa_old": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
        "rsa_small": rsa.generate_private_key(public_exponent=65537, key_size=1024),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
    }


def make_keys(directory: Path) -> SimpleNamespace:
    """Private keys and their PEM files in ``directory``: two RSA, P-256, Ed25519, and unusable ones.

    For each name: ``NAME`` (the key), ``NAME_pem``, ``NAME_pub`` (file paths), ``NAME_kid``.
    """
    found: dict[str, Any] = {"dir": directory}
    for name, key in _private_keys().items():
        found[name] = key
        found[f"{name}_pem"] = _write(directory / f"{name}.pem", pem(key))
        found[f"{name}_pub"] = _write(directory / f"{name}.pub.pem", pem(key, private=False))
        if name in ("rsa", "rsa_old", "ec", "ed"):
            found[f"{name}_kid"] = load_pem(found[f"{name}_pem"], "test").kid
    return SimpleNamespace(**found)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def jwt_settings(keys: SimpleNamespace, alg: str = "RS256", **more: Any) -> dict[str, Any]:
    """Settings of a JWT server signing with the test key of ``alg``."""
    settings: dict[str, Any] = {
        "token_format": "jwt",
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwt_algorithm": alg,
        "grants": "client_credentials",
    }
    if alg == "HS256":
        settings["jwt_secret"] = SECRET
    else:
        settings["jwt_signing_key"] = {"RS256": keys.rsa_pem, "ES256": keys.ec_pem, "EdDSA": keys.ed_pem}[alg]
    settings.update(more)
    return settings


def claims(**over: Any) -> dict[str, Any]:
    """Valid RFC 9068 claims for a client-only token of the ``service`` client."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "service",
        "aud": AUDIENCE,
        "client_id": "service",
        "scope": "read",
        "iat": now,
        "exp": now + 600,
        "jti": "jti-" + str(now),
    }
    body.update(over)
    return {name: value for name, value in body.items() if value is not None}


def sign(payload: dict[str, Any], key: Any, alg: str = "RS256", **header: Any) -> str:
    """A JWT signed with ``key``; the header defaults to ``typ: at+jwt``."""
    headers = {"typ": "at+jwt", **header}
    return jwt.encode(
        payload, key, algorithm=alg, headers={k: v for k, v in headers.items() if v is not None}
    )


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: dict[str, Any]) -> str:
    """A JSON object, base64url-encoded as a JWT segment."""
    return b64(json.dumps(value).encode("utf-8"))


class EchoApp:
    """A WSGI app answering with what the guard put in the environ."""

    def __init__(self) -> None:
        self.environ: dict[str, Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.environ = environ
        token = environ["oauth2.token"]
        body = {
            "user": environ["oauth2.user"],
            "client_id": environ["oauth2.client_id"],
            "scopes": list(environ["oauth2.scopes"]),
            "remote_user": environ.get("REMOTE_USER"),
            "extra": dict(token.extra),
        }
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode("utf-8")]
