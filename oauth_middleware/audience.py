"""Audience restriction at the guard (RFC 8707 §2, RFC 9068 §4, RFC 9700 §2.3).

A token is for the resources its request named (its audience, a JWT's
``aud``), or for the server's default ``audience`` when it named none. The
guard accepts it only where it is meant to be used, so a token obtained for
one resource server cannot be replayed at another.
"""

from __future__ import annotations

import logging

from .errors import InvalidToken
from .models import AccessToken
from .settings import Settings

log = logging.getLogger("oauth_middleware.guard")
#: What the client is told, whatever the reason (the log has it): as for any other invalid token.
_INVALID = "the access token is invalid or has expired"


class AudienceRule:
    """Which audiences the guard answers for, and whether a token's audience names one.

    :param settings: ``resource_identifier``, ``audience`` and
        ``accept_tokens_without_audience``.

    With ``resource_identifier`` the guard answers for that resource only;
    without it, for the ``audience`` setting (the ``aud`` check of JWT guards
    since 0.1).
    """

    def __init__(self, settings: Settings) -> None:
        identifier = settings.resource_identifier
        #: The audiences a token must name one of; empty: no audience is this guard's.
        self.accepted = frozenset((identifier,) if identifier else settings.audience)
        #: What a token issued without ``resource`` is for.
        self.default = settings.audience
        #: A token for no resource at all is accepted (no identifier, or the migration setting).
        self.unrestricted = not identifier or settings.accept_tokens_without_audience

    def check(self, token: AccessToken) -> None:
        """Pass a token meant for this resource server.

        :raises InvalidToken: the token is for another resource, or for none where
            the guard requires one.
        """
        audience = token.audience or self.default
        if not audience:
            if not self.unrestricted:
                log.info("access token refused: it names no resource (client_id=%r)", token.client_id)
                raise InvalidToken(_INVALID)
        elif self.accepted.isdisjoint(audience):
            log.info("access token refused: it is for another resource (client_id=%r)", token.client_id)
            raise InvalidToken(_INVALID)
