"""Client authentication: credentials read once per request, each client's own method, a registry.

The methods are registered by their RFC 7591 ``token_endpoint_auth_method``
names (``client_secret_basic``, ``client_secret_post``, ``none``,
``private_key_jwt``, ``client_secret_jwt``); a package
adds its own with :func:`register_auth_method` or an entry point in the
group ``oauth_middleware.client_auth``. The server metadata lists them all.
"""

from __future__ import annotations

from . import builtin as _builtin  # noqa: F401  (registers the built-in methods)
from .assertions import JWT_BEARER, ClientAssertions, ContextualAuthMethod
from .authenticator import ClientAuthenticator
from .base import (
    AUTH_METHODS,
    ClientAuthMethod,
    ClientCredentials,
    auth_method,
    read_credentials,
    register_auth_method,
)

__all__ = [
    "AUTH_METHODS",
    "JWT_BEARER",
    "ClientAssertions",
    "ClientAuthMethod",
    "ClientAuthenticator",
    "ClientCredentials",
    "ContextualAuthMethod",
    "auth_method",
    "read_credentials",
    "register_auth_method",
]
