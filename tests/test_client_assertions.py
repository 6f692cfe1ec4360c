"""private_key_jwt client authentication (RFC 7523 §2.2, §3; RFC 7521 §4.2), through HTTP."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import hypothesis
import jwt
import pytest
import requests
import requests_oauth2client
import webtest
from conftest import register, serve_wsgi
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import example, given
from hypothesis import strategies as st
from oauth_flows import race
from paste.deploy import loadapp
from peer_issuer import ec_key
from servers import shared_redis
from store_fixtures import BACKENDS, backend, store  # noqa: F401

from oauth_middleware.cli import main
from oauth_middleware.client_auth import JWT_BEARER
from oauth_middleware.clients import build_client
from oauth_middleware.clock import SYSTEM_CLOCK
from oauth_middleware.errors import ConfigError

ISSUER = "http://localhost"
TOKEN = "/oauth/token"
CLIENT = "signed-client"


KEY, JWK = ec_key("k1")
OTHER_KEY, _ = ec_key("k1")


def assertion(
    key: Any = KEY,
    *,
    alg: str = "ES256",
    kid: str | None = "k1",
    now: float | None = None,
    client: str = CLIENT,
    **claims: Any,
) -> str:
    """A client assertion for ``client``; ``claims`` override (None removes one)."""
    import time

    issued = time.time() if now is None else now
    body: dict[str, Any] = {
        "iss": client,
        "sub": client,
        "aud": ISSUER,
        "exp": int(issued) + 60,
        "iat": int(issued),
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode(body, key, algorithm=alg, headers={} if kid is None else {"kid": kid})


def form(client_assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": client_assertion,
        **extra,
    }


@pytest.fixture
def signed_app(make_middleware, clock):
    middleware = make_middleware(clock=clock)
    register(middleware, CLIENT, None, grant_types=["client_credentials"], scopes=["read"], jwks=[JWK])
    return webtest.TestApp(middleware)


def refused(app: webtest.TestApp, data: dict[str, str], path: str = TOKEN) -> webtest.TestResponse:
    response = app.post(path, data, status=401)
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    return response


def test_private_key_jwt_gets_a_token(signed_app, clock):
    response = signed_app.post(TOKEN, form(assertion(now=clock.time())))
    assert response.json["token_type"] == "Bearer"
    assert response.json["scope"] == "read"


def test_a_replayed_assertion_is_refused(signed_app, clock):
    data = form(assertion(now=clock.time()))
    signed_app.post(TOKEN, data, status=200)
    refused(signed_app, data)


def test_an_expired_assertion_is_refused_once_the_clock_passes_exp(signed_app, clock):
    data = form(assertion(now=clock.time()))
    clock.advance(61)
    refused(signed_app, data)


@pytest.mark.parametrize(
    ("make", "extra"),
    [
        pytest.param(lambda now: assertion(OTHER_KEY, now=now), {}, id="another-key"),
        pytest.param(lambda now: assertion(now=now, kid="unknown"), {}, id="unknown-kid"),
        pytest.param(lambda now: assertion(now=now, exp=int(now) - 1), {}, id="expired"),
        pytest.param(lambda now: assertion(now=now, exp=int(now) + 301), {}, id="exp-beyond-max-lifetime"),
        pytest.param(lambda now: assertion(now=now, exp=None), {}, id="no-exp"),
        pytest.param(lambda now: assertion(now=now, jti=None), {}, id="no-jti"),
        pytest.param(lambda now: assertion(now=now, jti=""), {}, id="empty-jti"),
        pytest.param(lambda now: assertion(now=now, aud="http://elsewhere"), {}, id="other-audience"),
        pytest.param(lambda now: assertion(now=now, aud=ISSUER + TOKEN), {}, id="token-endpoint-audience"),
        pytest.param(lambda now: assertion(now=now, aud=None), {}, id="no-audience"),
        pytest.param(lambda now: assertion(now=now, iss="someone-else"), {}, id="iss-not-sub"),
        pytest.param(lambda now: assertion(now=now, iat=int(now) + 30), {}, id="iat-in-future"),
        pytest.param(lambda now: assertion(now=now, nbf=int(now) + 30), {}, id="nbf-in-future"),
        pytest.param(lambda now: assertion(now=now, exp="soon"), {}, id="exp-not-a-number"),
        pytest.param(lambda now: assertion(now=now, exp=float("nan")), {}, id="exp-nan"),
        pytest.param(lambda now: assertion(now=now, iat=float("nan")), {}, id="iat-nan"),
        pytest.param(lambda now: assertion(now=now, exp=True), {}, id="exp-boolean"),
        pytest.param(lambda now: assertion(None, alg="none", now=now), {}, id="unsigned"),
        pytest.param(lambda now: assertion(b"k" * 32, alg="HS256", now=now), {}, id="hmac"),
        pytest.param(lambda now: assertion(now=now, sub="nobody", iss="nobody"), {}, id="unknown-client"),
        pytest.param(lambda now: assertion(now=now, sub=None), {}, id="no-sub"),
        pytest.param(lambda now: "not.a.jwt", {}, id="garbage"),
        pytest.param(lambda now: "", {}, id="empty"),
        pytest.param(
            lambda now: assertion(now=now), {"client_assertion_type": "urn:other"}, id="wrong-assertion-type"
        ),
    ],
)
def test_bad_assertions_are_invalid_client(signed_app, clock, make, extra):
    refused(signed_app, {**form(make(clock.time())), **extra})


def test_an_assertion_naming_another_client_id_in_the_body_is_invalid_request(signed_app, clock):
    response = signed_app.post(TOKEN, form(assertion(now=clock.time()), client_id="other"), status=400)
    assert response.json["error"] == "invalid_request"


def test_assertion_and_basic_together_are_invalid_request(signed_app, clock):
    headers = {"Authorization": "Basic c2VydmljZTpzZWNyZXQ="}
    response = signed_app.post(TOKEN, form(assertion(now=clock.time())), headers=headers, status=400)
    assert response.json["error"] == "invalid_request"


def test_token_endpoint_audience_only_when_the_setting_says_so(make_middleware, clock):
    middleware = make_middleware(clock=clock, client_assertion_audience_token_endpoint="true")
    register(middleware, CLIENT, None, grant_types=["client_credentials"], scopes=["read"], jwks=[JWK])
    app = webtest.TestApp(middleware)
    app.post(TOKEN, form(assertion(now=clock.time(), aud=ISSUER + TOKEN)), status=200)
    app.post(TOKEN, form(assertion(now=clock.time(), aud=ISSUER)), status=200)


def test_the_registered_signing_algorithm_is_the_only_one(make_middleware, clock):
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_private.public_key())), "kid": "r1"}
    middleware = make_middleware(clock=clock)
    register(
        middleware,
        CLIENT,
        None,
        grant_types=["client_credentials"],
        jwks=[JWK, rsa_jwk],
        token_endpoint_auth_signing_alg="RS256",
    )
    app = webtest.TestApp(middleware)
    refused(app, form(assertion(now=clock.time())))
    app.post(TOKEN, form(assertion(rsa_private, alg="RS256", kid="r1", now=clock.time())), status=200)


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_JWK = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key())), "kid": "r1"}
SMALL_RSA_JWK = json.loads(
    jwt.algorithms.RSAAlgorithm.to_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    )
)


@pytest.mark.parametrize(
    ("jwk_alg", "signed_with", "status"),
    [
        pytest.param("PS256", "PS256", 200, id="ps256-key-ps256"),
        pytest.param("PS256", "RS256", 401, id="ps256-key-rs256"),
        pytest.param("RS256", "PS256", 401, id="rs256-key-ps256"),
        pytest.param(None, "RS256", 200, id="no-alg-rs256"),
        pytest.param(None, "PS256", 401, id="no-alg-ps256"),
    ],
)
def test_an_rsa_key_verifies_the_one_algorithm_its_jwk_names(
    make_middleware, clock, jwk_alg, signed_with, status
):
    jwk = RSA_PUBLIC_JWK if jwk_alg is None else {**RSA_PUBLIC_JWK, "alg": jwk_alg}
    middleware = make_middleware(clock=clock)
    register(middleware, CLIENT, None, grant_types=["client_credentials"], jwks=[jwk])
    response = webtest.TestApp(middleware).post(
        TOKEN, form(assertion(RSA_KEY, alg=signed_with, kid="r1", now=clock.time())), status=status
    )
    if status == 401:
        assert response.json["error"] == "invalid_client"


@pytest.mark.parametrize("where", ["jwks", "jwks_uri"])
@pytest.mark.parametrize(
    ("signer", "alg"),
    [pytest.param(KEY, "ES256", id="ec"), pytest.param(RSA_KEY, "PS256", id="rsa-pss")],
)
def test_keys_sharing_a_kid_are_told_apart_by_alg(make_middleware, clock, where, signer, alg):
    """FAPI 2.0 §5.4.3: a verifier chooses among keys with one kid by their other attributes."""
    shared = [{**RSA_PUBLIC_JWK, "kid": "k1", "alg": "PS256"}, JWK]
    middleware = make_middleware(clock=clock, fetch_allowed_networks="127.0.0.1")
    app = webtest.TestApp(middleware)
    server = KeyServer(shared)
    with serve_wsgi(server) as url:
        keys: dict[str, Any] = {"jwks": shared} if where == "jwks" else {"jwks_uri": url + "/jwks"}
        register(middleware, CLIENT, None, grant_types=["client_credentials"], **keys)
        app.post(TOKEN, form(assertion(signer, alg=alg, kid="k1", now=clock.time())), status=200)
        app.post(TOKEN, form(assertion(signer, alg=alg, kid=None, now=clock.time())), status=200)
        refused(app, form(assertion(OTHER_KEY, kid="k1", now=clock.time())))


def test_a_ps256_key_registers_for_its_algorithm_only():
    ps256 = {**RSA_PUBLIC_JWK, "alg": "PS256"}
    client = build_client(CLIENT, secret_hash=None, jwks=[ps256], token_endpoint_auth_signing_alg="PS256")
    assert client.token_endpoint_auth_signing_alg == "PS256"
    with pytest.raises(ValueError, match="of the signing"):
        build_client(CLIENT, secret_hash=None, jwks=[ps256], token_endpoint_auth_signing_alg="RS256")


def test_an_assertion_without_kid_is_checked_with_every_key(signed_app, clock):
    signed_app.post(TOKEN, form(assertion(now=clock.time(), kid=None)), status=200)


def test_a_secret_client_cannot_use_an_assertion(make_middleware, clock):
    middleware = make_middleware(clock=clock)
    register(middleware, CLIENT, "a-secret", grant_types=["client_credentials"])
    refused(webtest.TestApp(middleware), form(assertion(now=clock.time())))


#: The endpoints besides the token endpoint that authenticate clients, with a form each accepts.
OTHER_CLIENT_ENDPOINTS = [
    pytest.param("/oauth/revoke", {"token": "unknown"}, id="revocation"),
    pytest.param("/oauth/introspect", {"token": "unknown"}, id="introspection"),
    pytest.param(
        "/oauth/par",
        {
            "response_type": "code",
            "redirect_uri": "https://app.example/cb",
            "scope": "read",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
        id="par",
    ),
]


@pytest.mark.parametrize(("path", "extra"), OTHER_CLIENT_ENDPOINTS)
def test_every_endpoint_that_authenticates_clients_takes_assertions(make_middleware, clock, path, extra):
    middleware = make_middleware(clock=clock, introspection_clients=CLIENT)
    register(
        middleware,
        CLIENT,
        None,
        grant_types=["authorization_code"],
        redirect_uris=["https://app.example/cb"],
        scopes=["read"],
        jwks=[JWK],
    )
    app = webtest.TestApp(middleware)
    data = {"client_assertion_type": JWT_BEARER, "client_assertion": assertion(now=clock.time()), **extra}
    assert app.post(path, data).status_int in (200, 201)
    refused(app, data, path)  # the same assertion a second time


def test_failed_assertions_are_counted_against_the_client_they_name(make_middleware, clock):
    middleware = make_middleware(clock=clock, throttle_max_failures="3")
    register(middleware, CLIENT, None, grant_types=["client_credentials"], scopes=["read"], jwks=[JWK])
    app = webtest.TestApp(middleware)
    for _ in range(3):
        refused(app, form(assertion(OTHER_KEY, now=clock.time())))
    # Blocked: even a good assertion of that client is not looked at now.
    response = app.post(TOKEN, form(assertion(now=clock.time())), status=429)
    assert "too many failed attempts" in response.json["error_description"]


# -- registration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"token_endpoint_auth_method": "private_key_jwt"}, "jwks or jwks_uri", id="no-keys"),
        pytest.param({"jwks": [JWK], "jwks_uri": "https://c.example/jwks"}, "one of them", id="both"),
        pytest.param({"jwks_uri": "http://c.example/jwks"}, "must be https", id="plain-http-uri"),
        pytest.param({"jwks": [{**JWK, "d": "private"}]}, "private or symmetric", id="private-key"),
        pytest.param({"jwks": [{"kty": "oct", "k": "c2VjcmV0" * 6}]}, "private or symmetric", id="oct-key"),
        pytest.param({"jwks": [SMALL_RSA_JWK]}, "at least 2048 bits", id="rsa-1024"),
        pytest.param(
            {
                "jwks": [
                    json.loads(
                        jwt.algorithms.ECAlgorithm.to_jwk(
                            ec.generate_private_key(ec.SECP384R1()).public_key()
                        )
                    )
                ]
            },
            "needs a P-256 key",
            id="ec-p384",
        ),
        pytest.param(
            {"jwks": [JWK], "token_endpoint_auth_signing_alg": "HS256"}, "not one of", id="hmac-alg"
        ),
        pytest.param(
            {"jwks": [JWK], "token_endpoint_auth_signing_alg": "RS256"}, "of the signing", id="no-key-of-alg"
        ),
        pytest.param(
            {"jwks": [JWK], "token_endpoint_auth_method": "none"}, "not none", id="keys-for-another-method"
        ),
    ],
)
def test_registration_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        build_client(CLIENT, secret_hash=None, **fields)


def test_a_keyed_client_is_confidential_and_defaults_to_private_key_jwt():
    client = build_client(CLIENT, secret_hash=None, grant_types=["client_credentials"], jwks=[JWK])
    assert client.token_endpoint_auth_method == "private_key_jwt"
    assert not client.is_public


# -- jwks_uri ---------------------------------------------------------------


class KeyServer:
    """A JWKS on loopback that can be switched off (500) and have its keys changed."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.up = True
        self.redirect: str | None = None
        self.hits = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.hits += 1
        if self.redirect is not None:
            start_response("302 Found", [("Location", self.redirect)])
            return [b""]
        if not self.up:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"down"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"keys": self.keys}).encode()]


@pytest.fixture
def key_server():
    server = KeyServer([JWK])
    with serve_wsgi(server) as url:
        server.url = url + "/jwks"
        yield server


@pytest.fixture
def uri_app(make_middleware, clock, key_server):
    # The key server is on loopback, which a client's jwks_uri may reach only when allowed.
    middleware = make_middleware(clock=clock, jwks_refetch_interval="60", fetch_allowed_networks="127.0.0.1")
    register(
        middleware, CLIENT, None, grant_types=["client_credentials"], scopes=["read"], jwks_uri=key_server.url
    )
    return webtest.TestApp(middleware)


def test_jwks_uri_keys_are_fetched_once_and_cached(uri_app, key_server, clock):
    uri_app.post(TOKEN, form(assertion(now=clock.time())), status=200)
    uri_app.post(TOKEN, form(assertion(now=clock.time())), status=200)
    assert key_server.hits == 1


def test_jwks_uri_outage_is_503_then_recovers(uri_app, key_server, clock):
    key_server.up = False
    response = uri_app.post(TOKEN, form(assertion(now=clock.time())), status=503)
    assert response.json["error"] == "temporarily_unavailable"
    # Within the interval the JWKS is not asked again: still 503, no new fetch.
    uri_app.post(TOKEN, form(assertion(now=clock.time())), status=503)
    assert key_server.hits == 1
    key_server.up = True
    clock.advance(61)
    uri_app.post(TOKEN, form(assertion(now=clock.time())), status=200)


def test_an_oversized_jwks_uri_answer_is_refused_like_an_unreachable_one(uri_app, key_server, clock):
    # 256 KiB are read at most: a client's endless key set never fills our memory, and never passes.
    key_server.keys = [JWK, {"padding": "x" * 256 * 1024}]
    response = uri_app.post(TOKEN, form(assertion(now=clock.time())), status=503)
    assert response.json["error"] == "temporarily_unavailable"


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/jwks", "/elsewhere"])
def test_a_redirecting_jwks_uri_is_never_followed(uri_app, key_server, clock, target):
    key_server.redirect = target
    response = uri_app.post(TOKEN, form(assertion(now=clock.time())), status=503)
    assert response.json["error"] == "temporarily_unavailable"
    assert key_server.hits == 1


def test_jwks_uri_rotation_is_learnt_on_an_unknown_kid_at_most_once_per_interval(uri_app, key_server, clock):
    uri_app.post(TOKEN, form(assertion(now=clock.time())), status=200)
    new_key, new_jwk = ec_key("k2")
    key_server.keys = [JWK, new_jwk]
    refused(uri_app, form(assertion(new_key, kid="k2", now=clock.time())))  # fetched too recently
    clock.advance(61)
    uri_app.post(TOKEN, form(assertion(new_key, kid="k2", now=clock.time())), status=200)
    refused(uri_app, form(assertion(new_key, kid="k3", now=clock.time())))  # made-up kid: no fetch
    assert key_server.hits == 2


# -- races and end to end over HTTP ------------------------------------------


def test_one_assertion_raced_from_20_threads_is_accepted_once(make_middleware, store):  # noqa: F811
    # Throttling off the table: 19 refusals of one client must all be seen as replays.
    middleware = make_middleware(store_backend=store, throttle_max_failures="100")
    register(middleware, CLIENT, None, grant_types=["client_credentials"], scopes=["read"], jwks=[JWK])
    with serve_wsgi(middleware, threads=20) as url:
        responses = race(url + TOKEN, form(assertion()))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [401] * 19
    assert {r.json()["error"] for r in responses if r.status_code == 401} == {"invalid_client"}


@pytest.mark.parametrize("store_name", ["sqlite", "redis"])
def test_requests_oauth2client_private_key_jwt_end_to_end(make_middleware, store_name, request):
    private_jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(KEY)), "kid": "k1", "alg": "ES256"}
    with BACKENDS[store_name].open(request, SYSTEM_CLOCK) as opened:
        middleware = make_middleware(store_backend=opened, issuer="http://127.0.0.1")
        register(middleware, CLIENT, None, grant_types=["client_credentials"], scopes=["read"], jwks=[JWK])
        with serve_wsgi(middleware) as url:
            client = requests_oauth2client.OAuth2Client(
                url + TOKEN,
                auth=requests_oauth2client.PrivateKeyJwt(
                    CLIENT, private_jwk, alg="ES256", aud="http://127.0.0.1"
                ),
                revocation_endpoint=url + "/oauth/revoke",
                testing=True,  # plain HTTP on loopback
            )
            token = client.client_credentials(scope="read")
            assert token.scope == "read"
            bearer = {"Authorization": f"Bearer {token.access_token}"}
            assert requests.get(url + "/", headers=bearer, timeout=10).status_code == 200
            assert client.revoke_access_token(token.access_token)
            assert requests.get(url + "/", headers=bearer, timeout=10).status_code == 401


@pytest.mark.parametrize("store_name", ["sqlite", "redis"])
def test_a_client_added_with_a_jwks_uri_works_with_requests_oauth2client(
    store_name, request, tmp_path, capsys
):
    """The CLI registers the client with its key set's URL; the library authenticates with the key it holds."""
    store_url = f"sqlite:///{tmp_path / 'oauth.db'}" if store_name == "sqlite" else shared_redis(request).url
    key_server = KeyServer([JWK])
    private_jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(KEY)), "kid": "k1", "alg": "ES256"}
    with serve_wsgi(key_server) as keys_url:
        ini = tmp_path / "app.ini"
        ini.write_text(
            "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
            f"[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nstore = {store_url}\n"
            f"store_prefix = pkj-{uuid.uuid4().hex[:12]}:\nscopes = read write\nissuer = http://127.0.0.1\n"
            f"require_https = false\nintrospection_clients = {CLIENT}\n"
            "fetch_allowed_networks = 127.0.0.1\n"  # the key server is on loopback
        )
        assert main(["client", "add", str(ini), "--client-id", CLIENT, "--grant", "client_credentials",
                     "--scope", "read", "--jwks-uri", keys_url + "/jwks"]) == 0  # fmt: skip
        assert main(["client", "list", str(ini)]) == 0
        assert capsys.readouterr().out.strip().endswith("\ttoken_endpoint_auth_method=private_key_jwt")
        with serve_wsgi(loadapp(f"config:{ini}")) as url:
            client = requests_oauth2client.OAuth2Client(
                url + TOKEN,
                auth=requests_oauth2client.PrivateKeyJwt(
                    CLIENT, private_jwk, alg="ES256", aud="http://127.0.0.1"
                ),
                revocation_endpoint=url + "/oauth/revoke",
                introspection_endpoint=url + "/oauth/introspect",
                testing=True,  # plain HTTP on loopback
            )
            token = client.client_credentials(scope="read")
            assert client.introspect_token(token.access_token)["active"] is True
            bearer = {"Authorization": f"Bearer {token.access_token}"}
            assert requests.get(url + "/", headers=bearer, timeout=10).status_code == 200
            assert client.revoke_access_token(token.access_token)
            assert requests.get(url + "/", headers=bearer, timeout=10).status_code == 401
            # A key the set does not hold: 401 invalid_client through the same library.
            other = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(OTHER_KEY)), "kid": "k1", "alg": "ES256"}
            stranger = requests_oauth2client.OAuth2Client(
                url + TOKEN,
                auth=requests_oauth2client.PrivateKeyJwt(CLIENT, other, alg="ES256", aud="http://127.0.0.1"),
                testing=True,
            )
            with pytest.raises(requests_oauth2client.InvalidClient):
                stranger.client_credentials(scope="read")
    assert key_server.hits == 1  # fetched once, then cached


# -- CLI and clients_file ----------------------------------------------------


@pytest.fixture
def config(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        "store = sqlite:///%(here)s/oauth.db\nscopes = read write\nissuer = http://localhost\nrequire_https = false\n"
    )
    return str(ini)


def test_client_add_with_a_jwks_file_registers_private_key_jwt(capsys, config, tmp_path):
    jwks = tmp_path / "client.jwks"
    jwks.write_text(json.dumps({"keys": [JWK]}))
    status = main(["client", "add", config, "--client-id", CLIENT, "--grant", "client_credentials",
                   "--scope", "read", "--jwks-file", str(jwks), "--signing-alg", "ES256"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "client_secret" not in out  # no secret is generated for a keyed client
    assert "token_endpoint_auth_method: private_key_jwt" in out.splitlines()
    assert "token_endpoint_auth_signing_alg: ES256" in out.splitlines()
    main(["client", "list", config])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{CLIENT}\tconfidential\t")
    assert line.endswith("\ttoken_endpoint_auth_method=private_key_jwt")
    app = webtest.TestApp(loadapp(f"config:{config}"))
    app.post(TOKEN, form(assertion()), status=200)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--jwks-uri", "https://c.example/jwks", "--secret", "s" * 20], "no --secret", id="with-secret"
        ),
        pytest.param(
            ["--jwks-uri", "https://c.example/jwks", "--public"], "no --secret or --public", id="public"
        ),
        pytest.param(["--jwks-file", "/nonexistent.jwks"], "--jwks-file: cannot use", id="missing-file"),
        pytest.param(["--jwks-uri", "ftp://c.example/jwks"], "must be https", id="ftp-uri"),
        pytest.param(
            ["--secret", "s" * 20, "--signing-alg", "ES256"], "for private_key_jwt", id="alg-with-secret"
        ),
    ],
)
def test_client_add_key_errors(capsys, config, argv, message):
    status = main(["client", "add", config, "--client-id", CLIENT, "--grant", "client_credentials", *argv])
    assert status != 0
    assert message in capsys.readouterr().err


def test_clients_file_registers_inline_jwks_and_jwks_uri(make_middleware, tmp_path, clock):
    path = tmp_path / "clients.ini"
    path.write_text(
        f"[client:{CLIENT}]\ngrants = client_credentials\nscopes = read\njwks = {json.dumps({'keys': [JWK]})}\n\n"
        "[client:remote]\ngrants = client_credentials\njwks_uri = https://c.example/jwks\n"
        "token_endpoint_auth_signing_alg = RS256\n"
    )
    middleware = make_middleware(clock=clock, clients_file=str(path))
    remote = middleware.server.repository.get_client("remote")
    assert remote is not None and remote.jwks_uri == "https://c.example/jwks"
    assert remote.token_endpoint_auth_signing_alg == "RS256"
    webtest.TestApp(middleware).post(TOKEN, form(assertion(now=clock.time())), status=200)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("jwks = {not json\n", "jwks:", id="jwks-not-json"),
        pytest.param('jwks = {"keys": 1}\n', "not a JWK Set", id="jwks-not-a-set"),
        pytest.param(
            "jwks_uri = https://c.example/j\nsecret_hash = " + "0" * 64 + "\n",
            "a client with a secret cannot use the client authentication method private_key_jwt",
            id="secret-and-keys",
        ),
    ],
)
def test_clients_file_key_errors(make_middleware, tmp_path, text, message):
    path = tmp_path / "clients.ini"
    path.write_text(f"[client:{CLIENT}]\ngrants = client_credentials\n{text}")
    with pytest.raises(ConfigError, match=message):
        make_middleware(clients_file=str(path))


# -- fuzzing -----------------------------------------------------------------


def _segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
CLAIM_NAMES = st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "alg", "kid"])


@pytest.fixture(scope="module")
def fuzz_app():
    from conftest import DemoApp

    from oauth_middleware.middleware import OAuth2Middleware

    # Throttling would answer 429 before the assertion is looked at: it is off the table here.
    middleware = OAuth2Middleware(
        DemoApp(),
        store="memory://",
        issuer=ISSUER,
        require_https="false",
        throttle_max_failures="1000000",
        throttle_address_max_failures="1000000",
    )
    register(middleware, CLIENT, None, grant_types=["client_credentials"], jwks=[JWK])
    return webtest.TestApp(middleware)


@given(
    header=st.dictionaries(CLAIM_NAMES, JSON_VALUES, max_size=3) | JSON_VALUES,
    claims=st.dictionaries(CLAIM_NAMES, JSON_VALUES, max_size=2) | JSON_VALUES,
    signature=st.binary(max_size=70),
    signed=st.booleans(),
)
@example(header={}, claims={"exp": float("nan")}, signature=b"", signed=True)  # json reads NaN
@example(header={}, claims={"aud": [ISSUER, None]}, signature=b"", signed=True)
@hypothesis.settings(
    max_examples=300, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
def test_any_assertion_is_a_4xx_never_a_5xx(fuzz_app, header, claims, signature, signed):
    if isinstance(claims, dict):
        # A valid assertion's claims with some of them replaced, so that each check meets odd values.
        valid = jwt.decode(assertion(), options={"verify_signature": False})
        claims = {**valid, **claims}
    if signed and isinstance(claims, dict):
        # Signed by the client's key, so that the claim checks after the signature see any values too.
        made_up = jwt.PyJWS().encode(
            json.dumps(claims).encode(), KEY, algorithm="ES256", headers={"kid": "k1"}
        )
    else:
        made_up = ".".join([_segment(header), _segment(claims), _segment(signature)])
    response = fuzz_app.post(TOKEN, form(made_up), expect_errors=True)
    assert response.status_int in (200, 400, 401), response.text
