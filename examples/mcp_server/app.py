"""A small MCP server (streamable HTTP, stateless, JSON responses) served under WSGI behind oauth-middleware.

The ``mcp`` package builds an ASGI (Starlette) application; ``a2wsgi`` runs
it under a WSGI server (waitress, gunicorn), inside the same pipeline as the
authorization server and the guard (``app.ini``). The guard has already
checked the token, its audience (``resource_identifier``) and its scope
before a request reaches the MCP server; a tool finds who called it in the
WSGI environ the guard filled in.

Needs ``pip install mcp a2wsgi`` (not dependencies of oauth-middleware).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from a2wsgi import ASGIMiddleware
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from oauth_middleware.demo import check_password_hash, hash_password, parse_users

#: The users who may sign in on the login page: name -> PBKDF2 hash (the ``users`` key of app.ini).
USERS: dict[str, str] = {}
#: Checked for an unknown user, so that a wrong name takes as long as a wrong password.
_UNKNOWN_USER = hash_password("no user has this password")


def verify_password(username: str, password: str) -> str | None:
    """The ``verify_password`` of app.ini: the user name when the password matches ``USERS``."""
    stored = USERS.get(username)
    matches = check_password_hash(stored or _UNKNOWN_USER, password)
    return username if stored is not None and matches else None


def build_server() -> MCPServer:
    """The MCP server and its tools."""
    server = MCPServer("notes", instructions="A tiny example server behind oauth-middleware.")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def whoami(ctx: Context) -> str:
        """The user the access token was issued for, as the guard found it."""
        request = ctx.request_context.request
        environ = getattr(request, "scope", {}).get("wsgi_environ", {})
        return str(environ.get("oauth2.user") or environ.get("oauth2.client_id") or "nobody")

    return server


def run_lifespan(app: Callable[..., Awaitable[None]], loop: asyncio.AbstractEventLoop) -> None:
    """Run the ASGI app's lifespan on ``loop`` for as long as the process lives.

    WSGI has no lifespan, and ``a2wsgi`` does not run it; the MCP session
    manager starts its task group there, so it is started here, once, and
    left running (the loop thread is a daemon).
    """
    started = threading.Event()

    async def receive() -> dict[str, Any]:
        if not started.is_set():
            return {"type": "lifespan.startup"}
        await asyncio.Event().wait()  # no shutdown: the process ends with the loop
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the MCP server did not start: {message.get('message', '')}")

    asyncio.run_coroutine_threadsafe(app({"type": "lifespan"}, receive, send), loop)
    if not started.wait(timeout=30):
        raise RuntimeError("the MCP server did not start within 30 seconds")


def make_app(global_conf: dict[str, Any], *, users: str = "", allowed_hosts: str = "") -> ASGIMiddleware:
    """``[app:main]`` of app.ini: the MCP server at ``/mcp`` as a WSGI application.

    :param users: ``name:HASH`` entries for the login page (``python -m
        oauth_middleware.demo hash-password`` makes a hash).
    :param allowed_hosts: ``Host`` values the MCP server answers (``host:port``,
        ``*`` for any port), against DNS rebinding; empty: loopback only.
    """
    USERS.clear()
    USERS.update(parse_users(users))
    hosts = allowed_hosts.split() or ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{host}" for host in hosts] + [f"https://{host}" for host in hosts],
    )
    # Stateless with JSON answers: every request stands alone, so any worker process may serve it.
    asgi = build_server().streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True, transport_security=security
    )
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="mcp-asgi", daemon=True).start()
    run_lifespan(asgi, loop)
    return ASGIMiddleware(asgi, loop=loop)
