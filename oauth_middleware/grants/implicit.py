"""Implicit grant (RFC 6749 §4.2): the ``token`` response type.

It has no token request: the authorization endpoint hands the access token
out in the redirect's fragment (:mod:`oauth_middleware.endpoints.authorize`).
So it is a :class:`~.base.GrantType` but no :class:`~.base.Grant`: it is
offered by ``response_types = token``, never named in ``grants``, and
advertised as ``implicit`` in ``grant_types_supported``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..settings import Settings


class ImplicitGrant:
    """The declaration of the implicit grant (off by default: RFC 9700 §2.1.2)."""

    grant_type = "implicit"
    response_types: tuple[str, ...] = ("token",)
    #: RFC 6749 §4.2.2: never a refresh token.
    refresh_tokens = False
    #: Browser apps are public clients: it is for them.
    allows_public_clients = True

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """No members besides its name in ``grant_types_supported``."""
        return {}
