"""Resource indicators (RFC 8707): the resources a token is for, checked at the token's request.

A client names the resources (the APIs) it wants a token for with one or
more ``resource`` parameters at the authorization, pushed-request and token
endpoints; the token is then restricted to them (its audience, a JWT's
``aud``), and a guard configured with its own ``resource_identifier``
refuses a token meant for another (see :mod:`oauth_middleware.audience`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .errors import InvalidTarget

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["MAX_RESOURCES", "ResourcePolicy", "known_resources", "resource_uri", "resource_uris"]

#: RFC 3986 §3.1: an absolute URI starts with its scheme.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S")
#: Visible ASCII only: a URI has no spaces or controls (RFC 3986 §2), and a
#: resource becomes a header value and a JWT claim.
_VISIBLE = re.compile(r"[\x21-\x7e]+")
#: Most ``resource`` parameters in one request.
MAX_RESOURCES = 10


def resource_uri(value: str) -> str:
    """Check one resource indicator: an absolute URI without a fragment (RFC 8707 §2).

    >>> resource_uri("https://api.example.com/mcp")
    'https://api.example.com/mcp'

    :raises ValueError: anything else (the settings' converters name the key).
    """
    # Its length is capped with every request parameter's (oauth_middleware.limits).
    if not _VISIBLE.fullmatch(value) or not _SCHEME.match(value) or "#" in value:
        raise ValueError(f"expected an absolute URI without a fragment, got {value[:100]!r}")
    return value


def resource_uris(values: Iterable[str]) -> tuple[str, ...]:
    """Several resource URIs, each checked by :func:`resource_uri`, duplicates dropped in order."""
    return tuple(dict.fromkeys(resource_uri(value) for value in values))


def known_resources(settings: Settings) -> tuple[str, ...]:
    """The resources this server knows by name: ``allowed_resources`` and the guard's own.

    The audiences of JWTs besides ``audience``, and the ``protected_resources``
    of the server metadata (RFC 9728 §4).
    """
    own = (settings.resource_identifier,) if settings.resource_identifier else ()
    return tuple(dict.fromkeys((*settings.allowed_resources, *own)))


class ResourcePolicy:
    """Which resources a client may ask a token for: the server's list, then the client's.

    :param allowed: the resources the server issues tokens for; empty: any absolute URI.

    Example::

        policy = ResourcePolicy.from_settings(settings)
        resources = policy.resolve(["https://api.example.com/mcp"], client.resources)
    """

    def __init__(self, allowed: tuple[str, ...]) -> None:
        self.allowed = frozenset(allowed)

    @classmethod
    def from_settings(cls, settings: Settings) -> ResourcePolicy:
        """``allowed_resources``; with JWTs, also ``audience`` and ``resource_identifier``, and nothing else.

        A JWT's ``aud`` is checked against what the server may issue for (the
        introspection endpoint and the guard read the same list), so a JWT server
        issues for no resource outside it, even with ``allowed_resources`` empty.
        """
        if settings.token_format == "jwt":
            return cls((*settings.audience, *known_resources(settings)))
        return cls(settings.allowed_resources)

    def resolve(self, values: Sequence[str], client_resources: tuple[str, ...]) -> tuple[str, ...]:
        """The checked resources of a request's ``resource`` parameters (none: an empty tuple).

        :param values: every ``resource`` value the request carried, in order.
        :param client_resources: the resources the client is registered for; empty: no limit
            of its own.
        :raises InvalidTarget: a malformed resource, too many, or one the server or the
            client does not allow (RFC 8707 §2).
        """
        if len(values) > MAX_RESOURCES:
            raise InvalidTarget(f"at most {MAX_RESOURCES} resource parameters")
        try:
            resources = resource_uris(values)
        except ValueError:
            raise InvalidTarget("resource must be an absolute URI without a fragment") from None
        for resource in resources:
            if (self.allowed and resource not in self.allowed) or (
                client_resources and resource not in client_resources
            ):
                raise InvalidTarget("the resource is unknown or not allowed for this client")
        return resources

    def narrow(
        self, values: Sequence[str], granted: tuple[str, ...], client_resources: tuple[str, ...]
    ) -> tuple[str, ...]:
        """The resources of a token asked for from a grant (a code, a refresh token, a device code).

        RFC 8707 §2.2: the grant's resources, or fewer of them. A grant made
        without any was not restricted: a token request may restrict its token
        to any resource the server and client allow. Either way the resources
        must still be allowed now (the settings or the registration may have changed).

        :param values: the token request's ``resource`` values.
        :param granted: the grant's resources.
        :param client_resources: the resources the client is registered for.
        :raises InvalidTarget: a resource the grant does not include, or no longer allowed.
        """
        resources = self.resolve(values or granted, client_resources)
        if values and granted and any(resource not in granted for resource in resources):
            raise InvalidTarget("the resource was not part of this grant")
        return resources
