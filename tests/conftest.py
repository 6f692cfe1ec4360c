"""Shared fixtures: an in-process app factory, clients, and a real HTTP server."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import waitress.server
import webtest
from fake_clock import FakeClock
from waitress import wasyncore

from oauth_middleware.clients import build_client
from oauth_middleware.demo import DemoApp
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import Client, digest

#: The test plug-in package (tests/plugins) counts as installed for the whole session.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "plugins"))

SERVICE_ID = "service"
SERVICE_SECRET = "service-secret-0123456789"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_wsgi(app: Any, threads: int = 8, port: int = 0) -> Iterator[str]:
    """Serve ``app`` with waitress on a free loopback port (or ``port``) in a thread; yield the base URL.

    The server is stopped from inside its own loop (closing its sockets from
    another thread would race the loop's ``select``).
    """
    server = waitress.server.create_server(app, host="127.0.0.1", port=port, threads=threads)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:

        def stop() -> None:
            server.task_dispatcher.shutdown()
            wasyncore.close_all(server._map)

        server.trigger.pull_trigger(stop)
        thread.join(timeout=10)


def allow_body_secret(middleware: OAuth2Middleware, client_id: str) -> None:
    """Re-register a client for ``client_secret_post``: its secret in the form body, not in Basic."""
    repository = middleware.server.repository
    client = repository.get_client(client_id)
    assert client is not None
    repository.save_client(dataclasses.replace(client, token_endpoint_auth_method="client_secret_post"))


def register(middleware: OAuth2Middleware, client_id: str, secret: str | None, **fields: Any) -> Client:
    """Register a client directly in the middleware's store."""
    client = build_client(client_id, secret_hash=None if secret is None else digest(secret), **fields)
    middleware.server.repository.save_client(client)
    return client


@pytest.fixture
def make_middleware() -> Callable[..., OAuth2Middleware]:
    """Build the middleware around the demo app on a memory store, with a service client.

    Plain HTTP is allowed (``require_https = false``): tests talk to it in-process or
    over loopback HTTP; the tests of the HTTPS requirement switch it back on.
    """

    def make(app: Any = None, **settings: Any) -> OAuth2Middleware:
        settings.setdefault("store", "memory://")
        settings.setdefault("issuer", "http://localhost")  # WebTest's host
        settings.setdefault("require_https", "false")
        settings.setdefault("scopes", "read write admin")
        middleware = OAuth2Middleware(app or DemoApp(), **settings)
        register(
            middleware,
            SERVICE_ID,
            SERVICE_SECRET,
            grant_types=["client_credentials"],
            scopes=["read", "write"],
        )
        return middleware

    return make


@pytest.fixture
def middleware(make_middleware: Callable[..., OAuth2Middleware]) -> OAuth2Middleware:
    """The default middleware: memory store, demo app, one service client."""
    return make_middleware()


@pytest.fixture
def app(middleware: OAuth2Middleware) -> webtest.TestApp:
    """WebTest around :func:`middleware`."""
    return webtest.TestApp(middleware)


def issue_token(app: webtest.TestApp, scope: str = "read") -> str:
    """A client-credentials access token for the service client."""
    response = app.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": scope},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
    )
    return str(response.json["access_token"])


def basic(client_id: str, secret: str) -> str:
    """An ``Authorization: Basic`` value, form-encoding both parts (RFC 6749 §2.3.1)."""
    import base64
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture
def clock() -> FakeClock:
    """A clock to move by hand: pass it as ``clock=`` to the middleware (or a store's config)."""
    return FakeClock()
