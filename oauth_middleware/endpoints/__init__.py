"""Our own HTTP endpoints, one module each, registered by name in :data:`ENDPOINTS`.

The middleware routes, checks methods and requires HTTPS, and the metadata
advertises, from each :class:`Endpoint`'s declaration; nothing keeps a list
of paths of its own. Another package adds one through the entry-point group
``oauth_middleware.endpoints`` or :meth:`ENDPOINTS.register
<oauth_middleware.registry.Registry.register>`, and turns it on with the
``endpoints`` setting.
"""

from __future__ import annotations

from .applications import ENDPOINT as APPLICATIONS
from .authorize import ENDPOINT as AUTHORIZE
from .base import ENDPOINTS, Endpoint, EndpointContext, routes
from .device import ENDPOINT as DEVICE
from .device_authorization import ENDPOINT as DEVICE_AUTHORIZATION
from .introspect import ENDPOINT as INTROSPECT
from .jwks import ENDPOINT as JWKS
from .metadata import ENDPOINT as METADATA
from .par import ENDPOINT as PAR
from .register import CONFIGURATION_ENDPOINT as CLIENT_CONFIGURATION
from .register import ENDPOINT as REGISTRATION
from .revoke import ENDPOINT as REVOKE
from .token import ENDPOINT as TOKEN

__all__ = ["ENDPOINTS", "Endpoint", "EndpointContext", "routes"]

for _endpoint in (
    AUTHORIZE,
    TOKEN,
    REVOKE,
    INTROSPECT,
    METADATA,
    JWKS,
    PAR,
    DEVICE_AUTHORIZATION,
    DEVICE,
    REGISTRATION,
    CLIENT_CONFIGURATION,
    APPLICATIONS,
):
    ENDPOINTS.register(_endpoint.name, _endpoint)
