"""Extension points from outside the package: grant types, store schemes, guard token types, endpoints.

The plug-in package ``tests/plugins/oauth_middleware_testplugin`` is
installed for the session (its ``.dist-info`` declares entry points). Each
extension is exercised over HTTP twice: registered here through the Python
API (and unregistered after), and under another name through its entry
point, as a third-party package would ship it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, issue_token, register
from oauth_middleware_testplugin.endpoints import ECHO_CONTEXT, MAGIC_INFO
from oauth_middleware_testplugin.grants import MAGICIAN, MagicGrant
from oauth_middleware_testplugin.stores import OPENED, DictStore
from oauth_middleware_testplugin.token_types import TestToken

from oauth_middleware.endpoints import ENDPOINTS
from oauth_middleware.errors import ConfigError
from oauth_middleware.grants import GRANTS
from oauth_middleware.stores import STORES
from oauth_middleware.token_types import TOKEN_TYPES

METADATA = "/.well-known/oauth-authorization-server"
MAGIC_API = "urn:example:grant-type:magic"
MAGIC_EP = "urn:example:grant-type:magic-ep"


@pytest.fixture
def magic_grant() -> Iterator[str]:
    """The magic grant registered through the Python API, for one test."""
    GRANTS.register(MAGIC_API, MagicGrant)
    yield MAGIC_API
    GRANTS.unregister(MAGIC_API)


@pytest.fixture
def testmem_store() -> Iterator[str]:
    """The ``testmem://`` scheme registered through the Python API, for one test."""
    STORES.register("testmem", DictStore)
    yield "testmem"
    STORES.unregister("testmem")


@pytest.fixture
def test_token_type() -> Iterator[str]:
    """The ``Test`` token type registered through the Python API, for one test."""
    TOKEN_TYPES.register(TestToken.scheme, TestToken)
    yield TestToken.scheme
    TOKEN_TYPES.unregister(TestToken.scheme)


@pytest.fixture
def magic_info_endpoint() -> Iterator[str]:
    """The ``magic-info`` endpoint registered through the Python API, for one test."""
    ENDPOINTS.register(MAGIC_INFO.name, MAGIC_INFO)
    yield MAGIC_INFO.name
    ENDPOINTS.unregister(MAGIC_INFO.name)


def via(request: pytest.FixtureRequest, name: str) -> str:
    """The name under test: registered through the API by its fixture, or an entry point's own."""
    if name.startswith("fixture:"):
        return str(request.getfixturevalue(name.removeprefix("fixture:")))
    return name


def magic_app(make_middleware, grant_type: str) -> webtest.TestApp:
    middleware = make_middleware(grants=f"client_credentials {grant_type}")
    register(middleware, "wizard", "wizard-secret-0123456789", grant_types=[grant_type], scopes=["read"])
    return webtest.TestApp(middleware)


# -- grant types ------------------------------------------------------------------


@pytest.mark.parametrize(
    "grant", [pytest.param("fixture:magic_grant", id="api"), pytest.param(MAGIC_EP, id="entry-point")]
)
def test_custom_grant_issues_tokens_the_guard_accepts(make_middleware, request, grant):
    grant_type = via(request, grant)
    app = magic_app(make_middleware, grant_type)
    auth = {"Authorization": basic("wizard", "wizard-secret-0123456789")}
    body = app.post("/oauth/token", {"grant_type": grant_type, "magic_word": "please"}, headers=auth).json
    assert body["token_type"] == "Bearer" and body["scope"] == "read" and "refresh_token" not in body
    me = app.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json["user"] == MAGICIAN
    wrong = app.post(
        "/oauth/token", {"grant_type": grant_type, "magic_word": "abracadabra"}, headers=auth, status=400
    )
    assert wrong.json["error"] == "invalid_grant"
    # A client not registered for it may not use it.
    other = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    refused = app.post(
        "/oauth/token", {"grant_type": grant_type, "magic_word": "please"}, headers=other, status=400
    )
    assert refused.json["error"] == "unauthorized_client"
    document = app.get(METADATA).json
    assert document["grant_types_supported"] == ["client_credentials", grant_type]
    assert document["magic_words_supported"] == ["please"]


@pytest.mark.parametrize(
    "grant", [pytest.param("fixture:magic_grant", id="api"), pytest.param(MAGIC_EP, id="entry-point")]
)
def test_a_registered_grant_is_off_until_the_grants_setting_names_it(make_middleware, request, grant):
    grant_type = via(request, grant)
    app = webtest.TestApp(make_middleware())
    response = app.post(
        "/oauth/token",
        {"grant_type": grant_type, "magic_word": "please"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
        status=400,
    )
    assert response.json["error"] == "unsupported_grant_type"
    document = app.get(METADATA).json
    assert grant_type not in document["grant_types_supported"] and "magic_words_supported" not in document


def test_an_unregistered_grant_is_a_config_error(make_middleware):
    with pytest.raises(ConfigError, match=f"^grants: unknown grant type '{MAGIC_API}'"):
        make_middleware(grants=f"client_credentials {MAGIC_API}")
    with pytest.raises(ValueError, match=f"unknown grant '{MAGIC_API}'"):
        register(make_middleware(), "wizard", "s" * 32, grant_types=[MAGIC_API])


def test_a_public_client_cannot_register_for_a_confidential_only_plugin_grant(make_middleware):
    with pytest.raises(ValueError, match=f"a public client cannot use the {MAGIC_EP} grant"):
        register(make_middleware(), "app", None, grant_types=[MAGIC_EP])


# -- store URL schemes ------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme", [pytest.param("fixture:testmem_store", id="api"), pytest.param("testmem-ep", id="entry-point")]
)
def test_custom_store_scheme_holds_the_tokens(make_middleware, request, scheme):
    url = f"{via(request, scheme)}://{request.node.callspec.id}"
    app = webtest.TestApp(make_middleware(store=url))
    token = issue_token(app)
    assert app.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json["client_id"] == SERVICE_ID
    store = OPENED[url]
    assert store.stored()
    store.delete(*store.stored())  # the tokens live there and nowhere else
    app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=401)


def test_an_unknown_scheme_lists_the_registered_ones(make_middleware, testmem_store):
    with pytest.raises(
        ConfigError, match=r"^store: unknown store scheme 'nope' .*memcache://, testmem-ep://, testmem://\)$"
    ):
        make_middleware(store="nope://x")


# -- guard token types --------------------------------------------------------------


@pytest.mark.parametrize(
    "token_type",
    [pytest.param("fixture:test_token_type", id="api"), pytest.param("TestEP", id="entry-point")],
)
def test_custom_token_scheme_at_the_guard(make_middleware, request, token_type):
    scheme = via(request, token_type)
    app = webtest.TestApp(make_middleware(token_types=f"Bearer {scheme}"))
    token = issue_token(app)
    assert app.get("/api/me", headers={"Authorization": f"{scheme} {token}"}).json["client_id"] == SERVICE_ID
    assert app.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_int == 200
    missing = app.get("/api/me", status=401)
    assert missing.headers.getall("WWW-Authenticate") == ['Bearer realm="oauth2"', f'{scheme} realm="oauth2"']
    invalid = app.get("/api/me", headers={"Authorization": f"{scheme.lower()} nope"}, status=401)
    assert invalid.headers.getall("WWW-Authenticate") == [
        f'{scheme} realm="oauth2", error="invalid_token", error_description="{invalid.json["error_description"]}"'
    ]
    assert invalid.json["error"] == "invalid_token"
    malformed = app.get("/api/me", headers={"Authorization": f"{scheme} a b"}, status=400)
    assert malformed.json["error"] == "invalid_request"
    assert app.get(METADATA).json["test_token_schemes_supported"] == [scheme]


@pytest.mark.parametrize(
    "token_type",
    [pytest.param("fixture:test_token_type", id="api"), pytest.param("TestEP", id="entry-point")],
)
def test_a_registered_token_type_is_off_until_token_types_names_it(make_middleware, request, token_type):
    scheme = via(request, token_type)
    app = webtest.TestApp(make_middleware())
    token = issue_token(app)
    response = app.get("/api/me", headers={"Authorization": f"{scheme} {token}"}, status=401)
    assert response.headers.getall("WWW-Authenticate") == ['Bearer realm="oauth2"']
    assert "test_token_schemes_supported" not in app.get(METADATA).json


def test_an_unregistered_token_type_is_a_config_error(make_middleware):
    with pytest.raises(ConfigError, match=r"^token_types: unknown token type 'Test' "):
        make_middleware(token_types="Bearer Test")


# -- endpoints ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "path", "member"),
    [
        pytest.param("fixture:magic_info_endpoint", "/oauth/magic-info", "magic_info_endpoint", id="api"),
        pytest.param("magic-info-ep", "/oauth/magic-info-ep", "magic_info_ep_endpoint", id="entry-point"),
    ],
)
def test_custom_endpoint_is_routed_and_advertised(make_middleware, request, endpoint, path, member):
    name = via(request, endpoint)
    app = webtest.TestApp(make_middleware(endpoints=name))
    assert app.get(path).json == {"magic_word": "please", "issuer": "http://localhost"}
    refused = app.post(path, status=405)
    assert refused.json["error"] == "invalid_request" and refused.headers["Allow"].startswith("GET")
    assert app.get(METADATA).json[member] == f"http://localhost{path}"
    moved = webtest.TestApp(make_middleware(endpoints=f"{name}=/elsewhere"))
    assert moved.get("/elsewhere").json["magic_word"] == "please"
    assert moved.get(METADATA).json[member] == "http://localhost/elsewhere"
    moved.get(path, status=401)  # the app's again, behind the guard


def test_a_registered_endpoint_is_off_until_endpoints_names_it(make_middleware, magic_info_endpoint):
    app = webtest.TestApp(make_middleware())
    app.get("/oauth/magic-info", status=401)  # the guard's: no endpoint there
    app.get("/oauth/magic-info-ep", status=401)
    document = app.get(METADATA).json
    assert "magic_info_endpoint" not in document and "magic_info_ep_endpoint" not in document


def test_a_plugin_endpoint_carrying_credentials_is_https_only(make_middleware):
    app = webtest.TestApp(make_middleware(endpoints="magic-info-ep", require_https="true"))
    assert app.get("/oauth/magic-info-ep", status=400).json["error"] == "invalid_request"
    https = app.get("/oauth/magic-info-ep", extra_environ={"wsgi.url_scheme": "https"})
    assert https.json["magic_word"] == "please"


@pytest.mark.parametrize(
    ("endpoints", "message"),
    [
        pytest.param("nope", "endpoints: unknown endpoint 'nope'", id="unknown"),
        pytest.param(
            "token", "endpoints: token is always on; its path is the token_path setting", id="built-in"
        ),
        pytest.param("magic-info-ep=/oauth/token", "endpoints: ", id="taken-path"),
        pytest.param("magic-info-ep=oops", "endpoints: expected a path", id="bad-path"),
    ],
)
def test_bad_endpoints_setting(make_middleware, endpoints, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        make_middleware(endpoints=endpoints)


@pytest.mark.parametrize(
    "grant", [pytest.param("fixture:magic_grant", id="api"), pytest.param(MAGIC_EP, id="entry-point")]
)
def test_a_grant_response_carries_the_grants_headers(make_middleware, request, grant):
    grant_type = via(request, grant)
    app = magic_app(make_middleware, grant_type)
    auth = {"Authorization": basic("wizard", "wizard-secret-0123456789")}
    response = app.post("/oauth/token", {"grant_type": grant_type, "magic_word": "please"}, headers=auth)
    assert response.headers["Magic-Word"] == "please"
    assert response.headers["Cache-Control"] == "no-store" and response.json["token_type"] == "Bearer"
    # A built-in grant adds none.
    client = app.post("/oauth/token", {"grant_type": "client_credentials"}, headers=auth_service())
    assert "Magic-Word" not in client.headers and client.headers["Cache-Control"] == "no-store"


def auth_service() -> dict[str, str]:
    """The service client's Basic credentials."""
    return {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}


@pytest.fixture
def echo_endpoint() -> Iterator[str]:
    """The ``echo-context`` endpoint registered through the Python API, for one test."""
    ENDPOINTS.register(ECHO_CONTEXT.name, ECHO_CONTEXT)
    yield ECHO_CONTEXT.name
    ENDPOINTS.unregister(ECHO_CONTEXT.name)


def test_an_endpoint_receives_the_request_context_computed_at_the_edge(make_middleware, echo_endpoint):
    app = webtest.TestApp(make_middleware(endpoints=echo_endpoint, trusted_proxies="10.0.0.0/8"))
    proxied = {"REMOTE_ADDR": "10.0.0.7"}
    headers = {"X-Forwarded-For": "192.0.2.9", "X-Forwarded-Proto": "https", "Authorization": "Basic eA=="}
    response = app.post(
        "/oauth/echo?x=1", {"a": "1", "b": ""}, headers=headers, extra_environ=proxied, status=201
    )
    assert response.headers["Echo"] == "yes" and response.headers["Cache-Control"] == "no-store"
    assert response.json == {
        "method": "POST",
        "url": "https://localhost:80/oauth/echo?x=1",
        "path": "/oauth/echo",
        "address": "192.0.2.9",
        "scheme": "https",
        "form": {"a": "1"},  # an empty value counts as absent (RFC 6749 §3.1)
        "authorization": "Basic eA==",
    }


@pytest.mark.parametrize(
    ("send", "error"),
    [
        pytest.param(
            {"params": "{}", "content_type": "application/json"}, "invalid_request", id="not-a-form"
        ),
        pytest.param({"params": "a=1&a=2"}, "invalid_request", id="repeated"),
        pytest.param({"params": b"a=%ff"}, "invalid_request", id="not-utf8"),
    ],
)
def test_the_edge_refuses_a_bad_form_before_the_endpoint_runs(make_middleware, echo_endpoint, send, error):
    app = webtest.TestApp(make_middleware(endpoints=echo_endpoint))
    send.setdefault("content_type", "application/x-www-form-urlencoded")
    response = app.post("/oauth/echo", send["params"], content_type=send["content_type"], status=400)
    assert response.json["error"] == error and "Echo" not in response.headers
