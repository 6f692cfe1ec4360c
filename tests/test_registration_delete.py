"""Deleting a registration invalidates the access tokens issued to it (RFC 7592 §2.3).

Nothing lists a client's tokens, so the deletion leaves a marker in the
store, ``deleted:<id>``, that the token formats check on the client
id they already read: a token of that client expiring by the time the last
token issued before the deletion expires is refused, by the guard and by
introspection, opaque or JWT (whose guard reads the store when it checks
revocation). Every store backend; other clients' tokens are untouched, and a
client registered again later under the same id keeps its new tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic
from fake_clock import FakeClock
from store_fixtures import backend, store  # noqa: F401

from oauth_middleware import guard_from_settings
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.settings import Settings
from oauth_middleware.stores import Store

API = "https://api.example.com"
#: The token formats: opaque, and JWTs whose guard checks revocation in the store.
FORMATS = {
    "opaque": {},
    "jwt": {
        "token_format": "jwt",
        "jwt_algorithm": "HS256",
        "jwt_secret": "s" * 32,
        "audience": API,
        "jwt_check_revocation": "true",
    },
}
SERVICE = {"grant_types": ["client_credentials"], "scope": "read"}


@pytest.fixture(params=list(FORMATS))
def token_format(request: pytest.FixtureRequest) -> dict[str, str]:
    return FORMATS[request.param]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(
    make_middleware: Any,
    store: Store,  # noqa: F811
    token_format: dict[str, str],
    clock: FakeClock,
) -> Iterator[webtest.TestApp]:
    middleware: OAuth2Middleware = make_middleware(
        store_backend=store,
        clock=clock,
        registration="open",
        introspection_clients=SERVICE_ID,
        **token_format,
    )
    yield webtest.TestApp(middleware)
    middleware.close()


def register(app: webtest.TestApp) -> dict[str, Any]:
    return dict(app.post_json("/oauth/register", SERVICE, status=201).json)


def token_of(app: webtest.TestApp, client_id: str, secret: str) -> str:
    response = app.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": "read"},
        headers={"Authorization": basic(client_id, secret)},
    )
    return str(response.json["access_token"])


def delete(app: webtest.TestApp, registration: dict[str, Any]) -> None:
    path = registration["registration_client_uri"].removeprefix("http://localhost")
    headers = {"Authorization": f"Bearer {registration['registration_access_token']}"}
    app.delete(path, headers=headers, status=204)


def active(app: webtest.TestApp, token: str) -> bool:
    """What introspection says of ``token`` (asked by the service client)."""
    headers = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    return bool(app.post("/oauth/introspect", {"token": token}, headers=headers).json["active"])


def test_deleting_a_registration_invalidates_its_access_tokens(app: webtest.TestApp) -> None:
    registration = register(app)
    client_id, secret = registration["client_id"], registration["client_secret"]
    tokens = [token_of(app, client_id, secret) for _ in range(2)]
    others = token_of(app, SERVICE_ID, SERVICE_SECRET)
    for token in [*tokens, others]:
        app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=200)
        assert active(app, token)
    delete(app, registration)
    for token in tokens:
        refused = app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=401)
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
        assert not active(app, token)
    # Another client's token is not touched.
    app.get("/api/me", headers={"Authorization": f"Bearer {others}"}, status=200)
    assert active(app, others)


def test_a_client_registered_again_under_the_id_keeps_its_new_tokens(
    app: webtest.TestApp, clock: FakeClock
) -> None:
    registration = register(app)
    client_id, secret = registration["client_id"], registration["client_secret"]
    old = token_of(app, client_id, secret)
    server = app.app.server
    client = server.repository.get_client(client_id)
    delete(app, registration)
    clock.advance(1)
    # An operator adds a client with the same id (``client add``): its tokens are its own.
    server.repository.save_client(client)
    new = token_of(app, client_id, secret)
    app.get("/api/me", headers={"Authorization": f"Bearer {new}"}, status=200)
    app.get("/api/me", headers={"Authorization": f"Bearer {old}"}, status=401)


def test_a_guard_only_resource_server_sharing_the_store_refuses_them_too(tmp_path: Any) -> None:
    settings = {"store": f"sqlite:///{tmp_path}/oauth.db", "registration": "open", "require_https": "false"}
    server = OAuth2Middleware(None, issuer="http://localhost", scopes="read", **settings)  # type: ignore[arg-type]

    def api(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    resource = guard_from_settings(api, Settings.from_config(settings))
    try:
        authorization_server, resource_server = webtest.TestApp(server), webtest.TestApp(resource)
        registration = register(authorization_server)
        token = token_of(authorization_server, registration["client_id"], registration["client_secret"])
        resource_server.get("/data", headers={"Authorization": f"Bearer {token}"}, status=200)
        delete(authorization_server, registration)
        resource_server.get("/data", headers={"Authorization": f"Bearer {token}"}, status=401)
    finally:
        server.close()
        resource.close()
