"""Resource indicators (RFC 8707) at the authorization, pushed-request, token and device endpoints."""

from __future__ import annotations

import pathlib

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, register
from oauth_flows import (
    AUTHORIZE,
    CHALLENGE,
    NATIVE_ID,
    NATIVE_REDIRECT,
    TOKEN,
    VERIFIER,
    WEB_ID,
    WEB_SECRET,
    approve,
    code_request,
    flow_middleware,
    location_params,
    redeem,
)

from oauth_middleware.cli import main
from oauth_middleware.demo import DemoApp
from oauth_middleware.middleware import OAuth2Middleware

API = "https://api.example.com/mcp"
FILES = "https://files.example.com/"
OTHER = "https://other.example.com/api"
ME = "/api/me"
SERVICE = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def middleware(make_middleware):
    return flow_middleware(
        make_middleware,
        introspection_clients=SERVICE_ID,
        grants=f"authorization_code refresh_token client_credentials password {DEVICE_GRANT}",
        refresh_token_grants=f"authorization_code password {DEVICE_GRANT}",
    )


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware, extra_environ={"REMOTE_ADDR": "203.0.113.9"})


def audience(app, token):
    """What introspection says the token is for (None: no aud)."""
    return app.post("/oauth/introspect", {"token": token}, headers=SERVICE).json.get("aud")


def client_credentials(app, *resources, status=200, headers=SERVICE):
    body = [("grant_type", "client_credentials"), *(("resource", r) for r in resources)]
    return app.post(TOKEN, body, headers=headers, status=status).json


def code_for(app, *resources, **overrides):
    """A code of the native client, its authorization request naming ``resources``."""
    params = list(code_request(**overrides).items()) + [("resource", r) for r in resources]
    return location_params(approve(app, params))["code"]


# -- the token endpoint ---------------------------------------------------------------


def test_client_credentials_token_is_for_the_requested_resources(app):
    assert audience(app, client_credentials(app, API)["access_token"]) == [API]
    assert audience(app, client_credentials(app, API, FILES)["access_token"]) == [API, FILES]
    assert audience(app, client_credentials(app)["access_token"]) is None  # none asked, no audience setting


@pytest.mark.parametrize(
    "resources",
    [
        pytest.param(["/relative/path"], id="relative"),
        pytest.param(["https://api.example.com/#frag"], id="fragment"),
        pytest.param(["https://api.example.com/a b"], id="space"),
        pytest.param(["api.example.com"], id="no-scheme"),
        pytest.param([f"https://api.example.com/{n}" for n in range(11)], id="too-many"),
    ],
)
def test_a_malformed_resource_is_invalid_target(app, resources):
    assert client_credentials(app, *resources, status=400)["error"] == "invalid_target"


def test_the_servers_allowed_resources_limit_every_client(make_middleware):
    app = webtest.TestApp(make_middleware(allowed_resources=f"{API} {FILES}"))
    client_credentials(app, API)
    assert client_credentials(app, OTHER, status=400)["error"] == "invalid_target"
    assert client_credentials(app, API, OTHER, status=400)["error"] == "invalid_target"


def test_a_client_registered_with_resources_may_ask_for_those_only(middleware, app):
    register(
        middleware,
        "limited",
        "limited-secret-0123456789",
        grant_types=["client_credentials"],
        resources=[API],
    )
    headers = {"Authorization": basic("limited", "limited-secret-0123456789")}
    client_credentials(app, API, headers=headers)
    assert client_credentials(app, FILES, headers=headers, status=400)["error"] == "invalid_target"


def test_a_jwt_server_issues_only_for_the_audiences_it_checks(make_middleware, tmp_path):
    settings = {"token_format": "jwt", "issuer": "http://localhost", "audience": API}
    settings |= {"jwt_algorithm": "HS256", "jwt_secret": "s" * 40, "allowed_resources": FILES}
    app = webtest.TestApp(make_middleware(**settings))
    client_credentials(app, API)
    client_credentials(app, FILES)
    assert client_credentials(app, OTHER, status=400)["error"] == "invalid_target"


# -- the authorization code and refresh grants ----------------------------------------


def test_the_code_flow_keeps_the_resources_and_a_token_request_narrows_them(app):
    code = code_for(app, API, FILES)
    tokens = redeem(app, code, resource=API)
    assert audience(app, tokens["access_token"]) == [API]
    # The refresh token keeps the whole grant: a refresh may ask for any of its resources.
    refresh = {
        "grant_type": "refresh_token",
        "client_id": NATIVE_ID,
        "refresh_token": tokens["refresh_token"],
    }
    refreshed = app.post(TOKEN, {**refresh, "resource": FILES}).json
    assert audience(app, refreshed["access_token"]) == [FILES]
    refresh["refresh_token"] = refreshed["refresh_token"]
    refreshed = app.post(TOKEN, refresh).json
    assert audience(app, refreshed["access_token"]) == [API, FILES]


def test_a_token_request_for_a_resource_outside_the_grant_is_invalid_target(app):
    code = code_for(app, API)
    assert redeem(app, code, status=400, resource=OTHER)["error"] == "invalid_target"
    # The code was not used up by the refused request.
    tokens = redeem(app, code)
    refresh = {
        "grant_type": "refresh_token",
        "client_id": NATIVE_ID,
        "refresh_token": tokens["refresh_token"],
    }
    assert app.post(TOKEN, {**refresh, "resource": OTHER}, status=400).json["error"] == "invalid_target"
    # Nor was the refresh token (it rotates only on success).
    assert audience(app, app.post(TOKEN, refresh).json["access_token"]) == [API]


def test_a_grant_without_resources_may_be_restricted_at_the_token_request(app):
    tokens = redeem(app, code_for(app), resource=API)
    assert audience(app, tokens["access_token"]) == [API]


def test_an_authorization_request_for_a_bad_resource_redirects_invalid_target(app):
    params = [*code_request().items(), ("resource", "not a uri")]
    answer = app.get(AUTHORIZE, params, status=302)
    assert answer.headers["Location"].startswith(NATIVE_REDIRECT)
    assert location_params(answer.headers["Location"])["error"] == "invalid_target"


def test_the_login_and_consent_forms_carry_every_resource(app):
    page = app.get(AUTHORIZE, [*code_request().items(), ("resource", API), ("resource", FILES)])
    assert [field.value for field in page.forms[0].fields["resource"]] == [API, FILES]


def test_a_pushed_request_keeps_its_resources(app):
    web = {"Authorization": basic(WEB_ID, WEB_SECRET)}
    pushed = [
        ("response_type", "code"),
        ("redirect_uri", "https://web.example/cb"),
        ("scope", "read"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("resource", API),
        ("resource", FILES),
    ]
    request_uri = app.post("/oauth/par", pushed, headers=web, status=201).json["request_uri"]
    code = location_params(approve(app, {"client_id": WEB_ID, "request_uri": request_uri}))["code"]
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://web.example/cb"}
    body["code_verifier"] = VERIFIER
    tokens = app.post(TOKEN, body, headers=web).json
    assert audience(app, tokens["access_token"]) == [API, FILES]
    bad = [*pushed[:5], ("resource", "https://x.example/#f")]
    assert app.post("/oauth/par", bad, headers=web, status=400).json["error"] == "invalid_target"


def test_the_password_grant_takes_resources(app):
    body = {
        "grant_type": "password",
        "client_id": NATIVE_ID,
        "username": "alice",
        "password": "alice-password",
    }
    assert audience(app, app.post(TOKEN, {**body, "resource": API}).json["access_token"]) == [API]


def test_the_device_grant_keeps_the_resources_of_its_authorization(middleware, app):
    register(middleware, "tv", None, grant_types=[DEVICE_GRANT], scopes=["read"])
    answer = app.post("/oauth/device_authorization", {"client_id": "tv", "resource": API}).json
    page = app.get("/oauth/device", {"user_code": answer["user_code"]})
    form = page.forms[0]
    form["username"], form["password"] = "alice", "alice-password"
    consent = form.submit(status=303).follow()
    consent.forms[0].submit("decision", value="approve")
    poll = {"grant_type": DEVICE_GRANT, "device_code": answer["device_code"], "client_id": "tv"}
    assert app.post(TOKEN, {**poll, "resource": OTHER}, status=400).json["error"] == "invalid_target"
    assert audience(app, app.post(TOKEN, poll).json["access_token"]) == [API]
    bad = {"client_id": "tv", "resource": "relative"}
    assert app.post("/oauth/device_authorization", bad, status=400).json["error"] == "invalid_target"


# -- registering a client's resources -------------------------------------------------


def test_client_add_resource_and_clients_file_resources(tmp_path: pathlib.Path, capsys):
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nstore = sqlite:///%(here)s/oauth.db\n"
    )
    argv = ["client", "add", str(ini), "--client-id", "svc", "--secret", "svc-secret-0123"]
    assert main([*argv, "--grant", "client_credentials", "--resource", API, "--resource", FILES]) == 0
    assert f"resources: {API} {FILES}" in capsys.readouterr().out.splitlines()
    assert main([*argv, "--replace", "--grant", "client_credentials", "--resource", "relative"]) == 2
    clients = tmp_path / "clients.ini"
    clients.write_text(f"[client:files]\npublic = true\ngrants = client_credentials\nresources = {FILES}\n")
    clients.write_text(
        "[client:files]\nsecret_hash = " + "0" * 64 + f"\ngrants = client_credentials\nresources = {FILES}\n"
    )
    middleware = OAuth2Middleware(
        DemoApp(),
        issuer="http://localhost",
        store=f"sqlite:///{tmp_path}/oauth.db",
        clients_file=str(clients),
    )
    assert middleware.server.repository.get_client("files").resources == (FILES,)
    assert middleware.server.repository.get_client("svc").resources == (API, FILES)
    clients.write_text("[client:bad]\nsecret_hash = " + "0" * 64 + "\nresources = https://x.example/#f\n")
    with pytest.raises(Exception, match=r"clients_file: \[client:bad\] resource"):
        OAuth2Middleware(DemoApp(), issuer="http://localhost", store="memory://", clients_file=str(clients))


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        pytest.param("allowed_resources", "relative", id="allowed-relative"),
        pytest.param("resource_identifier", "https://api.example.com/#x", id="identifier-fragment"),
    ],
)
def test_resource_settings_are_checked_at_load(make_middleware, setting, value):
    with pytest.raises(Exception, match=setting):
        make_middleware(**{setting: value})


def test_an_implicit_token_is_for_the_requested_resource(make_middleware):
    middleware = flow_middleware(
        make_middleware, response_types="code token", introspection_clients=SERVICE_ID
    )
    app = webtest.TestApp(middleware)
    params = [
        ("response_type", "token"),
        ("client_id", "spa"),
        ("redirect_uri", "https://spa.example/cb"),
        ("state", "s"),
        ("resource", API),
    ]
    token = location_params(approve(app, params), fragment=True)["access_token"]
    assert audience(app, token) == [API]


def test_introspecting_a_refresh_token_names_the_resources_of_its_grant(app):
    tokens = redeem(app, code_for(app, API, FILES), resource=API)
    assert audience(app, tokens["refresh_token"]) == [API, FILES]


def test_unique_tokens_are_kept_per_resource(make_middleware):
    app = webtest.TestApp(make_middleware(unique_tokens="true", session_secret="u" * 40))
    first = client_credentials(app, API)["access_token"]
    assert client_credentials(app, API)["access_token"] == first
    assert client_credentials(app, FILES)["access_token"] != first
    assert client_credentials(app)["access_token"] != first
