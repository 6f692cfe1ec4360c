"""``WWW-Authenticate`` challenges: on every 401, with every value quoted (issue 10, items 10 and 11)."""

from __future__ import annotations

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, allow_body_secret, basic

from oauth_middleware.errors import ConfigError
from oauth_middleware.responses import challenge, quoted_string
from oauth_middleware.settings import Settings

# -- every 401 carries a challenge (RFC 9110 §15.5.2) ------------------------------------------


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param("/oauth/token", {"grant_type": "client_credentials"}, id="token"),
        pytest.param("/oauth/revoke", {"token": "x"}, id="revoke"),
        pytest.param("/oauth/introspect", {"token": "x"}, id="introspect"),
    ],
)
@pytest.mark.parametrize(
    "how",
    [
        pytest.param("body", id="secret-in-body"),
        pytest.param("basic", id="basic"),
        pytest.param("none", id="no-credentials"),
    ],
)
def test_every_invalid_client_401_carries_a_basic_challenge(make_middleware, path, params, how):
    app = webtest.TestApp(make_middleware(realm="api.example", introspection_clients=SERVICE_ID))
    headers = {}
    if how == "body":
        params = {**params, "client_id": SERVICE_ID, "client_secret": "wrong"}
    elif how == "basic":
        headers["Authorization"] = basic(SERVICE_ID, "wrong")
    else:
        params = {**params, "client_id": "unknown"}
    response = app.post(path, params, headers=headers, status=401)
    assert response.json["error"] == "invalid_client"
    assert response.headers.getall("WWW-Authenticate") == ['Basic realm="api.example"']


def test_right_credentials_get_no_challenge(make_middleware):
    middleware = make_middleware()
    allow_body_secret(middleware, SERVICE_ID)  # registered for client_secret_post
    app = webtest.TestApp(middleware)
    response = app.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "client_id": SERVICE_ID, "client_secret": SERVICE_SECRET},
    )
    assert "WWW-Authenticate" not in response.headers


def test_a_request_without_credentials_gets_no_error_code(make_middleware):
    response = webtest.TestApp(make_middleware()).get("/api/me", status=401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oauth2"'
    assert response.json == {}  # RFC 6750 §3.1: no error code, no error information


# -- settings cannot forge a parameter or a header line ---------------------------------------


@pytest.mark.parametrize(
    "realm",
    [
        pytest.param('x", error="forged', id="quote-forges-a-parameter"),
        pytest.param("x\r\nSet-Cookie: a=b", id="crlf"),
        pytest.param("first\n  second", id="multi-line"),
        pytest.param("x\\", id="backslash"),
        pytest.param("caf\u00e9", id="non-ascii"),
        pytest.param("tab\there", id="tab"),
    ],
)
def test_a_realm_that_cannot_be_a_quoted_string_is_a_config_error(realm):
    with pytest.raises(ConfigError) as info:
        Settings.from_config({"store": "memory://", "realm": realm})
    message = str(info.value)
    assert message.startswith("realm: ")
    assert "\n" not in message and "\r" not in message


def test_a_realm_with_spaces_and_punctuation_is_fine(make_middleware):
    app = webtest.TestApp(make_middleware(realm="Example API (v2) #1"))
    assert app.get("/api/me", status=401).headers["WWW-Authenticate"] == 'Bearer realm="Example API (v2) #1"'


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        pytest.param("plain", '"plain"', id="plain"),
        pytest.param('x", error="forged', '"x\\", error=\\"forged"', id="quote"),
        pytest.param("a\\b", '"a\\\\b"', id="backslash"),
        pytest.param("", '""', id="empty"),
    ],
)
def test_quoted_string_escapes_quotes_and_backslashes(value, quoted):
    assert quoted_string(value) == quoted


@pytest.mark.parametrize("value", ["a\r\nb", "a\nb", "a\x00b", "a\x7fb", "caf\u00e9"])
def test_quoted_string_refuses_what_no_header_can_carry(value):
    with pytest.raises(ValueError, match="quoted-string"):
        quoted_string(value)


def test_challenge_quotes_every_parameter():
    assert challenge("Bearer", [("realm", 'a"b'), ("scope", "read write")]) == (
        'Bearer realm="a\\"b", scope="read write"'
    )
