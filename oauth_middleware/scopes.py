"""Which scopes a request gets: least privilege between the server's list and the client's.

A scope is granted only when both allow it (RFC 6749 §3.3, RFC 9700 §2.3):

* the server allows the scopes of its ``scopes`` setting; with that setting
  empty there is no server-wide list, and the registrations are the only one;
* a client allows the scopes it was registered for; a client registered
  without scopes allows only the server's ``default_scope`` (no scope at all
  when that is empty), never "anything".
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import InvalidScope
from .models import Client
from .parsing import scope_list


class ScopePolicy:
    """Decides the scope of a grant, and re-checks it when a grant is used later.

    :param known: every scope of the server; empty means no server-wide list.
    :param default: scope used when a request names none, and all that a
        client registered without scopes may have.
    """

    def __init__(self, known: tuple[str, ...], default: tuple[str, ...]) -> None:
        self.known = frozenset(known)
        self.default = default

    def client_scopes(self, client: Client) -> tuple[str, ...]:
        """What ``client`` may ask for: its registered scopes, or else the default scope."""
        return client.scopes or self.default

    def resolve(self, requested: str | None, client: Client) -> tuple[str, ...]:
        """The scopes to grant for a request's ``scope`` parameter.

        A request without one gets ``default_scope`` (or, when that is empty,
        the client's registered scopes), less what the client or the server
        does not allow.

        :raises InvalidScope: malformed, unknown to the server or beyond
            what the client was registered for.
        """
        if requested is None:
            return tuple(s for s in self.default or client.scopes if self._refusal(s, client) is None)
        scopes = scope_list(requested)
        self.check(scopes, client)
        return scopes

    def check(self, scopes: Iterable[str], client: Client) -> None:
        """Refuse a scope that the server or ``client`` does not allow.

        Also run when a grant is used later (refresh, code redemption): the
        settings and the registration may have changed since it was made.

        :raises InvalidScope: naming the first scope refused.
        """
        for scope in scopes:
            refusal = self._refusal(scope, client)
            if refusal is not None:
                raise InvalidScope(refusal)

    def _refusal(self, scope: str, client: Client) -> str | None:
        """Why ``scope`` is refused to ``client``, or None when it is allowed."""
        if self.known and scope not in self.known:
            return f"unknown scope {scope}"
        if scope not in self.client_scopes(client):
            return f"the client may not ask for scope {scope}"
        return None
