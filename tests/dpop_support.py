"""A DPoP client key for the tests: it signs proofs (RFC 9449 §4.2), well-formed or broken on purpose."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from oauth_middleware.keys import thumbprint


class Prover:
    """An EC P-256 key pair that signs DPoP proofs.

    :param clock: where ``iat`` comes from (a FakeClock in the tests that move time).
    """

    def __init__(self, clock: Any = time) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        self.jkt = thumbprint(self.jwk)
        self.clock = clock

    def proof(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        nonce: str | None = None,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        key: Any = None,
        alg: str = "ES256",
        **claims: Any,
    ) -> str:
        """A proof for ``method`` ``url``; ``claims`` and ``header`` override, ``drop`` removes claims."""
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(self.clock.time()),
        }
        if token is not None:
            body["ath"] = ath(token)
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        headers = {"typ": "dpop+jwt", "jwk": self.jwk, **(header or {})}
        headers = {name: value for name, value in headers.items() if value is not None}
        signer = None if alg == "none" else key if key is not None else self.private
        return jwt.encode(body, signer, algorithm=alg, headers=headers)

    def signed(self, payload: bytes) -> str:
        """A proof with this raw payload, signed (a payload no JSON encoder would write)."""
        headers = {"typ": "dpop+jwt", "jwk": self.jwk}
        return jwt.api_jws.PyJWS().encode(payload, self.private, algorithm="ES256", headers=headers)


def ath(token: str) -> str:
    """The ``ath`` claim for ``token``."""
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
