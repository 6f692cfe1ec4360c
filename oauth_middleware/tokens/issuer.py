"""Builds the token response of RFC 6749 §5.1 for every grant."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..models import Client
from ..parsing import scope_string
from .base import TokenFormat

log = logging.getLogger("oauth_middleware.tokens")


class TokenIssuer:
    """Mints access tokens through the configured format and shapes the response.

    :param tokens: the access-token format (opaque or JWT).
    :param ttl: access-token lifetime, reported as ``expires_in``.
    """

    def __init__(self, tokens: TokenFormat, ttl: int) -> None:
        self.tokens = tokens
        self.ttl = ttl

    def issue(
        self,
        *,
        client: Client,
        user_id: str | None,
        scopes: tuple[str, ...],
        grant_type: str,
        extra: Mapping[str, Any] | None = None,
        family: str | None = None,
    ) -> dict[str, Any]:
        """Create an access token and return the JSON body of the response.

        :param family: groups tokens issued from one code or refresh chain,
            so that they can be revoked together.
        """
        access = self.tokens.issue(
            client_id=client.client_id, user_id=user_id, scopes=scopes, extra=extra or {}, family=family
        )
        log.info(
            "token issued: client_id=%r grant=%s scope=%r", client.client_id, grant_type, scope_string(scopes)
        )
        body: dict[str, Any] = {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": self.ttl,
        }
        if scopes:
            body["scope"] = scope_string(scopes)
        return body
