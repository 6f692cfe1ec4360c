"""Helpers for applications: current_token, scope_denial and require_scope."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pytest
import webtest
from conftest import issue_token
from webob import Request

import oauth_middleware
from oauth_middleware.guard import inject
from oauth_middleware.helpers import DEFAULT_REALM, current_token, require_scope, scope_denial
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import AccessToken
from oauth_middleware.settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def make_token(*scopes: str) -> AccessToken:
    return AccessToken(
        token="opaque-token",
        client_id="service",
        user_id=None,
        scopes=scopes,
        expires_at=int(time.time()) + 60,
    )


def with_token(*scopes: str) -> dict[str, Any]:
    """An environ as the guard leaves it for a token with ``scopes``."""
    environ: dict[str, Any] = {}
    inject(environ, make_token(*scopes))  # type: ignore[arg-type]
    return environ


class Recorder:
    """A WSGI app that answers 200 and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.calls += 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"inner"]


def assert_bearer_error(response: Any, status: int, challenge: str, body: dict[str, str]) -> None:
    assert response.status_code == status
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == "Authorization"
    assert response.content_type == "application/json"
    assert response.json == body


INSUFFICIENT = {"error": "insufficient_scope", "error_description": "the token lacks a required scope"}
INSUFFICIENT_CHALLENGE = (
    'Bearer realm="{realm}", error="insufficient_scope", '
    'error_description="the token lacks a required scope", scope="{scope}"'
)


# -- current_token ---------------------------------------------------------


def test_current_token_returns_the_injected_token() -> None:
    token = make_token("read")
    environ: dict[str, Any] = {}
    inject(environ, token)  # type: ignore[arg-type]
    assert current_token(environ) is token  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"oauth2.token": None}, id="none"),
        pytest.param({"oauth2.token": "opaque-token"}, id="string-not-a-token"),
    ],
)
def test_current_token_is_none_without_a_guard_token(environ: dict[str, Any]) -> None:
    assert current_token(environ) is None  # type: ignore[arg-type]


# -- require_scope on a bare WSGI app -------------------------------------


def test_require_scope_without_token_is_401_and_app_not_called() -> None:
    inner = Recorder()
    app = webtest.TestApp(require_scope("write")(inner))
    response = app.get("/", status=401)
    assert_bearer_error(response, 401, f'Bearer realm="{DEFAULT_REALM}"', {})
    assert inner.calls == 0


def test_require_scope_wrong_scope_is_403_naming_the_scope() -> None:
    inner = Recorder()
    app = webtest.TestApp(require_scope("write", realm="api")(inner))
    response = app.get("/", extra_environ=with_token("read"), status=403)
    assert_bearer_error(
        response, 403, INSUFFICIENT_CHALLENGE.format(realm="api", scope="write"), INSUFFICIENT
    )
    assert inner.calls == 0


def test_require_scope_needs_every_scope() -> None:
    inner = Recorder()
    app = webtest.TestApp(require_scope("read", "write", realm="api")(inner))
    response = app.get("/", extra_environ=with_token("read"), status=403)
    assert_bearer_error(
        response, 403, INSUFFICIENT_CHALLENGE.format(realm="api", scope="read write"), INSUFFICIENT
    )
    assert inner.calls == 0


@pytest.mark.parametrize(
    ("required", "granted"),
    [
        pytest.param(("write",), ("write",), id="exact"),
        pytest.param(("write",), ("read", "write"), id="more-granted"),
        pytest.param(("read", "write"), ("write", "read"), id="every-scope-any-order"),
    ],
)
def test_require_scope_right_scope_runs_the_app(required: tuple[str, ...], granted: tuple[str, ...]) -> None:
    inner = Recorder()
    app = webtest.TestApp(require_scope(*required)(inner))
    response = app.get("/", extra_environ=with_token(*granted))
    assert response.text == "inner"
    assert inner.calls == 1


def test_require_scope_repeated_scope_is_named_once() -> None:
    app = webtest.TestApp(require_scope("write", "write")(Recorder()))
    response = app.get("/", extra_environ=with_token("read"), status=403)
    assert response.headers["WWW-Authenticate"].endswith('scope="write"')


@pytest.mark.parametrize(
    ("scopes", "realm"),
    [
        pytest.param((), None, id="no-scope"),
        pytest.param(("read write",), None, id="two-scopes-in-one-string"),
        pytest.param(("",), None, id="empty-scope"),
        pytest.param(('wr"ite',), None, id="quote-in-scope"),
        pytest.param(("wr\\ite",), None, id="backslash-in-scope"),
        pytest.param(("write",), 'my"realm', id="quote-in-realm"),
        pytest.param(("write",), "my\nrealm", id="newline-in-realm"),
    ],
)
def test_bad_scopes_or_realm_fail_at_construction(scopes: tuple[str, ...], realm: str | None) -> None:
    with pytest.raises(ValueError, match=r"scope|realm"):
        require_scope(*scopes, realm=realm)
    with pytest.raises(ValueError, match=r"scope|realm"):
        scope_denial(with_token("write"), *scopes, realm=realm)  # type: ignore[arg-type]


def test_default_realm_is_the_settings_default() -> None:
    assert DEFAULT_REALM == Settings.from_config({"store": "memory://"}).realm == "oauth2"


# -- scope_denial ----------------------------------------------------------


def test_scope_denial_is_none_with_the_scope() -> None:
    assert scope_denial(with_token("read", "write"), "write") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("environ", "status", "challenge", "body"),
    [
        pytest.param({}, 401, 'Bearer realm="api"', {}, id="no-token"),
        pytest.param(
            with_token("read"),
            403,
            INSUFFICIENT_CHALLENGE.format(realm="api", scope="write"),
            INSUFFICIENT,
            id="wrong-scope",
        ),
    ],
)
def test_scope_denial_renders_the_guard_error(
    environ: dict[str, Any], status: int, challenge: str, body: dict[str, str]
) -> None:
    denied = scope_denial(environ, "write", realm="api")  # type: ignore[arg-type]
    assert denied is not None
    # It is a WSGI application: run it as one.
    response = Request.blank("/").get_response(denied)
    assert_bearer_error(response, status, challenge, body)


# -- behind the real middleware --------------------------------------------


@pytest.fixture
def guarded(make_middleware: Callable[..., OAuth2Middleware]) -> tuple[webtest.TestApp, Recorder]:
    """``require_scope("write")`` around an app, behind the middleware (realm ``shop``)."""
    inner = Recorder()
    middleware = make_middleware(
        require_scope("write", realm="shop")(inner), realm="shop", public_paths="/open"
    )
    return webtest.TestApp(middleware), inner


def test_behind_the_guard_wrong_scope_is_403(guarded: tuple[webtest.TestApp, Recorder]) -> None:
    app, inner = guarded
    token = issue_token(app, "read")
    response = app.get("/data", headers={"Authorization": f"Bearer {token}"}, status=403)
    assert_bearer_error(
        response, 403, INSUFFICIENT_CHALLENGE.format(realm="shop", scope="write"), INSUFFICIENT
    )
    assert inner.calls == 0


def test_behind_the_guard_right_scope_runs_the_app(guarded: tuple[webtest.TestApp, Recorder]) -> None:
    app, inner = guarded
    token = issue_token(app, "read write")
    response = app.get("/data", headers={"Authorization": f"Bearer {token}"})
    assert response.text == "inner"
    assert response.headers["Vary"] == "Authorization"
    assert inner.calls == 1


def test_behind_the_guard_public_path_is_401(guarded: tuple[webtest.TestApp, Recorder]) -> None:
    """On a public path the guard injects no token, even when one is sent."""
    app, inner = guarded
    token = issue_token(app, "read write")
    response = app.get("/open", headers={"Authorization": f"Bearer {token}"}, status=401)
    assert_bearer_error(response, 401, 'Bearer realm="shop"', {})
    assert inner.calls == 0


def test_helpers_are_public_api() -> None:
    for name in ("current_token", "require_scope", "scope_denial"):
        assert name in oauth_middleware.__all__
        assert getattr(oauth_middleware, name) is globals()[name]


# -- the protected resource metadata URL (RFC 9728 §5.1) ----------------------

RESOURCE = "http://localhost/api"
METADATA_URL = "http://localhost/.well-known/oauth-protected-resource/api"


@pytest.fixture
def guarded_resource(make_middleware: Callable[..., OAuth2Middleware]) -> tuple[webtest.TestApp, Recorder]:
    """``require_scope("write")`` behind a guard with a ``resource_identifier`` (its metadata URL)."""
    inner = Recorder()
    middleware = make_middleware(
        require_scope("write", realm="shop")(inner),
        realm="shop",
        public_paths="/open",
        resource_identifier=RESOURCE,
        accept_tokens_without_audience=True,
    )
    return webtest.TestApp(middleware), inner


@pytest.mark.parametrize(
    ("path", "scope", "status", "challenge", "body"),
    [
        pytest.param(
            "/data",
            "read",
            403,
            INSUFFICIENT_CHALLENGE.format(realm="shop", scope="write"),
            INSUFFICIENT,
            id="wrong-scope",
        ),
        pytest.param("/open", "read write", 401, 'Bearer realm="shop"', {}, id="public-path"),
    ],
)
def test_behind_a_guard_with_a_resource_identifier_the_challenge_names_its_metadata(
    guarded_resource: tuple[webtest.TestApp, Recorder],
    path: str,
    scope: str,
    status: int,
    challenge: str,
    body: dict[str, str],
) -> None:
    app, inner = guarded_resource
    token = issue_token(app, scope)
    response = app.get(path, headers={"Authorization": f"Bearer {token}"}, status=status)
    assert_bearer_error(response, status, f'{challenge}, resource_metadata="{METADATA_URL}"', body)
    assert inner.calls == 0
    # The URL the helpers named is where the guard serves the metadata.
    assert app.get(METADATA_URL).json["resource"] == RESOURCE


def test_the_guard_puts_the_metadata_url_in_the_environ(
    make_middleware: Callable[..., OAuth2Middleware],
) -> None:
    seen: list[Any] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(environ.get("oauth2.resource_metadata"))
        start_response("200 OK", [])
        return [b""]

    with_identifier = webtest.TestApp(
        make_middleware(app, public_paths="/open", resource_identifier=RESOURCE)
    )
    without = webtest.TestApp(make_middleware(app, public_paths="/open"))
    with_identifier.get("/open")
    without.get("/open")
    assert seen == [METADATA_URL, None]


@pytest.mark.parametrize(
    ("environ", "status", "challenge"),
    [
        pytest.param({}, 401, 'Bearer realm="api"', id="no-token"),
        pytest.param(
            with_token("read"),
            403,
            INSUFFICIENT_CHALLENGE.format(realm="api", scope="write"),
            id="wrong-scope",
        ),
    ],
)
def test_scope_denial_names_the_metadata_url_the_guard_left(
    environ: dict[str, Any], status: int, challenge: str
) -> None:
    denied = scope_denial({**environ, "oauth2.resource_metadata": METADATA_URL}, "write", realm="api")  # type: ignore[arg-type]
    assert denied is not None
    response = Request.blank("/").get_response(denied)
    assert response.status_code == status
    assert response.headers["WWW-Authenticate"] == f'{challenge}, resource_metadata="{METADATA_URL}"'
