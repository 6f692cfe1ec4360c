"""Grant handlers, registered by ``grant_type``.

The token endpoint never names a grant: it looks the handler up here, so a
new grant is one module and one line below.
"""

from __future__ import annotations

import importlib

from .base import Grant, TokenRequest

__all__ = ["REGISTRY", "Grant", "TokenRequest", "load_grant"]

#: grant_type -> "module:class" of its handler.
REGISTRY: dict[str, str] = {
    "authorization_code": "oauth_middleware.grants.authorization_code:AuthorizationCodeGrant",
    "refresh_token": "oauth_middleware.grants.refresh_token:RefreshTokenGrant",
    "password": "oauth_middleware.grants.password:PasswordGrant",
    "client_credentials": "oauth_middleware.grants.client_credentials:ClientCredentialsGrant",
}


def load_grant(grant_type: str) -> type[Grant]:
    """Import the handler class registered for ``grant_type``."""
    module_name, class_name = REGISTRY[grant_type].split(":")
    cls: type[Grant] = getattr(importlib.import_module(module_name), class_name)
    return cls
