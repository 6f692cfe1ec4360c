"""Method and content checks shared by our endpoints, and the issuer URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webob import Request

from ..errors import InvalidRequest, MethodNotAllowed
from ..forms import form_items
from ..limits import check_lengths
from ..parsing import single_params

if TYPE_CHECKING:
    from ..server import AuthorizationServer

_FORM = "application/x-www-form-urlencoded"


def form_params(request: Request) -> dict[str, str]:
    """The form parameters of a POST, each present once.

    :raises MethodNotAllowed: not a POST.
    :raises InvalidRequest: not form-encoded, undecodable, repeated names
        or an over-long value (:mod:`oauth_middleware.limits`).
    """
    if request.method != "POST":
        raise MethodNotAllowed(("POST",))
    if request.content_type.lower() != _FORM:
        raise InvalidRequest(f"the body must be {_FORM}")
    items = form_items(request, InvalidRequest)
    check_lengths(items)
    return single_params(items)


def require_get(request: Request) -> None:
    """Refuse anything but GET and HEAD (the documents: metadata, JWKS).

    :raises MethodNotAllowed: another method.
    """
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(("GET", "HEAD"))


def issuer_url(server: AuthorizationServer, request: Request) -> str:
    """The ``issuer`` setting, else the URL the request came in on (scheme, host, script name)."""
    return server.settings.issuer or request.application_url.rstrip("/")
