"""Least privilege for scopes (RFC 6749 §3.3, RFC 9700 §2.3) at every endpoint that grants one.

A scope is granted only when the server's ``scopes`` and the client's
registration both allow it. A client registered without scopes may have the
server's ``default_scope`` and nothing else; with ``scopes`` empty the
clients' registrations are the only list.
"""

from __future__ import annotations

import pytest
import webtest
from conftest import basic, register
from oauth_flows import (
    AUTHORIZE,
    NATIVE_ID,
    NATIVE_REDIRECT,
    TOKEN,
    USERS,
    approve,
    code_request,
    flow_middleware,
    get_code,
    location_params,
    login,
    redeem,
)

UNSCOPED_ID, UNSCOPED_SECRET = "unscoped", "unscoped-secret-0123456789"
OPEN_ID, OPEN_REDIRECT = "open-native", "http://127.0.0.1/open-cb"


def middleware_with_unscoped_clients(make_middleware, **settings):
    """The flow server plus a confidential and a public client registered without scopes."""
    settings.setdefault("grants", "authorization_code refresh_token client_credentials password")
    middleware = flow_middleware(make_middleware, **settings)
    register(middleware, UNSCOPED_ID, UNSCOPED_SECRET, grant_types=["client_credentials"])
    register(
        middleware,
        OPEN_ID,
        None,
        redirect_uris=[OPEN_REDIRECT],
        grant_types=["authorization_code", "refresh_token", "password"],
    )
    return middleware


def client_credentials(app, scope=None, *, status=200):
    params = {"grant_type": "client_credentials"}
    if scope is not None:
        params["scope"] = scope
    headers = {"Authorization": basic(UNSCOPED_ID, UNSCOPED_SECRET)}
    return app.post(TOKEN, params, headers=headers, status=status).json


def password(app, scope, *, client_id=OPEN_ID, status=200):
    params = {
        "grant_type": "password",
        "client_id": client_id,
        "username": "alice",
        "password": USERS["alice"],
    }
    return app.post(TOKEN, {**params, "scope": scope}, status=status).json


def open_code_request(**overrides):
    return code_request(client_id=OPEN_ID, redirect_uri=OPEN_REDIRECT, **overrides)


@pytest.mark.parametrize("scope", ["write", "admin", "read write"])
def test_unscoped_client_gets_only_the_default_scope_at_the_token_endpoint(make_middleware, scope):
    """Regression: a client registered without scopes was granted any scope it asked for."""
    app = webtest.TestApp(middleware_with_unscoped_clients(make_middleware, default_scope="read"))
    assert client_credentials(app, scope, status=400)["error"] == "invalid_scope"
    assert password(app, scope, status=400)["error"] == "invalid_scope"
    assert client_credentials(app)["scope"] == "read"
    assert client_credentials(app, "read")["scope"] == "read"
    assert password(app, "read")["scope"] == "read"


def test_unscoped_client_without_a_default_scope_gets_no_scope(make_middleware):
    app = webtest.TestApp(middleware_with_unscoped_clients(make_middleware))
    assert client_credentials(app, "read", status=400)["error"] == "invalid_scope"
    body = client_credentials(app)
    assert "scope" not in body  # a token for no particular scope
    me = app.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json
    assert me["scopes"] == []


@pytest.mark.parametrize("scope", ["admin", "read admin"])
def test_unscoped_public_client_cannot_get_a_wider_scope_approved(make_middleware, scope):
    """Regression: a user could approve any scope for herself through an unscoped public client."""
    app = webtest.TestApp(middleware_with_unscoped_clients(make_middleware, default_scope="read"))
    response = app.get(AUTHORIZE, open_code_request(scope=scope), status=302)
    assert response.headers["Location"].startswith(OPEN_REDIRECT + "?")
    assert location_params(response.headers["Location"])["error"] == "invalid_scope"
    # The default scope is what it may have.
    code = get_code(app, client_id=OPEN_ID, redirect_uri=OPEN_REDIRECT)
    assert redeem(app, code, client_id=OPEN_ID, redirect_uri=OPEN_REDIRECT)["scope"] == "read"


def test_a_consent_form_posted_with_a_wider_scope_is_invalid_scope(make_middleware):
    app = webtest.TestApp(middleware_with_unscoped_clients(make_middleware, default_scope="read"))
    consent = login(app, open_code_request(scope="read"))
    assert consent.forms[0]["scope"].value == "read"
    consent.forms[0]["scope"] = "read admin"
    answer = consent.forms[0].submit("decision", value="approve", status=303)
    assert location_params(answer.headers["Location"])["error"] == "invalid_scope"


@pytest.mark.parametrize("grant", ["client_credentials", "password", "authorization_code"])
def test_a_scope_outside_the_server_list_is_invalid_scope_for_a_client_registered_for_it(
    make_middleware, grant
):
    """A registration cannot widen the server's list (the store may hold an older registration)."""
    middleware = flow_middleware(
        make_middleware, scopes="read write", grants="authorization_code client_credentials password"
    )
    register(
        middleware,
        "wide",
        "wide-secret-0123456789",
        redirect_uris=["https://wide.example/cb"],
        grant_types=[grant],
        scopes=["read", "write", "admin"],
    )
    app = webtest.TestApp(middleware)
    if grant == "authorization_code":
        params = code_request(client_id="wide", redirect_uri="https://wide.example/cb", scope="admin")
        location = app.get(AUTHORIZE, params, status=302).headers["Location"]
        assert location_params(location)["error"] == "invalid_scope"
        return
    params = {"grant_type": grant, "scope": "admin"}
    if grant == "password":
        params.update(username="alice", password=USERS["alice"])
    headers = {"Authorization": basic("wide", "wide-secret-0123456789")}
    assert app.post(TOKEN, params, headers=headers, status=400).json["error"] == "invalid_scope"


def test_refresh_is_invalid_scope_once_the_server_no_longer_offers_a_granted_scope(make_middleware):
    """Regression: a refresh re-issued a scope the server (or the client's registration) dropped."""
    before = flow_middleware(make_middleware)
    tokens = redeem(webtest.TestApp(before), get_code(webtest.TestApp(before), scope="read write"))
    after = webtest.TestApp(
        flow_middleware(make_middleware, scopes="read", store_backend=before.server.store)
    )
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": NATIVE_ID,
    }
    assert after.post(TOKEN, refresh, status=400).json["error"] == "invalid_scope"
    assert after.post(TOKEN, {**refresh, "scope": "write"}, status=400).json["error"] == "invalid_scope"
    # Asking for what is still allowed works, and the chain goes on.
    narrowed = after.post(TOKEN, {**refresh, "scope": "read"}).json
    assert narrowed["scope"] == "read"


def test_refresh_is_invalid_scope_once_the_client_registration_drops_a_scope(make_middleware):
    middleware = flow_middleware(make_middleware)
    app = webtest.TestApp(middleware)
    tokens = redeem(app, get_code(app, scope="read write"))
    register(
        middleware,
        NATIVE_ID,
        None,
        redirect_uris=[NATIVE_REDIRECT],
        grant_types=["authorization_code", "refresh_token"],
        scopes=["read"],
    )
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": NATIVE_ID,
    }
    assert app.post(TOKEN, refresh, status=400).json["error"] == "invalid_scope"


def test_empty_server_scopes_means_the_registrations_are_the_list(make_middleware):
    app = webtest.TestApp(middleware_with_unscoped_clients(make_middleware, scopes=""))
    # The native client is registered for read and write: those, and nothing else.
    assert redeem(app, get_code(app, scope="read write"))["scope"] == "read write"
    location = app.get(AUTHORIZE, code_request(scope="anything"), status=302).headers["Location"]
    assert location_params(location)["error"] == "invalid_scope"
    # A client registered without scopes, on a server without default_scope: no scope at all.
    assert client_credentials(app, "anything", status=400)["error"] == "invalid_scope"
    assert password(app, "read", status=400)["error"] == "invalid_scope"
    assert "scope" not in client_credentials(app)


def test_unscoped_client_approval_shows_only_the_default_scope(make_middleware):
    app = webtest.TestApp(middleware_with_unscoped_clients(make_middleware, default_scope="read"))
    location = approve(app, open_code_request(scope=None))
    code = location_params(location)["code"]
    tokens = redeem(app, code, client_id=OPEN_ID, redirect_uri=OPEN_REDIRECT)
    assert tokens["scope"] == "read"
