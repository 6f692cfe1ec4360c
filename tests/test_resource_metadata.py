"""Protected resource metadata (RFC 9728) served by the guard, and its URL in every challenge."""

from __future__ import annotations

import re

import pytest
import webtest
from conftest import issue_token
from jwt_keys import EchoApp

from oauth_middleware.resource import guard_from_settings
from oauth_middleware.settings import Settings

API = "http://localhost/mcp"
METADATA = "/.well-known/oauth-protected-resource/mcp"
METADATA_URL = "http://localhost" + METADATA


def challenge_params(value: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param(
            {},
            {"bearer_methods_supported": ["header", "body"]},
            id="bearer",
        ),
        pytest.param(
            {"token_from_query": "true", "token_from_body": "false"},
            {"bearer_methods_supported": ["header", "query"]},
            id="query",
        ),
        pytest.param(
            {"token_types": "Bearer DPoP", "dpop_signing_algs": "ES256 EdDSA"},
            {
                "bearer_methods_supported": ["header", "body"],
                "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
                "dpop_bound_access_tokens_required": False,
            },
            id="bearer-and-dpop",
        ),
        pytest.param(
            {"token_types": "DPoP"},
            {
                "bearer_methods_supported": [],
                "dpop_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
                "dpop_bound_access_tokens_required": True,
            },
            id="dpop-only",
        ),
    ],
)
def test_the_document_field_by_field(make_middleware, settings, expected):
    app = webtest.TestApp(make_middleware(EchoApp(), resource_identifier=API, **settings))
    response = app.get(METADATA)
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.json == {
        # RFC 9728 §3.3: exactly the identifier the well-known URL was built from.
        "resource": API,
        "authorization_servers": ["http://localhost"],
        "scopes_supported": ["read", "write", "admin"],
        **expected,
    }
    assert app.head(METADATA).status_int == 200


def test_a_client_finds_the_metadata_from_the_challenge_and_checks_its_resource(make_middleware):
    """What RFC 9728 §5 and §3.3 ask of a client, done here against our answers."""
    app = webtest.TestApp(make_middleware(EchoApp(), resource_identifier=API))
    answer = app.get("/mcp", status=401)
    url = challenge_params(answer.headers["WWW-Authenticate"])["resource_metadata"]
    assert url == METADATA_URL
    # The URL is the identifier with the well-known path inserted after the host (§3.1).
    assert url == API.replace("http://localhost", "http://localhost/.well-known/oauth-protected-resource")
    assert app.get(url).json["resource"] == API


def test_an_identifier_without_a_path_is_served_at_the_root_well_known_path(make_middleware):
    app = webtest.TestApp(make_middleware(EchoApp(), resource_identifier="http://localhost/"))
    assert app.get("/.well-known/oauth-protected-resource").json["resource"] == "http://localhost/"


@pytest.mark.parametrize(
    ("request_kwargs", "status", "error"),
    [
        pytest.param({}, 401, None, id="no-token"),
        pytest.param({"headers": {"Authorization": "Bearer nope"}}, 401, "invalid_token", id="invalid-token"),
        pytest.param({"headers": {"Authorization": "Bearer a b"}}, 400, "invalid_request", id="malformed"),
    ],
)
def test_every_challenge_names_the_metadata(make_middleware, request_kwargs, status, error):
    app = webtest.TestApp(make_middleware(EchoApp(), resource_identifier=API, token_types="Bearer DPoP"))
    answer = app.get("/mcp", status=status, **request_kwargs)
    challenges = answer.headers.getall("WWW-Authenticate")
    assert challenges
    for value in challenges:
        params = challenge_params(value)
        assert params["resource_metadata"] == METADATA_URL
        assert params.get("error") == error


def test_insufficient_scope_names_the_scope_and_the_metadata(make_middleware):
    middleware = make_middleware(EchoApp(), resource_identifier=API, audience=API, scope_rules="* /mcp write")
    app = webtest.TestApp(middleware)
    token = issue_token(app, "read")
    answer = app.get("/mcp", headers={"Authorization": f"Bearer {token}"}, status=403)
    params = challenge_params(answer.headers["WWW-Authenticate"])
    assert (params["error"], params["scope"], params["resource_metadata"]) == (
        "insufficient_scope",
        "write",
        METADATA_URL,
    )


def test_without_an_identifier_there_is_no_metadata(make_middleware):
    app = webtest.TestApp(make_middleware(EchoApp()))
    answer = app.get(METADATA, status=401)  # an ordinary guarded path
    assert "resource_metadata" not in answer.headers["WWW-Authenticate"]
    assert "protected_resources" not in app.get("/.well-known/oauth-authorization-server").json


def test_the_guard_only_filter_serves_it_too():
    settings = Settings.from_config(
        {"store": "memory://", "resource_identifier": "https://api.example.com/v1/mcp", "scopes": "read"}
    )
    app = webtest.TestApp(guard_from_settings(EchoApp(), settings))
    document = app.get("/.well-known/oauth-protected-resource/v1/mcp").json
    # No issuer in this ini: the document cannot name the authorization server.
    assert document == {
        "resource": "https://api.example.com/v1/mcp",
        "scopes_supported": ["read"],
        "bearer_methods_supported": ["header", "body"],
    }
    params = challenge_params(app.get("/v1/mcp", status=401).headers["WWW-Authenticate"])
    assert (
        params["resource_metadata"] == "https://api.example.com/.well-known/oauth-protected-resource/v1/mcp"
    )


def test_the_server_metadata_lists_the_protected_resources(make_middleware):
    app = webtest.TestApp(
        make_middleware(EchoApp(), resource_identifier=API, allowed_resources="https://files.example.com/")
    )
    document = app.get("/.well-known/oauth-authorization-server").json
    assert document["protected_resources"] == ["https://files.example.com/", API]  # RFC 9728 §4


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("urn:example:api", id="not-http"),
        pytest.param("https://user@api.example.com/", id="user-info"),
        pytest.param("https://api.example.com/#f", id="fragment"),
        pytest.param("/mcp", id="relative"),
    ],
)
def test_the_identifier_must_be_an_http_url(value):
    with pytest.raises(Exception, match="resource_identifier"):
        Settings.from_config({"resource_identifier": value})
