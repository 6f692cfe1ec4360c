"""Dynamic client registration (RFC 7591) and its management (RFC 7592), through HTTP.

Every error of RFC 7591 §3.2.2 is a row of one table; management is
checked with the client's own registration access token and with another
client's; the code flow runs end to end over real HTTP with
requests-oauth2client, with a confidential and a public registered client.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
import requests
import requests_oauth2client
import webtest
from conftest import basic
from oauth_flows import browser_approve, serve
from servers import shared_redis

from oauth_middleware.errors import ConfigError, InvalidRedirectUri
from oauth_middleware.repository import Repository
from oauth_middleware.stores import StoreConfig, open_store

REGISTER = "/oauth/register"
NATIVE = {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "scope": "read"}
WEB = {"redirect_uris": ["https://app.example/cb"], "grant_types": ["authorization_code", "refresh_token"]}
SERVICE = {"grant_types": ["client_credentials"], "scope": "read write"}
INITIAL_TOKEN = "initial-access-token-0123456789"
JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}


def policy(metadata: dict[str, Any], request: Any) -> dict[str, Any] | None:
    """The registration policy of the tests: refuses one name, narrows scopes, forbids one host."""
    if metadata.get("client_name") == "evil":
        return None
    if any("blocked.example" in uri for uri in metadata.get("redirect_uris", [])):
        raise InvalidRedirectUri("this host may not register")
    assert request.path_info in (REGISTER, "/oauth/register/client")
    return {**metadata, "scope": "read"}


@pytest.fixture
def make_app(make_middleware):
    def make(**settings: Any) -> webtest.TestApp:
        settings.setdefault("registration", "open")
        settings.setdefault("scopes", "read write admin")
        settings.setdefault("registration_scopes", "read write")
        settings.setdefault("grants", "authorization_code refresh_token client_credentials")
        return webtest.TestApp(make_middleware(**settings))

    return make


@pytest.fixture
def app(make_app):
    return make_app()


def register(app: webtest.TestApp, metadata: dict[str, Any], status: int = 201, **kwargs: Any) -> Any:
    return app.post_json(REGISTER, metadata, status=status, **kwargs)


def configuration_path(body: dict[str, Any]) -> str:
    return body["registration_client_uri"].removeprefix("http://localhost")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- advertising and registering --------------------------------------------


@pytest.mark.parametrize("mode", ["off", "open", "initial-access-token"])
def test_registration_endpoint_is_advertised_and_served_only_when_on(make_app, mode):
    app = make_app(
        registration=mode, initial_access_tokens=hashlib.sha256(INITIAL_TOKEN.encode()).hexdigest()
    )
    metadata = app.get("/.well-known/oauth-authorization-server").json
    if mode == "off":
        assert "registration_endpoint" not in metadata
        # The paths are the app's then: the guard asks for a token.
        assert app.post_json(REGISTER, NATIVE, status=401).headers["WWW-Authenticate"].startswith("Bearer")
    else:
        assert metadata["registration_endpoint"] == "http://localhost/oauth/register"


def test_a_confidential_registration_answers_rfc_7591_client_information(app):
    response = register(app, {**SERVICE, "client_name": "Reports", "application_type": "web", "x-unknown": 1})
    body = response.json
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type == "application/json"
    assert set(body) == {
        "client_id",
        "client_secret",
        "client_id_issued_at",
        "client_secret_expires_at",
        "registration_access_token",
        "registration_client_uri",
        "redirect_uris",
        "grant_types",
        "response_types",
        "token_endpoint_auth_method",
        "scope",
        "client_name",
    }  # members it does not know (application_type, x-unknown) are ignored (RFC 7591 §2)
    assert body["token_endpoint_auth_method"] == "client_secret_basic"  # the RFC 7591 §2 default
    assert body["client_secret_expires_at"] == 0
    assert body["response_types"] == [] and body["grant_types"] == ["client_credentials"]
    assert not body["client_id"].startswith("https://")
    assert body["registration_client_uri"].startswith("http://localhost/oauth/register/client?client_id=")
    token = app.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": "read"},
        headers={"Authorization": _basic(body)},
    ).json
    assert token["token_type"] == "Bearer"


def _basic(body: dict[str, Any]) -> str:
    return basic(body["client_id"], body["client_secret"])


@pytest.mark.parametrize(
    ("metadata", "method"),
    [
        pytest.param(NATIVE, "none", id="public"),
        pytest.param({**SERVICE, "jwks": {"keys": [JWK]}}, "private_key_jwt", id="private-key-jwt"),
    ],
)
def test_a_client_without_a_secret_method_gets_no_secret(app, metadata, method):
    body = register(app, metadata).json
    assert body["token_endpoint_auth_method"] == method
    assert "client_secret" not in body and "client_secret_expires_at" not in body


def test_secrets_and_registration_access_tokens_are_stored_hashed(make_middleware):
    middleware = make_middleware(registration="open", scopes="read")
    body = register(webtest.TestApp(middleware), {**SERVICE, "scope": "read"}).json
    repository = middleware.server.repository
    stored = json.dumps(
        [
            repository.client_store.get(f"client:{body['client_id']}"),
            repository.find_registration(body["client_id"]),
        ],
        default=str,
    )
    assert body["client_secret"] not in stored
    assert body["registration_access_token"] not in stored
    assert (
        repository.find_registration(body["client_id"]).token_hash
        == hashlib.sha256(body["registration_access_token"].encode()).hexdigest()
    )


def test_registered_clients_live_in_the_durable_client_store(make_middleware, tmp_path):
    middleware = make_middleware(
        registration="open", store="memory://", client_store=f"sqlite:///{tmp_path}/clients.db"
    )
    body = register(webtest.TestApp(middleware), NATIVE).json
    middleware.close()
    clients = open_store(StoreConfig(f"sqlite:///{tmp_path}/clients.db"))
    try:
        repository = Repository(clients)
        assert repository.get_client(body["client_id"]).redirect_uris == ("http://127.0.0.1/cb",)
        assert repository.find_registration(body["client_id"]) is not None
    finally:
        clients.close()


# -- RFC 7591 §3.2.2: every error ----------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        pytest.param({"redirect_uris": ["https://a.example/cb#frag"]}, "invalid_redirect_uri", id="fragment"),
        pytest.param(
            {"redirect_uris": ["http://a.example/cb"]}, "invalid_redirect_uri", id="http-off-loopback"
        ),
        pytest.param({"redirect_uris": ["myapp:/cb"]}, "invalid_redirect_uri", id="scheme-without-dot"),
        pytest.param({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri", id="javascript"),
        pytest.param({"redirect_uris": ["/relative/cb"]}, "invalid_redirect_uri", id="relative"),
        pytest.param({"redirect_uris": ["https:///cb"]}, "invalid_redirect_uri", id="no-host"),
        pytest.param({"redirect_uris": ["https://u:p@a.example/cb"]}, "invalid_redirect_uri", id="user-info"),
        pytest.param({"grant_types": ["authorization_code"]}, "invalid_redirect_uri", id="code-without-uris"),
        pytest.param(
            {"redirect_uris": "https://a.example/cb"}, "invalid_client_metadata", id="uris-not-list"
        ),
        pytest.param({**WEB, "grant_types": ["magic"]}, "invalid_client_metadata", id="unknown-grant"),
        pytest.param({**WEB, "grant_types": ["password"]}, "invalid_client_metadata", id="password-grant"),
        pytest.param(
            {**WEB, "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]},
            "invalid_client_metadata",
            id="grant-not-enabled",
        ),
        pytest.param(
            {**WEB, "response_types": ["token"]}, "invalid_client_metadata", id="response-without-grant"
        ),
        pytest.param({**WEB, "response_types": []}, "invalid_client_metadata", id="grant-without-response"),
        pytest.param(
            {**WEB, "response_types": ["id_token"]}, "invalid_client_metadata", id="unknown-response"
        ),
        pytest.param(
            {**WEB, "token_endpoint_auth_method": "magic"}, "invalid_client_metadata", id="unknown-method"
        ),
        pytest.param(
            {**WEB, "token_endpoint_auth_method": "client_secret_jwt"},
            "invalid_client_metadata",
            id="client-secret-jwt",
        ),
        pytest.param(
            {**SERVICE, "token_endpoint_auth_method": "private_key_jwt"},
            "invalid_client_metadata",
            id="private-key-jwt-without-keys",
        ),
        pytest.param(
            {**SERVICE, "jwks": {"keys": [JWK]}, "jwks_uri": "https://a.example/jwks"},
            "invalid_client_metadata",
            id="jwks-and-jwks-uri",
        ),
        pytest.param({**SERVICE, "jwks": [JWK]}, "invalid_client_metadata", id="jwks-not-a-set"),
        pytest.param(
            {**SERVICE, "token_endpoint_auth_method": "client_secret_basic", "jwks": {"keys": [JWK]}},
            "invalid_client_metadata",
            id="keys-for-a-secret-method",
        ),
        pytest.param(
            {**SERVICE, "token_endpoint_auth_method": "none"}, "invalid_client_metadata", id="public-service"
        ),
        pytest.param({**WEB, "scope": "read delete"}, "invalid_client_metadata", id="unknown-scope"),
        pytest.param({**WEB, "scope": "admin"}, "invalid_client_metadata", id="scope-not-for-registration"),
        pytest.param({**WEB, "client_name": 7}, "invalid_client_metadata", id="name-not-string"),
        pytest.param({**WEB, "logo_uri": "javascript:alert(1)"}, "invalid_client_metadata", id="logo-script"),
        pytest.param(
            {**WEB, "contacts": "me@example.com"}, "invalid_client_metadata", id="contacts-not-list"
        ),
        pytest.param(
            {**WEB, "dpop_bound_access_tokens": "yes"}, "invalid_client_metadata", id="dpop-not-bool"
        ),
        pytest.param(["https://a.example/cb"], "invalid_client_metadata", id="not-an-object"),
        pytest.param(
            {**WEB, "software_statement": "eyJ.x.y"}, "unapproved_software_statement", id="statement"
        ),
    ],
)
def test_registration_errors(app, metadata, error):
    response = register(app, metadata, status=400)
    assert response.json["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b'{"redirect_uris": [', "application/json", id="malformed-json"),
        pytest.param(b"redirect_uris=https://a.example/cb", "application/x-www-form-urlencoded", id="form"),
        pytest.param(b"\xff\xfe", "application/json", id="not-utf8"),
    ],
)
def test_a_body_that_is_not_json_is_invalid_request(app, body, content_type):
    response = app.post(REGISTER, body, headers={"Content-Type": content_type}, status=400)
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8123/cb",
        "http://[::1]/cb",
        "http://localhost/cb",
        "com.example.app:/cb",
        "https://a.example/cb",
    ],
)
def test_rfc_8252_redirect_uris_are_accepted(app, uri):
    assert register(app, {**NATIVE, "redirect_uris": [uri]}).json["redirect_uris"] == [uri]


# -- initial access tokens, the policy hook, limits ---------------------------


@pytest.fixture
def gated(make_app):
    return make_app(
        registration="initial-access-token",
        initial_access_tokens=f"{'0' * 64} {hashlib.sha256(INITIAL_TOKEN.encode()).hexdigest()}",
    )


def test_no_initial_access_token_is_a_bare_bearer_challenge(gated):
    response = register(gated, NATIVE, status=401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oauth2"'


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer wrong-token", id="wrong"),
        pytest.param(f"Basic {INITIAL_TOKEN}", id="other-scheme"),
        pytest.param("Bearer " + "0" * 64, id="the-hash-itself"),
    ],
)
def test_a_wrong_initial_access_token_is_invalid_token(gated, header):
    response = register(gated, NATIVE, status=401, headers={"Authorization": header})
    assert response.json["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_the_initial_access_token_registers(gated):
    assert register(gated, NATIVE, headers=bearer(INITIAL_TOKEN)).json["token_endpoint_auth_method"] == "none"


def test_initial_access_token_mode_needs_tokens(make_middleware):
    with pytest.raises(ConfigError, match=r"^initial_access_tokens: required"):
        make_middleware(registration="initial-access-token")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("not-a-hash", "^initial_access_tokens: expected hashes", id="tokens"),
        pytest.param("sometimes", "^registration: expected one of", id="mode"),
    ],
)
def test_registration_settings_errors(make_middleware, value, message):
    key = "initial_access_tokens" if "tokens" in message else "registration"
    with pytest.raises(ConfigError, match=message):
        make_middleware(**{key: value})


def test_registration_scopes_must_be_offered(make_middleware):
    with pytest.raises(ConfigError, match=r"^registration_scopes: every scope"):
        make_middleware(scopes="read", registration_scopes="read admin")


@pytest.mark.parametrize(
    ("metadata", "status", "expected"),
    [
        pytest.param({**WEB, "client_name": "evil"}, 400, "invalid_client_metadata", id="refused"),
        pytest.param(
            {**WEB, "redirect_uris": ["https://blocked.example/cb"]}, 400, "invalid_redirect_uri", id="raises"
        ),
        pytest.param({**WEB, "scope": "read write"}, 201, "read", id="adjusted"),
    ],
)
def test_the_registration_policy_may_refuse_or_adjust(make_app, metadata, status, expected):
    app = make_app(registration_policy="test_registration:policy")
    body = register(app, metadata, status=status).json
    assert (body["error"] if status == 400 else body["scope"]) == expected


def test_registrations_are_limited_per_address(make_app):
    app = make_app(registration_max_per_address="2", registration_window="600")
    here = {"REMOTE_ADDR": "192.0.2.7"}
    register(app, NATIVE, extra_environ=here)
    register(app, {"redirect_uris": ["bad"]}, status=400, extra_environ=here)  # refused ones count too
    response = register(app, NATIVE, status=429, extra_environ=here)
    assert response.headers["Retry-After"] == "600"
    assert response.json["error"] == "invalid_request"
    register(app, NATIVE, extra_environ={"REMOTE_ADDR": "192.0.2.8"})  # another address is not held up


# -- RFC 7592: read, update, delete ---------------------------------------------


@pytest.fixture
def registered(app):
    body = register(app, {**WEB, "client_name": "Web", "client_uri": "https://app.example"}).json
    return app, body


def test_the_registration_is_read_with_its_token(registered):
    app, body = registered
    read = app.get(configuration_path(body), headers=bearer(body["registration_access_token"]))
    assert read.headers["Cache-Control"] == "no-store"
    expected = {k: v for k, v in body.items() if k != "client_secret"}  # kept hashed: never shown again
    assert read.json == expected


def test_an_update_replaces_the_metadata(registered):
    app, body = registered
    path, headers = configuration_path(body), bearer(body["registration_access_token"])
    update = {
        "client_id": body["client_id"],
        "client_secret": body["client_secret"],
        "redirect_uris": ["https://app.example/new"],
        "grant_types": ["authorization_code"],
        "scope": "read",
    }
    updated = app.put_json(path, update, headers=headers).json
    assert updated["redirect_uris"] == ["https://app.example/new"]
    assert "client_name" not in updated and "client_uri" not in updated  # omitted: removed (RFC 7592 §2.2)
    assert "client_secret" not in updated  # the same secret, still valid
    assert updated["client_id_issued_at"] == body["client_id_issued_at"]
    assert app.get(path, headers=headers).json == updated
    # Public now: the secret is gone; confidential again: a new secret.
    public = app.put_json(path, {**update, "token_endpoint_auth_method": "none"}, headers=headers).json
    assert "client_secret" not in public
    again = app.put_json(
        path, {key: v for key, v in update.items() if key != "client_secret"}, headers=headers
    )
    assert again.json["client_secret"] != body["client_secret"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param(
            {"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri", id="redirect-uri"
        ),
        pytest.param({"client_id": "someone-else"}, "invalid_client_metadata", id="client-id"),
        pytest.param({"client_id": None}, "invalid_client_metadata", id="no-client-id"),
        pytest.param(
            {"client_secret": "chosen-by-the-client"}, "invalid_client_metadata", id="chosen-secret"
        ),
        pytest.param({"scope": "admin"}, "invalid_client_metadata", id="scope"),
    ],
)
def test_update_errors(registered, change, error):
    app, body = registered
    update = {"client_id": body["client_id"], **WEB, **change}
    update = {key: value for key, value in update.items() if value is not None}
    response = app.put_json(
        configuration_path(body), update, headers=bearer(body["registration_access_token"]), status=400
    )
    assert response.json["error"] == error


def test_delete_ends_the_client_and_its_tokens(registered):
    app, body = registered
    path, headers = configuration_path(body), bearer(body["registration_access_token"])
    deleted = app.delete(path, headers=headers, status=204)
    assert deleted.body == b""
    assert app.get(path, headers=headers, status=401).json["error"] == "invalid_token"
    refused = app.post(
        "/oauth/token",
        {"grant_type": "authorization_code", "code": "x"},
        headers={"Authorization": _basic(body)},
        status=401,
    )
    assert refused.json["error"] == "invalid_client"


@pytest.mark.parametrize("method", ["get", "put_json", "delete"])
def test_another_clients_registration_access_token_is_refused(app, method):
    mine = register(app, WEB).json
    theirs = register(app, WEB).json
    kwargs: dict[str, Any] = {"headers": bearer(theirs["registration_access_token"]), "status": 401}
    if method == "put_json":
        kwargs["params"] = {"client_id": mine["client_id"], **WEB}
    response = getattr(app, method)(configuration_path(mine), **kwargs)
    assert response.json["error"] == "invalid_token"
    assert (
        app.get(configuration_path(mine), headers=bearer(mine["registration_access_token"])).status_int == 200
    )


@pytest.mark.parametrize(
    ("path", "headers", "challenge"),
    [
        pytest.param(
            "/oauth/register/client?client_id=nobody", bearer("x" * 43), "invalid_token", id="unknown"
        ),
        pytest.param("/oauth/register/client", bearer("x" * 43), "invalid_token", id="no-client-id"),
        pytest.param(
            "/oauth/register/client?client_id=a&client_id=b", bearer("x"), "invalid_token", id="two-ids"
        ),
        pytest.param("/oauth/register/client?client_id=nobody", {}, None, id="no-token"),
        pytest.param(
            "/oauth/register/client?client_id=nobody",
            {"Authorization": "Bearer"},
            "invalid_token",
            id="empty",
        ),
    ],
)
def test_configuration_endpoint_errors(app, path, headers, challenge):
    response = app.get(path, headers=headers, status=401)
    if challenge is None:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="oauth2"'
    else:
        assert f'error="{challenge}"' in response.headers["WWW-Authenticate"]


def test_the_configuration_endpoint_takes_no_post(app):
    response = app.post("/oauth/register/client?client_id=x", status=405)
    assert response.headers["Allow"] == "GET, PUT, DELETE"


def test_a_registered_client_on_a_management_path_without_https_is_refused(make_app):
    app = make_app(require_https="true")
    assert register(app, NATIVE, status=400).json["error"] == "invalid_request"


# -- end to end over HTTP with requests-oauth2client ------------------------------


def _store(request: pytest.FixtureRequest, kind: str, tmp_path: Any) -> dict[str, str]:
    if kind == "sqlite":
        return {"store": f"sqlite:///{tmp_path}/oauth.db"}
    return {"store": shared_redis(request).url, "store_prefix": f"test-{uuid.uuid4().hex}:"}


@pytest.fixture(params=["sqlite", "redis"])
def server(request, make_middleware, tmp_path):
    built: dict[str, Any] = {}

    def app(environ, start_response):
        return built["middleware"](environ, start_response)

    with serve(app) as base:
        built["middleware"] = make_middleware(
            issuer=base,
            registration="open",
            scopes="read write",
            verify_password="oauth_flows:verify_password",
            **_store(request, request.param, tmp_path),
        )
        yield base
        built["middleware"].close()


@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_code_flow_with_a_dynamically_registered_client(server, kind):
    base = server
    discovery = requests.get(f"{base}/.well-known/oauth-authorization-server").json()
    metadata = {
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "read write",
        "client_name": "Registered",
        **({"token_endpoint_auth_method": "none"} if kind == "public" else {}),
    }
    registration = requests.post(discovery["registration_endpoint"], json=metadata)
    assert registration.status_code == 201
    body = registration.json()
    auth = (
        requests_oauth2client.ClientSecretBasic(body["client_id"], body["client_secret"])
        if kind == "confidential"
        else requests_oauth2client.PublicApp(body["client_id"])
    )
    # A native app listens on any loopback port (RFC 8252 §7.3): only public clients get that leeway.
    redirect_uri = "http://127.0.0.1:43117/callback" if kind == "public" else "http://127.0.0.1/callback"
    client = requests_oauth2client.OAuth2Client.from_discovery_endpoint(
        f"{base}/.well-known/oauth-authorization-server",
        issuer=base,
        auth=auth,
        redirect_uri=redirect_uri,
        testing=True,
    )
    authorization = client.authorization_request(scope="read")
    with requests.Session() as browser:
        location = browser_approve(browser, str(authorization.uri))
    token = client.authorization_code(authorization.validate_callback(location))
    headers = {"Authorization": f"Bearer {token.access_token}"}
    assert requests.get(f"{base}/api/me", headers=headers).status_code == 200
    assert client.refresh_token(token).access_token != token.access_token
    # The client deletes itself: its registration and its credentials stop working.
    configuration = {"Authorization": f"Bearer {body['registration_access_token']}"}
    assert requests.delete(body["registration_client_uri"], headers=configuration).status_code == 204
    assert requests.get(body["registration_client_uri"], headers=configuration).status_code == 401
    with pytest.raises(requests_oauth2client.InvalidClient):
        client.refresh_token(token)
