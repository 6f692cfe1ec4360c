"""Builds the token response of RFC 6749 §5.1 for every grant."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..clock import SYSTEM_CLOCK, Clock
from ..models import Client
from ..parsing import scope_string
from .base import TokenFormat

if TYPE_CHECKING:
    from .unique import UniqueTokens

log = logging.getLogger("oauth_middleware.tokens")

#: The ``token_type`` of a DPoP-bound access token (RFC 9449 §5).
DPOP_TOKEN_TYPE = "DPoP"


class TokenIssuer:
    """Mints access tokens through the configured format and shapes the response.

    :param tokens: the access-token format (opaque or JWT).
    :param ttl: access-token lifetime, reported as ``expires_in``.
    :param unique: with ``unique_tokens``, hands out a still-valid token again.
    :param token_type: the ``token_type`` of the response: the scheme of the
        guard's token type the tokens are for (``Bearer``).
    :param clock: the time the ``expires_in`` of a token handed out again is counted from.
    """

    def __init__(
        self,
        tokens: TokenFormat,
        ttl: int,
        unique: UniqueTokens | None = None,
        *,
        token_type: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.tokens = tokens
        self.ttl = ttl
        self.unique = unique
        self.token_type = token_type
        self.clock = clock

    def issue(
        self,
        *,
        client: Client,
        user_id: str | None,
        scopes: tuple[str, ...],
        grant_type: str,
        extra: Mapping[str, Any] | None = None,
        family: str | None = None,
        jkt: str | None = None,
        audience: tuple[str, ...] = (),
        act: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create an access token and return the JSON body of the response.

        :param family: groups tokens issued from one code or refresh chain,
            so that they can be revoked together; a token handed out again
            (``unique_tokens``) joins it as well.
        :param jkt: the thumbprint of the key of the request's DPoP proof: the
            token is bound to it and its ``token_type`` is ``DPoP`` (RFC 9449 §5).
        :param audience: the resources the token is for (RFC 8707); empty: the default audience.
        :param act: who acts for the subject of a delegated token (RFC 8693 §4.1).
        """
        # A bound or delegated token is never handed out again: the one kept may be bound to
        # another key, or none, or name another actor.
        unique = self.unique if jkt is None and act is None else None
        access = unique.find(client.client_id, user_id, grant_type, scopes, audience) if unique else None
        reused = access is not None
        expires_in = self.ttl
        if access is None:
            access = self.tokens.issue(
                client_id=client.client_id,
                user_id=user_id,
                scopes=scopes,
                extra=extra or {},
                family=family,
                jkt=jkt,
                audience=audience,
                act=act,
            )
            if unique is not None:
                unique.keep(grant_type, access, audience)
        else:
            if family is not None:
                # The new grant produced this token too: revoking the grant must revoke it.
                self.tokens.join_family(access, family)
            expires_in = max(1, access.expires_at - int(self.clock.time()))
        scope = scope_string(scopes)
        # Who got a token for what; never the token itself.
        log.info(
            "token %s: client_id=%r user=%r grant=%s scope=%r",
            "reused" if reused else "issued",
            client.client_id,
            None if user_id is None else user_id[:100],
            grant_type,
            scope,
        )
        body: dict[str, Any] = {
            "access_token": access.token,
            "token_type": self.token_type if jkt is None else DPOP_TOKEN_TYPE,
            "expires_in": expires_in,
        }
        if scopes:
            body["scope"] = scope
        return body
