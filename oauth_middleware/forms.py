"""Reading a form-encoded body, with one error for bad encodings."""

from __future__ import annotations

from urllib.parse import parse_qsl

from webob import Request

from .errors import OAuthError


def form_items(request: Request, error: type[OAuthError]) -> list[tuple[str, str]]:
    """The decoded ``(name, value)`` pairs of a form-encoded body, in order.

    Parsed with :func:`urllib.parse.parse_qsl` rather than WebOb's ``POST``,
    which builds a ``cgi.FieldStorage`` and was a third of a token request.
    ``request.body`` leaves the body readable for a wrapped app.

    :param request: a request whose body is ``application/x-www-form-urlencoded``.
    :param error: raised (with a description) when the body is not UTF-8 form data.
    """
    try:
        text = request.body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise error("the body is not valid UTF-8 form data") from None
