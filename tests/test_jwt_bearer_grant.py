"""The JWT bearer authorization grant (RFC 7523 §2.1, RFC 7521 §4.1), through HTTP."""

from __future__ import annotations

import json

import jwt
import pytest
import requests
import requests_oauth2client
import webtest
from conftest import basic, register, serve_wsgi
from cryptography.hazmat.primitives.asymmetric import rsa
from oauth_flows import race
from peer_issuer import ISSUER, JWK, JWT_BEARER, KEY, OTHER_KEY, PEER, issuer_file, peer_jwt
from store_fixtures import BACKENDS
from test_client_assertions import KeyServer

from oauth_middleware import OAuth2Middleware
from oauth_middleware.clock import SYSTEM_CLOCK
from oauth_middleware.demo import DemoApp
from oauth_middleware.errors import ConfigError

TOKEN = "/oauth/token"
CLIENT, SECRET = "relying-app", "relying-app-secret-0123456789"
AUTH = {"Authorization": basic(CLIENT, SECRET)}


def grant_form(assertion: str, **extra: str) -> dict[str, str]:
    return {"grant_type": JWT_BEARER, "assertion": assertion, **extra}


@pytest.fixture
def grant_middleware(make_middleware, clock, tmp_path):
    def make(**settings):
        if "trusted_issuers_file" not in settings:
            settings["trusted_issuers_file"] = issuer_file(tmp_path)
        settings.setdefault("grants", f"client_credentials {JWT_BEARER}")
        middleware = make_middleware(clock=clock, **settings)
        register(middleware, CLIENT, SECRET, grant_types=[JWT_BEARER], scopes=["read", "admin"])
        return middleware

    return make


@pytest.fixture
def grant_app(grant_middleware):
    return webtest.TestApp(grant_middleware())


def test_an_assertion_gets_a_token_for_its_subject(grant_app, clock):
    response = grant_app.post(TOKEN, grant_form(peer_jwt(now=clock.time())), headers=AUTH)
    body = response.json
    assert response.headers["Cache-Control"] == "no-store"
    assert body["token_type"] == "Bearer" and "refresh_token" not in body
    # The client may have read and admin, the issuer read and write: read is what both allow.
    assert body["scope"] == "read"
    page = grant_app.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert "alice" in page.text


def test_a_prefix_pattern_allows_its_subjects(grant_app, clock):
    grant_app.post(TOKEN, grant_form(peer_jwt(now=clock.time(), sub="service-7")), headers=AUTH, status=200)


def test_scope_asked_for_within_what_everyone_allows(grant_app, clock):
    response = grant_app.post(TOKEN, grant_form(peer_jwt(now=clock.time()), scope="read"), headers=AUTH)
    assert response.json["scope"] == "read"


@pytest.mark.parametrize(
    ("resource", "status"),
    [
        pytest.param("https://a.example/api", 200, id="allowed"),
        pytest.param("https://elsewhere.example/api", 400, id="not-allowed"),
    ],
)
def test_the_token_is_for_the_resource_asked_for(grant_middleware, clock, resource, status):
    app = webtest.TestApp(
        grant_middleware(allowed_resources="https://a.example/api", introspection_clients="service")
    )
    data = grant_form(peer_jwt(now=clock.time()), resource=resource)
    response = app.post(TOKEN, data, headers=AUTH, status=status)
    if status == 400:
        assert response.json["error"] == "invalid_target"
    else:
        service = {"Authorization": basic("service", "service-secret-0123456789")}
        info = app.post("/oauth/introspect", {"token": response.json["access_token"]}, headers=service).json
        assert info["aud"] == [resource]


def test_the_same_assertion_twice_is_refused(grant_app, clock):
    data = grant_form(peer_jwt(now=clock.time()))
    grant_app.post(TOKEN, data, headers=AUTH, status=200)
    assert grant_app.post(TOKEN, data, headers=AUTH, status=400).json["error"] == "invalid_grant"


def test_a_refused_request_does_not_use_the_assertion_up(grant_app, clock):
    data = grant_form(peer_jwt(now=clock.time()))
    grant_app.post(TOKEN, {**data, "scope": "write"}, headers=AUTH, status=400)
    grant_app.post(TOKEN, data, headers=AUTH, status=200)


def test_an_assertion_expires_by_the_servers_clock(grant_app, clock):
    data = grant_form(peer_jwt(now=clock.time()))
    clock.advance(61)
    assert grant_app.post(TOKEN, data, headers=AUTH, status=400).json["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda now: peer_jwt(OTHER_KEY, now=now), id="another-key"),
        pytest.param(lambda now: peer_jwt(now=now, kid="unknown"), id="unknown-kid"),
        pytest.param(lambda now: peer_jwt(now=now, iss="https://other-idp.example"), id="untrusted-issuer"),
        pytest.param(lambda now: peer_jwt(now=now, iss=None), id="no-iss"),
        pytest.param(lambda now: peer_jwt(now=now, sub="mallory"), id="subject-not-allowed"),
        pytest.param(lambda now: peer_jwt(now=now, sub="service"), id="subject-not-matching-prefix"),
        pytest.param(lambda now: peer_jwt(now=now, sub=None), id="no-sub"),
        pytest.param(lambda now: peer_jwt(now=now, sub=7), id="sub-not-a-string"),
        pytest.param(lambda now: peer_jwt(now=now, aud="https://elsewhere.example"), id="other-audience"),
        pytest.param(lambda now: peer_jwt(now=now, aud=ISSUER + TOKEN), id="token-endpoint-audience"),
        pytest.param(lambda now: peer_jwt(now=now, aud=None), id="no-audience"),
        pytest.param(lambda now: peer_jwt(now=now, exp=int(now) - 1), id="expired"),
        pytest.param(lambda now: peer_jwt(now=now, exp=int(now) + 301), id="exp-beyond-max-lifetime"),
        pytest.param(lambda now: peer_jwt(now=now, exp=None), id="no-exp"),
        pytest.param(lambda now: peer_jwt(now=now, exp=float("nan")), id="exp-nan"),
        pytest.param(lambda now: peer_jwt(now=now, exp="soon"), id="exp-not-a-number"),
        pytest.param(lambda now: peer_jwt(now=now, iat=int(now) + 30), id="iat-in-future"),
        pytest.param(lambda now: peer_jwt(now=now, iat=int(now) - 600), id="iat-beyond-max-lifetime"),
        pytest.param(lambda now: peer_jwt(now=now, nbf=int(now) + 30), id="nbf-in-future"),
        pytest.param(lambda now: peer_jwt(now=now, jti=None), id="no-jti"),
        pytest.param(lambda now: peer_jwt(now=now, jti=""), id="empty-jti"),
        pytest.param(lambda now: peer_jwt(None, alg="none", now=now), id="unsigned"),
        pytest.param(lambda now: peer_jwt(b"k" * 32, alg="HS256", now=now), id="hmac"),
        pytest.param(lambda now: "not.a.jwt", id="garbage"),
    ],
)
def test_bad_assertions_are_invalid_grant(grant_app, clock, make):
    response = grant_app.post(TOKEN, grant_form(make(clock.time())), headers=AUTH, status=400)
    assert response.json["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("data", "headers", "status", "error"),
    [
        pytest.param({"grant_type": JWT_BEARER}, AUTH, 400, "invalid_request", id="no-assertion"),
        pytest.param(grant_form("x" * 5000), AUTH, 400, "invalid_request", id="assertion-too-long"),
        pytest.param(grant_form("", scope="write"), AUTH, 400, "invalid_scope", id="scope-beyond-the-client"),
        pytest.param(grant_form("", scope="bogus"), AUTH, 400, "invalid_scope", id="scope-unknown"),
        pytest.param(None, AUTH, 400, "invalid_scope", id="scope-beyond-the-issuer"),
        pytest.param(grant_form(""), {}, 401, "invalid_client", id="no-client-authentication"),
        pytest.param(
            grant_form(""),
            {"Authorization": basic(CLIENT, "wrong")},
            401,
            "invalid_client",
            id="wrong-secret",
        ),
        pytest.param(
            grant_form(""),
            {"Authorization": basic("service", "service-secret-0123456789")},
            400,
            "unauthorized_client",
            id="client-not-registered-for-the-grant",
        ),
    ],
)
def test_request_errors(grant_middleware, clock, data, headers, status, error):
    middleware = grant_middleware()
    repository = middleware.server.repository
    # A client registered for admin and the grant; the issuer allows read and write only.
    register(middleware, "admin-app", SECRET, grant_types=[JWT_BEARER], scopes=["read", "admin"])
    if data is None:
        data, headers = grant_form("", scope="admin"), {"Authorization": basic("admin-app", SECRET)}
    if data.get("assertion") == "":
        data = {**data, "assertion": peer_jwt(now=clock.time())}
    assert repository.get_client(CLIENT) is not None
    response = webtest.TestApp(middleware).post(TOKEN, data, headers=headers, status=status)
    assert response.json["error"] == error


def test_the_grant_is_off_unless_enabled(grant_middleware, clock):
    app = webtest.TestApp(grant_middleware(grants="client_credentials", trusted_issuers_file=""))
    response = app.post(TOKEN, grant_form(peer_jwt(now=clock.time())), headers=AUTH, status=400)
    assert response.json["error"] == "unsupported_grant_type"


def test_a_public_client_cannot_register_for_the_grant():
    from oauth_middleware.clients import build_client

    with pytest.raises(ValueError, match="public client cannot use"):
        build_client("spa", secret_hash=None, grant_types=[JWT_BEARER])


def test_the_issuers_signing_algorithms_are_the_only_ones(grant_middleware, clock, tmp_path):
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_private.public_key())), "kid": "r1"}
    path = tmp_path / "rsa.ini"
    path.write_text(
        f"[issuer:{PEER}]\njwks = {json.dumps({'keys': [JWK, rsa_jwk]})}\nsubjects = alice\n"
        "scopes = read\nsigning_algs = RS256\n"
    )
    app = webtest.TestApp(grant_middleware(trusted_issuers_file=str(path)))
    app.post(TOKEN, grant_form(peer_jwt(now=clock.time())), headers=AUTH, status=400)
    signed = peer_jwt(rsa_private, alg="RS256", kid="r1", now=clock.time())
    app.post(TOKEN, grant_form(signed), headers=AUTH, status=200)


def test_max_lifetime_is_the_issuers(grant_middleware, clock, tmp_path):
    app = webtest.TestApp(grant_middleware(trusted_issuers_file=issuer_file(tmp_path, max_lifetime="3600")))
    long_lived = peer_jwt(now=clock.time(), exp=int(clock.time()) + 3000)
    app.post(TOKEN, grant_form(long_lived), headers=AUTH, status=200)


def test_the_token_endpoint_audience_only_when_the_setting_says_so(grant_middleware, clock):
    app = webtest.TestApp(grant_middleware(client_assertion_audience_token_endpoint="true"))
    app.post(TOKEN, grant_form(peer_jwt(now=clock.time(), aud=ISSUER + TOKEN)), headers=AUTH, status=200)


def test_a_jti_used_by_a_client_assertion_is_not_used_up_for_the_issuer(grant_middleware, clock):
    middleware = grant_middleware()
    assertion = peer_jwt(now=clock.time())
    jti = jwt.decode(assertion, options={"verify_signature": False})["jti"]
    assert middleware.server.repository.record_client_assertion(PEER, jti, 60)
    webtest.TestApp(middleware).post(TOKEN, grant_form(assertion), headers=AUTH, status=200)


# -- configuration ---------------------------------------------------------------


def test_the_grant_needs_trusted_issuers(make_middleware):
    with pytest.raises(ConfigError, match=r"^trusted_issuers_file: required by the .*jwt-bearer grant$"):
        make_middleware(grants=JWT_BEARER)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[client:x]\nsubjects = a\n", r"\[client:x\] should be \[issuer:ISSUER\]", id="section"),
        pytest.param(f"[issuer:{PEER}]\nsubjects = a\n", "jwks or jwks_uri", id="no-keys"),
        pytest.param(
            f"[issuer:{PEER}]\nsubjects = a\njwks_uri = https://i/j\njwks = {{}}\n",
            "one of them",
            id="both-keys",
        ),
        pytest.param(f"[issuer:{PEER}]\njwks_uri = https://i/j\n", "subjects: required", id="no-subjects"),
        pytest.param(
            f"[issuer:{PEER}]\nsubjects = a\njwks_uri = http://idp.example/j\n",
            "must be https",
            id="plain-http",
        ),
        pytest.param(
            f"[issuer:{PEER}]\nsubjects = a\njwks_uri = https://i/j\nkeys = x\n",
            "unknown key 'keys'",
            id="typo",
        ),
        pytest.param(
            f"[issuer:{PEER}]\nsubjects = a\njwks_uri = https://i/j\nsigning_algs = HS256\n",
            "signing_algs",
            id="hmac-alg",
        ),
        pytest.param(
            f"[issuer:{PEER}]\nsubjects = a\njwks_uri = https://i/j\nmax_lifetime = forever\n",
            "max_lifetime",
            id="bad-lifetime",
        ),
        pytest.param(
            f"[issuer:{PEER}]\nsubjects = a\njwks_uri = https://i/j\nmax_lifetime = 86401\n",
            "max_lifetime",
            id="lifetime-too-long",
        ),
        pytest.param(
            f'[issuer:{PEER}]\nsubjects = a\njwks_uri = https://i/j\nscopes = "quoted"\n',
            "scopes",
            id="bad-scope",
        ),
        pytest.param(f"[issuer:{PEER}]\nsubjects = a\njwks = not json\n", "jwks", id="jwks-not-json"),
        pytest.param(
            f"[issuer:{PEER}]\nsubjects = a\njwks = {json.dumps({'keys': [{**JWK, 'd': 'x'}]})}\n",
            "private or symmetric",
            id="private-key",
        ),
        pytest.param(
            f"[issuer:{PEER}]\nsubjects = a\nsigning_algs = RS256\njwks = {json.dumps({'keys': [JWK]})}\n",
            "public keys of the signing_algs",
            id="key-of-another-alg",
        ),
        pytest.param("not an ini", "cannot read", id="unreadable"),
    ],
)
def test_trusted_issuers_file_errors_are_one_line_naming_the_setting(
    make_middleware, tmp_path, text, message
):
    path = tmp_path / "issuers.ini"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        make_middleware(trusted_issuers_file=str(path), grants=JWT_BEARER)
    assert str(caught.value).startswith("trusted_issuers_file: ") and "\n" not in str(caught.value)


def test_a_missing_trusted_issuers_file_is_a_load_error(make_middleware, tmp_path):
    with pytest.raises(ConfigError, match=r"^trusted_issuers_file: cannot read"):
        make_middleware(trusted_issuers_file=str(tmp_path / "missing.ini"), grants=JWT_BEARER)


@pytest.mark.parametrize(
    ("grants", "listed"),
    [pytest.param("client_credentials", False, id="off"), pytest.param(JWT_BEARER, True, id="on")],
)
def test_metadata_lists_the_grant_only_when_enabled(grant_middleware, grants, listed):
    app = webtest.TestApp(grant_middleware(grants=grants))
    document = app.get("/.well-known/oauth-authorization-server").json
    assert (JWT_BEARER in document["grant_types_supported"]) is listed


# -- jwks_uri, races and end to end over HTTP -----------------------------------------


def test_the_issuers_jwks_uri_outage_is_503_then_recovers(grant_middleware, clock, tmp_path):
    server = KeyServer([JWK])
    with serve_wsgi(server) as url:
        app = webtest.TestApp(
            grant_middleware(
                trusted_issuers_file=issuer_file(tmp_path, jwks_uri=url + "/jwks"),
                fetch_allowed_networks="127.0.0.1",  # the key server is on loopback
            )
        )
        server.up = False
        response = app.post(TOKEN, grant_form(peer_jwt(now=clock.time())), headers=AUTH, status=503)
        assert response.json["error"] == "temporarily_unavailable"
        server.up = True
        clock.advance(61)
        app.post(TOKEN, grant_form(peer_jwt(now=clock.time())), headers=AUTH, status=200)
        app.post(TOKEN, grant_form(peer_jwt(now=clock.time())), headers=AUTH, status=200)
        assert server.hits == 2


@pytest.mark.parametrize("store_name", ["sqlite", "redis"])
def test_one_assertion_raced_from_20_threads_is_accepted_once(tmp_path, store_name, request):
    with BACKENDS[store_name].open(request, SYSTEM_CLOCK) as opened:
        middleware = OAuth2Middleware(
            DemoApp(),
            store_backend=opened,
            issuer=ISSUER,
            require_https="false",
            grants=JWT_BEARER,
            trusted_issuers_file=issuer_file(tmp_path),
        )
        register(middleware, CLIENT, SECRET, grant_types=[JWT_BEARER], scopes=["read"])
        with serve_wsgi(middleware, threads=20) as url:
            responses = race(url + TOKEN, grant_form(peer_jwt()), headers=AUTH)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * 19
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}


@pytest.mark.parametrize("store_name", ["sqlite", "redis"])
def test_requests_oauth2client_jwt_bearer_end_to_end(tmp_path, store_name, request):
    key_server = KeyServer([JWK])
    with (
        serve_wsgi(key_server) as keys_url,
        BACKENDS[store_name].open(request, SYSTEM_CLOCK) as opened,
    ):
        middleware = OAuth2Middleware(
            DemoApp(),
            store_backend=opened,
            issuer="http://127.0.0.1",
            require_https="false",
            grants=JWT_BEARER,
            trusted_issuers_file=issuer_file(tmp_path, jwks_uri=keys_url + "/jwks"),
            fetch_allowed_networks="127.0.0.1",  # the key server is on loopback
        )
        register(middleware, CLIENT, SECRET, grant_types=[JWT_BEARER], scopes=["read", "write"])
        with serve_wsgi(middleware) as url:
            client = requests_oauth2client.OAuth2Client(
                url + TOKEN,
                auth=requests_oauth2client.ClientSecretBasic(CLIENT, SECRET),
                testing=True,  # plain HTTP on loopback
            )
            token = client.jwt_bearer(peer_jwt(KEY, aud="http://127.0.0.1"), scope="read write")
            assert token.scope == "read write"
            page = requests.get(
                url + "/api/me", headers={"Authorization": f"Bearer {token.access_token}"}, timeout=10
            )
            assert page.status_code == 200 and "alice" in page.text
            with pytest.raises(requests_oauth2client.InvalidGrant):
                client.jwt_bearer(peer_jwt(OTHER_KEY, aud="http://127.0.0.1"))
    assert key_server.hits == 1
