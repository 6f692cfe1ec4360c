"""Which scopes a request gets: the server's list, the client's list, defaults."""

from __future__ import annotations

from .errors import InvalidScope
from .models import Client
from .parsing import scope_list


class ScopePolicy:
    """Decides the scope of a new grant (RFC 6749 §3.3).

    :param known: every scope of the server; empty means no server-wide list.
    :param default: scope used when a request names none; empty means the
        client's registered scopes.
    """

    def __init__(self, known: tuple[str, ...], default: tuple[str, ...]) -> None:
        self.known = frozenset(known)
        self.default = default

    def resolve(self, requested: str | None, client: Client) -> tuple[str, ...]:
        """The scopes to grant for a request's ``scope`` parameter.

        :raises InvalidScope: malformed, unknown to the server or beyond
            what the client was registered for.
        """
        if requested is None:
            if self.default:
                return tuple(s for s in self.default if not client.scopes or s in client.scopes)
            return client.scopes
        scopes = scope_list(requested)
        for scope in scopes:
            if self.known and scope not in self.known:
                raise InvalidScope(f"unknown scope {scope}")
            if client.scopes and scope not in client.scopes:
                raise InvalidScope(f"the client may not ask for scope {scope}")
        return scopes
