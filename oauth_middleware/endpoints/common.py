"""Method and content checks shared by our POST endpoints."""

from __future__ import annotations

from webob import Request

from ..errors import InvalidRequest, MethodNotAllowed
from ..parsing import single_params

_FORM = "application/x-www-form-urlencoded"


def form_params(request: Request) -> dict[str, str]:
    """The form parameters of a POST, each present once.

    :raises MethodNotAllowed: not a POST.
    :raises InvalidRequest: not form-encoded, undecodable or repeated names.
    """
    if request.method != "POST":
        raise MethodNotAllowed(("POST",))
    if request.content_type.lower() != _FORM:
        raise InvalidRequest(f"the body must be {_FORM}")
    try:
        items = list(request.POST.items())
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the body is not valid UTF-8 form data") from None
    return single_params(items)
