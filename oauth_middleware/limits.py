"""Size limits on what our endpoints read: the body, and each parameter value.

The body is capped by the ``max_body_size`` setting before any endpoint
parses it: a declared ``Content-Length`` above the cap is refused unread,
and a body without one (chunked) is read only up to the cap. Parameter
values have fixed caps far above any legitimate value, so that nothing
oversized reaches a hash, a store key, a log line or a redirect.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sized
from typing import Any

from .errors import InvalidRequest, PayloadTooLarge

#: Longest value of a parameter not listed in :data:`MAX_LENGTHS`, in characters.
MAX_PARAM_LENGTH = 2048
#: Parameters with a cap of their own.
MAX_LENGTHS = {
    # RFC 7636 §4.1 and §4.2: 43 to 128 characters.
    "code_verifier": 128,
    "code_challenge": 128,
    # Tokens we did not mint ourselves may be JWTs of another issuer: room for those.
    "token": 4096,
    "refresh_token": 4096,
    "access_token": 4096,
    # A JWT authorization grant (RFC 7523 §2.1) and the tokens of a token exchange (RFC 8693 §2.1).
    "assertion": 4096,
    "subject_token": 4096,
    "actor_token": 4096,
}

#: Parameter names echoed in an error description as they are.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")


def max_length(name: str) -> int:
    """The longest value accepted for parameter ``name``."""
    return MAX_LENGTHS.get(name, MAX_PARAM_LENGTH)


def too_long(items: Iterable[tuple[str, Sized]]) -> str | None:
    """The name of the first parameter whose value is over its cap, or None."""
    for name, value in items:
        if len(value) > max_length(name):
            return name
    return None


def check_lengths(items: Iterable[tuple[str, Sized]]) -> None:
    """Refuse a request with an over-long parameter value.

    :raises InvalidRequest: naming the parameter (a name of other
        characters is not echoed).
    """
    name = too_long(items)
    if name is not None:
        shown = name if _PLAIN_NAME.fullmatch(name) else "a parameter"
        raise InvalidRequest(f"{shown} is too long")


def cap_body(environ: dict[str, Any], limit: int) -> None:
    """Make sure no more than ``limit`` bytes of body will ever be read.

    With a ``Content-Length``, it is checked and the body is left alone
    (WebOb reads exactly that many bytes, however many more were sent).
    Without one, a body the server marks as readable to its end
    (``wsgi.input_terminated``, i.e. chunked) is read here, at most
    ``limit + 1`` bytes, and put back with its length.

    :raises PayloadTooLarge: a body over ``limit``.
    :raises InvalidRequest: a ``Content-Length`` that is not a number.
    """
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if declared:
        if not declared.isdigit() or not declared.isascii():
            raise InvalidRequest("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
        return
    if not (environ.get("wsgi.input_terminated") or environ.get("webob.is_body_readable")):
        return  # PEP 3333: without a length the body must not be read
    stream = environ.get("wsgi.input")
    data = stream.read(limit + 1) if stream is not None else b""
    if len(data) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))
