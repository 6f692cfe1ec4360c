"""A user's grants: which clients hold them, and ending them all at once.

Every grant a user makes is listed in the store under the user
(:meth:`~oauth_middleware.repository.Repository.index_grant`): a code, the
family of tokens a code, password, device or implicit grant issued (the
refresh chain included), and a remembered consent. :func:`revoke_grants`
ends them: codes are deleted, opaque access and refresh tokens deleted, JWT
access tokens put on the deny list, remembered consent forgotten. For "this
user changed their password" or "log out everywhere" (RFC 9700 §4.14.2 lets
refresh tokens be revoked then), and for an "authorized applications" page.

The Python API is :meth:`OAuth2Middleware.list_grants
<oauth_middleware.OAuth2Middleware.list_grants>` and
:meth:`~oauth_middleware.OAuth2Middleware.revoke_grants`; the command line is
``oauth-middleware grants list|revoke``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .records import GrantRecord
from .repository import Repository

log = logging.getLogger("oauth_middleware.grants")


@dataclass(frozen=True)
class UserGrant:
    """What one client holds of one user: its grants taken together.

    :param client_id: the client.
    :param since: when the user first granted it something still alive, Unix time.
    :param until: when the last of it ends, Unix time.
    :param scopes: every scope granted, in the order first granted.
    :param tokens: it holds a code or tokens (or may: their families are listed until they end).
    :param consent: the user's approval is remembered for it (``remember_consent``).
    """

    client_id: str
    since: int
    until: int
    scopes: tuple[str, ...]
    tokens: bool
    consent: bool


def list_grants(repository: Repository, user_id: str) -> list[UserGrant]:
    """The clients holding grants of ``user_id``, oldest first.

    :param repository: the server's (the store tokens live in).
    :param user_id: the user, as the user hooks name them.
    """
    return [_summary(grants) for grants in _by_client(repository.find_grants(user_id)).values()]


def revoke_grants(repository: Repository, user_id: str, client_id: str | None = None) -> list[UserGrant]:
    """End every grant of ``user_id`` (to ``client_id`` only, if given); what was ended.

    Each token of them stops working on its next use, in every process: opaque
    ones are deleted, JWTs denied (guards see it with ``jwt_check_revocation``;
    introspection always). A code redemption or refresh racing this call
    revokes the tokens it issues.

    :param repository: the server's (the store tokens live in).
    :param user_id: the user, as the user hooks name them.
    :param client_id: only this client's grants; None: every client's.
    """
    grants = [
        grant
        for grant in repository.find_grants(user_id)
        if client_id is None or grant.client_id == client_id
    ]
    for grant in grants:
        repository.revoke_grant(user_id, grant)
    ended = [_summary(found) for found in _by_client(grants).values()]
    if ended:
        log.info(
            "grants revoked: user=%r clients=%s",
            user_id[:100],
            ",".join(repr(grant.client_id) for grant in ended),
        )
    return ended


def _by_client(grants: list[GrantRecord]) -> dict[str, list[GrantRecord]]:
    by_client: dict[str, list[GrantRecord]] = {}
    for grant in grants:
        by_client.setdefault(grant.client_id, []).append(grant)
    return by_client


def _summary(grants: list[GrantRecord]) -> UserGrant:
    """One client's grants (at least one) taken together."""
    scopes: dict[str, None] = {}
    for grant in grants:
        scopes.update(dict.fromkeys(grant.scopes))
    return UserGrant(
        client_id=grants[0].client_id,
        since=min(grant.since for grant in grants),
        until=max(grant.until for grant in grants),
        scopes=tuple(scopes),
        tokens=any(grant.family is not None for grant in grants),
        consent=any(grant.family is None for grant in grants),
    )
