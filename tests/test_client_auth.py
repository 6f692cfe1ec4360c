"""Client authentication: each client's registered method, credentials read once, plug-in methods."""

from __future__ import annotations

import re

import pytest
import webtest
from conftest import basic, register
from oauth_middleware_testplugin.client_auth import HeaderToken

from oauth_middleware import proxies
from oauth_middleware.client_auth import AUTH_METHODS, builtin, register_auth_method
from oauth_middleware.clients import build_client
from oauth_middleware.errors import ConfigError
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import Client, digest

TOKEN, REVOKE, INTROSPECT = "/oauth/token", "/oauth/revoke", "/oauth/introspect"
METADATA = "/.well-known/oauth-authorization-server"
SECRET = "client-secret-0123456789"
#: One client per method; all may introspect, so every endpoint accepts them once authenticated.
CLIENTS = {
    "basic-only": "client_secret_basic",
    "post-only": "client_secret_post",
    "header-client": "test_header",
}


def body_for(path: str) -> dict[str, str]:
    """The form of a request to ``path`` that passes once the client is authenticated."""
    return {"grant_type": "client_credentials"} if path == TOKEN else {"token": "not-a-token"}


def by_basic(client_id: str, secret: str = SECRET) -> tuple[dict[str, str], dict[str, str]]:
    return {"Authorization": basic(client_id, secret)}, {}


def by_body(client_id: str, secret: str = SECRET) -> tuple[dict[str, str], dict[str, str]]:
    return {}, {"client_id": client_id, "client_secret": secret}


def by_header(client_id: str, secret: str = SECRET) -> tuple[dict[str, str], dict[str, str]]:
    return {"X-Test-Client": client_id, "X-Test-Token": secret}, {}


def authenticate(app, path, way, client_id, secret=SECRET, status=200, **extra):
    headers, form = way(client_id, secret)
    return app.post(path, {**body_for(path), **form}, headers=headers, status=status, **extra)


@pytest.fixture
def middleware(make_middleware) -> OAuth2Middleware:
    middleware = make_middleware(introspection_clients=" ".join(CLIENTS), throttle_max_failures="3")
    for client_id, method in CLIENTS.items():
        register(
            middleware,
            client_id,
            SECRET,
            grant_types=["client_credentials"],
            token_endpoint_auth_method=method,
        )
    return middleware


@pytest.fixture
def app(middleware) -> webtest.TestApp:
    return webtest.TestApp(middleware)


ENDPOINTS = [
    pytest.param(TOKEN, id="token"),
    pytest.param(REVOKE, id="revoke"),
    pytest.param(INTROSPECT, id="introspect"),
]


# -- the registered method is enforced --------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("client_id", "way"),
    [
        pytest.param("basic-only", by_basic, id="basic"),
        pytest.param("post-only", by_body, id="post"),
        pytest.param("header-client", by_header, id="plug-in"),
    ],
)
def test_each_client_authenticates_with_its_own_method(app, path, client_id, way):
    authenticate(app, path, way, client_id, status=200)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("client_id", "way"),
    [
        pytest.param("basic-only", by_body, id="basic-only-posts-its-secret"),
        pytest.param("basic-only", by_header, id="basic-only-uses-the-plug-in"),
        pytest.param("post-only", by_basic, id="post-only-uses-basic"),
        pytest.param("header-client", by_basic, id="plug-in-client-uses-basic"),
        pytest.param("header-client", by_body, id="plug-in-client-posts-its-secret"),
    ],
)
def test_the_right_secret_by_another_method_is_invalid_client(app, path, client_id, way, caplog):
    response = authenticate(app, path, way, client_id, status=401)
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert "is not the client's" in caplog.text


def test_a_wrong_method_counts_as_a_failed_attempt(app):
    for _ in range(3):
        authenticate(app, TOKEN, by_body, "basic-only", status=401)
    response = authenticate(app, TOKEN, by_basic, "basic-only", status=429)
    assert response.json["error"] == "invalid_request"


def test_a_wrong_token_of_a_plug_in_method_is_invalid_client(app):
    response = authenticate(app, TOKEN, by_header, "header-client", secret="wrong", status=401)
    assert response.json["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        pytest.param(
            {"Authorization": "Basic !!!"},
            {"client_id": "post-only", "client_secret": SECRET},
            id="bad-basic-and-post",
        ),
        pytest.param(by_basic("basic-only")[0] | by_header("basic-only")[0], {}, id="basic-and-plug-in"),
    ],
)
def test_two_methods_at_once_are_invalid_request(app, headers, form):
    response = app.post(TOKEN, {**body_for(TOKEN), **form}, headers=headers, status=400)
    assert response.json["error"] == "invalid_request"


def test_a_body_client_id_naming_another_client_is_invalid_request(app):
    headers, _ = by_header("header-client")
    response = app.post(TOKEN, {**body_for(TOKEN), "client_id": "basic-only"}, headers=headers, status=400)
    assert response.json["error"] == "invalid_request"


# -- clients stored before they had a method ----------------------------------------------------------


def test_a_stored_client_without_a_method_is_read_as_such():
    value = build_client("old", secret_hash=digest(SECRET)).to_value()
    del value["am"]  # a record written by 0.1
    assert Client.from_value(value).token_endpoint_auth_method is None


@pytest.mark.parametrize("way", [pytest.param(by_basic, id="basic"), pytest.param(by_body, id="post")])
def test_an_old_confidential_client_keeps_both_secret_methods(middleware, app, way):
    middleware.server.repository.save_client(
        Client("old", digest(SECRET), grant_types=("client_credentials",))
    )
    authenticate(app, TOKEN, way, "old", status=200)
    authenticate(app, TOKEN, by_header, "old", status=401)


def test_an_old_public_client_keeps_none(middleware, app):
    middleware.server.repository.save_client(Client("old-app", None, grant_types=("client_credentials",)))
    # Identified, not authenticated: the grant then refuses a public client, not the authentication.
    response = app.post(TOKEN, {**body_for(TOKEN), "client_id": "old-app"}, status=400)
    assert response.json["error"] == "unauthorized_client"
    authenticate(app, TOKEN, by_body, "old-app", status=401)


# -- registration ----------------------------------------------------------------------------------


def test_new_registrations_default_to_basic_or_none():
    assert build_client("c", secret_hash=digest(SECRET)).token_endpoint_auth_method == "client_secret_basic"
    assert build_client("p", secret_hash=None).token_endpoint_auth_method == "none"


@pytest.mark.parametrize(
    ("secret_hash", "method", "message"),
    [
        pytest.param(
            digest(SECRET), "client_secret_jwt_typo", "unknown client authentication method", id="unknown"
        ),
        pytest.param(
            None, "client_secret_basic", "a public client (no secret) cannot use", id="public-basic"
        ),
        pytest.param(None, "test_header", "a public client (no secret) cannot use", id="public-plug-in"),
        pytest.param(digest(SECRET), "none", "a client with a secret cannot use", id="confidential-none"),
    ],
)
def test_registration_refuses_a_method_that_does_not_fit(secret_hash, method, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build_client("c", secret_hash=secret_hash, token_endpoint_auth_method=method)


# -- credentials read once per request ------------------------------------------------------------------


def test_basic_and_the_origin_are_read_once_per_token_request(app, monkeypatch):
    calls = {"basic": 0, "origin": 0}

    def counting(name, function):
        def wrapper(*args):
            calls[name] += 1
            return function(*args)

        return wrapper

    monkeypatch.setattr(builtin, "basic_credentials", counting("basic", builtin.basic_credentials))
    monkeypatch.setattr(proxies, "request_origin", counting("origin", proxies.request_origin))
    authenticate(app, TOKEN, by_basic, "basic-only", status=200)
    # Before: the throttle parsed the Basic header and computed the origin a second time.
    assert calls == {"basic": 1, "origin": 1}


# -- a changed client is seen at once ----------------------------------------------------------------------


@pytest.mark.parametrize("change", ["rotate", "grants", "remove"])
def test_a_client_changed_by_another_process_is_seen_by_the_next_request(make_middleware, tmp_path, change):
    # Two middlewares on one SQLite file: two workers. Each keeps the client it built last.
    store = f"sqlite:///{tmp_path}/oauth.db"
    worker, other = make_middleware(store=store), make_middleware(store=store)
    app = webtest.TestApp(worker)
    fields = {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"}
    register(other, "rotating", SECRET, **fields)
    for _ in range(2):  # built, then the built one again
        authenticate(app, TOKEN, by_basic, "rotating", status=200)
    if change == "rotate":
        register(other, "rotating", "the-new-secret-0123456789", **fields)
        authenticate(app, TOKEN, by_basic, "rotating", status=401)
        authenticate(app, TOKEN, by_basic, "rotating", "the-new-secret-0123456789", status=200)
    elif change == "grants":
        register(other, "rotating", SECRET, **{**fields, "grant_types": ["refresh_token"]})
        response = authenticate(app, TOKEN, by_basic, "rotating", status=400)
        assert response.json["error"] == "unauthorized_client"
    else:
        other.server.repository.remove_client("rotating")
        assert authenticate(app, TOKEN, by_basic, "rotating", status=401).json["error"] == "invalid_client"
    worker.close()
    other.close()


# -- plug-in methods: an entry point and the Python API ---------------------------------------------------


def test_the_entry_point_method_is_listed_in_the_metadata(app):
    document = app.get(METADATA).json
    for member in ("token", "revocation", "introspection"):
        assert "test_header" in document[f"{member}_endpoint_auth_methods_supported"]


@pytest.fixture
def api_method():
    method = register_auth_method(HeaderToken("test_api_header", "X-Api-Client", "X-Api-Token"))
    yield method
    AUTH_METHODS.unregister(method.name)


def test_a_method_registered_through_the_python_api(make_middleware, api_method):
    middleware = make_middleware()
    register(
        middleware,
        "api-client",
        SECRET,
        grant_types=["client_credentials"],
        token_endpoint_auth_method="test_api_header",
    )
    app = webtest.TestApp(middleware)
    assert "test_api_header" in app.get(METADATA).json["token_endpoint_auth_methods_supported"]
    headers = {"X-Api-Client": "api-client", "X-Api-Token": SECRET}
    response = app.post(TOKEN, body_for(TOKEN), headers=headers)
    assert response.json["token_type"] == "Bearer"
    # The entry-point method reads other headers, and this client is not registered for it.
    response = app.post(TOKEN, body_for(TOKEN), headers=by_header("api-client")[0], status=401)
    assert response.json["error"] == "invalid_client"


def test_a_method_registered_under_another_name_is_a_load_time_error(make_middleware, api_method):
    AUTH_METHODS.register("alias", api_method)
    try:
        with pytest.raises(ConfigError, match="'alias' declares the name 'test_api_header'"):
            make_middleware()
    finally:
        AUTH_METHODS.unregister("alias")


def test_a_name_is_registered_once(api_method):
    with pytest.raises(ConfigError, match="'test_api_header' is already registered"):
        register_auth_method(HeaderToken("test_api_header", "X-Other", "X-Other-Token"))
