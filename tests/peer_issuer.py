"""A trusted issuer for the JWT bearer grant and token exchange tests: its keys, file and JWTs."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

#: The trusted issuer's identifier and this server's (WebTest's host).
PEER = "https://idp.example"
ISSUER = "http://localhost"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def ec_key(kid: str = "idp-1") -> tuple[Any, dict[str, Any]]:
    """A new P-256 private key and its public JWK named ``kid``."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    return private, {**public, "kid": kid, "alg": "ES256", "use": "sig"}


KEY, JWK = ec_key()
OTHER_KEY, _ = ec_key()


def peer_jwt(
    key: Any = KEY,
    *,
    alg: str = "ES256",
    kid: str | None = "idp-1",
    now: float | None = None,
    aud: str = ISSUER,
    **claims: Any,
) -> str:
    """A JWT of the trusted issuer for ``alice``; ``claims`` override (None removes one)."""
    issued = time.time() if now is None else now
    body: dict[str, Any] = {
        "iss": PEER,
        "sub": "alice",
        "aud": aud,
        "exp": int(issued) + 60,
        "iat": int(issued),
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode(body, key, algorithm=alg, headers={} if kid is None else {"kid": kid})


def issuer_file(
    directory: Path,
    *,
    issuer: str = PEER,
    jwks_uri: str | None = None,
    extra: str = "",
    **keys: str,
) -> str:
    """Write a ``trusted_issuers_file`` with one issuer (inline keys unless ``jwks_uri``); return its path."""
    lines = [f"[issuer:{issuer}]"]
    if jwks_uri is not None:
        lines.append(f"jwks_uri = {jwks_uri}")
    else:
        lines.append("jwks = " + json.dumps({"keys": [JWK]}))
    values = {"subjects": "alice bob service-*", "scopes": "read write", **keys}
    lines += [f"{name} = {value}" for name, value in values.items() if value is not None]
    path = directory / "issuers.ini"
    path.write_text("\n".join(lines) + "\n" + extra)
    return str(path)
