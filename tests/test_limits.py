"""Body and parameter limits of our endpoints (oauth_middleware.limits, ``max_body_size``)."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic
from oauth_flows import AUTHORIZE, NATIVE_ID, NATIVE_REDIRECT, code_request, flow_middleware, location_params
from webob import Request

from oauth_middleware.errors import InvalidRequest
from oauth_middleware.limits import MAX_PARAM_LENGTH, cap_body, check_lengths, max_length

TOKEN = "/oauth/token"
FORM = "application/x-www-form-urlencoded"
GOOD_BODY = urlencode({"grant_type": "client_credentials"}).encode()
AUTH = basic(SERVICE_ID, SERVICE_SECRET)


class CountingInput:
    """A ``wsgi.input`` that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.read_bytes += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        chunk = self.stream.readline(size)
        self.read_bytes += len(chunk)
        return chunk


def send(middleware, path, body: bytes, *, length: str | None, terminated=False, method="POST"):
    """A request with ``body`` on a counting input; ``length`` None sends no Content-Length."""
    stream = CountingInput(body)
    request = Request.blank(path, method=method, content_type=FORM, headers={"Authorization": AUTH})
    request.environ["wsgi.input"] = stream
    request.environ.pop("CONTENT_LENGTH", None)
    if length is not None:
        request.environ["CONTENT_LENGTH"] = length
    if terminated:
        request.environ["wsgi.input_terminated"] = True
    return request.get_response(middleware), stream


@pytest.fixture
def middleware(make_middleware):
    return flow_middleware(make_middleware)


@pytest.fixture
def small(make_middleware):
    """Bodies of at most 1 KiB."""
    return flow_middleware(make_middleware, max_body_size="1024")


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware)


def assert_too_large(response):
    assert response.status_int == 413
    assert response.json["error"] == "invalid_request"
    assert response.json["error_description"] == "the body is larger than 1024 bytes"
    assert response.headers["Cache-Control"] == "no-store"


# -- the body -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [TOKEN, "/oauth/revoke", "/oauth/introspect", AUTHORIZE])
def test_declared_length_over_the_cap_is_413_unread(small, path):
    response, stream = send(small, path, b"x" * 5000, length="5000")
    assert_too_large(response)
    assert stream.read_bytes == 0


def test_huge_declared_length_is_413_unread(small):
    response, stream = send(small, TOKEN, GOOD_BODY, length=str(10**12))
    assert_too_large(response)
    assert stream.read_bytes == 0


def test_chunked_body_over_the_cap_is_413_after_a_bounded_read(small):
    response, stream = send(small, TOKEN, b"grant_type=" + b"x" * 10**6, length=None, terminated=True)
    assert_too_large(response)
    assert stream.read_bytes == 1025


def test_chunked_body_under_the_cap_is_read(small):
    response, _ = send(small, TOKEN, GOOD_BODY, length=None, terminated=True)
    assert response.status_int == 200
    assert response.json["token_type"] == "Bearer"


def test_body_longer_than_its_content_length_is_read_only_that_far(small):
    body = GOOD_BODY + b"&junk=" + b"x" * 10**6
    response, stream = send(small, TOKEN, body, length=str(len(GOOD_BODY)))
    assert response.status_int == 200
    assert stream.read_bytes == len(GOOD_BODY)


def test_body_without_length_or_terminated_input_is_not_read(small):
    # PEP 3333: with neither, reading could block forever; the body counts as empty.
    response, stream = send(small, TOKEN, GOOD_BODY, length=None)
    assert response.status_int == 400
    assert response.json["error_description"] == "grant_type is required"
    assert stream.read_bytes == 0


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "٣"])
def test_malformed_content_length_is_invalid_request(small, length):
    response, stream = send(small, TOKEN, GOOD_BODY, length=length)
    assert response.status_int == 400
    assert response.json == {
        "error": "invalid_request",
        "error_description": "Content-Length is not a number",
    }
    assert stream.read_bytes == 0


def test_body_at_the_cap_is_accepted(small):
    body = GOOD_BODY + b"&pad=" + b"x" * (1024 - len(GOOD_BODY) - 5)
    assert len(body) == 1024
    response, _ = send(small, TOKEN, body, length=str(len(body)))
    assert response.status_int == 200


def test_default_cap_is_64_kib(make_middleware):
    app = webtest.TestApp(make_middleware())
    headers = {"Authorization": AUTH}
    ok = [("grant_type", "client_credentials")] + [(f"p{n}", "x" * 1000) for n in range(60)]
    assert app.post(TOKEN, ok, headers=headers).status_int == 200
    too_big = ok + [(f"q{n}", "x" * 1000) for n in range(6)]
    response = app.post(TOKEN, too_big, headers=headers, status=413)
    assert response.json["error_description"] == "the body is larger than 65536 bytes"


def test_login_form_body_is_capped(small):
    app = webtest.TestApp(small)
    page = app.get(AUTHORIZE, code_request())
    form = page.forms[0]
    form["username"], form["password"] = "alice", "x" * 2000
    assert_too_large(form.submit(status=413))


def test_guard_bodies_are_not_ours_to_cap(make_middleware):
    app = webtest.TestApp(make_middleware(max_body_size="1024"))
    response = app.post("/api/me", {"data": "x" * 5000}, status=401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# -- parameter values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        pytest.param("client_secret", 2048, id="default"),
        pytest.param("code_verifier", 128, id="code_verifier"),
        pytest.param("code_challenge", 128, id="code_challenge"),
        pytest.param("refresh_token", 4096, id="refresh_token"),
        pytest.param("token", 4096, id="token"),
        pytest.param("access_token", 4096, id="access_token"),
    ],
)
def test_limit_table(name, limit):
    assert max_length(name) == limit
    check_lengths([(name, "x" * limit)])
    with pytest.raises(InvalidRequest, match=f"^{name} is too long$"):
        check_lengths([(name, "x" * (limit + 1))])


def test_odd_parameter_names_are_not_echoed():
    with pytest.raises(InvalidRequest, match=r"^a parameter is too long$"):
        check_lengths([('na"me\n', "x" * (MAX_PARAM_LENGTH + 1))])


@pytest.mark.parametrize(
    ("params", "name"),
    [
        pytest.param({"grant_type": "client_credentials", "scope": "r" * 2049}, "scope", id="scope"),
        pytest.param(
            {"grant_type": "authorization_code", "code": "c", "code_verifier": "v" * 129},
            "code_verifier",
            id="code_verifier",
        ),
        pytest.param(
            {"grant_type": "refresh_token", "refresh_token": "r" * 4097}, "refresh_token", id="refresh_token"
        ),
        pytest.param({"grant_type": "x" * 2049}, "grant_type", id="grant_type"),
    ],
)
def test_over_long_token_request_parameter(app, params, name):
    response = app.post(TOKEN, params, headers={"Authorization": AUTH}, status=400)
    assert response.json == {"error": "invalid_request", "error_description": f"{name} is too long"}


def test_longest_refresh_token_is_looked_up(app):
    params = {"grant_type": "refresh_token", "refresh_token": "r" * 4096}
    response = app.post(
        TOKEN, params, headers={"Authorization": basic("web", "web-secret-0123456789")}, status=400
    )
    assert response.json["error"] == "invalid_grant"


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_over_long_token_to_revoke_or_introspect(app, path):
    response = app.post(path, {"token": "t" * 4097}, headers={"Authorization": AUTH}, status=400)
    assert response.json == {"error": "invalid_request", "error_description": "token is too long"}


def test_over_long_secret_is_refused_before_authentication(app):
    params = {"grant_type": "client_credentials", "client_id": SERVICE_ID, "client_secret": "s" * 2049}
    response = app.post(TOKEN, params, status=400)
    assert response.json["error_description"] == "client_secret is too long"


def test_over_long_authorization_parameter_is_redirected_with_state(app):
    response = app.get(AUTHORIZE, code_request(scope="r" * 2049), status=302)
    params = location_params(response.headers["Location"])
    assert params == {
        "error": "invalid_request",
        "error_description": "scope is too long",
        "state": "st-123",
        "iss": "http://localhost",
    }


def test_over_long_state_is_not_echoed(app):
    response = app.get(AUTHORIZE, code_request(state="s" * 2049), status=302)
    assert response.headers["Location"].startswith(NATIVE_REDIRECT + "?")
    params = location_params(response.headers["Location"])
    assert params == {
        "error": "invalid_request",
        "error_description": "state is too long",
        "iss": "http://localhost",
    }
    assert len(response.headers["Location"]) < 200


def test_over_long_client_id_is_an_error_page(app):
    response = app.get(AUTHORIZE, code_request(client_id="c" * 5000), status=400)
    assert response.content_type == "text/html"
    assert "Location" not in response.headers


def test_over_long_login_field_is_redirected(app):
    page = app.get(AUTHORIZE, code_request())
    form = page.forms[0]
    form["username"], form["password"] = "alice", "x" * 2049
    response = form.submit(status=303)
    params = location_params(response.headers["Location"])
    assert params == {
        "error": "invalid_request",
        "error_description": "password is too long",
        "state": "st-123",
        "iss": "http://localhost",
    }


# -- repeated parameters (RFC 6749 §3.1, §3.2) ----------------------------------------------------------------


def test_repeated_token_parameter_is_invalid_request(app):
    body = "grant_type=client_credentials&scope=read&scope=write"
    response = app.post(TOKEN, body, headers={"Authorization": AUTH, "Content-Type": FORM}, status=400)
    assert response.json == {"error": "invalid_request", "error_description": "parameter scope is repeated"}


@pytest.mark.parametrize("name", ["response_type", "scope", "code_challenge", "code_challenge_method"])
def test_repeated_authorization_query_parameter_is_redirected(app, name):
    query = urlencode(code_request()) + f"&{name}={code_request()[name]}"
    response = app.get(f"{AUTHORIZE}?{query}", status=302)
    params = location_params(response.headers["Location"])
    assert params["error"] == "invalid_request"
    assert params["error_description"] == f"parameter {name} is repeated"


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
def test_repeated_client_id_or_redirect_uri_in_the_query_is_a_page(app, name):
    query = urlencode(code_request()) + f"&{name}={code_request()[name]}"
    response = app.get(f"{AUTHORIZE}?{query}", status=400)
    assert "Location" not in response.headers
    assert f"{name} is repeated" in response.text


def test_repeated_unknown_query_parameters_are_ignored(app):
    # RFC 6749 §3.1: the server MUST ignore unrecognized parameters.
    query = urlencode(code_request()) + "&foo=1&foo=2"
    page = app.get(f"{AUTHORIZE}?{query}", status=200)
    assert page.forms[0]["client_id"].value == NATIVE_ID


def test_cap_body_puts_a_chunked_body_back():
    environ = {"wsgi.input": io.BytesIO(b"a=1"), "wsgi.input_terminated": True}
    cap_body(environ, 10)
    assert environ["CONTENT_LENGTH"] == "3"
    assert environ["wsgi.input"].read() == b"a=1"
