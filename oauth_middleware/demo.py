"""The demo application: a page, a protected JSON API, a health check, and its users.

It also plays the part of a browser-based OAuth client, so that the whole
authorization code flow with PKCE can be tried by hand: ``/start`` makes a
PKCE pair, keeps the verifier in a cookie and sends the browser to the
authorization endpoint; ``/callback`` shows the code it got back and the
``curl`` command that exchanges it for tokens.

The users of the demo come from the app's ``users`` setting (user names and
PBKDF2 hashes); the filter's ``verify_password =
oauth_middleware.demo:verify_password`` checks passwords against them.
"""

from __future__ import annotations

import html
import secrets
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from webob import Request, Response

from .errors import ConfigError
from .models import AccessToken
from .pkce import s256
from .responses import json_response
from .secret_hash import check_pbkdf2, is_pbkdf2_hash, pbkdf2_hash

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
</pre>
<p>Or act as a user: <a id="start" href="{base}/start">start the authorization code flow</a>
(client <code>{client_id}</code>, PKCE), sign in as a demo user, approve, and exchange the
code shown on the callback page.</p>
</body></html>
"""

_CALLBACK = """<!doctype html><html><head><meta charset="utf-8"><title>demo callback</title></head>
<body><h1>Back from the authorization server</h1>{body}</body></html>
"""

#: PBKDF2-SHA256 iterations of hashes made by ``hash-password``.
HASH_ITERATIONS = 100_000
#: Compared against when the user is unknown, so timing does not reveal who exists.
_DUMMY_HASH = f"pbkdf2_sha256${HASH_ITERATIONS}${'0' * 32}${'0' * 64}"
#: user name -> password hash, from the demo app's ``users`` setting.
_USERS: dict[str, str] = {}


def hash_password(password: str, *, iterations: int = HASH_ITERATIONS, salt: str | None = None) -> str:
    """A ``pbkdf2_sha256$ITERATIONS$SALT$HASH`` string for the ``users`` setting."""
    return pbkdf2_hash(password, iterations=iterations, salt=salt)


def check_password_hash(stored: str, password: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant-time compare)."""
    return check_pbkdf2(stored, password)


def parse_users(value: str) -> dict[str, str]:
    """``name:HASH`` entries separated by spaces or new lines (the demo's ``users`` setting)."""
    users = {}
    for entry in value.split():
        name, _, stored = entry.partition(":")
        if not name or not is_pbkdf2_hash(stored):
            raise ConfigError(
                f"users: expected NAME:pbkdf2_sha256$ITERATIONS$SALT$HASH, got {entry[:40]!r} "
                "(make one with: python -m oauth_middleware.demo hash-password)"
            )
        users[name] = stored
    return users


def verify_password(username: str, password: str) -> str | None:
    """The ``verify_password`` callable of the demo: the user name, or None.

    Always runs one PBKDF2, even for an unknown user.
    """
    stored = _USERS.get(username)
    matches = check_password_hash(stored or _DUMMY_HASH, password)
    return username if stored is not None and matches else None


class DemoApp:
    """A tiny WSGI app that shows the token the guard injected."""

    #: The demo's settings (its ini section) and their defaults.
    SETTINGS: Mapping[str, str] = {"users": "", "client_id": "demo-web", "scope": "read"}

    def __init__(self, *, client_id: str = "demo-web", scope: str = "read") -> None:
        self.client_id = client_id
        self.scope = scope

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DemoApp:
        """Build the demo from its ini section.

        ``users`` (``name:HASH ...``) replaces the users ``verify_password``
        knows; ``client_id`` and ``scope`` are used by ``/start``.
        """
        for key in config:
            if key not in cls.SETTINGS:
                raise ConfigError(
                    f"{key}: unknown setting of the demo app (known: {', '.join(cls.SETTINGS)})"
                )
        values = {**cls.SETTINGS, **config}
        _USERS.clear()
        _USERS.update(parse_users(values["users"]))
        return cls(client_id=values["client_id"].strip(), scope=values["scope"].strip())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ, charset="utf-8")
        if request.path_info == "/health":
            response = json_response({"status": "ok"})
        elif request.path_info == "/api/me":
            response = self.me(environ)
        elif request.path_info == "/":
            base = html.escape(request.host_url)
            page = _HOME.format(
                base=base, token_url=f"{base}/oauth/token", client_id=html.escape(self.client_id)
            )
            response = Response(body=page.encode(), content_type="text/html", charset="utf-8")
        elif request.path_info == "/start":
            response = self.start(request)
        elif request.path_info == "/callback":
            response = self.callback(request)
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

    def start(self, request: Request) -> Response:
        """Begin the code flow as the demo client: PKCE pair, verifier in a cookie, redirect."""
        verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": f"{request.host_url}/callback",
            "scope": self.scope,
            "state": state,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        response = Response(status=303, location=f"{request.host_url}/oauth/authorize?{urlencode(params)}")
        response.set_cookie(
            "demo_pkce", f"{state}.{verifier}", path="/callback", max_age=600, httponly=True, samesite="lax"
        )
        return response

    def callback(self, request: Request) -> Response:
        """Show the code (or error) the authorization server sent back, and how to redeem it."""
        state, _, verifier = request.cookies.get("demo_pkce", "").partition(".")
        code, error = request.GET.get("code"), request.GET.get("error")
        if error or not code:
            body = f"<p>No code: <code id='error'>{html.escape(error or 'missing code')}</code></p>"
        elif not state or request.GET.get("state") != state:
            # Not started by /start in this browser (e.g. a hand-made URL): the
            # verifier is whoever made the challenge's business.
            body = (
                f"<p>Code: <code id='code'>{html.escape(code)}</code></p>"
                "<p>This browser did not start the flow at /start, so redeem the code "
                "with your own <code>code_verifier</code>.</p>"
            )
        else:
            body = self._redeem_help(request.host_url, code, verifier)
        page = _CALLBACK.format(body=body)
        response = Response(body=page.encode(), content_type="text/html", charset="utf-8")
        response.cache_control = "no-store"
        return response

    def _redeem_help(self, base: str, code: str, verifier: str) -> str:
        command = (
            f"curl -s {base}/oauth/token -d grant_type=authorization_code -d client_id={self.client_id} "
            f"-d redirect_uri={base}/callback -d code={code} -d code_verifier={verifier}"
        )
        return (
            f"<p>Code: <code id='code'>{html.escape(code)}</code></p>"
            f"<p>PKCE verifier: <code id='verifier'>{html.escape(verifier)}</code></p>"
            f"<p>Redeem it within ten minutes, once:</p><pre id='curl'>{html.escape(command)}</pre>"
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m oauth_middleware.demo hash-password [PASSWORD]``: a hash for ``users``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m oauth_middleware.demo", description="Tools for the demo app's users setting."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    hashing = commands.add_parser(
        "hash-password",
        help="print a PBKDF2 hash for a NAME:HASH entry of users",
        description="Print a PBKDF2-SHA256 hash for a NAME:HASH entry of the demo's users setting.",
    )
    hashing.add_argument("password", nargs="?", help="the password (default: ask for it without echo)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    password = args.password
    if password is None:
        import getpass

        password = getpass.getpass("password: ")
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
