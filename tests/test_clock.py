"""Time as a parameter: every expiry follows the clock given to the middleware (issue 11 item 8).

Each test moves a :class:`FakeClock` instead of sleeping; each would fail if
some part still read the real clock (the real time never moves that far).
"""

from __future__ import annotations

import ipaddress
import time

import jwt
import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic
from jwt_keys import jwt_settings, make_keys
from oauth_flows import NATIVE_ID, TOKEN, USERS, api_status, code_request, flow_middleware, get_code, redeem

from oauth_middleware import throttle
from oauth_middleware.proxies import Origin

GRANTS = "authorization_code refresh_token client_credentials password"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def app(make_middleware, clock):
    return webtest.TestApp(flow_middleware(make_middleware, grants=GRANTS, clock=clock))


def refresh(app, refresh_token, status=200):
    params = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": NATIVE_ID}
    return app.post(TOKEN, params, status=status).json


def client_token(app):
    return app.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
    ).json


def test_a_code_expires_by_the_clock(app, clock):
    code = get_code(app)
    clock.advance(600 + 1)  # code_ttl
    assert redeem(app, code, status=400)["error"] == "invalid_grant"


def test_an_access_token_expires_by_the_clock(app, clock):
    token = client_token(app)["access_token"]
    assert api_status(app, token) == 200
    clock.advance(3600 - 1)
    assert api_status(app, token) == 200
    clock.advance(2)  # access_token_ttl passed
    assert api_status(app, token) == 401


def test_a_refresh_token_expires_by_the_clock(make_middleware, clock):
    app = webtest.TestApp(
        flow_middleware(make_middleware, grants=GRANTS, refresh_token_ttl="100", clock=clock)
    )
    tokens = redeem(app, get_code(app))
    clock.advance(101)
    assert refresh(app, tokens["refresh_token"], status=400)["error"] == "invalid_grant"


def test_the_reuse_grace_runs_on_the_clock(make_middleware, clock):
    app = webtest.TestApp(
        flow_middleware(make_middleware, grants=GRANTS, refresh_token_reuse_grace="10", clock=clock)
    )
    tokens = redeem(app, get_code(app))
    rotated = refresh(app, tokens["refresh_token"])
    clock.advance(5)
    retried = refresh(app, tokens["refresh_token"])  # within the grace: a lost answer retried
    clock.advance(6)
    assert refresh(app, tokens["refresh_token"], status=400)["error"] == "invalid_grant"
    # Past the grace it is a reuse: the whole family is revoked.
    assert api_status(app, rotated["access_token"]) == 401
    assert api_status(app, retried["access_token"]) == 401


def test_jwt_times_come_from_the_clock(make_middleware, keys, clock):
    clock.advance(-7200)  # two hours ago: the real clock would put iat and exp elsewhere
    middleware = make_middleware(**jwt_settings(keys), clock=clock)
    app = webtest.TestApp(middleware)
    token = client_token(app)["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iat"] == int(clock.time())
    assert claims["exp"] == int(clock.time()) + 3600
    # By the real clock this token expired an hour ago; by the server's it is live.
    assert app.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_int == 200
    clock.advance(3600 + 10 + 1)  # past exp and the leeway
    middleware.server.tokens.cache.clear()  # the signature check itself, not only the cache
    app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=401)


def test_a_login_session_expires_by_the_clock(make_middleware, clock):
    app = webtest.TestApp(flow_middleware(make_middleware, grants=GRANTS, session_ttl="60", clock=clock))
    page = app.get("/oauth/authorize", code_request())
    form = page.forms[0]
    form["username"], form["password"] = "alice", USERS["alice"]
    form.submit()
    assert app.get("/oauth/authorize", code_request()).forms[0]["step"].value == "consent"  # logged in
    clock.advance(61)
    assert app.get("/oauth/authorize", code_request()).forms[0]["step"].value != "consent"


def test_a_full_counter_waits_on_the_clock_not_the_wall(make_middleware, clock):
    """Attempts still being checked fill the counter: the wait is ``MAX_WAIT`` on the clock, then 429."""
    middleware = make_middleware(throttle_max_failures="2", clock=clock)
    app = webtest.TestApp(middleware)
    throttled = middleware.server.throttle
    counters = throttled.counters(Origin(ipaddress.ip_address("192.0.2.1"), "http"), f"client:{SERVICE_ID}")
    for _ in range(2):  # two attempts counted and never answered: still being checked
        throttled.attempt(counters)
    began, real_began = clock.monotonic(), time.monotonic()
    response = app.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
        extra_environ={"REMOTE_ADDR": "192.0.2.1"},
        status=429,
    )
    assert response.json["error"] == "invalid_request"
    assert response.headers["Retry-After"] == "1"
    assert clock.monotonic() - began >= throttle.MAX_WAIT
    assert time.monotonic() - real_began < throttle.MAX_WAIT  # nothing really waited
