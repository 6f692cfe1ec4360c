"""The parts both filters build from the settings: stores, the repository's stores, the token format.

Shared by the authorization server (:mod:`oauth_middleware.server`), the
guard-only filter (:mod:`oauth_middleware.resource`) and the CLI. It imports
settings, stores, the repository and the token formats, never the
authorization server, so a resource server that only verifies tokens loads
none of it (an import-linter contract keeps it so).
"""

from __future__ import annotations

from .clock import SYSTEM_CLOCK, Clock
from .errors import ConfigError
from .repository import Repository
from .settings import Settings
from .stores import Store, StoreConfig, open_store
from .token_cache import CachedRepository, token_cache_from_settings
from .tokens import TokenFormat
from .tokens.jwt import jwt_tokens
from .tokens.opaque import OpaqueTokens


def store_from_settings(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> Store:
    """Open the configured store (a one-line ``ConfigError`` if it cannot be), expiring by ``clock``."""
    return open_store(store_config(settings, settings.store, clock))


def client_store_from_settings(settings: Settings) -> Store | None:
    """Open the ``client_store`` setting's store; None when clients live in ``store``."""
    if not settings.client_store or settings.client_store == settings.store:
        return None
    return open_store(store_config(settings, settings.client_store), setting="client_store")


def store_config(settings: Settings, url: str, clock: Clock = SYSTEM_CLOCK) -> StoreConfig:
    """How to open the store at ``url`` (``store`` or ``client_store``) with the settings' options."""
    return StoreConfig(
        url,
        settings.store_timeout,
        settings.store_prefix,
        clock,
        pool_size=settings.store_pool_size,
        table_prefix=settings.store_table_prefix,
    )


def repository_from_settings(
    settings: Settings, store: Store, client_store: Store | None = None, clock: Clock = SYSTEM_CLOCK
) -> Repository:
    """The repository over the stores: the guard's reads go through its token cache where it is on.

    See :func:`~oauth_middleware.token_cache.token_cache_from_settings` for where it is.
    """
    cache = token_cache_from_settings(settings, store, clock)
    if cache is None:
        return Repository(store, client_store, clock=clock)
    return CachedRepository(store, client_store, clock=clock, cache=cache)


def token_format_from_settings(
    settings: Settings, repository: Repository | None, *, issuing: bool = True, clock: Clock = SYSTEM_CLOCK
) -> TokenFormat:
    """The access-token format named by ``token_format``.

    :param repository: None only on a guard that verifies JWTs without
        revocation checks, which never touches a store.
    :param issuing: False on a guard-only resource server: no signing key needed.
    :param clock: the time tokens expire by.
    """
    if settings.token_format == "jwt":
        return jwt_tokens(settings, repository, issuing=issuing, clock=clock)
    if repository is None:
        raise ConfigError("store: opaque access tokens are looked up in the store")
    return OpaqueTokens(
        repository,
        settings.access_token_ttl,
        settings.token_generator,
        # Only registrations (RFC 7592) are deleted with live tokens nothing lists.
        deleted_clients=settings.registration != "off",
        clock=clock,
    )
