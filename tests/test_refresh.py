"""Refresh token grant (RFC 6749 §6): rotation, reuse detection, scope, lifetimes, concurrency."""

from __future__ import annotations

import time

import pytest
import webtest
from conftest import register
from oauth_flows import (
    NATIVE_ID,
    NATIVE_REDIRECT,
    TOKEN,
    api_status,
    flow_middleware,
    get_code,
    redeem,
)

from oauth_middleware.models import digest


@pytest.fixture
def middleware(make_middleware):
    return flow_middleware(make_middleware)


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware)


def first_tokens(app, scope="read write"):
    return redeem(app, get_code(app, scope=scope))


def refresh(app, refresh_token, *, status=200, client_id=NATIVE_ID, **extra):
    params = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id, **extra}
    return app.post(TOKEN, params, status=status).json


class Clock:
    """Moves ``time.time`` forward for everything (grants, stores)."""

    def __init__(self, monkeypatch):
        self.offset = 0.0
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + self.offset)

    def advance(self, seconds):
        self.offset += seconds


def test_refresh_rotates(app):
    tokens = first_tokens(app)
    new = refresh(app, tokens["refresh_token"])
    assert new["token_type"] == "Bearer"
    assert new["scope"] == "read write"
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token"] != tokens["refresh_token"]
    assert api_status(app, new["access_token"]) == 200
    # Rotation does not revoke the access token issued alongside the old refresh token.
    assert api_status(app, tokens["access_token"]) == 200


def test_refresh_tokens_are_stored_hashed(middleware, app):
    tokens = first_tokens(app)
    store = middleware.server.store
    assert store.get(f"rt:{tokens['refresh_token']}") is None
    assert store.get(f"rt:{digest(tokens['refresh_token'])}")["c"] == NATIVE_ID


def test_reusing_a_rotated_token_revokes_the_family(app, caplog):
    tokens = first_tokens(app)
    second = refresh(app, tokens["refresh_token"])
    third = refresh(app, second["refresh_token"])
    # The first refresh token comes back: stolen, or a broken client. Kill the chain.
    error = refresh(app, tokens["refresh_token"], status=400)
    assert error["error"] == "invalid_grant"
    for access in (tokens["access_token"], second["access_token"], third["access_token"]):
        assert api_status(app, access) == 401
    assert refresh(app, third["refresh_token"], status=400)["error"] == "invalid_grant"
    assert "family revoked" in caplog.text


def test_reuse_leaves_other_families_alone(app):
    mine, other = first_tokens(app), first_tokens(app)
    refresh(app, mine["refresh_token"])
    refresh(app, mine["refresh_token"], status=400)
    assert api_status(app, other["access_token"]) == 200
    assert refresh(app, other["refresh_token"])["token_type"] == "Bearer"


def test_narrower_scope_is_allowed_and_the_grant_keeps_its_scope(app):
    tokens = first_tokens(app)
    narrow = refresh(app, tokens["refresh_token"], scope="read")
    assert narrow["scope"] == "read"
    me = app.get("/api/me", headers={"Authorization": f"Bearer {narrow['access_token']}"}).json
    assert me["scopes"] == ["read"]
    # RFC 6749 §6: the new refresh token has the original grant's scope.
    assert refresh(app, narrow["refresh_token"], scope="read write")["scope"] == "read write"


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("read write admin", id="wider"),
        pytest.param("admin", id="other"),
        pytest.param('r"', id="bad"),
    ],
)
def test_wider_scope_is_invalid_scope_and_keeps_the_token(app, scope):
    tokens = first_tokens(app, scope="read")
    assert refresh(app, tokens["refresh_token"], status=400, scope=scope)["error"] == "invalid_scope"
    assert refresh(app, tokens["refresh_token"])["scope"] == "read"


def test_refresh_token_only_works_for_its_client(middleware, app):
    register(middleware, "other", None, grant_types=["refresh_token"], redirect_uris=[NATIVE_REDIRECT])
    tokens = first_tokens(app)
    assert refresh(app, tokens["refresh_token"], status=400, client_id="other")["error"] == "invalid_grant"
    # ... and the attempt did not use it up.
    assert refresh(app, tokens["refresh_token"])["token_type"] == "Bearer"


def test_client_must_be_registered_for_refresh(middleware, app):
    tokens = first_tokens(app)
    register(
        middleware,
        NATIVE_ID,
        None,
        grant_types=["authorization_code"],
        redirect_uris=[NATIVE_REDIRECT],
        scopes=["read", "write"],
    )
    assert refresh(app, tokens["refresh_token"], status=400)["error"] == "unauthorized_client"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"refresh_token": None}, "invalid_request", id="missing"),
        pytest.param({"refresh_token": "nope"}, "invalid_grant", id="unknown"),
    ],
)
def test_bad_refresh_requests(app, params, error):
    body = {"grant_type": "refresh_token", "client_id": NATIVE_ID, **params}
    body = {key: value for key, value in body.items() if value is not None}
    assert app.post(TOKEN, body, status=400).json["error"] == error


def test_access_token_cannot_refresh(app):
    tokens = first_tokens(app)
    assert refresh(app, tokens["access_token"], status=400)["error"] == "invalid_grant"


def test_without_rotation_the_token_stays(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, rotate_refresh_tokens="false"))
    tokens = first_tokens(app)
    first = refresh(app, tokens["refresh_token"])
    assert "refresh_token" not in first
    assert refresh(app, tokens["refresh_token"])["token_type"] == "Bearer"


def test_grace_period_lets_the_same_client_retry(make_middleware, monkeypatch):
    clock = Clock(monkeypatch)
    middleware = flow_middleware(make_middleware, refresh_token_reuse_grace="10")
    register(middleware, "other", None, grant_types=["refresh_token"], redirect_uris=[NATIVE_REDIRECT])
    app = webtest.TestApp(middleware)
    tokens = first_tokens(app)
    lost = refresh(app, tokens["refresh_token"])  # the client never sees this answer
    clock.advance(5)
    retry = refresh(app, tokens["refresh_token"])
    assert retry["token_type"] == "Bearer" and retry["refresh_token"] != lost["refresh_token"]
    # Another client gets nothing, grace or not.
    assert refresh(app, tokens["refresh_token"], status=400, client_id="other")["error"] == "invalid_grant"
    assert api_status(app, retry["access_token"]) == 401  # ... and the family is revoked


def test_after_the_grace_period_reuse_revokes(make_middleware, monkeypatch):
    clock = Clock(monkeypatch)
    app = webtest.TestApp(flow_middleware(make_middleware, refresh_token_reuse_grace="10"))
    tokens = first_tokens(app)
    new = refresh(app, tokens["refresh_token"])
    clock.advance(11)
    assert refresh(app, tokens["refresh_token"], status=400)["error"] == "invalid_grant"
    assert api_status(app, new["access_token"]) == 401


def test_reuse_racing_a_grace_retry_revokes_the_retry_tokens(make_middleware, monkeypatch):
    """A reuse that lands while a grace-period retry is issuing must not leave the retry's tokens alive."""
    middleware = flow_middleware(make_middleware, refresh_token_reuse_grace="10")
    app = webtest.TestApp(middleware)
    tokens = first_tokens(app)
    refresh(app, tokens["refresh_token"])  # rotated; the answer is "lost"
    grant = middleware.server.grants["refresh_token"]
    issue = grant._issue
    repository = middleware.server.repository
    token_id = digest(tokens["refresh_token"])

    def issue_while_reuse_lands(*args, **kwargs):
        # The concurrent reuse lands after the grace check, before our tokens exist.
        marker = repository.rotated_refresh_token(token_id)
        repository.mark_refresh_reused(token_id, marker, 60)
        repository.revoke_family(marker.token.family)
        return issue(*args, **kwargs)

    monkeypatch.setattr(grant, "_issue", issue_while_reuse_lands)
    retry = refresh(app, tokens["refresh_token"])
    assert api_status(app, retry["access_token"]) == 401
    monkeypatch.setattr(grant, "_issue", issue)
    assert refresh(app, retry["refresh_token"], status=400)["error"] == "invalid_grant"


def test_no_grace_by_default(app):
    tokens = first_tokens(app)
    refresh(app, tokens["refresh_token"])
    assert refresh(app, tokens["refresh_token"], status=400)["error"] == "invalid_grant"


def test_refresh_token_ttl_counts_from_the_grant(make_middleware, monkeypatch):
    clock = Clock(monkeypatch)
    app = webtest.TestApp(flow_middleware(make_middleware, refresh_token_ttl="100"))
    tokens = first_tokens(app)
    clock.advance(60)
    rotated = refresh(app, tokens["refresh_token"])
    clock.advance(41)  # 101 s after the grant: rotation did not extend the chain
    assert refresh(app, rotated["refresh_token"], status=400)["error"] == "invalid_grant"


def test_default_refresh_token_ttl_is_fourteen_days(app, monkeypatch):
    clock = Clock(monkeypatch)
    tokens = first_tokens(app)
    clock.advance(14 * 86400 - 60)
    rotated = refresh(app, tokens["refresh_token"])
    clock.advance(61)
    assert refresh(app, rotated["refresh_token"], status=400)["error"] == "invalid_grant"


def test_idle_expiry(make_middleware, monkeypatch):
    clock = Clock(monkeypatch)
    app = webtest.TestApp(flow_middleware(make_middleware, refresh_token_idle_ttl="50"))
    tokens = first_tokens(app)
    clock.advance(40)
    rotated = refresh(app, tokens["refresh_token"])  # used in time: a new 50 s
    clock.advance(40)
    rotated = refresh(app, rotated["refresh_token"])
    clock.advance(51)
    assert refresh(app, rotated["refresh_token"], status=400)["error"] == "invalid_grant"
