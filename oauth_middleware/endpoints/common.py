"""Method and content checks shared by our endpoints."""

from __future__ import annotations

from webob import Request

from ..errors import InvalidRequest, MethodNotAllowed
from ..forms import form_items
from ..limits import check_lengths
from ..parsing import single_params

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
