"""What an endpoint, a grant and client authentication learn of a request, computed once at the edge.

The middleware builds one :class:`RequestContext` per request to our own
endpoints, after its checks (HTTPS, body size, method): the origin after the
trusted proxies, the full URL, the parsed form. The parts below read it
instead of re-deriving from the WSGI request what they need, so each is
computed once and a new consumer (a DPoP proof needs the method and URL)
finds it ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from webob import Request
from webob.headers import EnvironHeaders

from .errors import InvalidRequest
from .forms import endpoint_form_items
from .limits import check_lengths
from .parsing import single_params
from .proxies import Origin

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

_FORM = "application/x-www-form-urlencoded"


class RequestContext(NamedTuple):
    """One request to our endpoints, as values (immutable).

    :param method: the HTTP method.
    :param path: ``PATH_INFO`` as the server passed it, the path the request was routed by.
    :param origin: where it comes from, after ``trusted_proxies``.
    :param headers: its headers (names case-insensitive): ``Authorization``.
    :param form: the form parameters of an endpoint that reads a form body
        (each present once); empty for the others.
    :param environ: the WSGI environ, for the authorization endpoint's pages
        and cookies (until login and consent read values too).
    :param resources: the form's ``resource`` values (RFC 8707 §2), in order: the one
        parameter that may be repeated, so it is kept here rather than in ``form``.

    :attr:`url` is derived when asked (few requests need it). A named tuple
    rather than a frozen dataclass: it is built for every token request, and
    builds in half the time.

    Example::

        context = read_request(environ, origin, form=True)
        context.form["grant_type"]
    """

    method: str
    path: str
    origin: Origin
    headers: Mapping[str, str]
    form: Mapping[str, str]
    environ: WSGIEnvironment
    resources: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """The full request URL, with the scheme a trusted proxy reported (the edge set it)."""
        return str(Request(self.environ).url)


def read_request(environ: WSGIEnvironment, origin: Origin, *, form: bool) -> RequestContext:
    """The context of the request ``environ``, its form parsed when the endpoint reads one.

    :param origin: the request's origin (the middleware computed it for the HTTPS check).
    :param form: whether the endpoint reads a form-encoded body (POST).
    :raises InvalidRequest: with ``form``: not form-encoded, undecodable,
        repeated names or an over-long value (:mod:`oauth_middleware.limits`).
    """
    params, resources = form_params(environ) if form else (_EMPTY, ())
    return RequestContext(
        environ["REQUEST_METHOD"],
        environ.get("PATH_INFO", ""),
        origin,
        EnvironHeaders(environ),
        params,
        environ,
        resources,
    )


def form_params(environ: WSGIEnvironment) -> tuple[dict[str, str], tuple[str, ...]]:
    """The form parameters of a POST to one of our endpoints, each present once (the body is consumed),
    and the ``resource`` values, which may repeat (RFC 8707 §2; empty ones count as absent).

    :raises InvalidRequest: not form-encoded, undecodable, repeated names or an over-long value.
    """
    # The media type as WebOb's ``Request.content_type`` gives it: parameters (a charset) cut off.
    if environ.get("CONTENT_TYPE", "").split(";", 1)[0].lower() != _FORM:
        raise InvalidRequest(f"the body must be {_FORM}")
    items = endpoint_form_items(environ, InvalidRequest)
    check_lengths(items)
    resources = tuple(value for name, value in items if name == "resource" and value)
    return single_params(item for item in items if item[0] != "resource"), resources


#: The form of a request whose endpoint reads none; shared, never written.
_EMPTY: Mapping[str, str] = {}
