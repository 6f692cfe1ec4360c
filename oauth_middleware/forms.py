"""Reading a form-encoded body through WebOb, with one error for bad encodings."""

from __future__ import annotations

from webob import Request

from .errors import OAuthError


def form_items(request: Request, error: type[OAuthError]) -> list[tuple[str, str]]:
    """The decoded ``(name, value)`` pairs of a form-encoded body, in order.

    :param request: a request whose body is ``application/x-www-form-urlencoded``.
    :param error: raised (with a description) when the body is not UTF-8 form data.
    """
    try:
        # Only a urlencoded body reaches here, so every value is text, never an upload.
        return [(name, value) for name, value in request.POST.items() if isinstance(value, str)]
    except (UnicodeDecodeError, ValueError, DeprecationWarning):
        # WebOb raises DeprecationWarning for a form declared in a charset other than UTF-8.
        raise error("the body is not valid UTF-8 form data") from None
