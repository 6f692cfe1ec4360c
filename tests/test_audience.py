"""Token audience (RFC 8707 §2, RFC 9068 §3): what a token is for, kept, shown and checked by the guard."""

from __future__ import annotations

import dataclasses
import json

import jwt
import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic
from jwt_keys import AUDIENCE, ISSUER, EchoApp, claims, jwt_settings, make_keys, sign

from oauth_middleware.records import AccessTokenRecord, CodeRecord, RefreshTokenRecord
from oauth_middleware.resource import guard_from_settings
from oauth_middleware.settings import Settings

API = "https://api.example.com/mcp"
OTHER = "https://other.example.com/api"
ME = "/api/me"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


def issued(middleware, audience=()):
    """A client-credentials token of the service client issued with ``audience``, by the server's issuer."""
    client = middleware.server.repository.get_client(SERVICE_ID)
    body = middleware.server.issuer.issue(
        client=client, user_id=None, scopes=("read",), grant_type="client_credentials", audience=audience
    )
    return body["access_token"]


def introspected(app, token):
    return app.post(
        "/oauth/introspect", {"token": token}, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    ).json


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            AccessTokenRecord("c", "u", ("read",), 2_000_000_000, {}, "fam", None, (API,)), id="access"
        ),
        pytest.param(
            RefreshTokenRecord("c", "u", ("read",), 2_000_000_100, "fam", 2_000_009_000, None, (API, OTHER)),
            id="refresh",
        ),
        pytest.param(
            CodeRecord("c", "https://a/cb", True, ("read",), "u", None, None, 2_000_000_000, None, (API,)),
            id="code",
        ),
    ],
)
def test_a_records_audience_is_kept_and_omitted_when_empty(record):
    value = json.loads(json.dumps(record.to_value()))
    assert value["a"] == list(record.audience)
    assert type(record).from_value(value) == record
    # Without one nothing is written: a store written before keeps its records as they were.
    assert "a" not in dataclasses.replace(record, audience=()).to_value()


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_the_guard_accepts_a_token_for_its_own_resource_only(make_middleware, keys, token_format):
    # A JWT server issues only for resources it knows (its aud check), here OTHER too.
    extra = jwt_settings(keys, allowed_resources=OTHER) if token_format == "jwt" else {}
    middleware = make_middleware(
        EchoApp(), **extra, resource_identifier=API, introspection_clients=SERVICE_ID
    )
    app = webtest.TestApp(middleware)
    good, other = issued(middleware, (API,)), issued(middleware, (OTHER,))
    app.get(ME, headers={"Authorization": f"Bearer {good}"}, status=200)
    refused = app.get(ME, headers={"Authorization": f"Bearer {other}"}, status=401)
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert refused.json["error"] == "invalid_token"
    # Introspection tells a resource server which resources a token is for (RFC 7662 aud).
    assert introspected(app, good)["aud"] == [API]
    assert introspected(app, other)["aud"] == [OTHER]


def test_a_jwt_names_its_resources_in_aud_else_the_audience_setting(make_middleware, keys):
    middleware = make_middleware(EchoApp(), **jwt_settings(keys, allowed_resources=f"{API} {OTHER}"))
    aud = lambda token: jwt.decode(token, options={"verify_signature": False})["aud"]  # noqa: E731
    assert aud(issued(middleware, (API,))) == API
    assert aud(issued(middleware, (API, OTHER))) == [API, OTHER]
    assert aud(issued(middleware)) == AUDIENCE  # RFC 9068 §3: no resource requested, the default


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        pytest.param({"resource_identifier": API}, 401, id="refused-by-default"),
        pytest.param(
            {"resource_identifier": API, "accept_tokens_without_audience": "true"}, 200, id="migration"
        ),
        pytest.param({}, 200, id="no-identifier"),
        pytest.param({"resource_identifier": API, "audience": API}, 200, id="default-audience-is-it"),
    ],
)
def test_an_opaque_token_issued_without_resource(make_middleware, settings, status):
    middleware = make_middleware(EchoApp(), **settings)
    app = webtest.TestApp(middleware)
    app.get(ME, headers={"Authorization": f"Bearer {issued(middleware)}"}, status=status)


def test_a_guard_without_identifier_refuses_a_token_restricted_to_a_resource(make_middleware):
    middleware = make_middleware(EchoApp())
    app = webtest.TestApp(middleware)
    app.get(ME, headers={"Authorization": f"Bearer {issued(middleware, (API,))}"}, status=401)


@pytest.mark.parametrize(
    ("aud", "status"),
    [
        pytest.param(API, 200, id="its-own-resource"),
        pytest.param([OTHER, API], 200, id="among-others"),
        pytest.param(AUDIENCE, 401, id="the-default-audience-only"),
        pytest.param(OTHER, 401, id="another-resource"),
    ],
)
def test_a_jwt_guard_only_filter_checks_aud_against_its_resource(keys, aud, status):
    settings = Settings.from_config(
        {
            "token_format": "jwt",
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwt_verification_keys": keys.rsa_pub,
            "resource_identifier": API,
            "allowed_resources": OTHER,
        }
    )
    app = webtest.TestApp(guard_from_settings(EchoApp(), settings))
    token = sign(claims(aud=aud), keys.rsa, kid=keys.rsa_kid)
    app.get(ME, headers={"Authorization": f"Bearer {token}"}, status=status)
