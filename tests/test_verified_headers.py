"""The guard's memo of verified bearer headers (issue 17): fast, and never more lenient than the full way.

A header the guard verified is answered again from the memo only while the
token format's stamp is unchanged, before the token's ``exp``, and with the
scope rules applied to each request. Revocations reach it on every store
with a cache (here in-process, and across stores of one SQLite file as
across processes); ``test_token_cache.py`` and ``test_revocation_workers.py``
revoke across processes and workers, through the same path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, issue_token, register
from fake_clock import FakeClock
from store_fixtures import sqlite_url
from test_token_cache import call, jwt_settings, make, revoke

from oauth_middleware import OAuth2Middleware
from oauth_middleware.demo import DemoApp
from oauth_middleware.errors import StoreUnavailable
from oauth_middleware.models import AccessToken


def stores(tmp_path: Path) -> dict[str, dict[str, str]]:
    return {
        "memory-opaque": {"store": "memory://"},
        "sqlite-opaque": {"store": sqlite_url(tmp_path)},
        "memory-jwt": {"store": "memory://", **jwt_settings()},
        "sqlite-jwt": {"store": sqlite_url(tmp_path), **jwt_settings()},
    }


KINDS = ["memory-opaque", "sqlite-opaque", "memory-jwt", "sqlite-jwt"]


def failing_verify(middleware: OAuth2Middleware, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the full way fail loudly; the tokens it was asked for are listed."""
    asked: list[str] = []

    def verify(token: str) -> AccessToken:
        asked.append(token)
        raise StoreUnavailable("the full way was taken")

    monkeypatch.setattr(middleware.server.tokens, "verify", verify)
    return asked


@pytest.mark.parametrize("kind", KINDS)
def test_a_verified_header_is_answered_again_without_verifying_it(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    middleware = make(**stores(tmp_path)[kind])
    try:
        app = webtest.TestApp(middleware)
        token = issue_token(app)
        assert call(app, token).status_int == 200
        assert len(middleware.guard.verified or ()) == 1
        asked = failing_verify(middleware, monkeypatch)
        response = call(app, token, status=200)
        assert response.json["client_id"] == SERVICE_ID
        assert response.headers["Vary"] == "Authorization"
        assert asked == []
        # Another header (the same token, another spelling of the scheme) goes the full way.
        app.get("/api/me", headers={"Authorization": f"bearer {token}"}, status=503)
        assert asked == [token]
    finally:
        middleware.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_revocation_in_this_process_is_refused_by_the_next_request(tmp_path: Path, kind: str) -> None:
    middleware = make(**stores(tmp_path)[kind])
    try:
        app = webtest.TestApp(middleware)
        token = issue_token(app)
        assert call(app, token).status_int == 200
        assert call(app, token).status_int == 200
        revoke(app, token)
        assert 'error="invalid_token"' in call(app, token, status=401).headers["WWW-Authenticate"]
    finally:
        middleware.close()


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_a_revocation_through_another_store_of_the_sqlite_file_is_refused_at_once(
    tmp_path: Path, token_format: str
) -> None:
    # Two middlewares on one file are two processes as far as the stores know: the change mark
    # is the only way the second hears of the first's revocation.
    settings = {"store": sqlite_url(tmp_path), **(jwt_settings() if token_format == "jwt" else {})}
    first, second = make(**settings), make(**settings)
    try:
        a, b = webtest.TestApp(first), webtest.TestApp(second)
        token = issue_token(a)
        assert call(b, token).status_int == 200
        assert call(b, token).status_int == 200
        revoke(a, token)
        assert call(b, token, status=401).status_int == 401
    finally:
        first.close()
        second.close()


def test_the_token_expiry_is_checked_on_every_answer(tmp_path: Path) -> None:
    clock = FakeClock()
    middleware = make(clock, store="memory://", access_token_ttl="60")
    try:
        app = webtest.TestApp(middleware)
        token = issue_token(app)
        assert call(app, token).status_int == 200
        clock.advance(59)
        assert call(app, token).status_int == 200
        clock.advance(1)
        assert call(app, token, status=401).status_int == 401
    finally:
        middleware.close()


def test_scope_rules_apply_to_each_request_answered_from_the_memo() -> None:
    middleware = make(store="memory://", scope_rules="GET /api/* read\nPOST /api/* write")
    try:
        app = webtest.TestApp(middleware)
        token = issue_token(app)  # read only
        assert call(app, token).status_int == 200
        response = app.post("/api/me", headers={"Authorization": f"Bearer {token}"}, status=403)
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
        assert call(app, token).status_int == 200
    finally:
        middleware.close()


def test_a_second_token_in_the_query_string_is_refused_though_the_header_is_remembered() -> None:
    middleware = make(store="memory://", token_from_query="true")
    try:
        app = webtest.TestApp(middleware)
        token = issue_token(app)
        assert call(app, token).status_int == 200
        response = app.get(
            f"/api/me?access_token={token}", headers={"Authorization": f"Bearer {token}"}, status=400
        )
        assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    finally:
        middleware.close()


def test_a_revocation_racing_the_verification_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    # The token is read as live, then revoked before the guard finishes: this request passes
    # (it was in flight), but the verdict must not answer the next one.
    middleware = make(store="memory://")
    try:
        app = webtest.TestApp(middleware)
        token = issue_token(app)
        tokens = middleware.server.tokens
        verify = tokens.verify

        def verify_then_revoke(presented: str) -> AccessToken:
            access = verify(presented)
            tokens.revoke(access)
            return access

        monkeypatch.setattr(tokens, "verify", verify_then_revoke)
        assert call(app, token).status_int == 200
        monkeypatch.setattr(tokens, "verify", verify)
        assert call(app, token, status=401).status_int == 401
    finally:
        middleware.close()


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"guard_cache_size": "0"}, id="guard-cache-off"),
        pytest.param({**jwt_settings(), "jwt_cache_size": "0"}, id="jwt-cache-off"),
    ],
)
def test_nothing_is_remembered_when_the_caches_are_off(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    middleware = make(store="memory://", **settings)
    try:
        app = webtest.TestApp(middleware)
        token = issue_token(app)
        assert call(app, token).status_int == 200
        asked = failing_verify(middleware, monkeypatch)
        assert call(app, token, status=503).status_int == 503
        assert asked == [token]
    finally:
        middleware.close()


def test_the_memo_keeps_at_most_guard_cache_size_headers() -> None:
    middleware = make(store="memory://", guard_cache_size="2")
    try:
        app = webtest.TestApp(middleware)
        for _ in range(5):
            assert call(app, issue_token(app)).status_int == 200
        assert len(middleware.guard.verified or ()) == 2
    finally:
        middleware.close()


def test_a_dpop_bound_token_sent_as_bearer_is_refused_every_time() -> None:
    middleware = OAuth2Middleware(
        DemoApp(),
        issuer="http://localhost",
        require_https="false",
        scopes="read",
        token_types="Bearer DPoP",
    )
    try:
        register(middleware, SERVICE_ID, SERVICE_SECRET, grant_types=["client_credentials"], scopes=["read"])
        app = webtest.TestApp(middleware)
        token = middleware.server.tokens.issue(
            client_id=SERVICE_ID, user_id=None, scopes=("read",), extra={}, family=None, jkt="thumbprint"
        )
        for _ in range(2):
            call(app, token.token, status=401)
        assert len(middleware.guard.verified or ()) == 0
    finally:
        middleware.close()


def test_basic_auth_header_is_not_confused_with_a_bearer_token() -> None:
    middleware = make(store="memory://")
    try:
        app = webtest.TestApp(middleware)
        app.get("/api/me", headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}, status=401)
        assert len(middleware.guard.verified or ()) == 0
    finally:
        middleware.close()
