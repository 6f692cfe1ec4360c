"""The guard on its own, for resource servers in other processes or hosts.

It imports the guard, the token formats, the stores and the repository
(through :mod:`oauth_middleware.wiring`) and nothing of the authorization
server: a resource server loads no grant, endpoint, consent page or throttle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .guard import Guard
from .settings import Settings
from .stores import Store
from .tokens import TokenFormat
from .wiring import repository_from_settings, store_from_settings, token_format_from_settings

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class ResourceGuard(Guard):
    """The guard of the guard-only filter: a :class:`Guard` that owns the store it opened.

    :param app: the WSGI application to protect.
    :param settings: token sources, public paths, scope rules and realm.
    :param tokens: the token format that verifies tokens.
    :param store: the store opened for the guard, or None when it needs none.
    """

    def __init__(
        self, app: WSGIApplication, settings: Settings, tokens: TokenFormat, store: Store | None
    ) -> None:
        super().__init__(app, settings, tokens)
        self.store = store

    def close(self) -> None:
        """Close the store the guard opened (its files, connections and sockets), if any."""
        repository = self.tokens.repository
        if repository is not None and repository.cache is not None:
            repository.cache.close()  # its listener's connection
        if self.store is not None:
            self.store.close()


def guard_from_settings(app: WSGIApplication, settings: Settings) -> ResourceGuard:
    """Wrap ``app`` in a guard that checks tokens in the configured store or by signature.

    :param app: the WSGI application to protect.
    :param settings: the same settings the authorization server uses.
    :raises ConfigError: a bad combination of settings (:meth:`Settings.check_role`),
        a store that cannot be opened or a key that cannot be loaded.
    """
    settings.check_role("guard")
    # A JWT guard without revocation checks validates locally: no store to open.
    # The guard never reads clients, so ``client_store`` is not opened here: an
    # ini shared with the authorization server may name it without this host
    # needing to reach it.
    # DPoP proofs record their jti in the store, whatever the token format.
    needs_store = (
        settings.token_format == "opaque" or settings.jwt_check_revocation or "DPoP" in settings.token_types
    )
    store = store_from_settings(settings) if needs_store else None
    repository = repository_from_settings(settings, store) if store is not None else None
    tokens = token_format_from_settings(settings, repository, issuing=False)
    return ResourceGuard(app, settings, tokens, store)
