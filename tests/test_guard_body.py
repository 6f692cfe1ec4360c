"""The guard and request bodies: a body is read only when it may hold the token, and only so much.

Both stacks are checked: the combined middleware (``#oauth2``) and the
guard-only filter (``#guard``), which share one store here.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
import webtest
from conftest import issue_token
from webob import Request

from oauth_middleware.resource import guard_from_settings
from oauth_middleware.settings import Settings

FORM = "application/x-www-form-urlencoded"
#: 8 MiB of empty form fields: what made the guard use ~340 MiB before looking for a token.
FLOOD = b"a&" * (4 * 1024 * 1024)


class CountingInput(io.BytesIO):
    """A request body that counts the bytes anyone read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


class BodyApp:
    """A WSGI app that reads the whole body it is given and answers with its length."""

    def __init__(self) -> None:
        self.calls = 0
        self.body = b""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls += 1
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.body = environ["wsgi.input"].read(length) if length else b""
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(self.body)).encode()]


Stack = tuple[Callable[..., Any], str, BodyApp]


@pytest.fixture(params=["oauth2", "guard"])
def stack(request, make_middleware, tmp_path) -> Stack:
    """``(wsgi_app, token, app)``: the combined middleware or the guard-only filter, and a valid token."""
    store = f"sqlite:///{tmp_path / 'oauth.db'}"
    app = BodyApp()

    def build(**settings: str) -> tuple[Any, str]:
        server = make_middleware(app, store=store, **settings)
        token = issue_token(webtest.TestApp(server))
        if request.param == "oauth2":
            return server, token
        return guard_from_settings(app, Settings.from_config({"store": store, **settings})), token

    return build, request.param, app  # type: ignore[return-value]


def post(wsgi_app: Any, body: bytes, *, token: str | None = None, chunked: bool = False, **environ: Any):
    """POST ``body`` as a form to ``/api/items`` through a :class:`CountingInput`; return (response, input)."""
    request = Request.blank("/api/items", method="POST", content_type=FORM)
    stream = CountingInput(body)
    request.environ["wsgi.input"] = stream
    if chunked:
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["wsgi.input_terminated"] = True
    else:
        request.environ["CONTENT_LENGTH"] = str(len(body))
    if token is not None:
        request.environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    request.environ.update(environ)
    return request.get_response(wsgi_app), stream


def test_a_header_token_passes_with_an_8_mib_flood(stack):
    build, _, app = stack
    wsgi_app, token = build()
    response, _ = post(wsgi_app, FLOOD, token=token)
    assert response.status_int == 200
    assert app.body == FLOOD  # the app reads it all itself


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_the_guard_reads_nothing_when_the_header_has_the_token(make_middleware, chunked):
    seen: list[int] = []

    def app(environ, start_response):
        seen.append(environ["wsgi.input"].taken)
        start_response("200 OK", [])
        return [b""]

    server = make_middleware(app)
    token = issue_token(webtest.TestApp(server))
    response, stream = post(server, FLOOD, token=token, chunked=chunked)
    assert response.status_int == 200
    assert seen == [0]  # the same stream object reached the app, unread
    assert stream.taken == 0


def test_guard_only_reads_nothing_when_the_header_has_the_token(make_middleware, tmp_path):
    store = f"sqlite:///{tmp_path / 'oauth.db'}"
    token = issue_token(webtest.TestApp(make_middleware(store=store)))

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b""]

    guard = guard_from_settings(app, Settings.from_config({"store": store}))
    response, stream = post(guard, FLOOD, token=token)
    assert response.status_int == 200
    assert stream.taken == 0


def test_a_flood_without_a_token_is_a_plain_401_read_no_further_than_the_limit(stack):
    build, _, app = stack
    wsgi_app, _ = build()
    tracemalloc.start()
    try:
        response, stream = post(wsgi_app, FLOOD)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oauth2"'
    assert stream.taken == 0  # over max_body_size: never read
    assert peak < 1024 * 1024
    assert app.calls == 0


def test_a_chunked_flood_without_a_token_is_read_only_up_to_the_limit(stack):
    build, _, app = stack
    wsgi_app, _ = build()
    response, stream = post(wsgi_app, FLOOD, chunked=True)
    assert response.status_int == 401
    assert stream.taken <= Settings.max_body_size + 1
    assert app.calls == 0


def test_a_flood_under_a_raised_limit_is_not_parsed_field_by_field(stack):
    build, _, app = stack
    wsgi_app, _ = build(max_body_size=str(16 * 1024 * 1024))
    tracemalloc.start()
    try:
        response, _ = post(wsgi_app, FLOOD)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_int == 401  # more fields than are searched: no body token
    assert peak < 4 * len(FLOOD)  # a few copies of the body, not a tuple per field
    assert app.calls == 0


def test_a_body_token_among_too_many_fields_is_not_searched(stack):
    build, _, app = stack
    wsgi_app, token = build()
    body = f"access_token={token}&".encode() + b"x=1&" * 1000
    assert post(wsgi_app, body)[0].status_int == 401
    body = f"access_token={token}&".encode() + b"x=1&" * 998
    assert post(wsgi_app, body)[0].status_int == 200
    assert app.body == body


def test_a_latin1_form_with_a_bearer_header_reaches_the_app(stack):
    build, _, app = stack
    wsgi_app, token = build()
    body = "name=Jos\xe9&city=M%FCnchen".encode("latin-1")
    response, _ = post(wsgi_app, body, token=token)
    assert response.status_int == 200
    assert app.body == body


def test_a_latin1_form_is_searched_for_its_body_token(stack):
    build, _, app = stack
    wsgi_app, token = build()
    body = f"name=Jos\xe9&access_token={token}&city=M%FCnchen".encode("latin-1")
    response, _ = post(wsgi_app, body)
    assert response.status_int == 200
    assert app.body == body  # still readable for the app


def test_a_latin1_form_without_a_token_is_a_plain_401(stack):
    build, _, _ = stack
    wsgi_app, _ = build()
    response, _ = post(wsgi_app, "name=Jos\xe9".encode("latin-1"))
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oauth2"'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"access_token=%ff%fe", id="not-utf8"),
        pytest.param(b"access_token=", id="empty"),
        pytest.param(b"access_token=a%20b", id="space"),
        pytest.param(b"access_token=\xe9", id="latin1-byte"),
    ],
)
def test_a_malformed_body_token_is_invalid_request(stack, body):
    build, _, app = stack
    wsgi_app, _ = build()
    response, _ = post(wsgi_app, body)
    assert response.status_int == 400
    assert response.json["error"] == "invalid_request"
    assert app.calls == 0


def test_an_encoded_field_name_is_decoded(stack):
    build, _, app = stack
    wsgi_app, token = build()
    response, _ = post(wsgi_app, f"access%5Ftoken={token}".encode())
    assert response.status_int == 200
    assert app.calls == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_token_still_works_and_the_body_stays_readable(stack, chunked):
    build, _, app = stack
    wsgi_app, token = build()
    body = f"note=hello&access_token={token}".encode()
    response, _ = post(wsgi_app, body, chunked=chunked)
    assert response.status_int == 200
    assert app.body == body
