"""The unique_tokens setting: one live access token per client, user, grant type and scope set."""

from __future__ import annotations

import time

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic
from oauth_flows import NATIVE_ID, TOKEN, api_status, flow_middleware, get_code, redeem

SERVICE = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}


@pytest.fixture
def app(make_middleware):
    return webtest.TestApp(
        flow_middleware(
            make_middleware,
            unique_tokens="true",
            grants="authorization_code refresh_token client_credentials password",
        )
    )


def client_credentials(app, scope="read"):
    return app.post(TOKEN, {"grant_type": "client_credentials", "scope": scope}, headers=SERVICE).json


def password(app, user="alice", scope="read"):
    params = {
        "grant_type": "password",
        "client_id": NATIVE_ID,
        "username": user,
        "password": f"{user}-password",
        "scope": scope,
    }
    return app.post(TOKEN, params).json


def test_same_combination_gets_the_same_token(app):
    first = client_credentials(app)
    second = client_credentials(app)
    assert second["access_token"] == first["access_token"]
    assert 0 < second["expires_in"] <= first["expires_in"]


def test_different_scope_user_or_grant_gets_another_token(app):
    base = password(app)
    assert password(app)["access_token"] == base["access_token"]
    assert password(app, scope="read write")["access_token"] != base["access_token"]
    assert password(app, user="bob")["access_token"] != base["access_token"]
    # Same client, user and scope through another grant: another token.
    code_token = redeem(app, get_code(app, scope="read"))
    assert code_token["access_token"] != base["access_token"]


def test_reused_token_reports_its_remaining_life(app, monkeypatch):
    first = client_credentials(app)
    later = time.time() + 1000
    monkeypatch.setattr(time, "time", lambda: later)
    second = client_credentials(app)
    assert second["access_token"] == first["access_token"]
    assert first["expires_in"] - 1001 <= second["expires_in"] <= first["expires_in"] - 999


def test_expired_or_revoked_token_is_replaced(make_middleware, monkeypatch):
    middleware = flow_middleware(make_middleware, unique_tokens="true")
    app = webtest.TestApp(middleware)
    first = client_credentials(app)
    from oauth_middleware.models import digest

    middleware.server.repository.revoke_access_token(digest(first["access_token"]))
    second = client_credentials(app)
    assert second["access_token"] != first["access_token"]
    assert api_status(app, second["access_token"]) == 200
    later = time.time() + 3601
    monkeypatch.setattr(time, "time", lambda: later)
    assert client_credentials(app)["access_token"] != second["access_token"]


class RecordingStore:
    """A memory store that remembers every value written."""

    def __init__(self):
        from oauth_middleware.stores.memory import MemoryStore

        self.store, self.written = MemoryStore(), {}

    def put(self, key, value, ttl):
        self.written[key] = value
        self.store.put(key, value, ttl)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_kept_token_is_encrypted_in_the_store(make_middleware):
    store = RecordingStore()
    middleware = flow_middleware(make_middleware, unique_tokens="true", store_backend=store)
    token = client_credentials(webtest.TestApp(middleware))["access_token"]
    kept = {key: value for key, value in store.written.items() if key.startswith("unique:")}
    assert len(kept) == 1
    assert token not in repr(kept)


def test_another_process_without_the_secret_mints_a_new_token(make_middleware):
    first = flow_middleware(make_middleware, unique_tokens="true")
    second = flow_middleware(make_middleware, unique_tokens="true", store_backend=first.server.store)
    token = client_credentials(webtest.TestApp(first))["access_token"]
    assert client_credentials(webtest.TestApp(second))["access_token"] != token
    secret = "shared-secret-for-unique-tokens-0123456789"
    third = flow_middleware(make_middleware, unique_tokens="true", session_secret=secret)
    fourth = flow_middleware(
        make_middleware, unique_tokens="true", session_secret=secret, store_backend=third.server.store
    )
    token = client_credentials(webtest.TestApp(third))["access_token"]
    assert client_credentials(webtest.TestApp(fourth))["access_token"] == token


def test_off_by_default(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware))
    assert client_credentials(app)["access_token"] != client_credentials(app)["access_token"]


def test_revoked_jwt_is_not_handed_out_again(make_middleware, tmp_path):
    """Regression: with JWTs the guard may skip the deny list, the unique-token lookup must not."""
    from jwt_keys import jwt_settings

    app = webtest.TestApp(make_middleware(unique_tokens="true", **jwt_settings(None, "HS256")))
    first = client_credentials(app)["access_token"]
    assert client_credentials(app)["access_token"] == first
    app.post("/oauth/revoke", {"token": first}, headers=SERVICE)
    second = client_credentials(app)["access_token"]
    assert second != first


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_replaying_a_later_code_revokes_the_token_it_handed_out_again(make_middleware, token_format):
    """Regression: the token handed out again for a second code was not in that code's family,
    so replaying the second code left it working (RFC 6749 §4.1.2: revoke what the grant produced)."""
    from jwt_keys import jwt_settings

    settings = {"unique_tokens": "true"}
    if token_format == "jwt":
        settings.update(
            jwt_settings(
                None, "HS256", grants="authorization_code refresh_token", jwt_check_revocation="true"
            )
        )
    app = webtest.TestApp(flow_middleware(make_middleware, **settings))
    first = redeem(app, get_code(app))
    code = get_code(app)
    second = redeem(app, code)
    assert second["access_token"] == first["access_token"]  # handed out again
    redeem(app, code, status=400)  # the replay
    assert api_status(app, second["access_token"]) == 401


def test_reusing_a_refresh_token_revokes_the_token_it_handed_out_again(app):
    def refresh(refresh_token, status=200):
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": NATIVE_ID}
        return app.post(TOKEN, params, status=status).json

    first_chain, second_chain = redeem(app, get_code(app)), redeem(app, get_code(app))
    first = refresh(first_chain["refresh_token"])
    second = refresh(second_chain["refresh_token"])
    assert second["access_token"] == first["access_token"]  # handed out again
    refresh(second_chain["refresh_token"], status=400)  # a rotated token presented again
    assert api_status(app, second["access_token"]) == 401
