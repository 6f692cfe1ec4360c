"""Token exchange (RFC 8693): a token for the subject of another token, narrowed, maybe delegated.

A client presents a ``subject_token``: one of our access tokens (active, not
revoked) or a JWT of a trusted issuer (see
:mod:`oauth_middleware.trusted_issuers`). It gets an access token for the same
subject, with at most the subject token's scopes and audience. With an
``actor_token`` the new token is delegated: its ``act`` claim names the actor,
and the actors the subject token already named are nested under it (§4.1).
A policy (``token_exchange_policy``, default :func:`least_privilege`) decides
whether the client may make the exchange. The new token carries the subject
token's data (``AccessToken.extra``; none for a trusted issuer's JWT) with what
the ``token_claims`` hook adds, and, when it has a user, is listed among that
user's grants as a grant of its own to the client (``revoke_grants`` ends it).

Errors follow §2.2.2: a token that is invalid or refused by the policy is
``invalid_request`` (the RFC's MUST), an audience or resource that is not
allowed ``invalid_target``, scopes beyond the subject token's ``invalid_scope``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidRequest, InvalidScope, InvalidTarget
from ..models import AccessToken, Client
from ..parsing import scope_list
from ..tokens.refresh import new_family
from .base import GrantBase, GrantContext, TokenRequest, TokenResponse, issue_with_refresh

if TYPE_CHECKING:
    from ..trusted_issuers import PeerToken

log = logging.getLogger("oauth_middleware.grants")

#: RFC 8693 §3: the token type of an access token, the only one issued here.
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
#: RFC 8693 §3: a JWT (ours if JWT access tokens are on, or a trusted issuer's).
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
#: The subject and actor token types accepted.
INPUT_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE)
#: Deepest ``act`` chain kept: each exchange of a delegated token adds a level.
MAX_ACT_DEPTH = 5


@dataclass(frozen=True)
class ExchangedToken:
    """A verified subject or actor token.

    :param subject: whom it speaks for: its user, else the client it was issued to
        (RFC 9068 §2.2), or a trusted issuer's ``sub``.
    :param user_id: its user (our token) or ``sub`` (a trusted issuer's); None for a
        client-only token of ours.
    :param client_id: the client it was issued to; for a trusted issuer's JWT its
        ``client_id`` claim, if any.
    :param scopes: what it allows: our token's scopes, or those of a trusted issuer's
        JWT (its ``scope`` claim, else everything) that the issuer may grant.
    :param audience: the resources it is restricted to (RFC 8707); empty: none.
    :param act: its own actor chain, if it is already delegated (§4.1).
    :param issuer: the trusted issuer that signed it; None for one of ours.
    :param data: the data it carries (our token's ``extra``); empty for a trusted issuer's.
    """

    subject: str
    user_id: str | None
    client_id: str | None
    scopes: tuple[str, ...]
    audience: tuple[str, ...] = ()
    act: Mapping[str, Any] | None = None
    issuer: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def ours(cls, token: AccessToken) -> ExchangedToken:
        """One of our access tokens."""
        subject = token.user_id if token.user_id is not None else token.client_id
        return cls(
            subject, token.user_id, token.client_id, token.scopes, token.audience, token.act, data=token.extra
        )

    @classmethod
    def peer(cls, token: PeerToken) -> ExchangedToken:
        """A trusted issuer's JWT.

        :raises InvalidRequest: its ``scope``, ``client_id`` or ``act`` claim is malformed.
        """
        claims, allowed = token.claims, token.issuer.scopes
        scope, client_id = claims.get("scope"), claims.get("client_id")
        if (scope is not None and not isinstance(scope, str)) or (
            client_id is not None and not isinstance(client_id, str)
        ):
            raise InvalidRequest("the token is invalid")
        scopes = allowed if scope is None else tuple(s for s in scope.split() if s in allowed)
        act = actor_chain(claims["act"]) if "act" in claims else None
        return cls(token.subject, token.subject, client_id, scopes, (), act, token.issuer.issuer)

    def issued_user(self, client_id: str) -> str | None:
        """The user of a token issued to ``client_id`` for this subject.

        None only for the client's own client-only token, which stays client-only.
        """
        return None if self.user_id is None and self.client_id == client_id else self.subject

    def actor(self) -> dict[str, Any]:
        """This token as the actor of a new token: ``{"sub": ..., "iss": ...}`` (§4.1)."""
        return {"sub": self.subject} if self.issuer is None else {"sub": self.subject, "iss": self.issuer}


@dataclass(frozen=True)
class TokenExchange:
    """What the ``token_exchange_policy`` decides on: a checked request of ``client``.

    :param client: the authenticated client asking.
    :param subject: the subject token, verified.
    :param actor: the actor token, verified; None when the client asked for no delegation.
    :param scopes: the scopes of the token to issue (within the subject token's).
    :param audience: the audiences and resources of the token to issue (within the subject token's).
    """

    client: Client
    subject: ExchangedToken
    actor: ExchangedToken | None
    scopes: tuple[str, ...]
    audience: tuple[str, ...]


def least_privilege(exchange: TokenExchange) -> bool:
    """The default policy: a client exchanges what was given to it, and acts only as itself.

    * the subject token was issued to the client, names the client in its
      audience (it was sent to the client as a resource server), or comes from a
      trusted issuer (whose subjects the operator listed);
    * an actor token, if any, was issued to the client or names the client as its subject.
    """
    client_id = exchange.client.client_id
    subject = exchange.subject
    if not (subject.client_id == client_id or client_id in subject.audience or subject.issuer is not None):
        return False
    actor = exchange.actor
    return actor is None or client_id in (actor.client_id, actor.subject)


class TokenExchangeGrant(GrantBase):
    """Issue an access token for the subject of a token the client presents (RFC 8693 §2)."""

    grant_type = "urn:ietf:params:oauth:grant-type:token-exchange"
    #: §2.2.1: a refresh token is optional; the client exchanges again instead.
    refresh_tokens = False
    #: Least privilege: only a client that authenticates may exchange tokens (§5 asks for it).
    allows_public_clients = False

    def __init__(self, context: GrantContext) -> None:
        super().__init__(context)
        self.policy = context.settings.token_exchange_policy or least_privilege

    def token_response(self, request: TokenRequest) -> TokenResponse:
        """Verify the tokens, narrow the scopes and audience, ask the policy, and issue."""
        params = request.params
        self._check_types(params)
        subject = self._verify(params["subject_token"], params["subject_token_type"], request)
        actor = None
        if "actor_token" in params:
            actor = self._verify(params["actor_token"], params["actor_token_type"], request)
        scopes = self._scopes(params.get("scope"), subject, request.client)
        audience = self._audience(request, subject)
        exchange = TokenExchange(request.client, subject, actor, scopes, audience)
        if not self.policy(exchange):
            log.info("token exchange by client_id=%r refused by the policy", request.client.client_id)
            raise InvalidRequest("the client may not exchange this token")
        response = issue_with_refresh(
            self.context,
            request,
            self.grant_type,
            user_id=subject.issued_user(request.client.client_id),
            scopes=scopes,
            family=new_family(),
            data=subject.data,
            audience=audience,
            act=delegation(subject, actor),
        )
        return response._replace(body={**response.body, "issued_token_type": ACCESS_TOKEN_TYPE})

    @staticmethod
    def _check_types(params: Mapping[str, str]) -> None:
        """The token parameters and types are present, paired and supported (§2.1).

        :raises InvalidRequest: naming what is missing or unsupported.
        """
        if not params.get("subject_token") or "subject_token_type" not in params:
            raise InvalidRequest("subject_token and subject_token_type are required")
        if ("actor_token" in params) != ("actor_token_type" in params) or params.get("actor_token") == "":
            raise InvalidRequest("actor_token and actor_token_type go together")
        for name in ("subject_token_type", "actor_token_type"):
            if name in params and params[name] not in INPUT_TOKEN_TYPES:
                raise InvalidRequest(f"unsupported {name}")
        if params.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise InvalidRequest("only access tokens are issued (requested_token_type)")

    def _verify(self, token: str, token_type: str, request: TokenRequest) -> ExchangedToken:
        """Our active token, or a trusted issuer's JWT, as an :class:`ExchangedToken`.

        :raises InvalidRequest: neither, or a token bound to a DPoP key the request
            does not prove (§2.2.2).
        """
        is_jwt = token.count(".") == 2
        if token_type == ACCESS_TOKEN_TYPE or is_jwt:
            # introspect(): active and not revoked, whatever the guard's revocation setting.
            ours = self.context.issuer.tokens.introspect(token)
            if ours is not None:
                # A sender-constrained token is exchanged only by the holder of its key.
                if ours.jkt is not None and ours.jkt != request.dpop_jkt:
                    raise InvalidRequest("the token is bound to a DPoP key this request does not prove")
                return ExchangedToken.ours(ours)
        peer = self.context.trusted_issuers.verify(token) if is_jwt else None
        if peer is None:
            raise InvalidRequest("the token is invalid")
        return ExchangedToken.peer(peer)

    def _scopes(self, requested: str | None, subject: ExchangedToken, client: Client) -> tuple[str, ...]:
        """The requested scopes, or the subject token's, within the subject token's and the client's.

        :raises InvalidScope: a scope the subject token, the client or the server does not allow.
        """
        if requested is None:
            allowed = set(self.context.scope_policy.client_scopes(client))
            return tuple(scope for scope in subject.scopes if scope in allowed)
        scopes = scope_list(requested)
        for scope in scopes:
            if scope not in subject.scopes:
                raise InvalidScope(f"scope {scope} is beyond the subject token's")
        self.context.scope_policy.check(scopes, client)
        return scopes

    def _audience(self, request: TokenRequest, subject: ExchangedToken) -> tuple[str, ...]:
        """The ``resource`` and ``audience`` asked for, within what the server, the client and the subject token allow.

        :raises InvalidTarget: one the server or the client does not allow, or beyond the
            subject token's (§2.2.2).
        """
        audience_param = request.params.get("audience")
        wanted = [*request.resources, *([] if audience_param is None else [audience_param])]
        if not wanted:
            return subject.audience
        audience = self.context.resource_policy.resolve(wanted, request.client.resources)
        if subject.audience and any(target not in subject.audience for target in audience):
            raise InvalidTarget("the audience is beyond the subject token's")
        return audience


def delegation(subject: ExchangedToken, actor: ExchangedToken | None) -> dict[str, Any] | None:
    """The ``act`` claim of the new token: the actor, with the subject token's chain nested (§4.1).

    Without an actor the subject token's own chain is kept, so a delegated token
    stays delegated.

    :raises InvalidRequest: the chain would be deeper than :data:`MAX_ACT_DEPTH`.
    """
    if actor is None:
        return None if subject.act is None else dict(subject.act)
    act = actor.actor()
    if subject.act is not None:
        act["act"] = dict(subject.act)
    actor_chain(act)  # its depth
    return act


def actor_chain(value: Any, depth: int = 1) -> dict[str, Any]:
    """An ``act`` claim, checked and reduced to the identity members ``sub`` and ``iss`` (§4.1).

    :raises InvalidRequest: not an object with a string ``sub``, or nested deeper than
        :data:`MAX_ACT_DEPTH`.
    """
    if depth > MAX_ACT_DEPTH:
        raise InvalidRequest("the act chain is too deep")
    if not isinstance(value, Mapping) or not isinstance(value.get("sub"), str):
        raise InvalidRequest("the token is invalid")
    chain: dict[str, Any] = {"sub": value["sub"]}
    if isinstance(value.get("iss"), str):
        chain["iss"] = value["iss"]
    if "act" in value:
        chain["act"] = actor_chain(value["act"], depth + 1)
    return chain
