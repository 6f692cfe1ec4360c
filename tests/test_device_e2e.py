"""The device flow (RFC 8628) end to end over real HTTP with requests-oauth2client, on SQLite and Redis.

The library discovers the server, asks for the device's codes and polls the
token endpoint (following ``slow_down``); the test plays the user, with
requests: the verification page, the code typed in lower case, login, approval.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
import requests_oauth2client
from conftest import register
from oauth_flows import USERS, flow_middleware, serve, submit_form
from servers import shared_redis

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TV_ID = "tv"


@pytest.fixture(params=["sqlite", "redis"])
def server(request, make_middleware, tmp_path):
    """The test server on a free port, its issuer that port's URL, polled every second."""
    built: dict[str, Any] = {}

    def app(environ, start_response):  # the issuer is known once the port is
        return built["middleware"](environ, start_response)

    if request.param == "sqlite":
        settings = {"store": f"sqlite:///{tmp_path}/oauth.db"}
    else:
        settings = {"store": shared_redis(request).url, "store_prefix": f"test-{uuid.uuid4().hex}:"}
    with serve(app) as base:
        middleware = flow_middleware(
            make_middleware,
            issuer=base,
            grants=f"authorization_code refresh_token {GRANT}",
            refresh_token_grants=GRANT,
            device_poll_interval="1",
            **settings,
        )
        register(middleware, TV_ID, None, grant_types=[GRANT, "refresh_token"], scopes=["read", "write"])
        built["middleware"] = middleware
        yield base
        middleware.close()


def user_approves(verification_uri: str, user_code: str, decision: str = "approve") -> requests.Response:
    """The user, in a browser: open the page, type the code, sign in, decide."""
    with requests.Session() as browser:
        entry = browser.get(verification_uri)
        assert entry.status_code == 200 and 'name="user_code"' in entry.text
        login = browser.get(verification_uri, params={"user_code": user_code.lower().replace("-", " ")})
        assert login.status_code == 200, login.text
        after_login = submit_form(browser, login, username="alice", password=USERS["alice"])
        assert after_login.status_code == 303
        consent = browser.get(after_login.headers["Location"])
        assert consent.status_code == 200 and "<code>read</code>" in consent.text
        return submit_form(browser, consent, decision=decision)


def client(base: str) -> requests_oauth2client.OAuth2Client:
    """The device's client, configured from the metadata (the library's discovery skips RFC 8628's member)."""
    metadata = requests.get(f"{base}/.well-known/oauth-authorization-server").json()
    return requests_oauth2client.OAuth2Client(
        token_endpoint=metadata["token_endpoint"],
        device_authorization_endpoint=metadata["device_authorization_endpoint"],
        auth=TV_ID,  # a public client: its client_id alone
        testing=True,  # plain http on 127.0.0.1
    )


def test_device_flow_with_an_independent_client(server):
    device = client(server)
    assert device.device_authorization_endpoint == f"{server}/oauth/device_authorization"
    answer = device.authorize_device(scope="read")
    assert answer.verification_uri == f"{server}/oauth/device"
    job = requests_oauth2client.DeviceAuthorizationPollingJob(device, answer)
    assert job() is None  # authorization_pending
    approved = user_approves(answer.verification_uri, answer.user_code)
    assert approved.status_code == 200 and "Device connected" in approved.text
    token = job()
    assert token is not None and token.scope == "read"
    api = requests.get(f"{server}/api/me", headers={"Authorization": f"Bearer {token.access_token}"})
    assert api.status_code == 200 and "alice" in api.text
    refreshed = device.refresh_token(token.refresh_token)
    assert refreshed.access_token != token.access_token
    # Redeemed: the device code is used up.
    with pytest.raises(requests_oauth2client.InvalidGrant):
        device.device_code(answer.device_code)


def test_denied_device_flow(server):
    device = client(server)
    answer = device.authorize_device(scope="read")
    refused = user_approves(answer.verification_uri, answer.user_code, decision="deny")
    assert refused.status_code == 200 and "Device refused" in refused.text
    job = requests_oauth2client.DeviceAuthorizationPollingJob(device, answer)
    with pytest.raises(requests_oauth2client.AccessDenied):
        job()


def test_polling_too_fast_slows_the_library_down(server):
    device = client(server)
    answer = device.authorize_device(scope="read")
    with pytest.raises(requests_oauth2client.AuthorizationPending):
        device.device_code(answer.device_code)
    with pytest.raises(requests_oauth2client.SlowDown):
        device.device_code(answer.device_code)  # at once: too fast, the interval is now 10 s
    job = requests_oauth2client.DeviceAuthorizationPollingJob(device, answer)
    assert job() is None  # a second later: still too fast; the library waits 5 s more
    assert job.interval == 6
