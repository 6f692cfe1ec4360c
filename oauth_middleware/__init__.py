"""oauth-middleware: OAuth 2.0 authorization server and guard as one WSGI middleware.

>>> from oauth_middleware import OAuth2Middleware
>>> app = OAuth2Middleware(my_wsgi_app, store="sqlite:///oauth.db")  # doctest: +SKIP
"""

from .errors import ConfigError, OAuthError, StoreUnavailable
from .guard import Guard
from .helpers import current_token, require_scope, scope_denial
from .middleware import OAuth2Middleware
from .models import AccessToken, Client
from .resource import guard_from_settings
from .settings import Settings

__all__ = [
    "AccessToken",
    "Client",
    "ConfigError",
    "Guard",
    "OAuth2Middleware",
    "OAuthError",
    "Settings",
    "StoreUnavailable",
    "current_token",
    "guard_from_settings",
    "require_scope",
    "scope_denial",
]
