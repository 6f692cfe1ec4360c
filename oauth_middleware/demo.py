"""The demo application: a page, a protected JSON API and a health check."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from webob import Request, Response

from .errors import ConfigError
from .models import AccessToken
from .responses import json_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_HOME = """<!doctype html><html><head><meta charset="utf-8"><title>oauth-middleware demo</title></head>
<body><h1>oauth-middleware demo</h1>
<p>This app sits behind the oauth-middleware guard. <code>/health</code> and this page are public;
<code>/api/me</code> needs a bearer token and shows what the guard put in the WSGI environ.</p>
<p>Get a token with the client credentials grant, then call the API:</p>
<pre>
curl -s -u demo-service:demo-service-secret -d grant_type=client_credentials {token_url}
curl -s -H "Authorization: Bearer ACCESS_TOKEN" {base}/api/me
</pre></body></html>
"""


class DemoApp:
    """A tiny WSGI app that shows the token the guard injected."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DemoApp:
        """Build the demo from its ini section (it has no settings yet)."""
        for key in config:
            raise ConfigError(f"{key}: unknown setting of the demo app")
        return cls()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ, charset="utf-8")
        if request.path_info == "/health":
            response = json_response({"status": "ok"})
        elif request.path_info == "/api/me":
            response = self.me(environ)
        elif request.path_info == "/":
            base = html.escape(request.host_url)
            page = _HOME.format(base=base, token_url=f"{base}/oauth/token")
            response = Response(body=page.encode(), content_type="text/html", charset="utf-8")
        else:
            response = json_response({"error": "not_found"}, 404)
        return response(environ, start_response)

    @staticmethod
    def me(environ: WSGIEnvironment) -> Response:
        """JSON of the token data the guard injected."""
        token: AccessToken = environ["oauth2.token"]
        return json_response(
            {
                "user": environ["oauth2.user"],
                "client_id": environ["oauth2.client_id"],
                "scopes": list(environ["oauth2.scopes"]),
                "expires_at": token.expires_at,
                "extra": dict(token.extra),
            }
        )
