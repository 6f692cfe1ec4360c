"""End to end over HTTP: the shipped demo served by waitress, driven by real OAuth client libraries.

requests-oauthlib and Authlib do the client's part (authorization URL, PKCE,
state, code exchange, refresh, password grant, bearer requests); the test
only plays the person who logs in and approves on the server's pages.
"""

from __future__ import annotations

import pytest
import requests
from oauth_flows import browser_approve, load_demo, serve

from oauth_middleware.clients import build_client
from oauth_middleware.models import digest

WEB_ID, WEB_SECRET, WEB_REDIRECT = "e2e-web", "e2e-web-secret-0123456789", "https://client.example/cb"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo of examples/demo.ini, plus a confidential web client, on a free port."""
    middleware = load_demo(tmp_path_factory.mktemp("demo"))
    middleware.server.repository.save_client(
        build_client(
            WEB_ID,
            secret_hash=digest(WEB_SECRET),
            redirect_uris=[WEB_REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["read", "write"],
            name="E2E web",
        )
    )
    with serve(middleware) as base:
        yield base


@pytest.fixture(autouse=True)
def insecure_transport_on_loopback(monkeypatch):
    # The server is plain http on 127.0.0.1; both libraries refuse http unless told.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def me(session_or_client, base):
    response = session_or_client.get(f"{base}/api/me")
    assert response.status_code == 200, response.text
    return response.json()


# -- requests-oauthlib ---------------------------------------------------------------


def test_requests_oauthlib_public_client_with_pkce_and_refresh(demo):
    from requests_oauthlib import OAuth2Session

    redirect_uri = "http://127.0.0.1:8765/callback"  # any loopback port (RFC 8252)
    oauth = OAuth2Session("demo-web", redirect_uri=redirect_uri, scope=["read", "write"], pkce="S256")
    url, _ = oauth.authorization_url(f"{demo}/oauth/authorize")
    assert "code_challenge=" in url
    with requests.Session() as browser:
        location = browser_approve(browser, url, user="alice")
    token = oauth.fetch_token(f"{demo}/oauth/token", authorization_response=location, include_client_id=True)
    assert token["scope"] == ["read", "write"] and token["refresh_token"]
    assert me(oauth, demo)["user"] == "alice"

    old = dict(token)
    new = oauth.refresh_token(f"{demo}/oauth/token", client_id="demo-web")
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert me(oauth, demo)["client_id"] == "demo-web"
    # The rotated refresh token is dead; presenting it again revokes the chain.
    replay = requests.post(
        f"{demo}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"], "client_id": "demo-web"},
        timeout=10,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert oauth.get(f"{demo}/api/me").status_code == 401


def test_requests_oauthlib_confidential_client(demo):
    from requests_oauthlib import OAuth2Session

    oauth = OAuth2Session(WEB_ID, redirect_uri=WEB_REDIRECT, scope=["read"], pkce="S256")
    url, _ = oauth.authorization_url(f"{demo}/oauth/authorize")
    with requests.Session() as browser:
        location = browser_approve(browser, url, user="bob")
    token = oauth.fetch_token(
        f"{demo}/oauth/token", authorization_response=location, client_secret=WEB_SECRET
    )
    assert token["token_type"] == "Bearer"
    assert me(oauth, demo)["user"] == "bob"
    refreshed = oauth.refresh_token(f"{demo}/oauth/token", auth=(WEB_ID, WEB_SECRET))
    assert refreshed["access_token"] != token["access_token"]
    assert me(oauth, demo)["scopes"] == ["read"]


def test_requests_oauthlib_password_grant(demo):
    from oauthlib.oauth2 import LegacyApplicationClient
    from requests_oauthlib import OAuth2Session

    oauth = OAuth2Session(client=LegacyApplicationClient(client_id="demo-cli"), scope=["read"])
    token = oauth.fetch_token(
        f"{demo}/oauth/token",
        username="alice",
        password="alice-password",
        client_id="demo-cli",
        client_secret="demo-cli-secret",
    )
    assert token["refresh_token"]
    assert me(oauth, demo)["user"] == "alice"
    with pytest.raises(Exception, match="invalid_grant"):
        OAuth2Session(client=LegacyApplicationClient(client_id="demo-cli")).fetch_token(
            f"{demo}/oauth/token",
            username="alice",
            password="wrong",
            client_id="demo-cli",
            client_secret="demo-cli-secret",
        )


def test_requests_oauthlib_implicit(demo):
    from oauthlib.oauth2 import MobileApplicationClient
    from requests_oauthlib import OAuth2Session

    oauth = OAuth2Session(
        client=MobileApplicationClient(client_id="demo-web"),
        redirect_uri="http://127.0.0.1:8080/callback",
        scope=["read"],
    )
    url, _ = oauth.authorization_url(f"{demo}/oauth/authorize")
    with requests.Session() as browser:
        location = browser_approve(browser, url)
    token = oauth.token_from_fragment(location)
    assert token["token_type"] == "Bearer" and "refresh_token" not in token
    assert me(oauth, demo)["scopes"] == ["read"]


# -- Authlib ------------------------------------------------------------------------------


def test_authlib_code_flow_with_pkce_and_refresh(demo):
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session

    client = OAuth2Session(
        "demo-web",
        scope="read",
        redirect_uri="http://127.0.0.1:9/callback",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(64)
    url, state = client.create_authorization_url(f"{demo}/oauth/authorize", code_verifier=verifier)
    with requests.Session() as browser:
        location = browser_approve(browser, url, user="bob")
    token = client.fetch_token(
        f"{demo}/oauth/token", authorization_response=location, state=state, code_verifier=verifier
    )
    assert token["scope"] == "read"
    assert me(client, demo)["user"] == "bob"
    new = client.refresh_token(f"{demo}/oauth/token")
    assert new["refresh_token"] != token["refresh_token"]
    assert me(client, demo)["user"] == "bob"


def test_authlib_rejects_a_wrong_verifier(demo):
    from authlib.common.security import generate_token
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.requests_client import OAuth2Session

    client = OAuth2Session(
        "demo-web",
        scope="read",
        redirect_uri="http://127.0.0.1:9/callback",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    url, _ = client.create_authorization_url(f"{demo}/oauth/authorize", code_verifier=generate_token(64))
    with requests.Session() as browser:
        location = browser_approve(browser, url)
    with pytest.raises(OAuthError, match="invalid_grant"):
        client.fetch_token(
            f"{demo}/oauth/token", authorization_response=location, code_verifier=generate_token(64)
        )


def test_authlib_password_grant(demo):
    from authlib.integrations.requests_client import OAuth2Session

    client = OAuth2Session("demo-cli", "demo-cli-secret", scope="read write")
    token = client.fetch_token(f"{demo}/oauth/token", username="bob", password="bob-password")
    assert token["scope"] == "read write"
    assert me(client, demo)["user"] == "bob"
    refreshed = client.refresh_token(f"{demo}/oauth/token")
    assert refreshed["access_token"] != token["access_token"]
    assert me(client, demo)["scopes"] == ["read", "write"]


def test_authlib_client_credentials(demo):
    from authlib.integrations.requests_client import OAuth2Session

    client = OAuth2Session("demo-service", "demo-service-secret", scope="read")
    client.fetch_token(f"{demo}/oauth/token", grant_type="client_credentials")
    body = me(client, demo)
    assert body["user"] is None and body["client_id"] == "demo-service"
