"""JWT access tokens (RFC 9068): what is issued, what the guard accepts and refuses, rotation, cache."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time

import jwt
import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, issue_token
from jwt_keys import (
    AUDIENCE,
    ISSUER,
    ME,
    SECRET,
    EchoApp,
    b64,
    b64json,
    claims,
    jwt_settings,
    make_keys,
    sign,
)

from oauth_middleware.errors import ConfigError, InvalidToken
from oauth_middleware.models import AccessToken
from oauth_middleware.resource import guard_from_settings
from oauth_middleware.settings import Settings
from oauth_middleware.tokens.jwt import JWTTokens, VerifiedCache


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def jwt_app(make_middleware, keys):
    """``make(alg, **settings) -> (TestApp, middleware)`` for a JWT server around an :class:`EchoApp`."""

    def make(alg="RS256", **more):
        middleware = make_middleware(EchoApp(), **jwt_settings(keys, alg, **more))
        return webtest.TestApp(middleware), middleware

    return make


def call(app, token, status=200):
    return app.get(ME, headers={"Authorization": f"Bearer {token}"}, status=status)


def assert_invalid_token(response):
    assert response.status_int == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="oauth2"')
    assert 'error="invalid_token"' in challenge
    assert response.json["error"] == "invalid_token"
    # Why the token failed is logged, never told to the client.
    assert response.json["error_description"] == "the access token is invalid or has expired"


# -- what is issued -------------------------------------------------------------


def test_issued_token_carries_every_rfc9068_claim(jwt_app, keys):
    app, _ = jwt_app()
    before = int(time.time())
    response = app.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": "read write"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
    )
    token = response.json["access_token"]
    header = jwt.get_unverified_header(token)
    assert header == {"typ": "at+jwt", "alg": "RS256", "kid": keys.rsa_kid}
    payload = jwt.decode(
        token,
        keys.rsa.public_key(),
        algorithms=["RS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
    )
    assert set(payload) == {"iss", "sub", "aud", "client_id", "scope", "iat", "exp", "jti"}
    assert payload["iss"] == ISSUER
    assert payload["sub"] == payload["client_id"] == SERVICE_ID  # client-only token: sub is the client
    assert payload["aud"] == AUDIENCE
    assert payload["scope"] == "read write"
    assert before <= payload["iat"] <= time.time()
    assert payload["exp"] - payload["iat"] == response.json["expires_in"] == 3600
    assert len(payload["jti"]) >= 22  # 128 random bits
    assert response.json["token_type"] == "Bearer"


def test_each_token_has_its_own_jti(jwt_app):
    app, _ = jwt_app()
    jtis = {jwt.decode(issue_token(app), options={"verify_signature": False})["jti"] for _ in range(5)}
    assert len(jtis) == 5


def test_user_token_names_the_user_and_carries_extra_data(jwt_app, keys):
    app, middleware = jwt_app(
        jwt_extra_claim="https://example.com/ext", audience=f"{AUDIENCE} https://b.example"
    )
    access = middleware.server.tokens.issue(
        client_id="web", user_id="alice", scopes=("read",), extra={"tenant": "t1"}, family=None
    )
    payload = jwt.decode(access.token, options={"verify_signature": False})
    assert payload["sub"] == "alice"
    assert payload["client_id"] == "web"
    assert payload["aud"] == [AUDIENCE, "https://b.example"]
    assert payload["https://example.com/ext"] == {"tenant": "t1"}
    body = call(app, access.token).json
    assert body == {
        "user": "alice",
        "client_id": "web",
        "scopes": ["read"],
        "remote_user": "alice",
        "extra": {"tenant": "t1"},
    }


def test_token_without_scope_has_no_scope_claim(jwt_app):
    _, middleware = jwt_app()
    access = middleware.server.tokens.issue(client_id="c", user_id=None, scopes=(), extra={}, family=None)
    payload = jwt.decode(access.token, options={"verify_signature": False})
    assert "scope" not in payload
    assert "ext" not in payload


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
def test_every_algorithm_round_trips_through_the_guard(jwt_app, alg):
    app, _ = jwt_app(alg)
    token = issue_token(app)
    assert jwt.get_unverified_header(token)["alg"] == alg
    assert call(app, token).json["client_id"] == SERVICE_ID


# -- the injected token has one shape for both formats ---------------------------


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_injected_token_has_the_same_shape_for_both_formats(make_middleware, keys, token_format):
    echo = EchoApp()
    config = jwt_settings(keys) if token_format == "jwt" else {"grants": "client_credentials"}
    app = webtest.TestApp(make_middleware(echo, **config))
    token_string = issue_token(app, "read write")
    call(app, token_string)
    token = echo.environ["oauth2.token"]
    assert isinstance(token, AccessToken)
    assert token.token == token_string
    assert token.client_id == SERVICE_ID
    assert token.user_id is None
    assert token.scopes == ("read", "write")
    assert isinstance(token.expires_at, int)
    assert 3590 < token.expires_at - time.time() <= 3600
    assert dict(token.extra) == {}
    assert isinstance(token.token_id, str)
    assert token.token_id
    assert echo.environ["oauth2.user"] is None
    assert echo.environ["oauth2.client_id"] == SERVICE_ID
    assert echo.environ["oauth2.scopes"] == ("read", "write")
    assert "REMOTE_USER" not in echo.environ
    assert [f.name for f in dataclasses.fields(token)] == [f.name for f in dataclasses.fields(AccessToken)]


# -- what the guard refuses --------------------------------------------------------


def unsigned(header, payload):
    return f"{b64json(header)}.{b64json(payload)}."


def hs256_with(secret, header, payload):
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def rs256_raw(header, payload, key):
    """Sign whatever header we like (PyJWT refuses to write some of them)."""
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    algorithm = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256)
    return f"{signing_input}.{b64(algorithm.sign(signing_input.encode(), key))}"


def public_pem(k):
    with open(k.rsa_pub, "rb") as handle:
        return handle.read()


def tampered(k):
    token = sign(claims(), k.rsa, kid=k.rsa_kid)
    header, _, signature = token.split(".")
    return f"{header}.{b64json(claims(scope='read write admin'))}.{signature}"


REJECTED = [
    pytest.param(
        lambda k: unsigned({"alg": "none", "typ": "at+jwt", "kid": k.rsa_kid}, claims()), id="alg-none"
    ),
    pytest.param(lambda k: unsigned({"alg": "none", "typ": "at+jwt"}, claims()), id="alg-none-no-kid"),
    pytest.param(
        lambda k: unsigned({"alg": "None", "typ": "at+jwt", "kid": k.rsa_kid}, claims()), id="alg-None"
    ),
    pytest.param(
        # The classic confusion: HMAC keyed with the RSA public key everyone can fetch.
        lambda k: hs256_with(public_pem(k), {"alg": "HS256", "typ": "at+jwt", "kid": k.rsa_kid}, claims()),
        id="hs256-keyed-with-rsa-public-pem",
    ),
    pytest.param(
        lambda k: hs256_with(
            json.dumps(jwt.algorithms.RSAAlgorithm.to_jwk(k.rsa.public_key(), as_dict=True)).encode(),
            {"alg": "HS256", "typ": "at+jwt", "kid": k.rsa_kid},
            claims(),
        ),
        id="hs256-keyed-with-rsa-public-jwk",
    ),
    pytest.param(lambda k: sign(claims(), k.ec, "ES256", kid=k.rsa_kid), id="es256-under-the-rsa-kid"),
    pytest.param(tampered, id="tampered-payload"),
    pytest.param(lambda k: sign(claims(), k.rsa_old, kid=k.rsa_kid), id="other-key-same-kid"),
    pytest.param(lambda k: sign(claims(), k.rsa_old, kid=k.rsa_old_kid), id="unknown-kid"),
    pytest.param(lambda k: sign(claims(), k.rsa), id="no-kid"),
    pytest.param(
        lambda k: rs256_raw({"alg": "RS256", "typ": "at+jwt", "kid": 7}, claims(), k.rsa), id="kid-int"
    ),
    pytest.param(lambda k: sign(claims(), k.rsa, kid=k.rsa_kid, typ="JWT"), id="typ-jwt"),
    pytest.param(lambda k: sign(claims(), k.rsa, kid=k.rsa_kid, typ=None), id="no-typ"),
    pytest.param(
        lambda k: sign(claims(exp=int(time.time()) - 60, iat=int(time.time()) - 700), k.rsa, kid=k.rsa_kid),
        id="expired",
    ),
    pytest.param(lambda k: sign(claims(iss="https://evil.example"), k.rsa, kid=k.rsa_kid), id="wrong-iss"),
    pytest.param(lambda k: sign(claims(aud="https://other.example"), k.rsa, kid=k.rsa_kid), id="wrong-aud"),
    pytest.param(lambda k: sign(claims(aud=None), k.rsa, kid=k.rsa_kid), id="no-aud"),
    pytest.param(lambda k: sign(claims(iss=None), k.rsa, kid=k.rsa_kid), id="no-iss"),
    pytest.param(lambda k: sign(claims(exp=None), k.rsa, kid=k.rsa_kid), id="no-exp"),
    pytest.param(lambda k: sign(claims(jti=None), k.rsa, kid=k.rsa_kid), id="no-jti"),
    pytest.param(lambda k: sign(claims(client_id=None), k.rsa, kid=k.rsa_kid), id="no-client-id"),
    pytest.param(
        lambda k: sign(claims(nbf=int(time.time()) + 120), k.rsa, kid=k.rsa_kid), id="not-yet-valid"
    ),
    pytest.param(
        lambda k: sign(claims(iat=int(time.time()) + 120), k.rsa, kid=k.rsa_kid), id="issued-in-future"
    ),
    pytest.param(lambda k: sign(claims(scope=["read"]), k.rsa, kid=k.rsa_kid), id="scope-not-a-string"),
    pytest.param(lambda k: sign(claims(client_id=5), k.rsa, kid=k.rsa_kid), id="client-id-not-a-string"),
    pytest.param(lambda k: sign(claims(ext="string"), k.rsa, kid=k.rsa_kid), id="extra-not-an-object"),
    pytest.param(lambda k: "abc.def.ghi", id="garbage"),
    pytest.param(lambda k: f"{b64json([1])}.{b64json(claims())}.c2ln", id="header-not-an-object"),
    pytest.param(lambda k: f"{b64(bytes([255, 254]))}.{b64json(claims())}.c2ln", id="header-not-utf8"),
    pytest.param(lambda k: f".{b64json(claims())}.c2ln", id="empty-header"),
    pytest.param(lambda k: "opaque-looking-token", id="not-a-jwt"),
]


@pytest.mark.parametrize("make_token", REJECTED)
def test_guard_refuses(jwt_app, keys, make_token):
    app, middleware = jwt_app()
    token = make_token(keys)
    assert_invalid_token(call(app, token, status=401))
    assert middleware.server.tokens.introspect(token) is None


def test_a_valid_hand_made_token_passes(jwt_app, keys):
    # The control for the table above: the same claims, correctly signed, are accepted.
    app, _ = jwt_app()
    assert call(app, sign(claims(), keys.rsa, kid=keys.rsa_kid)).json["client_id"] == SERVICE_ID
    assert call(app, sign(claims(), keys.rsa, kid=keys.rsa_kid, typ="application/at+jwt")).status_int == 200
    assert call(app, rs256_raw({"alg": "RS256", "typ": "at+jwt", "kid": keys.rsa_kid}, claims(), keys.rsa))


def test_hand_made_hs256_token_passes_with_the_right_secret(jwt_app):
    # The control for the confusion rows: hs256_with() makes tokens an HS256 key accepts.
    app, middleware = jwt_app("HS256")
    header = {"alg": "HS256", "typ": "at+jwt", "kid": middleware.server.tokens.keys.signing.kid}
    assert call(app, hs256_with(SECRET.encode(), header, claims())).status_int == 200


def test_hs256_server_refuses_a_token_signed_with_another_secret(jwt_app):
    app, middleware = jwt_app("HS256")
    kid = middleware.server.tokens.keys.signing.kid
    assert call(app, sign(claims(), SECRET.encode(), "HS256", kid=kid)).status_int == 200
    assert_invalid_token(call(app, sign(claims(), b"x" * 32, "HS256", kid=kid), status=401))


def test_leeway_tolerates_small_clock_skew(jwt_app, keys):
    just_expired = sign(
        claims(exp=int(time.time()) - 5, iat=int(time.time()) - 600), keys.rsa, kid=keys.rsa_kid
    )
    lenient, _ = jwt_app()  # default leeway: 10 seconds
    assert call(lenient, just_expired).status_int == 200
    strict, _ = jwt_app(jwt_leeway="0")
    assert_invalid_token(call(strict, just_expired, status=401))


def test_expiry_is_enforced_on_a_cached_token(jwt_app, keys, clock):
    app, middleware = jwt_app(jwt_leeway="0", clock=clock)
    now = int(clock.time())  # iat too: with no leeway, a real-time iat may be a second ahead of it
    token = sign(claims(iat=now, exp=now + 1), keys.rsa, kid=keys.rsa_kid)
    assert call(app, token).status_int == 200
    assert len(middleware.server.tokens.cache) == 1
    clock.advance(1.1)
    assert_invalid_token(call(app, token, status=401))
    assert len(middleware.server.tokens.cache) == 0


# -- rotation ---------------------------------------------------------------------


def test_rotation_keeps_tokens_of_the_previous_key_valid_until_they_expire(jwt_app, keys):
    before, _ = jwt_app(jwt_signing_key=keys.rsa_old_pem)
    old_token = issue_token(before)
    assert jwt.get_unverified_header(old_token)["kid"] == keys.rsa_old_kid

    after, _ = jwt_app(jwt_signing_key=keys.rsa_pem, jwt_verification_keys=keys.rsa_old_pub)
    assert call(after, old_token).json["client_id"] == SERVICE_ID
    new_token = issue_token(after)
    assert jwt.get_unverified_header(new_token)["kid"] == keys.rsa_kid
    assert call(after, new_token).status_int == 200
    expired_old = sign(
        claims(exp=int(time.time()) - 60, iat=int(time.time()) - 3700), keys.rsa_old, kid=keys.rsa_old_kid
    )
    assert_invalid_token(call(after, expired_old, status=401))
    published = [jwk["kid"] for jwk in after.get("/oauth/jwks").json["keys"]]
    assert sorted(published) == sorted([keys.rsa_kid, keys.rsa_old_kid])

    # Once the previous key is dropped, its tokens are unknown-kid: invalid_token.
    done, _ = jwt_app(jwt_signing_key=keys.rsa_pem)
    assert_invalid_token(call(done, old_token, status=401))
    assert call(done, new_token).status_int == 200


def test_rotation_to_another_algorithm(jwt_app, keys):
    before, _ = jwt_app("RS256")
    old_token = issue_token(before)
    after, _ = jwt_app("ES256", jwt_verification_keys=keys.rsa_pub)
    assert call(after, old_token).status_int == 200
    assert jwt.get_unverified_header(issue_token(after))["alg"] == "ES256"


# -- revocation on the guard ----------------------------------------------------------


def test_denied_jti_is_refused_when_revocation_checking_is_on(jwt_app):
    app, middleware = jwt_app(jwt_check_revocation="true")
    token = issue_token(app)
    assert call(app, token).status_int == 200  # now cached
    access = middleware.server.tokens.verify(token)
    middleware.server.repository.deny_jwt(access.token_id, access.expires_at)
    assert_invalid_token(call(app, token, status=401))  # the cache does not bypass the deny list


def test_denied_jti_still_passes_a_guard_that_does_not_check(jwt_app):
    # The documented trade-off of jwt_check_revocation = false: no store read per request.
    app, middleware = jwt_app(jwt_check_revocation="false")
    token = issue_token(app)
    access = middleware.server.tokens.verify(token)
    middleware.server.repository.deny_jwt(access.token_id, access.expires_at)
    assert call(app, token).status_int == 200
    assert middleware.server.tokens.introspect(token) is None  # introspection always checks


def test_revoking_a_family_denies_its_jwts(jwt_app):
    app, middleware = jwt_app(jwt_check_revocation="true")
    tokens = middleware.server.tokens
    in_family = tokens.issue(client_id=SERVICE_ID, user_id="bob", scopes=("read",), extra={}, family="fam-1")
    other = tokens.issue(client_id=SERVICE_ID, user_id="bob", scopes=("read",), extra={}, family="fam-2")
    middleware.server.repository.revoke_family("fam-1")
    assert_invalid_token(call(app, in_family.token, status=401))
    assert call(app, other.token).status_int == 200
    middleware.server.repository.revoke_family("fam-1")  # again: harmless
    assert_invalid_token(call(app, in_family.token, status=401))
    assert call(app, other.token).status_int == 200


def test_deny_entry_lives_until_the_token_could_no_longer_pass(jwt_app):
    _, middleware = jwt_app(jwt_check_revocation="true")
    tokens, repository = middleware.server.tokens, middleware.server.repository
    access = tokens.issue(client_id=SERVICE_ID, user_id=None, scopes=(), extra={}, family=None)
    tokens.revoke(access)
    assert repository.store.get(f"deny:{access.token_id}") == {"u": access.expires_at + 10}  # exp + leeway
    assert repository.is_jwt_denied(access.token_id)
    repository.deny_jwt("already-gone", int(time.time()) - 1)  # past its deadline: nothing to keep
    assert repository.store.get("deny:already-gone") is None


# -- the verified-token cache ----------------------------------------------------------


def access(token="t", expires_at=100):
    return AccessToken(token, "c", None, (), expires_at)


def test_cache_is_bounded_and_drops_the_least_recently_used():
    cache = VerifiedCache(2)
    cache.put(access("a"), now=0)
    cache.put(access("b"), now=0)
    assert cache.get("a", now=0) is not None  # a is now the most recent
    cache.put(access("c"), now=0)
    assert len(cache) == 2
    assert cache.get("b", now=0) is None
    assert cache.get("a", now=0) is not None
    assert cache.get("c", now=0) is not None


def test_cache_never_returns_a_token_past_its_exp():
    cache = VerifiedCache(10)
    cache.put(access("a", expires_at=100), now=50)
    assert cache.get("a", now=99.9) is not None
    assert cache.get("a", now=100) is None
    assert len(cache) == 0
    cache.put(access("b", expires_at=100), now=100)  # already expired: not kept
    assert len(cache) == 0


def test_cache_size_zero_disables_it():
    cache = VerifiedCache(0)
    cache.put(access("a"), now=0)
    assert cache.get("a", now=0) is None
    assert len(cache) == 0


def test_cache_discard_and_clear():
    cache = VerifiedCache(10)
    cache.put(access("a"), now=0)
    cache.put(access("b"), now=0)
    cache.discard("a")
    assert cache.get("a", now=0) is None
    cache.clear()
    assert len(cache) == 0


def test_verify_serves_a_second_request_from_the_cache(jwt_app):
    app, middleware = jwt_app()
    token = issue_token(app)
    tokens = middleware.server.tokens
    first = tokens.verify(token)
    assert tokens.verify(token) is first
    uncached, middleware2 = jwt_app(jwt_cache_size="0")
    token2 = issue_token(uncached)
    assert middleware2.server.tokens.verify(token2) is not middleware2.server.tokens.verify(token2)


def test_revoking_here_drops_the_token_from_this_cache(jwt_app):
    app, middleware = jwt_app()
    token = issue_token(app)
    tokens = middleware.server.tokens
    tokens.revoke(tokens.verify(token))
    assert len(tokens.cache) == 0


# -- a guard-only resource server ------------------------------------------------------


def test_guard_only_resource_server_verifies_with_the_public_key_and_no_store(jwt_app, keys):
    server, _ = jwt_app()
    token = issue_token(server)
    settings = Settings.from_config(
        {
            "token_format": "jwt",
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwt_verification_keys": keys.rsa_pub,
            "jwt_check_revocation": "false",  # on by default: without it, no store is needed
            "store": "unreachable://nowhere",  # never opened: it would be a ConfigError
        }
    )
    resource = webtest.TestApp(guard_from_settings(EchoApp(), settings))
    assert call(resource, token).json["client_id"] == SERVICE_ID
    assert_invalid_token(call(resource, sign(claims(), keys.rsa_old, kid=keys.rsa_kid), status=401))


def test_guard_only_resource_server_checks_the_shared_deny_list(make_middleware, keys, tmp_path):
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    server = webtest.TestApp(make_middleware(EchoApp(), **jwt_settings(keys, store=store)))
    token = issue_token(server)
    settings = Settings.from_config(
        {
            "token_format": "jwt",
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwt_verification_keys": keys.rsa_pub,
            "jwt_check_revocation": "true",
            "store": store,
        }
    )
    resource = webtest.TestApp(guard_from_settings(EchoApp(), settings))
    assert call(resource, token).status_int == 200
    server.post(
        "/oauth/revoke", {"token": token}, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    )
    assert_invalid_token(call(resource, token, status=401))


def test_guard_only_resource_server_checking_revocation_needs_a_store(keys):
    settings = Settings.from_config(
        {
            "token_format": "jwt",
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwt_verification_keys": keys.rsa_pub,
            "jwt_check_revocation": "true",
            "store": "unreachable://nowhere",
        }
    )
    with pytest.raises(ConfigError, match=r"^store: unknown store scheme"):
        guard_from_settings(EchoApp(), settings)


def test_guard_only_tokens_cannot_issue(keys):
    settings = Settings.from_config(
        {"token_format": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "jwt_verification_keys": keys.rsa_pub}
    )
    tokens = guard_from_settings(EchoApp(), settings).tokens
    assert isinstance(tokens, JWTTokens)
    with pytest.raises(ConfigError, match="no key to sign"):
        tokens.issue(client_id="c", user_id=None, scopes=(), extra={}, family=None)


def test_decode_refuses_directly(jwt_app, keys):
    _, middleware = jwt_app()
    tokens = middleware.server.tokens
    with pytest.raises(InvalidToken):
        tokens.decode(sign(claims(), keys.rsa_old, kid=keys.rsa_old_kid))
    # The bearer syntax keeps "=" inside a token from the guard; the format refuses it on its own too.
    padded = sign(claims(), keys.rsa, kid=keys.rsa_kid).replace(".", "=.", 1)
    with pytest.raises(InvalidToken):
        tokens.decode(padded)
    assert tokens.introspect(padded) is None
    assert tokens.decode(sign(claims(), keys.rsa, kid=keys.rsa_kid)).client_id == SERVICE_ID


# -- deeply nested JSON (issue 10, item 3) ------------------------------------------------------

#: Headers nested far deeper than any JOSE header, in tokens short enough for every endpoint.
NESTED_HEADERS = [
    pytest.param(b"[" * 2700, id="arrays"),
    pytest.param(b"[" * 1350 + b"]" * 1350, id="closed-arrays"),
    pytest.param(b'{"typ":"at+jwt","kid":"k","x":' + b'{"":[' * 530, id="in-an-object"),
]


@pytest.mark.parametrize("header", NESTED_HEADERS)
def test_a_deeply_nested_header_is_invalid_token_everywhere(jwt_app, keys, header, caplog):
    app, _ = jwt_app(introspection_clients=SERVICE_ID)
    token = f"{b64(header)}.{b64json(claims())}.c2ln"
    auth = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    assert_invalid_token(call(app, token, status=401))
    assert app.post("/oauth/revoke", {"token": token}, headers=auth).json == {}
    assert app.post("/oauth/introspect", {"token": token}, headers=auth).json == {"active": False}
    settings = Settings.from_config(jwt_settings(keys, store="memory://", jwt_verification_keys=keys.rsa_pub))
    resource = webtest.TestApp(guard_from_settings(EchoApp(), settings))
    assert_invalid_token(call(resource, token, status=401))
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
