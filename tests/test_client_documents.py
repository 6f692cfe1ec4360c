"""Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document), through HTTP.

The documents are served by a real loopback server, which the middleware
may reach only because the tests allow loopback (``fetch_allowed_networks``).
Every refusal is a row; caching is checked with a clock the test moves; a
metadata-document client runs the code flow (PKCE required, no secret) in
process and end to end with requests-oauth2client.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
import requests_oauth2client
import webtest
from conftest import basic, register, serve_wsgi
from oauth_flows import CHALLENGE, VERIFIER, approve, browser_approve, location_params, serve

from oauth_middleware.client_auth import JWT_BEARER

REDIRECT = "http://127.0.0.1/callback"


class DocumentHost:
    """Serves documents by path; each path's answer can be changed; counts fetches per path."""

    def __init__(self) -> None:
        self.base = ""
        self.answers: dict[str, dict[str, Any]] = {}
        self.hits: dict[str, int] = {}

    def publish(self, path: str, document: Any = None, **answer: Any) -> str:
        """Serve ``document`` (JSON) at ``path``; ``answer`` overrides status, headers, body, delay."""
        body = answer.pop("body", None)
        self.answers[path] = {
            "status": "200 OK",
            "headers": [("Content-Type", "application/json")],
            "body": body if body is not None else json.dumps(document).encode(),
            "delay": 0.0,
            **answer,
        }
        return self.base + path

    def client(self, path: str = "/client.json", **members: Any) -> str:
        """Publish a valid document of a public client at ``path``, with ``members`` changed (None drops one)."""
        url = self.base + path
        document = {
            "client_id": url,
            "client_name": "Doc Client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "read write",
            **members,
        }
        return self.publish(path, {k: v for k, v in document.items() if v is not None})

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        self.hits[path] = self.hits.get(path, 0) + 1
        answer = self.answers.get(path)
        if answer is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"no such document"]
        time.sleep(answer["delay"])
        start_response(answer["status"], list(answer["headers"]))
        return [answer["body"]]


@pytest.fixture
def host() -> Iterator[DocumentHost]:
    documents = DocumentHost()
    with serve_wsgi(documents) as url:
        documents.base = url
        yield documents


@pytest.fixture
def make_app(make_middleware, clock):
    def make(**settings: Any) -> webtest.TestApp:
        settings.setdefault("client_id_metadata_documents", "true")
        settings.setdefault("fetch_allowed_networks", "127.0.0.1")
        settings.setdefault("verify_password", "oauth_flows:verify_password")
        settings.setdefault("scopes", "read write")
        settings.setdefault("jwks_timeout", "1")
        return webtest.TestApp(make_middleware(clock=clock, **settings))

    return make


@pytest.fixture
def app(make_app):
    return make_app()


def authorize_params(client_id: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "read",
        "state": "s1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def refused_page(app: webtest.TestApp, client_id: str) -> str:
    page = app.get("/oauth/authorize", authorize_params(client_id), status=400)
    assert "<code>invalid_client</code>" in page.text
    return page.text


@pytest.mark.parametrize("enabled", [True, False])
def test_support_is_advertised_only_when_on(make_app, host, enabled):
    app = make_app(client_id_metadata_documents=str(enabled).lower())
    metadata = app.get("/.well-known/oauth-authorization-server").json
    assert metadata.get("client_id_metadata_document_supported") is (True if enabled else None)
    url = host.client()
    if not enabled:
        page = app.get("/oauth/authorize", authorize_params(url), status=400)
        assert "unknown client_id" in page.text
        assert host.hits == {}  # off: nothing is fetched


def test_a_document_client_gets_a_code_and_a_token_as_a_public_client(app, host):
    url = host.client()
    code = location_params(approve(app, authorize_params(url)))["code"]
    token = app.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": url,
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
        },
    ).json
    assert token["scope"] == "read"
    refreshed = app.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": url},
    ).json
    assert refreshed["access_token"] != token["access_token"]
    # It has no secret: a secret sent as Basic is refused, whatever it is.
    app.post(
        "/oauth/token",
        {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
        headers={"Authorization": basic(url, "guess")},
        status=401,
    )


def test_pkce_is_required_of_a_document_client(app, host):
    url = host.client()
    answer = app.get(
        "/oauth/authorize", authorize_params(url, code_challenge=None, code_challenge_method=None)
    )
    params = location_params(answer.headers["Location"])
    assert params["error"] == "invalid_request" and "PKCE" in params["error_description"]


def test_the_redirect_uri_must_be_in_the_document(app, host):
    url = host.client()
    page = app.get(
        "/oauth/authorize", authorize_params(url, redirect_uri="https://evil.example/cb"), status=400
    )
    assert "redirect_uri is not registered" in page.text


def test_scopes_outside_those_offered_are_dropped(make_app, host):
    app = make_app(scopes="read write admin", registration_scopes="read write")
    url = host.client(scope="read admin bogus")
    answer = app.get("/oauth/authorize", authorize_params(url, scope="write"))
    assert location_params(answer.headers["Location"])["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("publish", "reason"),
    [
        pytest.param(
            {"client_id": "https://other.example/client.json"}, "client_id is not the URL", id="mismatch"
        ),
        pytest.param({"client_id": None}, "client_id is not the URL", id="no-client-id"),
        pytest.param({"client_secret": "s3cret"}, "client_secret", id="secret"),
        pytest.param(
            {"token_endpoint_auth_method": "client_secret_basic"}, "none or private_key_jwt", id="method"
        ),
        pytest.param({"redirect_uris": None}, "no redirect_uris", id="no-redirect-uris"),
        pytest.param({"redirect_uris": ["http://evil.example/cb"]}, "loopback", id="bad-redirect-uri"),
        pytest.param({"grant_types": ["client_credentials"]}, "grant_types", id="grant"),
        pytest.param({"software_statement": "e.y.j"}, "software statement", id="software-statement"),
        pytest.param({"token_endpoint_auth_method": "private_key_jwt"}, "jwks", id="keys-missing"),
    ],
)
def test_documents_that_are_refused(app, host, publish, reason):
    url = host.client(**publish)
    assert reason in refused_page(app, url)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param({"body": b'{"x": "' + b"y" * 20000 + b'"}'}, "larger than", id="too-large"),
        pytest.param({"delay": 1.5, "body": b"{}"}, "timed out", id="slow"),
        pytest.param(
            {"status": "302 Found", "headers": [("Location", "https://example.com/c.json")], "body": b""},
            "HTTP 302",
            id="redirect",
        ),
        pytest.param({"status": "500 Internal Server Error", "body": b"{}"}, "HTTP 500", id="error-status"),
        pytest.param({"body": b"not json"}, "not JSON", id="non-json"),
        pytest.param(
            {"headers": [("Content-Type", "text/plain")], "body": b"{}"}, "not JSON", id="non-json-type"
        ),
        pytest.param({"body": b"[1, 2]"}, "client_id is not the URL", id="not-an-object"),
    ],
)
def test_answers_that_are_refused(app, host, answer, reason):
    url = host.publish("/client.json", **answer)
    assert reason in refused_page(app, url)


def test_a_private_address_is_refused_unless_allowed(make_app, host):
    app = make_app(fetch_allowed_networks="")
    url = host.client()
    assert "special-use address" in refused_page(app, url)
    assert host.hits == {}


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param("https://app.example", id="no-path"),
        pytest.param("https://app.example/a/../client.json", id="dot-segment"),
        pytest.param("https://user@app.example/client.json", id="user-info"),
        pytest.param("ftp://app.example/client.json", id="scheme"),
    ],
)
def test_client_ids_that_are_not_document_urls_are_unknown(app, client_id):
    page = app.get("/oauth/authorize", authorize_params(client_id), status=400)
    assert "unknown client_id" in page.text


def test_an_unusable_document_is_an_unknown_client_at_the_token_endpoint(app, host):
    url = host.client(client_id="https://other.example/c.json")
    response = app.post(
        "/oauth/token", {"grant_type": "refresh_token", "refresh_token": "x", "client_id": url}, status=401
    )
    assert response.json["error"] == "invalid_client"


def test_a_registered_client_with_a_url_id_wins(make_middleware, app, host):
    url = host.client()
    register(
        app.app, url, None, redirect_uris=["http://127.0.0.1/registered"], grant_types=["authorization_code"]
    )
    page = app.get("/oauth/authorize", authorize_params(url), status=400)
    assert "redirect_uri is not registered" in page.text  # the registration's, not the document's
    assert host.hits == {}


# -- caching ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "kept", "refetched"),
    [
        pytest.param("max-age=300", 299, 301, id="max-age"),
        pytest.param(None, 59, 61, id="absent-60s"),
        pytest.param("no-store", 59, 61, id="no-store-60s"),
        pytest.param("max-age=999999", 3599, 3601, id="bounded-by-max-age"),
    ],
)
def test_documents_are_cached_as_their_headers_say_within_bounds(
    app, host, clock, cache_control, kept, refetched
):
    url = host.client()
    if cache_control:
        host.answers["/client.json"]["headers"].append(("Cache-Control", cache_control))
    app.get("/oauth/authorize", authorize_params(url))
    clock.advance(kept)
    app.get("/oauth/authorize", authorize_params(url))
    assert host.hits["/client.json"] == 1
    clock.advance(refetched - kept)
    app.get("/oauth/authorize", authorize_params(url))
    assert host.hits["/client.json"] == 2


def test_a_changed_document_takes_effect_when_the_cached_one_expires(app, host, clock):
    url = host.client()
    app.get("/oauth/authorize", authorize_params(url))
    host.client(redirect_uris=["http://127.0.0.1/moved"])
    app.get("/oauth/authorize", authorize_params(url))  # still the cached document
    clock.advance(61)
    page = app.get("/oauth/authorize", authorize_params(url), status=400)
    assert "redirect_uri is not registered" in page.text


def test_failures_are_cached_briefly(app, host, clock):
    url = host.client(client_id="https://other.example/c.json")
    refused_page(app, url)
    refused_page(app, url)
    assert host.hits["/client.json"] == 1  # a flood of requests is not a flood of fetches
    host.client()
    clock.advance(11)
    app.get("/oauth/authorize", authorize_params(url))
    assert host.hits["/client.json"] == 2


# -- a document client with keys: private_key_jwt -----------------------------------


def test_a_document_client_with_a_jwks_uri_authenticates_with_private_key_jwt(app, host, clock):
    from test_client_assertions import JWK, KEY

    host.publish("/jwks.json", {"keys": [JWK]})
    url = host.client(token_endpoint_auth_method="private_key_jwt", jwks_uri=host.base + "/jwks.json")
    code = location_params(approve(app, authorize_params(url)))["code"]
    now = int(clock.time())  # the server's clock, which the assertion must not be ahead of
    assertion = jwt.encode(
        {
            "iss": url,
            "sub": url,
            "aud": "http://localhost",
            "exp": now + 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
        },
        KEY,
        algorithm="ES256",
        headers={"kid": "k1"},
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    assert app.post("/oauth/token", form).json["token_type"] == "Bearer"


# -- end to end over HTTP with requests-oauth2client ------------------------------------


def test_code_flow_end_to_end_with_a_document_client(make_middleware, host):
    built: dict[str, Any] = {}

    def wsgi(environ, start_response):
        return built["middleware"](environ, start_response)

    with serve(wsgi) as base:
        built["middleware"] = make_middleware(
            issuer=base,
            client_id_metadata_documents="true",
            fetch_allowed_networks="127.0.0.1",
            verify_password="oauth_flows:verify_password",
            scopes="read write",
        )
        assert requests.get(f"{base}/.well-known/oauth-authorization-server").json()[
            "client_id_metadata_document_supported"
        ]
        url = host.client()
        client = requests_oauth2client.OAuth2Client.from_discovery_endpoint(
            f"{base}/.well-known/oauth-authorization-server",
            issuer=base,
            auth=requests_oauth2client.PublicApp(url),
            redirect_uri="http://127.0.0.1:50123/callback",  # any loopback port (RFC 8252 §7.3)
            testing=True,
        )
        authorization = client.authorization_request(scope="read")
        with requests.Session() as browser:
            location = browser_approve(browser, str(authorization.uri))
        token = client.authorization_code(authorization.validate_callback(location))
        headers = {"Authorization": f"Bearer {token.access_token}"}
        assert requests.get(f"{base}/api/me", headers=headers).status_code == 200
        assert host.hits["/client.json"] == 1  # the authorization and token requests shared one fetch
