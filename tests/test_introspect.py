"""Introspection endpoint (RFC 7662), for opaque and JWT access tokens and for refresh tokens."""

from __future__ import annotations

import time

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, allow_body_secret, basic, issue_token, register
from jwt_keys import AUDIENCE, ISSUER, EchoApp, claims, jwt_settings, make_keys, sign

from oauth_middleware.models import digest
from oauth_middleware.records import AccessTokenRecord, RefreshTokenRecord

INTROSPECT = "/oauth/introspect"
RS_ID, RS_SECRET = "resource-server", "resource-server-secret-0123"
RS_AUTH = {"Authorization": basic(RS_ID, RS_SECRET)}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(params=["opaque", "jwt"])
def server(request, make_middleware, keys):
    """A server of either format where only ``resource-server`` may introspect."""
    config = jwt_settings(keys) if request.param == "jwt" else {"grants": "client_credentials"}
    middleware = make_middleware(EchoApp(), introspection_clients=f"{RS_ID} mobile", **config)
    register(middleware, RS_ID, RS_SECRET, grant_types=["client_credentials"])
    register(
        middleware, "mobile", None, grant_types=["authorization_code"], redirect_uris=["com.example.app:/cb"]
    )
    return middleware


@pytest.fixture
def app(server):
    return webtest.TestApp(server)


def introspect(app, params, headers=RS_AUTH, status=200):
    return app.post(INTROSPECT, params, headers=headers, status=status)


def expected_access_members(server, access, issuer):
    body = {
        "active": True,
        "client_id": access.client_id,
        "sub": access.user_id or access.client_id,
        "scope": " ".join(access.scopes),
        "exp": access.expires_at,
        "iss": issuer,
        "token_type": "Bearer",
    }
    if access.user_id:
        body["username"] = access.user_id
    if server.settings.token_format == "jwt":
        body["aud"] = [AUDIENCE]
        body["jti"] = access.token_id
    return body


def issuer_of(server):
    return ISSUER if server.settings.token_format == "jwt" else "http://localhost"


def test_active_client_token(server, app):
    token = issue_token(app, "read write")
    access = server.server.tokens.verify(token)
    response = introspect(app, {"token": token})
    assert response.json == expected_access_members(server, access, issuer_of(server))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type == "application/json"


def test_active_user_token_names_the_user(server, app):
    access = server.server.tokens.issue(
        client_id=SERVICE_ID, user_id="alice", scopes=("read",), extra={}, family=None
    )
    body = introspect(app, {"token": access.token}).json
    assert body == expected_access_members(server, access, issuer_of(server))
    assert body["username"] == body["sub"] == "alice"


def test_credentials_in_the_body(server, app):
    token = issue_token(app)
    allow_body_secret(server, RS_ID)  # registered for client_secret_post
    body = introspect(app, {"token": token, "client_id": RS_ID, "client_secret": RS_SECRET}, headers={}).json
    assert body["active"] is True


def test_a_hint_that_is_wrong_does_not_hide_the_token(app):
    token = issue_token(app)
    assert introspect(app, {"token": token, "token_type_hint": "refresh_token"}).json["active"] is True


def test_revoked_token_is_inactive(app):
    token = issue_token(app)
    app.post("/oauth/revoke", {"token": token}, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)})
    # RFC 7662 §2.2: an inactive token gets "active": false and nothing else.
    assert introspect(app, {"token": token}).json == {"active": False}


def test_unknown_token_is_inactive(app):
    assert introspect(app, {"token": "never-issued"}).json == {"active": False}


def test_expired_token_is_inactive(server, app, keys):
    now = int(time.time())
    if server.settings.token_format == "jwt":
        token = sign(claims(exp=now - 60, iat=now - 700), keys.rsa, kid=keys.rsa_kid)
        live = sign(claims(), keys.rsa, kid=keys.rsa_kid)
    else:
        token, live = "expired-opaque-token", "live-opaque-token"
        for value, expires_at in ((token, now - 1), (live, now + 60)):
            record = AccessTokenRecord(SERVICE_ID, None, ("read",), expires_at)
            server.server.repository.save_access_token(digest(value), record, 60)
    assert introspect(app, {"token": token}).json == {"active": False}
    assert introspect(app, {"token": live}).json["active"] is True  # the control


def test_a_jwt_of_another_issuer_is_inactive(make_middleware, keys):
    middleware = make_middleware(EchoApp(), introspection_clients=RS_ID, **jwt_settings(keys))
    register(middleware, RS_ID, RS_SECRET, grant_types=["client_credentials"])
    app = webtest.TestApp(middleware)
    token = sign(claims(iss="https://elsewhere.example"), keys.rsa, kid=keys.rsa_kid)
    assert introspect(app, {"token": token}).json == {"active": False}


def test_tokens_of_any_client_can_be_introspected(server, app):
    access = server.server.tokens.issue(client_id="mobile", user_id="bob", scopes=(), extra={}, family=None)
    body = introspect(app, {"token": access.token}).json
    assert body["active"] is True
    assert body["client_id"] == "mobile"
    assert "scope" not in body


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
def test_refresh_token(server, app, hint):
    refresh = "refresh-token-value-0123456789abcdef"
    expires_at = int(time.time()) + 86400
    record = RefreshTokenRecord(SERVICE_ID, "alice", ("read", "write"), expires_at, "fam", expires_at)
    server.server.repository.save_refresh_token(digest(refresh), record, 86400)
    params = {"token": refresh} if hint is None else {"token": refresh, "token_type_hint": hint}
    assert introspect(app, params).json == {
        "active": True,
        "client_id": SERVICE_ID,
        "sub": "alice",
        "username": "alice",
        "scope": "read write",
        "exp": expires_at,
        "iss": issuer_of(server),
    }
    server.server.repository.revoke_family("fam")
    assert introspect(app, params).json == {"active": False}


def test_issuer_is_the_setting_whatever_the_host(make_middleware):
    # Issue 10, item 9: ``iss`` followed the request's Host when ``issuer`` was unset (this test
    # asserted that); the issuer is now required and a forged Host changes nothing.
    middleware = make_middleware(
        EchoApp(), grants="client_credentials", introspection_clients=RS_ID, issuer="https://auth.example.com"
    )
    register(middleware, RS_ID, RS_SECRET, grant_types=["client_credentials"])
    app = webtest.TestApp(middleware)
    token = issue_token(app)
    body = app.post(
        INTROSPECT,
        {"token": token},
        headers=RS_AUTH,
        extra_environ={"HTTP_HOST": "auth.example.org", "wsgi.url_scheme": "https", "SCRIPT_NAME": "/sso"},
    ).json
    assert body["iss"] == "https://auth.example.com"


# -- who may ask ----------------------------------------------------------------------


def test_a_client_not_listed_may_not_introspect(app):
    token = issue_token(app)
    response = introspect(
        app, {"token": token}, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}, status=403
    )
    assert response.json["error"] == "access_denied"
    assert response.headers["Cache-Control"] == "no-store"


def test_nobody_may_introspect_by_default(make_middleware):
    app = webtest.TestApp(make_middleware(EchoApp(), grants="client_credentials"))
    token = issue_token(app)
    headers = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    assert introspect(app, {"token": token}, headers=headers, status=403).json["error"] == "access_denied"


def test_a_public_client_cannot_introspect_even_when_listed(app):
    token = issue_token(app)
    response = introspect(app, {"token": token, "client_id": "mobile"}, headers={}, status=401)
    assert response.json["error"] == "invalid_client"


def test_wrong_secret(app):
    response = introspect(app, {"token": "x"}, headers={"Authorization": basic(RS_ID, "wrong")}, status=401)
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="oauth2"'


def test_no_credentials(app):
    assert introspect(app, {"token": "x"}, headers={}, status=401).json["error"] == "invalid_client"


def test_missing_token_parameter(app):
    response = introspect(app, {"token_type_hint": "access_token"}, status=400)
    assert response.json == {"error": "invalid_request", "error_description": "token is required"}


def test_get_is_not_allowed(app):
    response = app.get(INTROSPECT, headers=RS_AUTH, status=405)
    assert response.headers["Allow"] == "POST"


def test_body_must_be_a_form(app):
    headers = {**RS_AUTH, "Content-Type": "application/json"}
    assert app.post(INTROSPECT, "{}", headers=headers, status=400).json["error"] == "invalid_request"
