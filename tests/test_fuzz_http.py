"""HTTP-level fuzzing of every endpoint and the guard (see ``http_fuzz.py`` for what is sent).

Whatever the request — random, malformed, oversized, non-UTF-8, repeated or
missing parameters, any method and content type, real and broken
credentials — the answer is never a 5xx, never an exception escaping the
middleware, never a traceback, never a header with a line break, and the
protected app never runs without a valid token with the scope the path
needs. ``python bench/fuzz.py`` runs the same targets 10,000+ times each.
"""

from __future__ import annotations

import dataclasses

import pytest
from fuzz_support import examples
from http_fuzz import CODE_REQUEST, FORM, TARGETS, Case, make_server, problems
from hypothesis import given
from webob import Request

#: Cases per target in CI: ten targets, about 1,500 requests.
CI_CASES = 150


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One fresh server per target, so that one target's revocations cannot hide another's bugs."""
    keys = tmp_path_factory.mktemp("fuzz-keys")
    return {name: make_server(target.kind, keys) for name, target in TARGETS.items()}


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz(servers, name):
    server = servers[name]

    @examples(CI_CASES)
    @given(case=TARGETS[name].cases(server))
    def check(case):
        answer, found = problems(name, server, case)
        assert found == [], (answer.status, answer.body[:300])

    check()


def test_the_checks_catch_a_crash(servers):
    """The harness is not blind: an escaped exception, and the app run where it must not be, are reported."""
    server = servers["guard"]
    middleware = server.middleware
    health = Case("GET", "/health", "", b"", None, (), ())

    def crashing(environ, start_response):
        raise RuntimeError("boom")

    def leaky_endpoint(_context, request):
        return Request(request.environ).get_response(server.app)

    original_app, original_endpoint = middleware.guard.app, middleware.routes["/oauth/token"]
    try:
        middleware.guard.app = crashing
        found = problems("guard", server, health)[1]
        assert found == ["exception escaped the middleware: RuntimeError: boom"]
        middleware.guard.app = original_app
        # The endpoint's declaration with a leaky handler that also answers the GET sent here.
        leaky = dataclasses.replace(
            original_endpoint, handler=leaky_endpoint, methods=("GET", "POST"), form=False
        )
        middleware.routes["/oauth/token"] = leaky
        found = problems("token", server, Case("GET", "/oauth/token", "", b"", None, (), ()))[1]
        assert found == ["the protected app answered a request to the token endpoint"]
    finally:
        middleware.guard.app, middleware.routes["/oauth/token"] = original_app, original_endpoint
    # A public path reaches the app without a token; a protected one does not.
    assert problems("guard", server, health)[1] == []
    answer, found = problems("guard", server, Case("GET", "/api/me", "", b"", None, (), ()))
    assert (answer.status, found) == (401, [])


# -- regressions the fuzzer found ----------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["latin-1", "bogus", "utf-16", "ascii"])
@pytest.mark.parametrize(
    ("name", "path"),
    [
        pytest.param("token", "/oauth/token", id="token"),
        pytest.param("authorize-post", "/oauth/authorize", id="authorize"),
        pytest.param("revoke", "/oauth/revoke", id="revoke"),
        pytest.param("introspect", "/oauth/introspect", id="introspect"),
        pytest.param("guard", "/api/me", id="guard"),
    ],
)
def test_form_body_in_another_charset_is_a_4xx(servers, name, path, charset):
    # WebOb refuses to parse a form declared in another charset by raising
    # DeprecationWarning, which used to escape as a 500 (and out of the guard).
    case = Case(
        "POST",
        path,
        "",
        b"access_token=abc&grant_type=client_credentials",
        f"{FORM}; charset={charset}",
        (),
        (),
    )
    answer, found = problems(name, servers[name], case)
    assert found == []
    assert 400 <= answer.status < 500


def test_query_string_that_is_not_utf8_is_a_page_not_a_500(servers):
    # %FF decodes to no UTF-8 character: WebOb's parser raised UnicodeDecodeError.
    case = Case("GET", "/oauth/authorize", "client_id=native&state=%FF", b"", None, (), ())
    answer, found = problems("authorize-get", servers["authorize-get"], case)
    assert found == []
    assert answer.status == 400
    assert dict(answer.headers)["Content-Type"].startswith("text/html")  # never redirected


def test_cookie_that_is_not_utf8_is_no_session(servers):
    server = servers["authorize-get"]
    query = (
        "&".join(f"{name}={value}" for name, value in CODE_REQUEST.items())
        .replace(":", "%3A")
        .replace("/", "%2F")
    )
    cookie = (("HTTP_COOKIE", "oauth2_session=\xff\xfe; other=1"),)
    answer, found = problems(
        "authorize-get", server, Case("GET", "/oauth/authorize", query, b"", None, cookie, ())
    )
    assert found == []
    assert answer.status == 200 and b'value="login"' in answer.body  # treated as not logged in
