"""Revocation endpoint (RFC 7009), for opaque and JWT access tokens and for refresh tokens."""

from __future__ import annotations

import time

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, allow_body_secret, basic, issue_token, register
from flaky_store import FlakyStore
from jwt_keys import ME, EchoApp, claims, jwt_settings, make_keys, sign
from oauth_flows import NATIVE_ID, TOKEN, USERS, api_status, flow_middleware, get_code, redeem

from oauth_middleware.models import digest
from oauth_middleware.records import RefreshTokenRecord

REVOKE = "/oauth/revoke"
OTHER_ID, OTHER_SECRET = "other", "other-secret-0123456789"
SERVICE_AUTH = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(params=["opaque", "jwt"])
def server(request, make_middleware, keys):
    """A server of either format (JWT guards check the deny list), with two confidential clients and a public one."""
    if request.param == "jwt":
        config = jwt_settings(keys, jwt_check_revocation="true")
    else:
        config = {"grants": "client_credentials"}
    middleware = make_middleware(EchoApp(), **config)
    register(middleware, OTHER_ID, OTHER_SECRET, grant_types=["client_credentials"], scopes=["read"])
    register(
        middleware, "mobile", None, grant_types=["authorization_code"], redirect_uris=["com.example.app:/cb"]
    )
    return middleware


@pytest.fixture
def app(server):
    return webtest.TestApp(server)


def revoke(app, params, headers=SERVICE_AUTH, status=200):
    return app.post(REVOKE, params, headers=headers, status=status)


def works(app, token):
    return app.get(ME, headers={"Authorization": f"Bearer {token}"}, expect_errors=True).status_int == 200


def save_refresh_token(server, client_id, family, token="refresh-token-value-0123456789abcdef"):
    """A refresh record as the refresh grant stores it: by hash, in ``family``."""
    expires_at = int(time.time()) + 86400
    record = RefreshTokenRecord(client_id, "alice", ("read",), expires_at, family, expires_at)
    server.server.repository.save_refresh_token(digest(token), record, 86400)
    return token


def test_revoking_an_access_token(app):
    token = issue_token(app)
    assert works(app, token)
    response = revoke(app, {"token": token})
    assert response.json == {}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type == "application/json"
    assert not works(app, token)


def test_revoking_with_credentials_in_the_body(server, app):
    token = issue_token(app)
    allow_body_secret(server, SERVICE_ID)  # registered for client_secret_post
    revoke(app, {"token": token, "client_id": SERVICE_ID, "client_secret": SERVICE_SECRET}, headers={})
    assert not works(app, token)


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "something_else"])
def test_access_token_is_revoked_whatever_the_hint(app, hint):
    token = issue_token(app)
    revoke(app, {"token": token, "token_type_hint": hint})
    assert not works(app, token)


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_refresh_token_is_revoked_whatever_the_hint(server, app, hint):
    refresh = save_refresh_token(server, SERVICE_ID, "fam")
    params = {"token": refresh} if hint is None else {"token": refresh, "token_type_hint": hint}
    revoke(app, params)
    assert server.server.repository.find_refresh_token(digest(refresh)) is None


def test_revoking_a_refresh_token_revokes_the_access_tokens_of_its_family(server, app):
    tokens = server.server.tokens
    refresh = save_refresh_token(server, SERVICE_ID, "fam-1")
    first = tokens.issue(client_id=SERVICE_ID, user_id="alice", scopes=("read",), extra={}, family="fam-1")
    second = tokens.issue(client_id=SERVICE_ID, user_id="alice", scopes=("read",), extra={}, family="fam-1")
    unrelated = tokens.issue(
        client_id=SERVICE_ID, user_id="alice", scopes=("read",), extra={}, family="fam-2"
    )
    assert works(app, first.token) and works(app, second.token)
    revoke(app, {"token": refresh, "token_type_hint": "refresh_token"})
    assert server.server.repository.find_refresh_token(digest(refresh)) is None
    assert not works(app, first.token)
    assert not works(app, second.token)
    assert works(app, unrelated.token)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("never-issued-token", id="unknown"),
        pytest.param("eyJhbGciOiJub25lIn0.e30.", id="jwt-looking"),
    ],
)
def test_unknown_token_answers_200(app, token):
    # RFC 7009 §2.2: invalid tokens do not cause an error response.
    assert revoke(app, {"token": token}).json == {}


def test_revoking_twice_answers_200_both_times(app):
    token = issue_token(app)
    revoke(app, {"token": token})
    assert revoke(app, {"token": token}).status_int == 200


def test_expired_jwt_answers_200_and_stores_nothing(make_middleware, keys):
    middleware = make_middleware(EchoApp(), **jwt_settings(keys))
    app = webtest.TestApp(middleware)
    now = int(time.time())
    expired = sign(claims(exp=now - 60, iat=now - 700, jti="expired-jti"), keys.rsa, kid=keys.rsa_kid)
    live = sign(claims(jti="live-jti"), keys.rsa, kid=keys.rsa_kid)
    revoke(app, {"token": expired})
    revoke(app, {"token": live})
    assert not middleware.server.repository.is_jwt_denied("expired-jti")
    assert middleware.server.repository.is_jwt_denied("live-jti")  # the control


def test_a_client_cannot_revoke_another_clients_access_token(app):
    token = issue_token(app)
    response = revoke(
        app, {"token": token}, headers={"Authorization": basic(OTHER_ID, OTHER_SECRET)}, status=400
    )
    assert response.json["error"] == "invalid_grant"
    assert response.headers["Cache-Control"] == "no-store"
    assert works(app, token)


def test_a_client_cannot_revoke_another_clients_refresh_token(server, app):
    refresh = save_refresh_token(server, SERVICE_ID, "fam-3")
    access = server.server.tokens.issue(
        client_id=SERVICE_ID, user_id="alice", scopes=(), extra={}, family="fam-3"
    )
    response = revoke(
        app, {"token": refresh}, headers={"Authorization": basic(OTHER_ID, OTHER_SECRET)}, status=400
    )
    assert response.json["error"] == "invalid_grant"
    assert server.server.repository.find_refresh_token(digest(refresh)) is not None
    assert works(app, access.token)


def test_a_public_client_revokes_its_own_token_by_identifying_itself(server, app):
    access = server.server.tokens.issue(client_id="mobile", user_id="alice", scopes=(), extra={}, family=None)
    revoke(app, {"token": access.token, "client_id": "mobile"}, headers={})
    assert not works(app, access.token)


def test_a_public_client_cannot_revoke_a_confidential_clients_token(app):
    token = issue_token(app)
    response = revoke(app, {"token": token, "client_id": "mobile"}, headers={}, status=400)
    assert response.json["error"] == "invalid_grant"
    assert works(app, token)


# -- errors --------------------------------------------------------------------------


def test_confidential_client_must_authenticate(app):
    token = issue_token(app)
    response = revoke(app, {"token": token, "client_id": SERVICE_ID}, headers={}, status=401)
    assert response.json["error"] == "invalid_client"
    assert works(app, token)


def test_no_client_at_all(app):
    response = revoke(app, {"token": "x"}, headers={}, status=401)
    assert response.json["error"] == "invalid_client"


def test_wrong_secret_gets_a_basic_challenge(app):
    token = issue_token(app)
    response = revoke(
        app, {"token": token}, headers={"Authorization": basic(SERVICE_ID, "wrong")}, status=401
    )
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="oauth2"'
    assert works(app, token)


def test_missing_token_parameter(app):
    response = revoke(app, {"token_type_hint": "access_token"}, status=400)
    assert response.json == {"error": "invalid_request", "error_description": "token is required"}


def test_repeated_token_parameter(app):
    response = app.post(REVOKE, "token=a&token=b", headers=SERVICE_AUTH, status=400)
    assert response.json["error"] == "invalid_request"


def test_two_authentication_methods(app):
    response = revoke(app, {"token": "a", "client_secret": SERVICE_SECRET}, status=400)
    assert response.json["error"] == "invalid_request"


def test_get_is_not_allowed(app):
    response = app.get(REVOKE, headers=SERVICE_AUTH, status=405)
    assert response.headers["Allow"] == "POST"
    assert response.json["error"] == "invalid_request"


def test_body_must_be_a_form(app):
    response = app.post(
        REVOKE, '{"token": "x"}', headers={**SERVICE_AUTH, "Content-Type": "application/json"}, status=400
    )
    assert response.json["error"] == "invalid_request"


def test_store_down_answers_503(make_middleware):
    store = FlakyStore()
    app = webtest.TestApp(make_middleware(EchoApp(), store_backend=store, grants="client_credentials"))
    token = issue_token(app)
    store.down = True
    response = revoke(app, {"token": token}, status=503)
    assert response.json["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"]


# -- end to end through the real password, refresh and code grants ---------------------------


@pytest.fixture(params=["opaque", "jwt"])
def flows(request, make_middleware, keys):
    """The three-legged test setup (users, public ``native`` client) in either token format."""
    grants = "authorization_code refresh_token client_credentials password"
    config = jwt_settings(keys, grants=grants, jwt_check_revocation="true") if request.param == "jwt" else {}
    config.setdefault("grants", grants)
    return webtest.TestApp(flow_middleware(make_middleware, **config))


def password_tokens(app):
    body = app.post(
        TOKEN,
        {"grant_type": "password", "username": "alice", "password": USERS["alice"], "client_id": NATIVE_ID},
    ).json
    return body["access_token"], body["refresh_token"]


def refresh(app, refresh_token, status=200):
    params = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": NATIVE_ID}
    return app.post(TOKEN, params, status=status).json


def test_revoking_a_rotated_chain_kills_every_access_token_of_it(flows):
    first_access, first_refresh = password_tokens(flows)
    rotated = refresh(flows, first_refresh)
    second_access, second_refresh = rotated["access_token"], rotated["refresh_token"]
    assert api_status(flows, first_access) == api_status(flows, second_access) == 200
    revoke(flows, {"token": second_refresh, "client_id": NATIVE_ID}, headers={})
    assert api_status(flows, first_access) == 401
    assert api_status(flows, second_access) == 401
    assert refresh(flows, second_refresh, status=400)["error"] == "invalid_grant"


def test_revoking_an_access_token_leaves_the_refresh_token(flows):
    access, refresh_token = password_tokens(flows)
    revoke(flows, {"token": access, "client_id": NATIVE_ID}, headers={})
    assert api_status(flows, access) == 401
    fresh = refresh(flows, refresh_token)
    assert api_status(flows, fresh["access_token"]) == 200


def test_reusing_a_rotated_refresh_token_revokes_the_jwts_of_the_family_too(flows):
    access, first_refresh = password_tokens(flows)
    rotated = refresh(flows, first_refresh)
    assert refresh(flows, first_refresh, status=400)["error"] == "invalid_grant"  # reuse: family revoked
    assert api_status(flows, access) == 401
    assert api_status(flows, rotated["access_token"]) == 401


def test_revoking_the_refresh_token_of_a_code_grant(flows):
    tokens = redeem(flows, get_code(flows))
    revoke(
        flows,
        {"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": NATIVE_ID},
        headers={},
    )
    assert api_status(flows, tokens["access_token"]) == 401


def test_another_client_cannot_revoke_a_token_from_the_code_flow(flows):
    tokens = redeem(flows, get_code(flows))
    response = revoke(flows, {"token": tokens["refresh_token"]}, status=400)
    assert response.json["error"] == "invalid_grant"
    assert api_status(flows, tokens["access_token"]) == 200
    assert refresh(flows, tokens["refresh_token"])["access_token"]
