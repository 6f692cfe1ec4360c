"""Content checks shared by our endpoints (the middleware checks their methods)."""

from __future__ import annotations

from webob import Request

from ..errors import InvalidRequest
from ..forms import form_items
from ..limits import check_lengths
from ..parsing import single_params

_FORM = "application/x-www-form-urlencoded"


def form_params(request: Request) -> dict[str, str]:
    """The form parameters of a POST (the endpoint's declared method), each present once.

    :raises InvalidRequest: not form-encoded, undecodable, repeated names
        or an over-long value (:mod:`oauth_middleware.limits`).
    """
    if request.content_type.lower() != _FORM:
        raise InvalidRequest(f"the body must be {_FORM}")
    items = form_items(request, InvalidRequest)
    check_lengths(items)
    return single_params(items)
