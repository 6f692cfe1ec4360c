"""PAR and iss end to end over real HTTP with requests-oauth2client, a client library nobody here wrote.

It discovers the server, pushes the request (RFC 9126), sends the browser
with ``client_id`` + ``request_uri``, checks ``state`` and ``iss`` of the
response (RFC 9207), redeems the code and refreshes; the test only plays the
person who logs in and approves. On SQLite and on Redis.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
import requests_oauth2client
from oauth_flows import WEB_ID, WEB_REDIRECT, WEB_SECRET, browser_approve, flow_middleware, serve
from servers import shared_redis


def _store(request: pytest.FixtureRequest, kind: str, tmp_path: Any) -> dict[str, str]:
    if kind == "sqlite":
        return {"store": f"sqlite:///{tmp_path}/oauth.db"}
    return {"store": shared_redis(request).url, "store_prefix": f"test-{uuid.uuid4().hex}:"}


@pytest.fixture(params=["sqlite", "redis"])
def server(request, make_middleware, tmp_path):
    """The three-legged test server on a free port, its issuer that port's URL."""
    built: dict[str, Any] = {}

    def app(environ, start_response):  # the issuer is known once the port is
        return built["middleware"](environ, start_response)

    with serve(app) as base:
        settings = _store(request, request.param, tmp_path)
        built["middleware"] = flow_middleware(make_middleware, issuer=base, **settings)
        yield base, built["middleware"]
        built["middleware"].close()


def _client(base: str):
    return requests_oauth2client.OAuth2Client.from_discovery_endpoint(
        f"{base}/.well-known/oauth-authorization-server",
        issuer=base,
        auth=requests_oauth2client.ClientSecretBasic(WEB_ID, WEB_SECRET),  # as it is registered
        redirect_uri=WEB_REDIRECT,
        testing=True,  # plain http on 127.0.0.1
    )


def test_pushed_code_flow_with_iss_and_refresh(server):
    base, _ = server
    client = _client(base)
    assert client.pushed_authorization_request_endpoint == f"{base}/oauth/par"
    assert client.authorization_response_iss_parameter_supported is True
    # The client asks for iss checks itself (this library's client does not pass the metadata flag on).
    authorization = client.authorization_request(
        scope="read write", authorization_response_iss_parameter_supported=True
    )
    pushed = client.pushed_authorization_request(authorization)
    # The browser carries client_id and request_uri, nothing else of the request.
    assert set(requests.utils.urlparse(str(pushed.uri)).query.split("&")) == {
        f"client_id={WEB_ID}",
        "request_uri=" + requests.utils.quote(pushed.request_uri, safe=""),
    }
    with requests.Session() as browser:
        location = browser_approve(browser, str(pushed.uri))
    # The library checks state and iss; the same response without iss it refuses (RFC 9207 §2.4).
    query = dict(parse_qsl(urlsplit(location).query))
    assert query["iss"] == base
    with pytest.raises(requests_oauth2client.MismatchingIssuer):
        authorization.validate_callback(
            f"{WEB_REDIRECT}?{urlencode({**query, 'iss': 'https://evil.example'})}"
        )
    del query["iss"]
    with pytest.raises(requests_oauth2client.MissingIssuer):
        authorization.validate_callback(f"{WEB_REDIRECT}?{urlencode(query)}")
    response = authorization.validate_callback(location)
    token = client.authorization_code(response)
    assert token.token_type.lower() == "bearer"
    assert (
        requests.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token.access_token}"}).status_code
        == 200
    )
    refreshed = client.refresh_token(token)
    assert refreshed.access_token != token.access_token
    # The request_uri was used once: the browser cannot come back with it.
    with requests.Session() as browser:
        replay = browser.get(str(pushed.uri), allow_redirects=False)
    assert replay.status_code == 400
    assert "invalid_request_uri" in replay.text


def test_push_errors_reach_the_library_as_json(server):
    base, _ = server
    client = _client(base)
    authorization = client.authorization_request(scope="nope")
    with pytest.raises(requests_oauth2client.InvalidScope):
        client.pushed_authorization_request(authorization)


def test_client_required_to_push_plain_request_is_refused_and_pushed_one_works(server):
    base, middleware = server
    repository = middleware.server.repository
    registered = repository.get_client(WEB_ID)
    repository.save_client(dataclasses.replace(registered, require_pushed_authorization_requests=True))
    client = _client(base)
    plain = client.authorization_request(scope="read")
    with requests.Session() as browser:
        answer = browser.get(str(plain.uri), allow_redirects=False)
    assert answer.status_code == 302
    # The error response carries state and iss: the library accepts it as this server's and raises it.
    with pytest.raises(requests_oauth2client.AuthorizationResponseError) as raised:
        plain.validate_callback(answer.headers["Location"])
    assert raised.value.error == "invalid_request"
    authorization = client.authorization_request(scope="read")
    pushed = client.pushed_authorization_request(authorization)
    with requests.Session() as browser:
        location = browser_approve(browser, str(pushed.uri))
    assert client.authorization_code(authorization.validate_callback(location)).access_token
