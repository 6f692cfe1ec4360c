"""Resource owner password credentials grant (RFC 6749 §4.3) and the demo's users."""

from __future__ import annotations

import logging

import pytest
import webtest
from conftest import basic, register
from oauth_flows import NATIVE_ID, TOKEN, WEB_ID, WEB_SECRET, api_status, flow_middleware

from oauth_middleware import demo
from oauth_middleware.errors import ConfigError


@pytest.fixture
def middleware(make_middleware):
    middleware = flow_middleware(make_middleware, grants="password refresh_token client_credentials")
    register(
        middleware,
        "cli",
        "cli-secret-0123456789",
        grant_types=["password", "refresh_token"],
        scopes=["read", "write"],
    )
    return middleware


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware)


CLI = {"Authorization": basic("cli", "cli-secret-0123456789")}


def password_grant(app, *, status=200, headers=CLI, **params):
    body = {"grant_type": "password", "username": "alice", "password": "alice-password", **params}
    body = {key: value for key, value in body.items() if value is not None}
    return app.post(TOKEN, body, headers=headers, status=status).json


def test_password_grant(app):
    body = password_grant(app, scope="read")
    assert body["token_type"] == "Bearer" and body["scope"] == "read"
    assert body["refresh_token"]
    me = app.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json
    assert me["user"] == "alice" and me["client_id"] == "cli"
    refreshed = app.post(
        TOKEN, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}, headers=CLI
    ).json
    assert api_status(app, refreshed["access_token"]) == 200


def test_public_client_may_use_it(app):
    body = password_grant(app, headers={}, client_id=NATIVE_ID)
    assert body["token_type"] == "Bearer"


def test_wrong_password_is_invalid_grant_and_logged_without_the_password(app, caplog):
    with caplog.at_level(logging.WARNING, logger="oauth_middleware"):
        body = password_grant(app, status=400, password="Hunter2-secret")
    assert body["error"] == "invalid_grant"
    assert "alice" in caplog.text and "'cli'" in caplog.text
    assert "Hunter2-secret" not in caplog.text


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"username": "mallory"}, "invalid_grant", id="unknown-user"),
        pytest.param({"username": "x" * 500}, "invalid_grant", id="huge-username"),
        pytest.param({"username": None}, "invalid_request", id="no-username"),
        pytest.param({"password": None}, "invalid_request", id="no-password"),
        pytest.param({"scope": "admin"}, "invalid_scope", id="scope-beyond-client"),
    ],
)
def test_password_grant_errors(app, params, error):
    assert password_grant(app, status=400, **params)["error"] == error


def test_client_must_be_registered_for_it(app):
    body = password_grant(app, status=400, headers={"Authorization": basic(WEB_ID, WEB_SECRET)})
    assert body["error"] == "unauthorized_client"


def test_off_by_default(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware))
    body = password_grant(app, status=400, headers={}, client_id=NATIVE_ID)
    assert body["error"] == "unsupported_grant_type"


def test_needs_verify_password(make_middleware):
    with pytest.raises(ConfigError, match=r"^verify_password: "):
        flow_middleware(make_middleware, grants="password", verify_password="")


def test_no_refresh_token_unless_offered(make_middleware):
    middleware = flow_middleware(
        make_middleware, grants="password refresh_token", refresh_token_grants="authorization_code"
    )
    body = password_grant(webtest.TestApp(middleware), headers={}, client_id=NATIVE_ID)
    assert "refresh_token" not in body


def answers_true(username, password):
    return password == "open sesame"


def answers_an_id(username, password):
    return f"user-{len(username)}" if password == "open sesame" else False


@pytest.mark.parametrize(
    ("callable_name", "user"),
    [
        pytest.param("answers_true", "zoe", id="true-means-username"),
        pytest.param("answers_an_id", "user-3", id="id"),
    ],
)
def test_verify_password_results(make_middleware, callable_name, user):
    middleware = flow_middleware(
        make_middleware, grants="password", verify_password=f"test_password_grant:{callable_name}"
    )
    app = webtest.TestApp(middleware)
    body = password_grant(app, headers={}, client_id=NATIVE_ID, username="zoe", password="open sesame")
    me = app.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json
    assert me["user"] == user
    assert password_grant(app, status=400, headers={}, client_id=NATIVE_ID, username="zoe", password="x")


# -- the demo's users ------------------------------------------------------------------


@pytest.fixture
def demo_users():
    saved = dict(demo._USERS)
    yield
    demo._USERS.clear()
    demo._USERS.update(saved)


def test_demo_password_hashes():
    stored = demo.hash_password("pw", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert demo.check_password_hash(stored, "pw")
    assert not demo.check_password_hash(stored, "pW")
    assert demo.hash_password("pw", iterations=1000) != stored  # salted
    assert not demo.check_password_hash("not-a-hash", "pw")


def test_demo_users_from_the_app_settings(demo_users):
    hashed = demo.hash_password("s3cret", iterations=1000)
    demo.DemoApp.from_config({"users": f"\n  erin:{hashed}\n"})
    assert demo.verify_password("erin", "s3cret") == "erin"
    assert demo.verify_password("erin", "wrong") is None
    assert demo.verify_password("nobody", "s3cret") is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("erin", id="no-hash"),
        pytest.param("erin:plaintext", id="plain-password"),
        pytest.param(":pbkdf2_sha256$1000$00112233445566778899$" + "0" * 64, id="no-name"),
    ],
)
def test_bad_demo_users_are_config_errors(demo_users, value):
    with pytest.raises(ConfigError, match=r"^users: "):
        demo.DemoApp.from_config({"users": value})


def test_demo_rejects_unknown_settings():
    with pytest.raises(ConfigError, match=r"^colour: unknown setting"):
        demo.DemoApp.from_config({"colour": "blue"})


def test_hash_password_command(capsys):
    assert demo.main(["hash-password", "pw"]) == 0
    assert demo.check_password_hash(capsys.readouterr().out.strip(), "pw")
    with pytest.raises(SystemExit) as info:  # argparse since issue 10: usage on stderr, status 2
        demo.main(["nonsense"])
    assert info.value.code == 2
