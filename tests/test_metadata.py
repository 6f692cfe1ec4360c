"""Authorization server metadata (RFC 8414), generated from the settings."""

from __future__ import annotations

import pytest
import webtest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from jwt_keys import EchoApp, jwt_settings, make_keys

from oauth_middleware.client_auth import AUTH_METHODS
from oauth_middleware.errors import ConfigError

METADATA = "/.well-known/oauth-authorization-server"
ISSUER = "https://auth.example.com"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


def metadata(make_middleware, status=200, **settings):
    app = webtest.TestApp(make_middleware(EchoApp(), **settings))
    return app.get(METADATA, status=status)


# private_key_jwt's; client_secret_jwt's HMAC ones only with client_secret_key (test below).
ALGS = ["RS256", "PS256", "ES256", "EdDSA"]


def test_default_document_validates_with_authlib(make_middleware):
    document = metadata(make_middleware, issuer=ISSUER).json
    AuthorizationServerMetadata(document).validate()
    assert document == {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/oauth/authorize",
        "token_endpoint": f"{ISSUER}/oauth/token",
        "scopes_supported": ["read", "write", "admin"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        # test_header: the client authentication method of the test plug-in, installed for the session.
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
            "private_key_jwt",
            "test_header",
        ],
        "revocation_endpoint": f"{ISSUER}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
            "private_key_jwt",
            "test_header",
        ],
        "introspection_endpoint": f"{ISSUER}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "test_header",
        ],
        # private_key_jwt's algorithms at every endpoint that authenticates clients (issue 13).
        "token_endpoint_auth_signing_alg_values_supported": ALGS,
        "revocation_endpoint_auth_signing_alg_values_supported": ALGS,
        "introspection_endpoint_auth_signing_alg_values_supported": ALGS,
        "code_challenge_methods_supported": ["S256"],
        "pushed_authorization_request_endpoint": f"{ISSUER}/oauth/par",
        "authorization_response_iss_parameter_supported": True,
    }


def test_jwt_document_names_the_jwks_and_validates(make_middleware, keys):
    settings = jwt_settings(
        keys,
        grants="authorization_code refresh_token client_credentials password",
        verify_password="oauth_middleware.demo:verify_password",
    )
    document = metadata(make_middleware, **settings).json
    AuthorizationServerMetadata(document).validate()
    assert document["jwks_uri"] == "https://auth.example.com/oauth/jwks"
    assert document["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "password",
    ]


def test_auth_methods_follow_the_registry(make_middleware):
    document = metadata(make_middleware, issuer=ISSUER, client_secret_key="k" * 32).json
    assert document["token_endpoint_auth_methods_supported"] == list(AUTH_METHODS)
    # Introspection needs an authenticated client: never "none".
    assert "none" not in document["introspection_endpoint_auth_methods_supported"]


def test_client_secret_jwt_is_offered_only_with_the_key_that_opens_its_secrets(make_middleware):
    # Without client_secret_key no client_secret_jwt secret can be opened: offering it would be a lie.
    without = metadata(make_middleware, issuer=ISSUER).json
    assert "client_secret_jwt" not in without["token_endpoint_auth_methods_supported"]
    assert "HS256" not in without["token_endpoint_auth_signing_alg_values_supported"]
    document = metadata(make_middleware, issuer=ISSUER, client_secret_key="k" * 32).json
    for endpoint in ("token", "revocation", "introspection"):
        assert "client_secret_jwt" in document[f"{endpoint}_endpoint_auth_methods_supported"]
        assert document[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == [
            *ALGS,
            "HS256",
            "HS384",
            "HS512",
        ]


def test_paths_and_options_come_from_the_settings(make_middleware):
    app = webtest.TestApp(
        make_middleware(
            EchoApp(),
            issuer=ISSUER,
            metadata_path="/meta",
            token_path="/t",
            authorize_path="/a",
            revoke_path="/r",
            introspect_path="/i",
            scopes="",
            allow_plain_pkce="true",
            response_types="code token",
        )
    )
    document = app.get("/meta").json
    AuthorizationServerMetadata(document).validate()
    assert document["authorization_endpoint"] == f"{ISSUER}/a"
    assert document["token_endpoint"] == f"{ISSUER}/t"
    assert document["revocation_endpoint"] == f"{ISSUER}/r"
    assert document["introspection_endpoint"] == f"{ISSUER}/i"
    assert "scopes_supported" not in document
    assert document["code_challenge_methods_supported"] == ["S256", "plain"]
    assert document["response_types_supported"] == ["code", "token"]
    assert document["grant_types_supported"][-1] == "implicit"
    assert "jwks_uri" not in document  # opaque tokens: no keys
    # The default path is no longer ours: it is the app's, behind the guard.
    assert app.get(METADATA, status=401).headers["WWW-Authenticate"].startswith("Bearer")


def test_client_credentials_only_server_has_no_authorization_endpoint(make_middleware):
    document = metadata(make_middleware, issuer=ISSUER, grants="client_credentials").json
    assert "authorization_endpoint" not in document
    assert "code_challenge_methods_supported" not in document
    assert document["response_types_supported"] == []
    assert document["grant_types_supported"] == ["client_credentials"]


def test_issuer_is_required(make_middleware):
    # Regression (issue 10, item 9): without ``issuer`` the document named whatever host
    # the request said (RFC 8414 §3.3). This test replaces test_issuer_defaults_to_the_request_url,
    # which asserted that defect.
    with pytest.raises(ConfigError, match=r"^issuer: required"):
        make_middleware(EchoApp(), issuer="")


def test_a_forged_host_does_not_change_the_document(make_middleware):
    app = webtest.TestApp(make_middleware(EchoApp(), issuer=ISSUER))
    document = app.get(
        METADATA,
        extra_environ={"HTTP_HOST": "evil.example.org", "wsgi.url_scheme": "http", "SCRIPT_NAME": "/x"},
    ).json
    assert document["issuer"] == ISSUER
    assert document["token_endpoint"] == f"{ISSUER}/oauth/token"
    AuthorizationServerMetadata(document).validate()


def test_document_has_a_cache_lifetime(make_middleware):
    # Regression (issue 10, item 9): the document carried no Cache-Control at all.
    assert metadata(make_middleware, issuer=ISSUER).headers["Cache-Control"] == "public, max-age=3600"
    response = metadata(make_middleware, issuer=ISSUER, metadata_max_age="60")
    assert response.headers["Cache-Control"] == "public, max-age=60"


def test_document_is_public_and_cacheable(make_middleware):
    response = metadata(make_middleware, issuer=ISSUER)
    assert response.content_type == "application/json"
    assert "no-store" not in response.headers.get("Cache-Control", "")


def test_head_is_allowed(make_middleware):
    app = webtest.TestApp(make_middleware(EchoApp(), issuer=ISSUER))
    response = app.head(METADATA)
    assert response.status_int == 200
    assert response.body == b""


def test_post_is_not_allowed(make_middleware):
    app = webtest.TestApp(make_middleware(EchoApp(), issuer=ISSUER))
    response = app.post(METADATA, {"a": "b"}, status=405)
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.json["error"] == "invalid_request"
