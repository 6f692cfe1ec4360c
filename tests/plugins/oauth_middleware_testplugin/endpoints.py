"""A custom endpoint: ``GET /oauth/magic-info`` describes the magic grant."""

from __future__ import annotations

from oauth_middleware.endpoints import Endpoint, EndpointContext
from oauth_middleware.request_context import RequestContext
from oauth_middleware.responses import JSONReply, Reply


def magic_info(context: EndpointContext, request: RequestContext) -> Reply:
    """Which magic word works, and the issuer that says so."""
    return JSONReply({"magic_word": "please", "issuer": context.settings.issuer}, cache=True)


#: Registered by the tests through the Python API.
MAGIC_INFO = Endpoint(
    "magic-info", magic_info, ("GET", "HEAD"), path="/oauth/magic-info", metadata_name="magic_info_endpoint"
)

#: Registered through the entry point; credentials "travel" through it, so it is HTTPS only.
ENTRY_POINT_MAGIC_INFO = Endpoint(
    "magic-info-ep",
    magic_info,
    ("GET",),
    path="/oauth/magic-info-ep",
    credentials=True,
    metadata_name="magic_info_ep_endpoint",
)


def echo_context(context: EndpointContext, request: RequestContext) -> Reply:
    """What the edge computed of the request, sent back with a header and status of its own."""
    body = {
        "method": request.method,
        "url": request.url,
        "path": request.path,
        "address": str(request.origin.address),
        "scheme": request.origin.scheme,
        "form": dict(request.form),
        "authorization": request.headers.get("authorization"),
    }
    return JSONReply(body, (("Echo", "yes"),), status=201)


#: Registered by the tests through the Python API: it reads a form body.
ECHO_CONTEXT = Endpoint("echo-context", echo_context, ("POST",), form=True, path="/oauth/echo")
