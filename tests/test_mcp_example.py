"""The MCP example (``examples/mcp_server``) with the official MCP client, over real HTTP.

The client of the ``mcp`` package (its OAuth client provider, on httpx2)
meets the guard's 401, reads the protected resource metadata (RFC 9728) it
names, discovers the authorization server (RFC 8414), gets a code with PKCE
and ``resource`` (RFC 8707) by driving the login and consent pages as a
person would, and calls the tools; a token for another resource is refused.
Both on SQLite and on Redis.

How the client gets its ``client_id`` is a parameter (:data:`REGISTRATIONS`):
a client pre-registered in the example's ``clients.ini``, dynamic
registration (RFC 7591) at the ``registration_endpoint`` the metadata
advertises, or a client ID metadata document: the provider offers the https
URL of a document served by a loopback TLS server, whose certificate the
middleware's fetcher trusts (``SSL_CERT_FILE``) and whose address it is
allowed to reach (``fetch_allowed_networks``), both for the test only.
"""

from __future__ import annotations

import json
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
from test_fapi2 import https_server  # noqa: F401  (a loopback TLS server with its certificate)

from oauth_middleware.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mcp_server"
#: The port the example's files name; each test serves on a free one instead.
EXAMPLE_PORT = "127.0.0.1:8085"
#: Where the MCP client says it receives the code (a loopback URI: any port, RFC 8252 §7.3).
CALLBACK = "http://127.0.0.1:33418/callback"
#: The path of the MCP client's metadata document on the TLS server (the mcp client wants a path).
DOCUMENT_PATH = "/clients/mcp-test.json"
#: What the MCP client says about itself, when it registers and in its metadata document.
CLIENT_METADATA = {
    "client_name": "oauth-middleware MCP test",
    "redirect_uris": [CALLBACK],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


@dataclass
class Example:
    """The example served over HTTP: its base URL, files, loaded app and the user agent that signs in."""

    base: str
    directory: Path
    app: Any
    #: The https origin that serves the MCP client's metadata document.
    documents_base: str
    #: The paths the middleware fetched from it, in order.
    fetched: list[str]
    browser: requests.Session = field(default_factory=requests.Session)

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def document_url(self) -> str:
        """The MCP client's ``client_id`` as a client ID metadata document's URL."""
        return self.documents_base + DOCUMENT_PATH


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


REGISTRATIONS = [
    pytest.param(Registration(pre_registered), id="pre-registered"),
    pytest.param(Registration(lambda example: None), id="dynamic-registration"),
    pytest.param(
        Registration(lambda example: None, lambda example: example.document_url), id="metadata-document"
    ),
]


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
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    https_server: tuple[Any, str, str],  # noqa: F811
) -> Iterator[Example]:
    """The example's ini files, moved to a free port (and to Redis), loaded and served by waitress.

    Beside it, the https server of the MCP client's metadata document: the
    middleware trusts its certificate and may fetch from 127.0.0.1 (both
    for the test only; a real document is on a public https host).
    """
    documents, documents_base, certificate = https_server
    fetched: list[str] = []

    def serve_document(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        fetched.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] != DOCUMENT_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        body = json.dumps({"client_id": documents_base + DOCUMENT_PATH, **CLIENT_METADATA}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Cache-Control", "max-age=300")])
        return [body]

    documents.set_app(serve_document)
    port = free_port()
    for name in ("app.ini", "clients.ini"):
        text = (EXAMPLE / name).read_text().replace(EXAMPLE_PORT, f"127.0.0.1:{port}")
        if request.param == "redis":
            url = request.getfixturevalue("redis_server").url
            prefix = f"mcp-{uuid.uuid4().hex[:8]}:"
            text = text.replace(
                "store = sqlite:///%(here)s/oauth.db", f"store = {url}\nstore_prefix = {prefix}"
            )
        if name == "app.ini":
            text = text.replace("registration = open\n", "registration = open\n" + TEST_ONLY_SETTINGS)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(ROOT))  # what the working directory does for `oauth-middleware serve`
    # The fetcher trusts the system's CA store, read when the middleware is built.
    monkeypatch.setenv("SSL_CERT_FILE", certificate)
    app = loadapp(f"config:{tmp_path / 'app.ini'}")
    with serve_wsgi(app, port=port) as base:
        yield Example(base, tmp_path, app, documents_base, fetched)


#: Added to the example's settings by the tests: the metadata document is on 127.0.0.1.
TEST_ONLY_SETTINGS = "fetch_allowed_networks = 127.0.0.1/32\n"


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

    metadata = OAuthClientMetadata.model_validate(CLIENT_METADATA)
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
    # How the client got its client_id, and that it is the one the token was issued to.
    registrations = [r for r in seen if r.request.url.path == "/oauth/register"]
    stored, document_url = registration.stored(example), registration.client_metadata_url(example)
    if stored is not None:
        assert not registrations and not example.fetched
        expected = stored.client_id
    elif document_url is not None:
        # No registration: the server fetched the document the client_id names (once: it is cached).
        assert not registrations
        assert example.fetched == [DOCUMENT_PATH]
        expected = document_url
    else:
        assert [r.status_code for r in registrations] == [201]
        assert str(registrations[0].request.url) == f"{example.base}/oauth/register"
        expected = registrations[0].json()["client_id"]
        assert not example.fetched
    assert form["client_id"] == [expected]


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


#: The client authentication methods the server supports, and their assertions' algorithms
#: (test_header: the method of the test plug-in, installed for the session); no client_secret_jwt:
#: app.ini has no client_secret_key, without which no such client's secret could be checked.
METHODS = [
    "client_secret_basic",
    "client_secret_post",
    "none",
    "private_key_jwt",
    "test_header",
]
ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]


def test_the_example_advertises_exactly_what_it_enables(example: Example) -> None:
    base = example.base
    server = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
    # Field by field (RFC 8414 §2): app.ini's grants, scope, registration and metadata documents,
    # the resource of its guard; no device, implicit, DPoP or JWT member, since none is on.
    assert server == {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "pushed_authorization_request_endpoint": f"{base}/oauth/par",
        "registration_endpoint": f"{base}/oauth/register",
        "scopes_supported": ["mcp"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": METHODS,
        "revocation_endpoint_auth_methods_supported": METHODS,
        "introspection_endpoint_auth_methods_supported": [m for m in METHODS if m != "none"],
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "revocation_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "introspection_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "authorization_response_iss_parameter_supported": True,
        "protected_resources": [example.mcp_url],
        "client_id_metadata_document_supported": True,
        "code_challenge_methods_supported": ["S256"],
    }
    resource = requests.get(f"{base}/.well-known/oauth-protected-resource/mcp", timeout=10).json()
    # RFC 9728 §2: the guard's resource_identifier, this server, its scope, the token sources it reads.
    assert resource == {
        "resource": example.mcp_url,
        "authorization_servers": [base],
        "scopes_supported": ["mcp"],
        "bearer_methods_supported": ["header", "body"],
    }
    # The registration endpoint and the document support it advertises are really there.
    registered = requests.post(server["registration_endpoint"], json=CLIENT_METADATA, timeout=10)
    assert registered.status_code == 201, registered.text
    assert registered.json()["client_id"] and "client_secret" not in registered.json()
    params = {"response_type": "code", "client_id": example.document_url, "redirect_uri": CALLBACK}
    params |= {"scope": "mcp", "state": "s", "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    login = example.browser.get(f"{server['authorization_endpoint']}?" + requests.compat.urlencode(params))
    assert login.status_code == 200 and example.fetched == [DOCUMENT_PATH]
