"""Storage backends behind one Protocol, chosen by the scheme of a URL.

:data:`STORES` maps a URL scheme to a factory ``(StoreConfig) -> Store``;
a store class whose constructor takes the config is one. Another package
adds a scheme through the entry-point group ``oauth_middleware.stores`` or
:meth:`STORES.register <oauth_middleware.registry.Registry.register>`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from ..errors import ConfigError, StoreUnavailable
from ..registry import Registry
from .base import BatchCounterStore, ChangeStore, ChannelStore, Store, StoreConfig, Value

__all__ = [
    "STORES",
    "BatchCounterStore",
    "ChangeStore",
    "ChannelStore",
    "MigratingStore",
    "Store",
    "StoreConfig",
    "StoreFactory",
    "Value",
    "migrate_store",
    "open_store",
    "redacted_url",
]

#: Opens a store from its URL and options (a store class taking the config is one).
StoreFactory = Callable[[StoreConfig], Store]


def _imported_on_use(target: str) -> StoreFactory:
    """A factory for the class ``module:class``, imported when a store is first opened.

    So the optional drivers (redis-py, pymemcache, psycopg, PyMySQL) stay optional: a missing
    one is an error only for the scheme that needs it.
    """

    def open_(config: StoreConfig) -> Store:
        module_name, class_name = target.split(":")
        store: Store = getattr(importlib.import_module(module_name), class_name)(config)
        return store

    return open_


#: URL scheme -> store factory; entry points of ``oauth_middleware.stores`` add to it.
STORES: Registry[StoreFactory] = Registry("store scheme", "oauth_middleware.stores")
STORES.register("memory", _imported_on_use("oauth_middleware.stores.memory:MemoryStore"))
STORES.register("sqlite", _imported_on_use("oauth_middleware.stores.sqlite:SQLiteStore"))
_redis = _imported_on_use("oauth_middleware.stores.redis:RedisStore")
for _scheme in ("redis", "rediss", "redis+sentinel"):
    STORES.register(_scheme, _redis)
_postgresql = _imported_on_use("oauth_middleware.stores.postgresql:open_postgresql")
for _scheme in ("postgresql", "postgres"):
    STORES.register(_scheme, _postgresql)
STORES.register("mysql", _imported_on_use("oauth_middleware.stores.mysql:open_mysql"))
STORES.register("memcache", _imported_on_use("oauth_middleware.stores.memcache:MemcacheStore"))


@runtime_checkable
class MigratingStore(Protocol):
    """A store with a versioned schema (SQLite, PostgreSQL, MySQL)."""

    def migrate(self) -> tuple[int, int]:
        """Create or upgrade the schema now; return the versions before (0: none) and after."""


_R = TypeVar("_R")


def open_store(config: StoreConfig, *, setting: str = "store") -> Store:
    """Open the backend named by ``config.url`` and check it answers.

    :param config: URL and options of the store.
    :param setting: the ini key being opened, named in errors.
    :raises ConfigError: unknown scheme, missing driver or unreachable store,
        as one line naming ``setting``.
    """
    return _opened(config, setting, lambda store: store.ping())[0]


def migrate_store(config: StoreConfig, *, setting: str = "store") -> tuple[int, int] | None:
    """Create or upgrade the schema of the store ``config`` names (``oauth-middleware store migrate``).

    :returns: the schema versions before (0: none) and after, or None for a
        store without a schema (memory, Redis, memcached), which is only pinged.
    :raises ConfigError: as :func:`open_store`.
    """

    def migrate(store: Store) -> tuple[int, int] | None:
        if isinstance(store, MigratingStore):
            return store.migrate()
        store.ping()
        return None

    store, versions = _opened(config, setting, migrate)
    store.close()
    return versions


def _opened(config: StoreConfig, setting: str, first: Callable[[Store], _R]) -> tuple[Store, _R]:
    """Make the store ``config`` names and run ``first`` on it, turning every failure into one line."""
    scheme = urlsplit(config.url).scheme
    factory = STORES.get(scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in STORES.names())
        raise ConfigError(f"{setting}: unknown store scheme {scheme!r} in {config.url!r} (use {known})")
    try:
        store = factory(config)
        result = first(store)
    except ImportError as exc:
        raise ConfigError(
            f"{setting}: {scheme}:// needs an extra driver ({exc.name} is not installed)"
        ) from None
    except ConfigError as exc:
        raise ConfigError(f"{setting}: {exc}") from None
    except (StoreUnavailable, OSError) as exc:
        raise ConfigError(f"{setting}: cannot open {redacted_url(config.url)}: {exc}") from None
    return store, result


def redacted_url(url: str) -> str:
    """The URL without its password, safe for an error message or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
