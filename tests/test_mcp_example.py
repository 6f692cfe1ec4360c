"""The MCP example (``examples/mcp_server``) with the official MCP client, over real HTTP.

The client of the ``mcp`` package (its OAuth client provider, on httpx2)
meets the guard's 401, reads the protected resource metadata (RFC 9728) it
names, discovers the authorization server (RFC 8414), gets a code with PKCE
and ``resource`` (RFC 8707) by driving the login and consent pages as a
person would, and calls the tools; a token for another resource is refused.
Both on SQLite and on Redis.

How the client gets its ``client_id`` is a parameter (:data:`REGISTRATIONS`):
here a client pre-registered in the example's ``clients.ini``. Dynamic
registration (RFC 7591) and client ID metadata documents add a
:class:`Registration` each: storage that starts empty, and for the latter
the document URL the provider offers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
import requests
from conftest import free_port, serve_wsgi
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from mcp.shared.exceptions import MCPError
from oauth_flows import CHALLENGE, VERIFIER, browser_approve
from paste.deploy import loadapp
from servers import redis_server  # noqa: F401

from oauth_middleware.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mcp_server"
#: The port the example's files name; each test serves on a free one instead.
EXAMPLE_PORT = "127.0.0.1:8085"
#: Where the MCP client says it receives the code (a loopback URI: any port, RFC 8252 §7.3).
CALLBACK = "http://127.0.0.1:33418/callback"


@dataclass
class Example:
    """The example served over HTTP: its base URL, files, loaded app and the user agent that signs in."""

    base: str
    directory: Path
    app: Any
    browser: requests.Session = field(default_factory=requests.Session)

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"


@dataclass(frozen=True)
class Registration:
    """How the MCP client gets its ``client_id``.

    :param stored: the client information its storage holds at the start; None:
        it has none and must register (dynamic registration, or a metadata document).
    :param client_metadata_url: the URL of its client ID metadata document, if it offers one.
    """

    stored: Callable[[Example], OAuthClientInformationFull | None]
    client_metadata_url: Callable[[Example], str | None] = lambda example: None


def pre_registered(example: Example) -> OAuthClientInformationFull:
    """The public client of the example's ``clients.ini``, as the provider's storage returns it."""
    return OAuthClientInformationFull(
        client_id="mcp-desktop",
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )


#: Extend with dynamic registration (``Registration(lambda example: None)``) and client
#: ID metadata documents once the authorization server offers them.
REGISTRATIONS = [pytest.param(Registration(pre_registered), id="pre-registered")]


class MemoryStorage:
    """The provider's token storage (its ``TokenStorage``), in memory."""

    def __init__(self, client_info: OAuthClientInformationFull | None) -> None:
        self.client_info = client_info
        self.tokens: OAuthToken | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@pytest.fixture(params=["sqlite", "redis"])
def example(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Example]:
    """The example's ini files, moved to a free port (and to Redis), loaded and served by waitress."""
    port = free_port()
    for name in ("app.ini", "clients.ini"):
        text = (EXAMPLE / name).read_text().replace(EXAMPLE_PORT, f"127.0.0.1:{port}")
        if request.param == "redis":
            url = request.getfixturevalue("redis_server").url
            prefix = f"mcp-{uuid.uuid4().hex[:8]}:"
            text = text.replace(
                "store = sqlite:///%(here)s/oauth.db", f"store = {url}\nstore_prefix = {prefix}"
            )
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(ROOT))  # what the working directory does for `oauth-middleware serve`
    app = loadapp(f"config:{tmp_path / 'app.ini'}")
    with serve_wsgi(app, port=port) as base:
        yield Example(base, tmp_path, app)


def provider_for(example: Example, registration: Registration) -> OAuthClientProvider:
    """The MCP client's OAuth provider; its redirect and callback handlers play the user in a browser."""
    authorization_urls: list[str] = []

    async def redirect_handler(authorization_url: str) -> None:
        authorization_urls.append(authorization_url)

    async def callback_handler() -> AuthorizationCodeResult:
        location = await anyio.to_thread.run_sync(browser_approve, example.browser, authorization_urls[-1])
        answer = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
        assert location.startswith(CALLBACK), location
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))

    metadata = OAuthClientMetadata(
        client_name="oauth-middleware MCP test",
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(
        server_url=example.mcp_url,
        client_metadata=metadata,
        storage=MemoryStorage(registration.stored(example)),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=registration.client_metadata_url(example),
    )


async def call_tools(
    example: Example,
    auth: httpx2.Auth | None,
    traffic: list[httpx2.Response],
    headers: dict[str, str] | None = None,
) -> list[Any]:
    """Connect with the official client and call both tools; what each answered (structured).

    :param traffic: every HTTP response the client got, in order, is appended to it.
    """

    async def keep(response: httpx2.Response) -> None:
        traffic.append(response)

    hooks = {"response": [keep]}
    async with (
        httpx2.AsyncClient(auth=auth, headers=headers, event_hooks=hooks) as http,
        Client(streamable_http_client(example.mcp_url, http_client=http)) as client,
    ):
        added = await client.call_tool("add", {"a": 2, "b": 3})
        who = await client.call_tool("whoami", {})
    return [added.structured_content, who.structured_content]


@pytest.mark.parametrize("registration", REGISTRATIONS)
def test_the_mcp_client_discovers_logs_in_and_calls_a_tool(
    example: Example, registration: Registration
) -> None:
    seen: list[httpx2.Response] = []
    added, who = anyio.run(call_tools, example, provider_for(example, registration), seen)
    assert added == {"result": 5}
    assert who == {"result": "alice"}
    # The chain the MCP authorization profile asks for, as it went over the wire.
    first = seen[0]
    assert first.status_code == 401
    metadata_url = f"{example.base}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{metadata_url}"' in first.headers["WWW-Authenticate"]
    urls = [str(response.request.url) for response in seen]
    assert metadata_url in urls
    assert f"{example.base}/.well-known/oauth-authorization-server" in urls
    token_requests = [r.request for r in seen if r.request.url.path == "/oauth/token"]
    assert token_requests, urls
    form = parse_qs(token_requests[0].content.decode())
    assert form["resource"] == [example.mcp_url]
    assert "code_verifier" in form
    # Every later MCP request carried the token and was answered.
    assert all(r.status_code == 200 for r in seen if r.request.url.path == "/mcp" and r is not first)


def test_a_token_for_another_resource_is_refused(example: Example) -> None:
    other = f"{example.base}/other"
    ini = str(example.directory / "app.ini")
    argv = ["client", "add", ini, "--client-id", "other-app", "--public", "--redirect-uri", CALLBACK]
    assert main([*argv, "--grant", "authorization_code", "--scope", "mcp", "--resource", other]) == 0
    params = {
        "response_type": "code",
        "client_id": "other-app",
        "redirect_uri": CALLBACK,
        "scope": "mcp",
        "state": "s",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "resource": other,
    }
    authorize = f"{example.base}/oauth/authorize?" + requests.compat.urlencode(params)
    code = parse_qs(urlsplit(browser_approve(example.browser, authorize)).query)["code"][0]
    body = {"grant_type": "authorization_code", "code": code, "client_id": "other-app"}
    body |= {"redirect_uri": CALLBACK, "code_verifier": VERIFIER, "resource": other}
    token = requests.post(f"{example.base}/oauth/token", data=body, timeout=10).json()["access_token"]
    # A valid token of this server, with the right scope, but for another resource (RFC 8707).
    assert example.app.server.tokens.verify(token).audience == (other,)
    answer = requests.post(example.mcp_url, json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert "resource_metadata=" in answer.headers["WWW-Authenticate"]
    # The official client, handed that token, gets no tool call through either.
    seen: list[httpx2.Response] = []
    with pytest.raises(BaseException) as raised:  # an exception group (anyio task groups)
        anyio.run(call_tools, example, None, seen, {"Authorization": f"Bearer {token}"})
    assert raised.group_contains(MCPError)
    assert seen
    assert all(response.status_code == 401 for response in seen)
    # And the MCP client registered for /mcp only cannot ask for the other resource.
    params |= {"client_id": "mcp-desktop", "resource": other}
    refused = example.browser.get(
        f"{example.base}/oauth/authorize?" + requests.compat.urlencode(params), allow_redirects=False
    )
    assert refused.status_code == 302
    assert parse_qs(urlsplit(refused.headers["Location"]).query)["error"] == ["invalid_target"]
