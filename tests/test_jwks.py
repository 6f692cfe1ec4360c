"""The JWK Set endpoint (RFC 7517), checked the way resource servers use it: PyJWKClient over HTTP."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, issue_token, serve_wsgi
from jwt_keys import AUDIENCE, ISSUER, ME, EchoApp, jwt_settings, make_keys

from oauth_middleware.keys import PRIVATE_MEMBERS

JWKS = "/oauth/jwks"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


def live_token(base, scope="read write"):
    response = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(SERVICE_ID, SERVICE_SECRET),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_pyjwkclient_verifies_issued_tokens_against_the_live_jwks(make_middleware, keys, alg):
    middleware = make_middleware(EchoApp(), **jwt_settings(keys, alg))
    with serve_wsgi(middleware) as base:
        issued_after = int(time.time())
        token = live_token(base)
        issued_before = time.time()
        client = jwt.PyJWKClient(f"{base}{JWKS}", cache_keys=False)
        signing_key = client.get_signing_key_from_jwt(token)
        header = jwt.get_unverified_header(token)
        payload = jwt.decode(
            token,
            signing_key,
            algorithms=[alg],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
        )
        guarded = requests.get(f"{base}{ME}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    # RFC 9068 §2.1 header and §2.2 claims, every one.
    assert header["typ"] == "at+jwt"
    assert header["alg"] == alg
    assert header["kid"] == signing_key.key_id
    assert payload["iss"] == ISSUER
    assert payload["aud"] == AUDIENCE
    assert payload["sub"] == SERVICE_ID
    assert payload["client_id"] == SERVICE_ID
    assert payload["scope"] == "read write"
    assert issued_after <= payload["iat"] <= issued_before
    assert payload["exp"] == payload["iat"] + 3600
    assert isinstance(payload["jti"], str)
    assert payload["jti"]
    assert guarded.status_code == 200
    assert guarded.json()["client_id"] == SERVICE_ID


def test_pyjwkclient_finds_the_previous_key_during_a_rotation(make_middleware, keys):
    before = webtest.TestApp(
        make_middleware(EchoApp(), **jwt_settings(keys, jwt_signing_key=keys.rsa_old_pem))
    )
    old_token = issue_token(before)
    rotated = make_middleware(
        EchoApp(), **jwt_settings(keys, jwt_signing_key=keys.rsa_pem, jwt_verification_keys=keys.rsa_old_pub)
    )
    with serve_wsgi(rotated) as base:
        new_token = live_token(base)
        client = jwt.PyJWKClient(f"{base}{JWKS}", cache_keys=False)
        old_key = client.get_signing_key_from_jwt(old_token)
        new_key = client.get_signing_key_from_jwt(new_token)
    assert old_key.key_id == keys.rsa_old_kid
    assert new_key.key_id == keys.rsa_kid
    for token, key in ((old_token, old_key), (new_token, new_key)):
        assert jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE)["client_id"] == SERVICE_ID


def test_hs256_server_publishes_no_key(make_middleware, keys):
    middleware = make_middleware(EchoApp(), **jwt_settings(keys, "HS256"))
    with serve_wsgi(middleware) as base:
        token = live_token(base)
        assert requests.get(f"{base}{JWKS}", timeout=10).json() == {"keys": []}
        with pytest.raises(jwt.PyJWTError, match="did not contain any"):
            jwt.PyJWKClient(f"{base}{JWKS}").get_signing_key_from_jwt(token)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_jwks_document_has_no_private_member(make_middleware, keys, alg):
    settings = jwt_settings(keys, alg, jwt_secret="p" * 32, jwt_verification_keys=keys.rsa_old_pem)
    app = webtest.TestApp(make_middleware(EchoApp(), **settings))
    response = app.get(JWKS)
    assert response.content_type == "application/json"
    assert "no-store" not in response.headers.get("Cache-Control", "")
    published = response.json["keys"]
    assert len(published) == 2  # the signing key and the previous RSA key; never the HS256 secret
    for jwk in published:
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        assert jwk["use"] == "sig"
        assert jwk["kty"] != "oct"
    assert "p" * 32 not in response.text


def test_jwks_is_public(make_middleware, keys):
    app = webtest.TestApp(make_middleware(EchoApp(), **jwt_settings(keys)))
    assert app.get(JWKS).json["keys"][0]["kid"] == keys.rsa_kid  # no token needed


def test_post_is_not_allowed(make_middleware, keys):
    app = webtest.TestApp(make_middleware(EchoApp(), **jwt_settings(keys)))
    response = app.post(JWKS, {"a": "b"}, status=405)
    assert response.headers["Allow"] == "GET, HEAD"


def test_jwks_path_is_a_setting(make_middleware, keys):
    app = webtest.TestApp(make_middleware(EchoApp(), **jwt_settings(keys, jwks_path="/keys.json")))
    assert app.get("/keys.json").json["keys"][0]["kid"] == keys.rsa_kid
    assert app.get(JWKS, status=401).json == {}  # the old path is the app's (no token: no error code)


def test_opaque_server_does_not_serve_jwks(make_middleware):
    # Not routed with opaque tokens: the path belongs to the app, behind the guard like any other.
    app = webtest.TestApp(make_middleware(EchoApp()))
    response = app.get(JWKS, status=401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="oauth2"'
