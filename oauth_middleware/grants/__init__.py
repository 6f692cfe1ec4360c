"""Grant types, registered by ``grant_type``.

The token endpoint never names a grant: it looks the handler up in
:data:`GRANTS`, and the settings checks, client registration and the
metadata read the names, response types and refresh-token rule each grant
class declares. A new grant is one module and one registration, here or in
another package (entry-point group ``oauth_middleware.grants``)::

    from oauth_middleware.grants import GRANTS
    GRANTS.register(MagicGrant.grant_type, MagicGrant)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeGuard

from ..errors import ConfigError
from ..registry import Registry
from .authorization_code import AuthorizationCodeGrant
from .base import Grant, GrantBase, GrantContext, GrantType, TokenRequest, TokenResponse
from .client_credentials import ClientCredentialsGrant
from .device_code import DeviceCodeGrant
from .implicit import ImplicitGrant
from .jwt_bearer import JWTBearerGrant
from .password import PasswordGrant
from .refresh_token import RefreshTokenGrant
from .token_exchange import TokenExchangeGrant

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "GRANTS",
    "Grant",
    "GrantBase",
    "GrantContext",
    "GrantType",
    "TokenRequest",
    "TokenResponse",
    "grant_metadata",
    "grant_types_supported",
    "offered_response_types",
    "response_types",
    "token_grants",
]

#: grant_type -> the grant's class; entry points of ``oauth_middleware.grants`` add to it.
GRANTS: Registry[type[GrantType]] = Registry("grant type", "oauth_middleware.grants")
for _grant in (
    AuthorizationCodeGrant,
    ImplicitGrant,
    RefreshTokenGrant,
    ClientCredentialsGrant,
    PasswordGrant,
    DeviceCodeGrant,
    JWTBearerGrant,
    TokenExchangeGrant,
):
    GRANTS.register(_grant.grant_type, _grant)


def handles_token_requests(cls: type[GrantType]) -> TypeGuard[type[Grant]]:
    """Whether a grant type answers token requests (the implicit grant does not)."""
    return callable(getattr(cls, "token_response", None))


def response_types() -> dict[str, type[GrantType]]:
    """Every registered response type -> the grant type serving it."""
    types: dict[str, type[GrantType]] = {}
    for name in GRANTS.names():
        cls = _get(name)
        for response_type in cls.response_types:
            types.setdefault(response_type, cls)
    return types


def token_grants(settings: Settings) -> dict[str, type[Grant]]:
    """The handler classes the ``grants`` setting names, after checking every setting naming grants.

    :raises ConfigError: ``grants``, ``response_types`` or ``refresh_token_grants``
        names something no registered grant type declares.
    """
    handlers = {name: cls for name in GRANTS.names() if handles_token_requests(cls := _get(name))}
    enabled: dict[str, type[Grant]] = {}
    for name in settings.grants:
        if name not in handlers:
            raise ConfigError(f"grants: unknown grant type {name!r} (known: {', '.join(handlers)})")
        enabled[name] = handlers[name]
    known_types = response_types()
    for response_type in settings.response_types:
        if response_type not in known_types:
            known = ", ".join(known_types)
            raise ConfigError(f"response_types: unknown response type {response_type!r} (known: {known})")
    refreshing = [name for name in GRANTS.names() if _get(name).refresh_tokens]
    for name in settings.refresh_token_grants:
        if name not in refreshing:
            raise ConfigError(
                f"refresh_token_grants: {name!r} hands out no refresh tokens (those that do: "
                f"{', '.join(refreshing)})"
            )
    return enabled


def offered_response_types(settings: Settings) -> tuple[str, ...]:
    """The ``response_types`` offered: each one's grant answers no token requests or is enabled.

    ``code`` needs the ``authorization_code`` grant in ``grants``; ``token``
    (the implicit grant) needs nothing more.
    """
    types = response_types()
    return tuple(
        name
        for name in settings.response_types
        if name in types
        and (not handles_token_requests(types[name]) or types[name].grant_type in settings.grants)
    )


def grant_types_supported(settings: Settings) -> list[str]:
    """The ``grants`` enabled, then the grant types of offered response types (``implicit``)."""
    types = response_types()
    by_response = [types[name].grant_type for name in offered_response_types(settings)]
    return list(dict.fromkeys([*settings.grants, *by_response]))


def grant_metadata(settings: Settings) -> dict[str, Any]:
    """The metadata members (RFC 8414 §2) the supported grant types add."""
    document: dict[str, Any] = {}
    for name in grant_types_supported(settings):
        document.update(_get(name).metadata(settings))
    return document


def _get(name: str) -> type[GrantType]:
    cls = GRANTS.get(name)
    if cls is None:  # unregistered between names() and get(): a test's cleanup, never a request
        raise ConfigError(f"grants: grant type {name!r} is no longer registered")
    return cls
