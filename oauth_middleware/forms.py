"""Reading a form-encoded body: whole for our endpoints, bounded for the guard."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from webob import Request

from .errors import OAuthError
from .limits import cap_body

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


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


def endpoint_form_items(environ: WSGIEnvironment, error: type[OAuthError]) -> list[tuple[str, str]]:
    """:func:`form_items` of a request to one of our endpoints, whose body no app reads after us.

    The body is read once, straight from the stream: WebOb's ``body`` copies
    it to leave it readable, a twentieth of a token request. The edge has
    already capped it (:func:`~oauth_middleware.limits.cap_body`), so
    ``CONTENT_LENGTH`` is a number within ``max_body_size`` or absent (no body).

    :param environ: the WSGI environ; its body is consumed.
    :param error: raised when the body is not UTF-8 form data or is cut short.
    """
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data: bytes = environ["wsgi.input"].read(length) if length else b""
    if len(data) < length:
        raise error("the body is shorter than its Content-Length")
    try:
        return _parse_form(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise error("the body is not valid UTF-8 form data") from None


def _parse_form(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True, errors="strict")``, a third of its time when
    nothing is escaped (no ``%``, no ``+``: a token request's usual body).

    Then decoding changes nothing, so splitting is all ``parse_qsl`` does: on
    ``&``, empty fields skipped, a field without ``=`` a name with an empty value.
    """
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    items = []
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            items.append((name, value))
    return items


def small_body(environ: WSGIEnvironment, limit: int) -> bytes | None:
    """The request body if it has at most ``limit`` bytes, left readable for the app; else None.

    A declared ``Content-Length`` over ``limit`` (or not a number) leaves the
    body unread. A body without one is read only when the server marks it
    readable to its end (chunked), and then at most ``limit + 1`` bytes: past
    ``limit`` it is consumed, so the caller must refuse the request.

    :param environ: the WSGI environ; its ``wsgi.input`` is replaced by a copy.
    :param limit: the most bytes read (the ``max_body_size`` setting).
    """
    try:
        cap_body(environ, limit)
    except OAuthError:
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length:
        return b""
    data: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(data)
    return data
