"""Data on tokens (issue 18 item 1): from the user hooks and ``token_claims`` to the app,
introspection and the JWT, through refresh, on every store; bad data dropped, never a 5xx."""

from __future__ import annotations

import logging

import jwt
import pytest
import token_hooks
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, register
from oauth_flows import (
    NATIVE_ID,
    TOKEN,
    USERS,
    code_request,
    flow_middleware,
    get_code,
    location_params,
    redeem,
)
from peer_issuer import ACCESS_TOKEN_TYPE, JWT_BEARER, JWT_TYPE, TOKEN_EXCHANGE, issuer_file, peer_jwt
from store_fixtures import backend, store  # noqa: F401

from oauth_middleware.demo import DemoApp
from oauth_middleware.errors import ConfigError
from oauth_middleware.middleware import OAuth2Middleware

SECRET = "s" * 32
JWT = {
    "token_format": "jwt",
    "jwt_algorithm": "HS256",
    "jwt_secret": SECRET,
    "audience": "https://api.example",
}
INTROSPECT = "/oauth/introspect"


def middleware_with(make_middleware, token_format="opaque", **settings):
    """The flow clients and users; the native client carries ``tenant=acme``."""
    settings.setdefault("verify_password", "token_hooks:verify_password")
    settings.setdefault("token_claims", "token_hooks:token_claims")
    settings.setdefault("grants", "authorization_code refresh_token client_credentials password")
    middleware = flow_middleware(
        make_middleware,
        introspection_clients=SERVICE_ID,
        **(JWT if token_format == "jwt" else {}),
        **settings,
    )
    native = middleware.server.repository.get_client(NATIVE_ID)
    register(
        middleware,
        NATIVE_ID,
        None,
        redirect_uris=list(native.redirect_uris),
        grant_types=list(native.grant_types),
        scopes=list(native.scopes),
        meta={"tenant": "acme"},
    )
    return middleware


def seen_by_app(app, token):
    return app.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json["extra"]


def introspected(app, token, hint=None):
    form = {"token": token, **({"token_type_hint": hint} if hint else {})}
    return app.post(INTROSPECT, form, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}).json


def refresh(app, refresh_token):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": NATIVE_ID}
    return app.post(TOKEN, form).json


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_login_data_and_hook_data_travel_code_access_refresh_access(make_middleware, store, token_format):  # noqa: F811
    app = webtest.TestApp(middleware_with(make_middleware, token_format, store_backend=store))
    expected = {
        "roles": ["alice-role"],
        "via": "verify_password",
        "tenant": "acme",
        "grant": "authorization_code",
        "for": "alice",
        "scopes": ["read"],
        "saw": ["roles", "via"],
    }
    first = redeem(app, get_code(app))
    assert seen_by_app(app, first["access_token"]) == expected
    assert introspected(app, first["access_token"])["ext"] == expected
    assert introspected(app, first["refresh_token"], "refresh_token")["ext"] == expected
    if token_format == "jwt":
        claims = jwt.decode(first["access_token"], options={"verify_signature": False})
        assert claims["ext"] == expected
    second = refresh(app, first["refresh_token"])
    third = refresh(app, second["refresh_token"])
    for body in (second, third):
        assert seen_by_app(app, body["access_token"]) == expected
        assert introspected(app, body["access_token"])["ext"] == expected


def test_password_grant_data(make_middleware):
    app = webtest.TestApp(middleware_with(make_middleware))
    body = app.post(
        TOKEN, {"grant_type": "password", "username": "bob", "password": USERS["bob"], "client_id": NATIVE_ID}
    ).json
    data = seen_by_app(app, body["access_token"])
    assert data["roles"] == ["bob-role"] and data["grant"] == "password" and data["for"] == "bob"
    assert seen_by_app(app, refresh(app, body["refresh_token"])["access_token"]) == data


def test_client_credentials_get_the_hook_data_only(make_middleware):
    app = webtest.TestApp(middleware_with(make_middleware))
    body = app.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
    ).json
    assert seen_by_app(app, body["access_token"]) == {
        "tenant": "-",
        "grant": "client_credentials",
        "for": None,
        "scopes": ["read", "write"],
        "saw": [],
    }


def test_authenticate_user_data(make_middleware):
    app = webtest.TestApp(middleware_with(make_middleware, authenticate_user="token_hooks:authenticate_user"))
    page = app.get("/oauth/authorize", code_request(), headers={"X-Test-User": "carol"})
    answer = page.forms[0].submit("decision", value="approve", headers={"X-Test-User": "carol"}, status=303)
    data = seen_by_app(app, redeem(app, location_params(answer.headers["Location"])["code"])["access_token"])
    assert data["via"] == "authenticate_user" and data["for"] == "carol"


def test_remote_user_data_from_upstream(make_middleware):
    middleware = middleware_with(make_middleware)

    def upstream(environ, start_response):
        # An upstream login component: the user and their data.
        environ["REMOTE_USER"] = "dave"
        environ["oauth2.user_data"] = {"via": "upstream", "groups": ["ops"]}
        return middleware(environ, start_response)

    app = webtest.TestApp(upstream)
    page = app.get("/oauth/authorize", code_request())
    answer = page.forms[0].submit("decision", value="approve", status=303)
    data = seen_by_app(app, redeem(app, location_params(answer.headers["Location"])["code"])["access_token"])
    assert data["via"] == "upstream" and data["groups"] == ["ops"] and data["for"] == "dave"


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_data_never_overrides_registered_claims(make_middleware, token_format):
    app = webtest.TestApp(
        middleware_with(make_middleware, token_format, token_claims="token_hooks:token_claims_registered")
    )
    token = redeem(app, get_code(app))["access_token"]
    info = introspected(app, token)
    assert info["active"] is True
    assert (info["sub"], info["scope"], info["client_id"]) == ("alice", "read", NATIVE_ID)
    assert info["ext"]["sub"] == "mallory"
    if token_format == "jwt":
        claims = jwt.decode(token, options={"verify_signature": False})
        assert (claims["sub"], claims["scope"], claims["client_id"]) == ("alice", "read", NATIVE_ID)
        assert claims["exp"] > 1
    assert app.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json["user"] == "alice"


BAD_DATA = [
    pytest.param({"blob": "x" * 2000}, "bytes, over token_data_max_bytes = 1024", id="too-large"),
    pytest.param({"when": object()}, "not JSON", id="not-json"),
    pytest.param({"nan": float("nan")}, "not JSON", id="nan"),
    pytest.param(["a", "list"], "not a JSON object with string keys but list", id="not-an-object"),
    pytest.param({1: "int key"}, "not a JSON object with string keys", id="int-key"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_DATA)
def test_bad_data_from_token_claims_is_dropped_and_logged(make_middleware, caplog, data, reason):
    token_hooks.BAD["data"] = data
    app = webtest.TestApp(middleware_with(make_middleware, token_claims="token_hooks:token_claims_bad"))
    with caplog.at_level(logging.WARNING, "oauth_middleware.token_data"):
        body = redeem(app, get_code(app))
    # The user's data stays; the hook's is dropped; the grant goes on.
    assert seen_by_app(app, body["access_token"]) == {"roles": ["alice-role"], "via": "verify_password"}
    assert "token data from token_claims dropped: " in caplog.text
    assert reason in caplog.text


@pytest.mark.parametrize(("data", "reason"), BAD_DATA)
def test_bad_data_from_verify_password_is_dropped_and_logged(make_middleware, caplog, data, reason):
    token_hooks.BAD["data"] = data
    app = webtest.TestApp(
        middleware_with(make_middleware, verify_password="token_hooks:verify_password_bad", token_claims="")
    )
    with caplog.at_level(logging.WARNING, "oauth_middleware.token_data"):
        body = app.post(
            TOKEN,
            {"grant_type": "password", "username": "bob", "password": USERS["bob"], "client_id": NATIVE_ID},
        )
    assert body.status_int == 200
    assert seen_by_app(app, body.json["access_token"]) == {}
    assert "token data from verify_password dropped" in caplog.text and reason in caplog.text


def test_hook_data_over_the_limit_with_the_users_keeps_the_users(make_middleware, caplog):
    token_hooks.BAD["data"] = {"blob": "x" * 990}
    app = webtest.TestApp(middleware_with(make_middleware, token_claims="token_hooks:token_claims_bad"))
    with caplog.at_level(logging.WARNING, "oauth_middleware.token_data"):
        body = redeem(app, get_code(app))
    assert seen_by_app(app, body["access_token"]) == {"roles": ["alice-role"], "via": "verify_password"}
    assert "token data from token_claims with the user's data dropped" in caplog.text


def test_no_data_setting_zero(make_middleware, caplog):
    app = webtest.TestApp(middleware_with(make_middleware, token_data_max_bytes="0"))
    body = redeem(app, get_code(app))
    assert seen_by_app(app, body["access_token"]) == {}
    assert "ext" not in introspected(app, body["access_token"])


def test_token_claims_must_be_importable():
    with pytest.raises(ConfigError, match="token_claims"):
        OAuth2Middleware(
            DemoApp(), issuer="http://localhost", store="memory://", token_claims="nope.nothing:here"
        )


@pytest.mark.parametrize("name", ["sub", "scope", "cnf", "active", "username", "token_type", "act"])
def test_the_data_claim_may_not_be_a_registered_name(name):
    with pytest.raises(ConfigError, match="jwt_extra_claim: expected a claim name other than"):
        OAuth2Middleware(DemoApp(), issuer="http://localhost", store="memory://", jwt_extra_claim=name)


# -- the grants of issue 13: JWT bearer and token exchange --------------------

FRONT, FRONT_SECRET = "frontend", "frontend-secret-0123456789"
RELYING, RELYING_SECRET = "relying", "relying-secret-0123456789"


def delegating_app(make_middleware, tmp_path, token_format="opaque", **settings):
    """The token-data server with the JWT bearer grant and token exchange, and a confidential
    client for each: ``frontend`` (password, token exchange), ``relying`` (JWT bearer)."""
    middleware = middleware_with(
        make_middleware,
        token_format,
        grants=f"authorization_code refresh_token client_credentials password {JWT_BEARER} {TOKEN_EXCHANGE}",
        trusted_issuers_file=issuer_file(tmp_path),
        **settings,
    )
    register(
        middleware, FRONT, FRONT_SECRET, grant_types=["password", TOKEN_EXCHANGE], scopes=["read", "write"]
    )
    register(middleware, RELYING, RELYING_SECRET, grant_types=[JWT_BEARER], scopes=["read"])
    return webtest.TestApp(middleware)


def exchanged(app, subject_token, subject_token_type=ACCESS_TOKEN_TYPE):
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": subject_token_type,
        "scope": "read",
    }
    return app.post(TOKEN, form, headers={"Authorization": basic(FRONT, FRONT_SECRET)}).json


def front_password_token(app):
    form = {"grant_type": "password", "username": "alice", "password": USERS["alice"], "scope": "read write"}
    return app.post(TOKEN, form, headers={"Authorization": basic(FRONT, FRONT_SECRET)}).json["access_token"]


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_an_exchanged_token_carries_the_subject_tokens_data(make_middleware, tmp_path, token_format):
    app = delegating_app(make_middleware, tmp_path, token_format, token_claims="")
    subject = front_password_token(app)
    assert seen_by_app(app, subject) == {"roles": ["alice-role"], "via": "verify_password"}
    token = exchanged(app, subject)["access_token"]
    assert seen_by_app(app, token) == {"roles": ["alice-role"], "via": "verify_password"}
    assert introspected(app, token)["ext"] == {"roles": ["alice-role"], "via": "verify_password"}
    if token_format == "jwt":
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["ext"] == {"roles": ["alice-role"], "via": "verify_password"}


def test_token_claims_adds_to_an_exchanged_tokens_data(make_middleware, tmp_path):
    app = delegating_app(make_middleware, tmp_path)
    token = exchanged(app, front_password_token(app))["access_token"]
    data = seen_by_app(app, token)
    # The subject token's data, with what the hook answers for this grant over it.
    assert (data["roles"], data["via"]) == (["alice-role"], "verify_password")
    assert (data["grant"], data["for"], data["scopes"]) == (TOKEN_EXCHANGE, "alice", ["read"])
    assert {"roles", "via", "grant"} <= set(data["saw"])


def test_a_trusted_issuers_subject_token_and_a_jwt_grant_carry_the_hooks_data_only(make_middleware, tmp_path):
    app = delegating_app(make_middleware, tmp_path)
    from_peer = exchanged(app, peer_jwt(scope="read"), JWT_TYPE)["access_token"]
    by_assertion = app.post(
        TOKEN,
        {"grant_type": JWT_BEARER, "assertion": peer_jwt()},
        headers={"Authorization": basic(RELYING, RELYING_SECRET)},
    ).json["access_token"]
    hooks = {"tenant": "-", "for": "alice", "scopes": ["read"], "saw": []}
    assert seen_by_app(app, from_peer) == {**hooks, "grant": TOKEN_EXCHANGE}
    assert seen_by_app(app, by_assertion) == {**hooks, "grant": JWT_BEARER}
    assert introspected(app, by_assertion)["ext"] == {**hooks, "grant": JWT_BEARER}
