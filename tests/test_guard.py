"""The guard on every other path (RFC 6750)."""

from __future__ import annotations

import contextlib
import logging
import time

import pytest
import webtest
from conftest import issue_token
from flaky_store import FlakyStore

from oauth_middleware.models import digest
from oauth_middleware.records import AccessTokenRecord

ME = "/api/me"


class RecordingApp:
    """A WSGI app that remembers its last environ and echoes the body it can still read."""

    def __init__(self, headers=None):
        self.calls = 0
        self.environ = None
        self.headers = headers or []

    def __call__(self, environ, start_response):
        self.calls += 1
        self.environ = environ
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        start_response("200 OK", [("Content-Type", "text/plain"), *self.headers])
        return [body or b"ok"]


@pytest.fixture
def recorder():
    return RecordingApp()


@pytest.fixture
def guarded(make_middleware, recorder):
    return webtest.TestApp(
        make_middleware(recorder, public_paths="/health /static/*", token_from_query="true")
    )


def test_header_token_reaches_app_with_environ(guarded, recorder):
    token = issue_token(guarded, "read write")
    response = guarded.get("/anything", headers={"Authorization": f"Bearer {token}"})
    assert response.text == "ok"
    environ = recorder.environ
    assert environ["oauth2.token"].token == token
    assert environ["oauth2.token"].client_id == "service"
    assert environ["oauth2.token"].expires_at > time.time()
    assert environ["oauth2.client_id"] == "service"
    assert environ["oauth2.scopes"] == ("read", "write")
    assert environ["oauth2.user"] is None
    assert "REMOTE_USER" not in environ  # client-only token
    assert response.headers["Vary"] == "Authorization"


def test_scheme_is_case_insensitive(guarded):
    token = issue_token(guarded)
    guarded.get("/x", headers={"Authorization": f"bEaReR {token}"}, status=200)


def test_remote_user_set_when_token_has_user(middleware, recorder):
    record = AccessTokenRecord("service", "alice", ("read",), int(time.time()) + 60)
    middleware.server.repository.save_access_token(digest("user-token"), record, 60)
    middleware.guard.app = recorder
    webtest.TestApp(middleware).get("/x", headers={"Authorization": "Bearer user-token"})
    assert recorder.environ["REMOTE_USER"] == "alice"
    assert recorder.environ["oauth2.user"] == "alice"


def test_body_token_leaves_body_readable(guarded, recorder):
    token = issue_token(guarded)
    response = guarded.post("/submit", {"access_token": token, "note": "hello"})
    assert recorder.calls == 1
    assert b"note=hello" in response.body  # the app read the whole body itself


def test_body_token_ignored_on_get(guarded, recorder):
    token = issue_token(guarded)
    # A GET with a form body does not count as a token source (RFC 6750 §2.2).
    guarded.request(
        "/x",
        method="GET",
        body=f"access_token={token}".encode(),
        content_type="application/x-www-form-urlencoded",
        status=401,
    )
    assert recorder.calls == 0


def test_query_token_when_enabled(guarded):
    token = issue_token(guarded)
    guarded.get(f"/x?access_token={token}", status=200)


def test_query_token_ignored_by_default(app):
    token = issue_token(app)
    response = app.get(f"{ME}?access_token={token}", status=401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oauth2"'


def test_body_token_can_be_switched_off(make_middleware, recorder):
    app = webtest.TestApp(make_middleware(recorder, token_from_body="false"))
    token = issue_token(app)
    app.post("/x", {"access_token": token}, status=401)


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("header+query", id="header-and-query"),
        pytest.param("query+query", id="query-twice"),
        pytest.param("body+body", id="body-twice"),
    ],
)
def test_two_sources_is_invalid_request(guarded, recorder, how):
    token = issue_token(guarded)
    headers = {"Authorization": f"Bearer {token}"} if "header" in how else {}
    query = f"?access_token={token}" if "query" in how else ""
    if how == "query+query":
        query += f"&access_token={token}"
    if "body" in how:
        body = f"access_token={token}&access_token={token}"
        response = guarded.post("/x", body, content_type="application/x-www-form-urlencoded", status=400)
    else:
        response = guarded.get(f"/x{query}", headers=headers, status=400)
    assert response.json["error"] == "invalid_request"
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    assert recorder.calls == 0


@pytest.mark.parametrize("first", ["header", "query"])
def test_a_body_is_not_searched_once_a_token_was_found(guarded, recorder, first):
    # Changed in 0.2.0 (issue 10, item 2): the body is read only when no other source has a
    # token, so a header or query token with a body token is no longer invalid_request.
    token = issue_token(guarded)
    headers = {"Authorization": f"Bearer {token}"} if first == "header" else {}
    query = f"?access_token={token}" if first == "query" else ""
    response = guarded.post(f"/x{query}", {"access_token": "other"}, headers=headers, status=200)
    assert response.body == b"access_token=other"  # the app gets the body untouched
    assert recorder.calls == 1


def test_missing_token_is_bare_challenge(guarded, recorder):
    response = guarded.get("/x", status=401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oauth2"'
    assert response.json == {}  # no error code without credentials (RFC 6750 §3.1)
    assert response.headers["Vary"] == "Authorization"
    assert response.headers["Cache-Control"] == "no-store"
    assert recorder.calls == 0


def test_other_scheme_is_treated_as_missing(guarded):
    response = guarded.get("/x", headers={"Authorization": "Basic Zm9vOmJhcg=="}, status=401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oauth2"'


def test_realm_setting(make_middleware):
    app = webtest.TestApp(make_middleware(realm="api.example"))
    assert app.get(ME, status=401).headers["WWW-Authenticate"] == 'Bearer realm="api.example"'


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer", id="no-token"),
        pytest.param("Bearer    ", id="blank-token"),
        pytest.param("Bearer a b", id="two-words"),
        pytest.param("Bearer tok\u00e9n", id="non-ascii"),
        pytest.param("Bearer \xff\xfe", id="latin1-bytes"),
        pytest.param('Bearer "quoted"', id="bad-characters"),
    ],
)
def test_malformed_bearer_header_is_400(guarded, recorder, header):
    response = guarded.get("/x", headers={"Authorization": header}, status=400)
    assert response.json["error"] == "invalid_request"
    assert recorder.calls == 0


def test_non_utf8_raw_header_is_not_500(guarded):
    # Headers reach WSGI as latin-1 strings; bytes that are not UTF-8 must give a 4xx.
    raw = b"Bearer \xc3\x28".decode("latin-1")
    response = guarded.get("/x", extra_environ={"HTTP_AUTHORIZATION": raw}, status=400)
    assert response.json["error"] == "invalid_request"


def test_non_utf8_body_is_400(guarded):
    response = guarded.post(
        "/x", b"access_token=%ff%fe", content_type="application/x-www-form-urlencoded", status=400
    )
    assert response.json["error"] == "invalid_request"


def test_unknown_token_is_invalid_token(guarded, recorder):
    response = guarded.get("/x", headers={"Authorization": "Bearer not-a-real-token"}, status=401)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="oauth2", error="invalid_token"')
    assert response.json["error"] == "invalid_token"
    assert recorder.calls == 0


def test_expired_token_is_invalid_token(middleware, recorder):
    # Record still in the store (its store TTL is long) but past its expiry.
    record = AccessTokenRecord("service", None, ("read",), int(time.time()) - 1)
    middleware.server.repository.save_access_token(digest("old-token"), record, 60)
    middleware.guard.app = recorder
    response = webtest.TestApp(middleware).get(
        "/x", headers={"Authorization": "Bearer old-token"}, status=401
    )
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert recorder.calls == 0


def test_token_expires_by_ttl(make_middleware, recorder, clock):
    app = webtest.TestApp(make_middleware(recorder, access_token_ttl="1", clock=clock))
    token = issue_token(app)
    app.get("/x", headers={"Authorization": f"Bearer {token}"}, status=200)
    clock.advance(1.1)
    app.get("/x", headers={"Authorization": f"Bearer {token}"}, status=401)


def test_revoked_token_is_invalid(middleware, recorder):
    app = webtest.TestApp(middleware)
    middleware.guard.app = recorder
    token = issue_token(app)
    middleware.server.repository.revoke_access_token(digest(token))
    app.get("/x", headers={"Authorization": f"Bearer {token}"}, status=401)


@pytest.fixture
def scoped(make_middleware, recorder):
    rules = "GET,HEAD /api/* read\nPOST,DELETE /api/* write\n* /admin admin"
    return webtest.TestApp(make_middleware(recorder, scope_rules=rules, public_paths="/health"))


@pytest.mark.parametrize(
    ("scope", "method", "path", "status", "needed"),
    [
        pytest.param("read", "GET", "/api/items", 200, None, id="read-get"),
        pytest.param("read", "POST", "/api/items", 403, "write", id="read-cannot-post"),
        pytest.param("write", "GET", "/api/items", 403, "read", id="write-cannot-get"),
        pytest.param("read write", "DELETE", "/api/items/1", 200, None, id="write-delete"),
        pytest.param("read write", "GET", "/admin", 403, "admin", id="admin-any-method"),
        pytest.param("read", "GET", "/elsewhere", 200, None, id="no-rule-any-token"),
    ],
)
def test_scope_rules(scoped, recorder, scope, method, path, status, needed):
    token = issue_token(scoped, scope)
    response = scoped.request(
        path, method=method, headers={"Authorization": f"Bearer {token}"}, status=status
    )
    if needed:
        challenge = response.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert f'scope="{needed}"' in challenge
        assert response.json["error"] == "insufficient_scope"
        assert recorder.calls == 0


def test_public_paths_pass_untouched(guarded, recorder):
    response = guarded.get("/health")
    assert response.text == "ok"
    assert "oauth2.token" not in recorder.environ
    assert "Vary" not in response.headers
    guarded.get("/static/app.css", status=200)
    guarded.get("/staticfile", status=401)  # the prefix is /static/, not /static


def test_public_path_exact_match_only(guarded):
    guarded.get("/health/deeper", status=401)


def test_vary_appended_to_existing_vary(make_middleware):
    app = webtest.TestApp(make_middleware(RecordingApp(headers=[("Vary", "Accept-Encoding")])))
    token = issue_token(app)
    response = app.get("/x", headers={"Authorization": f"Bearer {token}"})
    assert response.headers["Vary"] == "Accept-Encoding, Authorization"


def test_store_down_fails_closed_with_503(make_middleware, recorder, caplog):
    store = FlakyStore()
    app = webtest.TestApp(make_middleware(recorder, store_backend=store))
    token = issue_token(app)
    store.down = True
    for _ in range(5):
        response = app.get("/x", headers={"Authorization": f"Bearer {token}"}, status=503)
        assert response.json["error"] == "temporarily_unavailable"
        assert response.headers["Retry-After"].isdigit()
    assert recorder.calls == 0
    outage_lines = [r for r in caplog.records if "store unavailable" in r.getMessage()]
    assert len(outage_lines) == 1  # logged once per interval, not per request
    store.down = False
    app.get("/x", headers={"Authorization": f"Bearer {token}"}, status=200)
    assert recorder.calls == 1


def test_missing_token_does_not_touch_store(make_middleware, recorder):
    store = FlakyStore()
    app = webtest.TestApp(make_middleware(recorder, store_backend=store))
    store.down = True
    app.get("/x", status=401)  # nothing to look up: a plain challenge


def test_app_cannot_change_the_stored_token_extra(middleware):
    """The injected token's extra data is read-only, whatever the store hands back."""
    record = AccessTokenRecord("service", None, ("read",), int(time.time()) + 60, {"n": 1})
    middleware.server.repository.save_access_token(digest("extra-token"), record, 60)
    seen = []

    def app(environ, start_response):
        extra = environ["oauth2.token"].extra
        seen.append(dict(extra))
        with contextlib.suppress(TypeError):
            extra["n"] = 2
        start_response("200 OK", [])
        return [b""]

    middleware.guard.app = app
    client = webtest.TestApp(middleware)
    for _ in range(2):
        client.get("/x", headers={"Authorization": "Bearer extra-token"})
    assert seen == [{"n": 1}, {"n": 1}]


# -- query tokens and caches, HEAD, default-deny (issue 10, item 10) -------------------------


@pytest.mark.parametrize(
    ("app_header", "expected"),
    [
        pytest.param(None, "private", id="none"),
        pytest.param("public, max-age=60", "max-age=60, private", id="public-replaced"),
        pytest.param("no-store", "no-store", id="no-store-kept"),
        pytest.param("private, max-age=5", "private, max-age=5", id="private-kept"),
    ],
)
def test_a_query_token_makes_the_response_private(make_middleware, app_header, expected):
    headers = [("Cache-Control", app_header)] if app_header else []
    app = webtest.TestApp(make_middleware(RecordingApp(headers=headers), token_from_query="true"))
    token = issue_token(app)
    response = app.get(f"/x?access_token={token}")
    assert response.headers.getall("Cache-Control") == [expected]
    header_response = app.get("/x", headers={"Authorization": f"Bearer {token}"})
    assert header_response.headers.getall("Cache-Control") == ([app_header] if app_header else [])


def test_a_get_rule_covers_head(make_middleware, recorder):
    app = webtest.TestApp(make_middleware(recorder, scope_rules="GET /api/* read\n* /api/* write"))
    token = issue_token(app, "write")
    response = app.head("/api/items", headers={"Authorization": f"Bearer {token}"}, status=403)
    assert 'scope="read"' in response.headers["WWW-Authenticate"]
    app.head("/api/items", headers={"Authorization": f"Bearer {issue_token(app, 'read')}"}, status=200)


@pytest.fixture
def deny_by_default(make_middleware, recorder):
    rules = "GET /api/* read\nPOST /api/* write"
    return webtest.TestApp(
        make_middleware(recorder, scope_rules=rules, scope_rules_default="deny", public_paths="/health")
    )


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/api/items", 200, id="rule-get"),
        pytest.param("HEAD", "/api/items", 200, id="rule-head"),
        pytest.param("POST", "/api/items", 200, id="rule-post"),
        pytest.param("DELETE", "/api/items", 403, id="method-without-rule"),
        pytest.param("PATCH", "/api/items", 403, id="other-method-without-rule"),
        pytest.param("GET", "/elsewhere", 403, id="path-without-rule"),
    ],
)
def test_scope_rules_default_deny_refuses_what_no_rule_names(deny_by_default, recorder, method, path, status):
    token = issue_token(deny_by_default, "read write")
    response = deny_by_default.request(
        path, method=method, headers={"Authorization": f"Bearer {token}"}, status=status
    )
    assert recorder.calls == (1 if status == 200 else 0)
    if status == 403:
        assert response.json["error"] == "insufficient_scope"
        assert response.headers["WWW-Authenticate"] == (
            'Bearer realm="oauth2", error="insufficient_scope", '
            'error_description="no scope rule allows this request"'
        )


def test_scope_rules_default_deny_keeps_public_paths_and_token_checks(deny_by_default, recorder):
    deny_by_default.get("/health", status=200)
    deny_by_default.delete("/api/items", status=401)  # no token: the challenge comes first
    deny_by_default.delete("/api/items", headers={"Authorization": "Bearer nope"}, status=401)


def test_scope_rules_default_is_allow(scoped, recorder):
    token = issue_token(scoped, "read")
    scoped.request("/api/items", method="PATCH", headers={"Authorization": f"Bearer {token}"}, status=200)


# -- nothing escapes the guard (issue 10, item 3) -------------------------------------------------


def _guard_only(make_middleware, recorder, tmp_path):
    from oauth_middleware.resource import guard_from_settings
    from oauth_middleware.settings import Settings

    store = f"sqlite:///{tmp_path / 'oauth.db'}"
    token = issue_token(webtest.TestApp(make_middleware(store=store)))
    guard = guard_from_settings(recorder, Settings.from_config({"store": store}))
    return guard, guard, token


def _combined(make_middleware, recorder, tmp_path):
    middleware = make_middleware(recorder)
    return middleware, middleware.guard, issue_token(webtest.TestApp(middleware))


@pytest.mark.parametrize("build", [_combined, _guard_only], ids=["oauth2", "guard"])
def test_an_unexpected_error_in_the_guard_fails_closed(make_middleware, recorder, tmp_path, caplog, build):
    wsgi_app, guard, token = build(make_middleware, recorder, tmp_path)

    def broken(token_string):
        raise RuntimeError("a bug while checking a token")

    guard.tokens.verify = broken
    caplog.set_level(logging.ERROR, logger="oauth_middleware")
    response = webtest.TestApp(wsgi_app).get("/x", headers={"Authorization": f"Bearer {token}"}, status=500)
    assert response.json == {"error": "server_error", "error_description": "internal error"}
    assert "WWW-Authenticate" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert recorder.calls == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].name.startswith("oauth_middleware")
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is RuntimeError
