"""What every access-token format offers, and how random tokens are made."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..models import AccessToken

if TYPE_CHECKING:
    from ..clock import Clock
    from ..repository import Repository


def new_token_string(generator: str = "secrets") -> str:
    """A fresh unguessable token: 256 bits from :mod:`secrets`, URL-safe.

    :param generator: ``secrets`` (the default) or ``uuid4`` (122 random
        bits, kept for users migrating from older libraries).
    """
    if generator == "uuid4":
        return uuid.uuid4().hex
    return secrets.token_urlsafe(32)


class TokenFormat(Protocol):
    """Makes access tokens and checks them on every guarded request."""

    @property
    def reads_store(self) -> bool:
        """Whether :meth:`verify` reads the store (so a success shows it is reachable)."""

    @property
    def repository(self) -> Repository | None:
        """The store's repository, if this format has one (DPoP proofs record their ``jti`` there)."""

    def issue(
        self,
        *,
        client_id: str,
        user_id: str | None,
        scopes: tuple[str, ...],
        extra: Mapping[str, Any],
        family: str | None,
        jkt: str | None = None,
        audience: tuple[str, ...] = (),
        act: Mapping[str, Any] | None = None,
    ) -> AccessToken:
        """Create (and, if stateful, store) a new access token.

        :param jkt: the DPoP key thumbprint to bind it to (RFC 9449 §6), or None for a bearer token.
        :param audience: the resources it is for (RFC 8707); empty: the server's default audience.
        :param act: who acts for the subject (RFC 8693 §4.1), for a delegated token.
        """

    @property
    def clock(self) -> Clock:
        """The time tokens expire by."""

    def stamp(self) -> Hashable | None:
        """A value that stays the same while every token :meth:`verify` accepted since is still
        good (its expiry aside), or None when the format cannot vouch for that now.

        The guard keeps the headers it verified with the stamp read before
        verifying them, and answers a header again without verifying it while
        the stamp is unchanged (:mod:`oauth_middleware.verified_headers`).
        None (a cache turned off, a revocation channel down) sends every
        request through :meth:`verify`.
        """

    def verify(self, token: str) -> AccessToken:
        """Return the live token.

        :raises InvalidToken: unknown, expired, revoked or malformed.
        :raises StoreUnavailable: the store cannot be asked.
        """

    def introspect(self, token: str) -> AccessToken | None:
        """Return the token if it is active, checking revocation in the store
        whatever the guard does (introspection and revocation endpoints).

        :returns: None for an unknown, expired, revoked or malformed token.
        :raises StoreUnavailable: the store cannot be asked.
        """

    def revoke(self, token: AccessToken) -> None:
        """Make an active token invalid from now on (RFC 7009)."""

    def join_family(self, token: AccessToken, family: str) -> None:
        """Make an already issued token die with ``family`` too (it already dies with its own).

        ``unique_tokens`` hands a token out again for a new grant; revoking that
        grant (a replayed code, a reused refresh token) must revoke it.
        """
