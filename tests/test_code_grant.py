"""Authorization code grant with PKCE at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5-4.6)."""

from __future__ import annotations

import time

import pytest
import webtest
from conftest import basic
from oauth_flows import (
    CHALLENGE,
    NATIVE_ID,
    NATIVE_REDIRECT,
    TOKEN,
    VERIFIER,
    WEB_ID,
    WEB_REDIRECT,
    WEB_SECRET,
    api_status,
    approve,
    code_request,
    flow_middleware,
    get_code,
    location_params,
    redeem,
)

from oauth_middleware.models import digest


@pytest.fixture
def middleware(make_middleware):
    return flow_middleware(make_middleware)


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware)


def test_code_for_tokens(app):
    body = redeem(app, get_code(app, scope="read write"))
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read write"
    assert body["expires_in"] == 3600
    assert len(body["refresh_token"]) >= 43
    me = app.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json
    assert me["user"] == "alice" and me["client_id"] == NATIVE_ID and me["scopes"] == ["read", "write"]


def test_token_response_is_not_cached(app):
    response = app.post(
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": get_code(app),
            "client_id": NATIVE_ID,
            "redirect_uri": NATIVE_REDIRECT,
            "code_verifier": VERIFIER,
        },
    )
    assert response.headers["Cache-Control"] == "no-store"


def test_codes_are_stored_hashed(middleware, app):
    code = get_code(app)
    store = middleware.server.store
    assert store.get(f"code:{code}") is None
    assert store.get(f"code:{digest(code)}")["u"] == "alice"


def test_confidential_client_with_basic_auth(app):
    code = location_params(approve(app, code_request(client_id=WEB_ID, redirect_uri=WEB_REDIRECT)))["code"]
    response = app.post(
        TOKEN,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB_REDIRECT,
            "code_verifier": VERIFIER,
        },
        headers={"Authorization": basic(WEB_ID, WEB_SECRET)},
    )
    assert response.json["scope"] == "read"


def test_code_replay_is_refused_and_revokes_its_tokens(app, caplog):
    code = get_code(app)
    first = redeem(app, code)
    assert api_status(app, first["access_token"]) == 200
    again = redeem(app, code, status=400)
    assert again["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: every token issued from the code is revoked ...
    assert api_status(app, first["access_token"]) == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": NATIVE_ID}
    assert app.post(TOKEN, refresh, status=400).json["error"] == "invalid_grant"
    assert "replayed" in caplog.text


def test_replay_also_revokes_tokens_refreshed_from_the_code(app):
    code = get_code(app)
    first = redeem(app, code)
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": NATIVE_ID}
    refreshed = app.post(TOKEN, refresh).json
    redeem(app, code, status=400)
    assert api_status(app, refreshed["access_token"]) == 401
    refresh["refresh_token"] = refreshed["refresh_token"]
    assert app.post(TOKEN, refresh, status=400).json["error"] == "invalid_grant"


def test_other_codes_tokens_survive_a_replay(app):
    code, other = get_code(app), get_code(app)
    tokens = redeem(app, other)
    redeem(app, code)
    redeem(app, code, status=400)
    assert api_status(app, tokens["access_token"]) == 200


def test_expired_code(app, monkeypatch):
    code = get_code(app)
    later = time.time() + 601
    monkeypatch.setattr(time, "time", lambda: later)
    assert redeem(app, code, status=400)["error"] == "invalid_grant"


def test_code_ttl_setting(make_middleware, monkeypatch):
    app = webtest.TestApp(flow_middleware(make_middleware, code_ttl="30"))
    code = get_code(app)
    later = time.time() + 31
    monkeypatch.setattr(time, "time", lambda: later)
    assert redeem(app, code, status=400)["error"] == "invalid_grant"


def test_unknown_code(app):
    assert redeem(app, "x" * 43, status=400)["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"code_verifier": None}, "invalid_grant", id="verifier-missing"),
        pytest.param({"code_verifier": VERIFIER[:-1] + "x"}, "invalid_grant", id="verifier-wrong"),
        pytest.param({"code_verifier": CHALLENGE}, "invalid_grant", id="challenge-as-verifier"),
        pytest.param({"code_verifier": "short"}, "invalid_grant", id="verifier-malformed"),
        pytest.param({"redirect_uri": None}, "invalid_grant", id="redirect-uri-missing"),
        pytest.param(
            {"redirect_uri": "http://127.0.0.1:9999/callback"}, "invalid_grant", id="redirect-uri-other"
        ),
        pytest.param({"code": None}, "invalid_request", id="code-missing"),
    ],
)
def test_bad_redemptions_leave_the_code_usable(app, overrides, error):
    code = get_code(app)
    assert redeem(app, code, status=400, **overrides)["error"] == error
    # A failed attempt does not burn the code for its rightful client.
    assert redeem(app, code)["token_type"] == "Bearer"


def test_code_of_another_client_is_invalid_grant(middleware, app):
    from conftest import register

    register(
        middleware,
        "intruder",
        None,
        redirect_uris=[NATIVE_REDIRECT],
        grant_types=["authorization_code"],
    )
    code = get_code(app)
    assert redeem(app, code, status=400, client_id="intruder")["error"] == "invalid_grant"
    assert redeem(app, code)["token_type"] == "Bearer"


def test_redirect_uri_may_be_left_out_when_the_request_left_it_out(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware))
    from conftest import register

    register(
        app.app,
        "single",
        None,
        redirect_uris=["http://127.0.0.1/only"],
        grant_types=["authorization_code"],
        scopes=["read"],
    )
    code = get_code(app, client_id="single", redirect_uri=None)
    assert (
        redeem(app, code, status=400, client_id="single", redirect_uri=NATIVE_REDIRECT)["error"]
        == "invalid_grant"
    )
    assert redeem(app, code, client_id="single", redirect_uri=None)["token_type"] == "Bearer"


def test_pkce_downgrade_is_refused(make_middleware):
    # A code issued without a challenge (confidential client, require_pkce off)
    # must not be redeemed with a verifier (RFC 9700 §4.8.2).
    app = webtest.TestApp(flow_middleware(make_middleware, require_pkce="false"))
    params = code_request(
        client_id=WEB_ID, redirect_uri=WEB_REDIRECT, code_challenge=None, code_challenge_method=None
    )
    code = location_params(approve(app, params))["code"]
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT}
    auth = {"Authorization": basic(WEB_ID, WEB_SECRET)}
    response = app.post(TOKEN, {**body, "code_verifier": VERIFIER}, headers=auth, status=400)
    assert response.json["error"] == "invalid_grant"
    assert app.post(TOKEN, body, headers=auth).json["token_type"] == "Bearer"


def test_plain_pkce_when_allowed(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, allow_plain_pkce="true"))
    code = get_code(app, code_challenge=VERIFIER, code_challenge_method="plain")
    assert redeem(app, code, status=400, code_verifier=CHALLENGE)["error"] == "invalid_grant"
    assert redeem(app, code)["token_type"] == "Bearer"


def test_client_not_registered_for_the_grant(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware))
    from conftest import register

    register(
        app.app, "codeless", None, redirect_uris=[NATIVE_REDIRECT], response_types=["code"], scopes=["read"]
    )
    code = get_code(app, client_id="codeless")
    assert redeem(app, code, status=400, client_id="codeless")["error"] == "unauthorized_client"


def test_no_refresh_token_unless_offered(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, refresh_token_grants="password"))
    assert "refresh_token" not in redeem(app, get_code(app))
    app = webtest.TestApp(flow_middleware(make_middleware, grants="authorization_code"))
    assert "refresh_token" not in redeem(app, get_code(app))
