"""Storage backends behind one Protocol, chosen by the scheme of a URL."""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from ..errors import ConfigError, StoreUnavailable
from .base import Store, StoreConfig, Value

__all__ = ["SCHEMES", "Store", "StoreConfig", "Value", "open_store"]

#: URL scheme -> "module:class" of the backend, imported only when used so
#: the optional drivers (redis-py, pymemcache) stay optional.
SCHEMES: dict[str, str] = {
    "memory": "oauth_middleware.stores.memory:MemoryStore",
    "sqlite": "oauth_middleware.stores.sqlite:SQLiteStore",
    "redis": "oauth_middleware.stores.redis:RedisStore",
    "rediss": "oauth_middleware.stores.redis:RedisStore",
    "redis+sentinel": "oauth_middleware.stores.redis:RedisStore",
    "memcache": "oauth_middleware.stores.memcache:MemcacheStore",
}


def open_store(config: StoreConfig, *, setting: str = "store") -> Store:
    """Open the backend named by ``config.url`` and check it answers.

    :param config: URL and options of the store.
    :param setting: the ini key being opened, named in errors.
    :raises ConfigError: unknown scheme, missing driver or unreachable store,
        as one line naming ``setting``.
    """
    scheme = urlsplit(config.url).scheme
    target = SCHEMES.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigError(f"{setting}: unknown store scheme {scheme!r} in {config.url!r} (use {known})")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{setting}: {scheme}:// needs an extra driver ({exc.name} is not installed)"
        ) from None
    try:
        store: Store = getattr(module, class_name)(config)
        store.ping()
    except ConfigError as exc:
        raise ConfigError(f"{setting}: {exc}") from None
    except (StoreUnavailable, OSError) as exc:
        raise ConfigError(f"{setting}: cannot open {_redacted(config.url)}: {exc}") from None
    return store


def _redacted(url: str) -> str:
    """The URL without its password, safe for an error message or a log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
