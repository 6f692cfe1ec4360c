"""oauth-middleware: OAuth 2.0 authorization server and guard as one WSGI middleware.

>>> from oauth_middleware import OAuth2Middleware
>>> app = OAuth2Middleware(my_wsgi_app, store="sqlite:///oauth.db")  # doctest: +SKIP

The public names are imported on first use (PEP 562), so that a resource
server importing the guard (``from oauth_middleware import guard_from_settings``,
the ``#guard`` filter) never loads the authorization server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AccessToken",
    "Client",
    "ConfigError",
    "Guard",
    "OAuth2Middleware",
    "OAuthError",
    "Settings",
    "StoreUnavailable",
    "UserGrant",
    "current_token",
    "guard_from_settings",
    "require_scope",
    "scope_denial",
]

#: Public name -> the module that defines it.
_MODULES = {
    "AccessToken": "models",
    "Client": "models",
    "ConfigError": "errors",
    "Guard": "guard",
    "OAuth2Middleware": "middleware",
    "OAuthError": "errors",
    "Settings": "settings",
    "StoreUnavailable": "errors",
    "UserGrant": "user_grants",
    "current_token": "helpers",
    "guard_from_settings": "resource",
    "require_scope": "helpers",
    "scope_denial": "helpers",
}

if TYPE_CHECKING:
    from .errors import ConfigError, OAuthError, StoreUnavailable
    from .guard import Guard
    from .helpers import current_token, require_scope, scope_denial
    from .middleware import OAuth2Middleware
    from .models import AccessToken, Client
    from .resource import guard_from_settings
    from .settings import Settings
    from .user_grants import UserGrant
else:
    # Hidden from type checkers, which see the imports above instead: a
    # module __getattr__ would make any misspelt name type-check as Any.

    def __getattr__(name: str) -> Any:
        """Import the public ``name`` from its module on first access."""
        module = _MODULES.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # later accesses find it without calling this again
        return value

    def __dir__() -> list[str]:
        """The module's attributes, public names not yet imported included."""
        return sorted({*globals(), *__all__})
