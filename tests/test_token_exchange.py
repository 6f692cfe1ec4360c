"""Token exchange (RFC 8693), through HTTP: subject and actor tokens, act chains, narrowing, policy."""

from __future__ import annotations

import json

import hypothesis
import jwt
import pytest
import requests
import requests_oauth2client
import webtest
from conftest import basic, register, serve_wsgi
from dpop_support import Prover
from hypothesis import example, given
from hypothesis import strategies as st
from jwt_keys import EchoApp, jwt_settings, make_keys
from paste.deploy import loadapp
from peer_issuer import (
    ACCESS_TOKEN_TYPE,
    JWK,
    JWT_BEARER,
    JWT_TYPE,
    KEY,
    OTHER_KEY,
    PEER,
    TOKEN_EXCHANGE,
    issuer_file,
    peer_jwt,
)
from store_fixtures import BACKENDS
from test_client_assertions import JSON_VALUES, KeyServer

from oauth_middleware import OAuth2Middleware
from oauth_middleware.cli import main
from oauth_middleware.clock import SYSTEM_CLOCK
from oauth_middleware.demo import DemoApp
from oauth_middleware.grants.token_exchange import TokenExchange
from oauth_middleware.records import AccessTokenRecord

TOKEN, INTROSPECT, REVOKE = "/oauth/token", "/oauth/introspect", "/oauth/revoke"
FRONT, FRONT_SECRET = "frontend", "frontend-secret-0123456789"
API, API_SECRET = "api-a", "api-a-secret-0123456789"
OTHER, OTHER_SECRET = "api-b", "api-b-secret-0123456789"
RESOURCE_A, RESOURCE_B = "https://a.example/api", "https://b.example/api"


def allow_every_exchange(exchange: TokenExchange) -> bool:
    """A ``token_exchange_policy`` for the tests: anything goes (the narrowing still applies)."""
    return True


def auth(client_id: str = API, secret: str = API_SECRET) -> dict[str, str]:
    return {"Authorization": basic(client_id, secret)}


def exchange_form(
    subject_token: str, subject_token_type: str = ACCESS_TOKEN_TYPE, **extra: str
) -> dict[str, str]:
    return {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": subject_token_type,
        **extra,
    }


@pytest.fixture
def echo():
    return EchoApp()


@pytest.fixture
def exchange_middleware(make_middleware, clock, tmp_path, echo):
    def make(**settings):
        settings.setdefault("grants", f"client_credentials password {TOKEN_EXCHANGE}")
        settings.setdefault("verify_password", "oauth_flows:verify_password")
        settings.setdefault("introspection_clients", API)
        if "trusted_issuers_file" not in settings:
            settings["trusted_issuers_file"] = issuer_file(tmp_path)
        middleware = make_middleware(echo, clock=clock, **settings)
        register(
            middleware,
            FRONT,
            FRONT_SECRET,
            grant_types=["password", TOKEN_EXCHANGE],
            scopes=["read", "write"],
        )
        for client_id, secret in ((API, API_SECRET), (OTHER, OTHER_SECRET)):
            register(
                middleware,
                client_id,
                secret,
                grant_types=["client_credentials", TOKEN_EXCHANGE],
                scopes=["read", "write"],
            )
        register(middleware, "plain", "plain-secret-0123456789", grant_types=["client_credentials"])
        return middleware

    return make


@pytest.fixture
def app(exchange_middleware):
    return webtest.TestApp(exchange_middleware())


def user_token(app: webtest.TestApp, client_id: str = FRONT, secret: str = FRONT_SECRET, **extra: str) -> str:
    """Alice's token (read write) for ``client_id``, by the password grant."""
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": "alice-password",
        "scope": "read write",
    }
    return str(app.post(TOKEN, {**form, **extra}, headers=auth(client_id, secret)).json["access_token"])


def client_token(app: webtest.TestApp, client_id: str = API, secret: str = API_SECRET) -> str:
    form = {"grant_type": "client_credentials", "scope": "read"}
    return str(app.post(TOKEN, form, headers=auth(client_id, secret)).json["access_token"])


def introspect(app: webtest.TestApp, token: str) -> dict:
    return app.post(INTROSPECT, {"token": token}, headers=auth()).json


def test_a_client_narrows_its_own_token(app, echo):
    response = app.post(
        TOKEN, exchange_form(user_token(app), scope="read"), headers=auth(FRONT, FRONT_SECRET)
    )
    body = response.json
    assert response.headers["Cache-Control"] == "no-store"
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer" and body["scope"] == "read" and "refresh_token" not in body
    app.get("/", headers={"Authorization": f"Bearer {body['access_token']}"})
    token = echo.environ["oauth2.token"]
    assert (token.user_id, token.client_id, token.scopes, token.act) == ("alice", FRONT, ("read",), None)


def test_without_scope_the_subject_tokens_scopes_are_kept(app):
    body = app.post(TOKEN, exchange_form(user_token(app)), headers=auth(FRONT, FRONT_SECRET)).json
    assert body["scope"] == "read write"


def test_a_clients_own_client_only_token_stays_client_only(app):
    exchanged = app.post(TOKEN, exchange_form(client_token(app)), headers=auth()).json["access_token"]
    info = introspect(app, exchanged)
    assert info["sub"] == API and info["client_id"] == API and "username" not in info


def test_delegation_puts_the_actor_in_act_for_the_app_and_introspection(exchange_middleware, echo):
    app = webtest.TestApp(
        exchange_middleware(token_exchange_policy="test_token_exchange:allow_every_exchange")
    )
    form = exchange_form(user_token(app), actor_token=client_token(app), actor_token_type=ACCESS_TOKEN_TYPE)
    delegated = app.post(TOKEN, form, headers=auth()).json["access_token"]
    app.get("/", headers={"Authorization": f"Bearer {delegated}"})
    token = echo.environ["oauth2.token"]
    assert (token.user_id, token.client_id, dict(token.act)) == ("alice", API, {"sub": API})
    assert introspect(app, delegated)["act"] == {"sub": API}
    # api-b exchanges the delegated token, acting as itself: the chain nests, the latest actor outermost.
    form = exchange_form(
        delegated, actor_token=client_token(app, OTHER, OTHER_SECRET), actor_token_type=ACCESS_TOKEN_TYPE
    )
    twice = app.post(TOKEN, form, headers=auth(OTHER, OTHER_SECRET)).json["access_token"]
    assert introspect(app, twice)["act"] == {"sub": OTHER, "act": {"sub": API}}
    # Exchanged again without an actor, a delegated token stays delegated.
    kept = app.post(TOKEN, exchange_form(twice), headers=auth(OTHER, OTHER_SECRET)).json["access_token"]
    assert introspect(app, kept)["act"] == {"sub": OTHER, "act": {"sub": API}}


def test_the_act_chain_is_bounded(exchange_middleware):
    app = webtest.TestApp(
        exchange_middleware(token_exchange_policy="test_token_exchange:allow_every_exchange")
    )
    token = user_token(app)
    actor = {"actor_token": client_token(app), "actor_token_type": ACCESS_TOKEN_TYPE}
    for _ in range(5):
        token = app.post(TOKEN, exchange_form(token, **actor), headers=auth()).json["access_token"]
    response = app.post(TOKEN, exchange_form(token, **actor), headers=auth(), status=400)
    assert response.json["error"] == "invalid_request"


def test_opaque_records_keep_act_only_when_present():
    record = AccessTokenRecord("c", "alice", ("read",), 100, {}, None, None, (), {"sub": "api-a"})
    assert record.to_value()["ac"] == {"sub": "api-a"}
    assert AccessTokenRecord.from_value(record.to_value()) == record
    assert "ac" not in AccessTokenRecord("c", "alice", ("read",), 100).to_value()


def test_a_trusted_issuers_jwt_is_a_subject_token(app, clock, echo):
    subject = peer_jwt(now=clock.time(), scope="read admin")
    body = app.post(TOKEN, exchange_form(subject, JWT_TYPE), headers=auth()).json
    # The JWT's scopes the issuer may grant (read write) and the client may have: read.
    assert body["scope"] == "read"
    app.get("/", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert (echo.environ["oauth2.user"], echo.environ["oauth2.client_id"]) == ("alice", API)
    # A trusted JWT is not single use: a subject token may be exchanged again.
    app.post(TOKEN, exchange_form(subject, JWT_TYPE), headers=auth(), status=200)


def test_a_trusted_actor_keeps_its_issuer_in_act(exchange_middleware, clock):
    app = webtest.TestApp(
        exchange_middleware(token_exchange_policy="test_token_exchange:allow_every_exchange")
    )
    actor = peer_jwt(now=clock.time(), sub="service-7")
    form = exchange_form(user_token(app), actor_token=actor, actor_token_type=JWT_TYPE)
    token = app.post(TOKEN, form, headers=auth()).json["access_token"]
    assert introspect(app, token)["act"] == {"sub": "service-7", "iss": PEER}


def test_a_revoked_subject_token_cannot_be_exchanged(app):
    subject = user_token(app)
    app.post(REVOKE, {"token": subject}, headers=auth(FRONT, FRONT_SECRET), status=200)
    response = app.post(TOKEN, exchange_form(subject), headers=auth(FRONT, FRONT_SECRET), status=400)
    assert response.json["error"] == "invalid_request"


def test_an_expired_subject_token_cannot_be_exchanged(app, clock):
    subject = user_token(app)
    clock.advance(3601)
    response = app.post(TOKEN, exchange_form(subject), headers=auth(FRONT, FRONT_SECRET), status=400)
    assert response.json["error"] == "invalid_request"


def test_a_dpop_bound_subject_token_needs_a_proof_of_its_key(exchange_middleware, clock):
    app = webtest.TestApp(exchange_middleware(token_types="Bearer DPoP"))
    prover = Prover(clock)
    url = "http://localhost" + TOKEN
    form = {"grant_type": "password", "username": "alice", "password": "alice-password", "scope": "read"}
    headers = {**auth(FRONT, FRONT_SECRET), "DPoP": prover.proof("POST", url)}
    bound = app.post(TOKEN, form, headers=headers).json["access_token"]
    for proof in (None, Prover(clock).proof("POST", url)):  # no proof, a proof of another key
        extra = {} if proof is None else {"DPoP": proof}
        response = app.post(
            TOKEN, exchange_form(bound), headers={**auth(FRONT, FRONT_SECRET), **extra}, status=400
        )
        assert response.json["error"] == "invalid_request"
    headers = {**auth(FRONT, FRONT_SECRET), "DPoP": prover.proof("POST", url)}
    assert app.post(TOKEN, exchange_form(bound), headers=headers).json["token_type"] == "DPoP"


def test_several_resources_and_the_clients_registered_resources(exchange_middleware):
    middleware = exchange_middleware()
    register(
        middleware,
        "limited",
        "limited-secret-0123456789",
        grant_types=["password", TOKEN_EXCHANGE],
        scopes=["read", "write"],
        resources=[RESOURCE_A],
    )
    app = webtest.TestApp(middleware)
    headers = auth(FRONT, FRONT_SECRET)
    both = app.post(
        TOKEN,
        [*exchange_form(user_token(app)).items(), ("resource", RESOURCE_A), ("resource", RESOURCE_B)],
        headers=headers,
    )
    assert introspect(app, both.json["access_token"])["aud"] == [RESOURCE_A, RESOURCE_B]
    limited = auth("limited", "limited-secret-0123456789")
    subject = user_token(app, "limited", "limited-secret-0123456789")
    response = app.post(TOKEN, exchange_form(subject, resource=RESOURCE_B), headers=limited, status=400)
    assert response.json["error"] == "invalid_target"
    app.post(TOKEN, exchange_form(subject, resource=RESOURCE_A), headers=limited, status=200)


def test_the_audience_is_narrowed_to_the_subject_tokens(app):
    subject = user_token(app)
    form = exchange_form(subject, resource=RESOURCE_A)
    narrowed = app.post(TOKEN, form, headers=auth(FRONT, FRONT_SECRET)).json["access_token"]
    assert introspect(app, narrowed)["aud"] == [RESOURCE_A]
    again = app.post(TOKEN, exchange_form(narrowed, audience=RESOURCE_A), headers=auth(FRONT, FRONT_SECRET))
    assert introspect(app, again.json["access_token"])["aud"] == [RESOURCE_A]
    response = app.post(
        TOKEN, exchange_form(narrowed, resource=RESOURCE_B), headers=auth(FRONT, FRONT_SECRET), status=400
    )
    assert response.json["error"] == "invalid_target"


@pytest.mark.parametrize(
    ("change", "client", "status", "error"),
    [
        pytest.param({"subject_token": None}, FRONT, 400, "invalid_request", id="no-subject-token"),
        pytest.param({"subject_token": ""}, FRONT, 400, "invalid_request", id="empty-subject-token"),
        pytest.param({"subject_token_type": None}, FRONT, 400, "invalid_request", id="no-subject-token-type"),
        pytest.param(
            {"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"},
            FRONT,
            400,
            "invalid_request",
            id="unsupported-subject-token-type",
        ),
        pytest.param({"subject_token": "made-up"}, FRONT, 400, "invalid_request", id="unknown-subject-token"),
        pytest.param(
            {"subject_token_type": JWT_TYPE}, FRONT, 400, "invalid_request", id="opaque-token-as-jwt"
        ),
        pytest.param({"actor_token": "x"}, FRONT, 400, "invalid_request", id="actor-token-without-type"),
        pytest.param(
            {"actor_token_type": ACCESS_TOKEN_TYPE},
            FRONT,
            400,
            "invalid_request",
            id="actor-type-without-token",
        ),
        pytest.param(
            {"actor_token": "made-up", "actor_token_type": ACCESS_TOKEN_TYPE},
            FRONT,
            400,
            "invalid_request",
            id="unknown-actor-token",
        ),
        pytest.param(
            {"actor_token": "x", "actor_token_type": "urn:ietf:params:oauth:token-type:saml2"},
            FRONT,
            400,
            "invalid_request",
            id="unsupported-actor-token-type",
        ),
        pytest.param(
            {"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
            FRONT,
            400,
            "invalid_request",
            id="refresh-token-requested",
        ),
        pytest.param(
            {"requested_token_type": JWT_TYPE},
            FRONT,
            400,
            "invalid_request",
            id="jwt-requested-of-an-opaque-server",
        ),
        pytest.param({}, API, 400, "invalid_request", id="policy-another-clients-token"),
        pytest.param(
            {"actor_token": "api-b", "actor_token_type": ACCESS_TOKEN_TYPE},
            FRONT,
            400,
            "invalid_request",
            id="policy-another-clients-actor-token",
        ),
        pytest.param({"scope": "admin"}, FRONT, 400, "invalid_scope", id="scope-beyond-the-subject-token"),
        pytest.param({"scope": "bogus"}, FRONT, 400, "invalid_scope", id="unknown-scope"),
        pytest.param({"resource": "not a uri"}, FRONT, 400, "invalid_target", id="resource-not-a-uri"),
        pytest.param(
            {"resource": "https://c.example/#x"}, FRONT, 400, "invalid_target", id="resource-fragment"
        ),
        pytest.param(
            {"audience": "https://unknown.example"}, FRONT, 400, "invalid_target", id="audience-not-allowed"
        ),
        pytest.param({}, "plain", 400, "unauthorized_client", id="client-not-registered-for-the-grant"),
    ],
)
def test_request_errors(exchange_middleware, change, client, status, error):
    app = webtest.TestApp(exchange_middleware(allowed_resources=f"{RESOURCE_A} {RESOURCE_B}"))
    form = exchange_form(user_token(app))
    if change.get("actor_token") == "api-b":
        change = {**change, "actor_token": client_token(app, OTHER, OTHER_SECRET)}
    form.update(change)
    form = {name: value for name, value in form.items() if value is not None}
    secrets = {FRONT: FRONT_SECRET, API: API_SECRET, "plain": "plain-secret-0123456789"}
    response = app.post(TOKEN, form, headers=auth(client, secrets[client]), status=status)
    assert response.json["error"] == error


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda now: peer_jwt(OTHER_KEY, now=now), id="another-key"),
        pytest.param(lambda now: peer_jwt(now=now, iss="https://other-idp.example"), id="untrusted-issuer"),
        pytest.param(lambda now: peer_jwt(now=now, sub="mallory"), id="subject-not-allowed"),
        pytest.param(
            lambda now: peer_jwt(now=now, aud="https://elsewhere.example"), id="not-addressed-to-us"
        ),
        pytest.param(lambda now: peer_jwt(now=now, exp=int(now) - 1), id="expired"),
        pytest.param(lambda now: peer_jwt(now=now, exp=int(now) + 301), id="beyond-max-lifetime"),
        pytest.param(lambda now: peer_jwt(now=now, scope=["read"]), id="scope-not-a-string"),
        pytest.param(lambda now: peer_jwt(now=now, act="api"), id="act-not-an-object"),
        pytest.param(lambda now: peer_jwt(now=now, act={"iss": PEER}), id="act-without-sub"),
        pytest.param(lambda now: peer_jwt(None, alg="none", now=now), id="unsigned"),
    ],
)
def test_bad_trusted_subject_tokens_are_invalid_request(app, clock, make):
    response = app.post(TOKEN, exchange_form(make(clock.time()), JWT_TYPE), headers=auth(), status=400)
    assert response.json["error"] == "invalid_request"


def test_the_grant_is_off_unless_enabled(exchange_middleware):
    app = webtest.TestApp(exchange_middleware(grants="client_credentials password"))
    response = app.post(TOKEN, exchange_form("x"), headers=auth(), status=400)
    assert response.json["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("grants", "listed"),
    [pytest.param("client_credentials", False, id="off"), pytest.param(TOKEN_EXCHANGE, True, id="on")],
)
def test_metadata_lists_the_grant_only_when_enabled(exchange_middleware, grants, listed):
    document = (
        webtest.TestApp(exchange_middleware(grants=grants))
        .get("/.well-known/oauth-authorization-server")
        .json
    )
    assert (TOKEN_EXCHANGE in document["grant_types_supported"]) is listed


def test_a_bad_policy_setting_is_a_load_error(exchange_middleware):
    from oauth_middleware.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^token_exchange_policy: cannot import"):
        exchange_middleware(token_exchange_policy="test_token_exchange:no_such_policy")


# -- JWT access tokens ---------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


def test_jwt_access_tokens_carry_act_and_exchange_as_jwts(exchange_middleware, keys, echo):
    app = webtest.TestApp(
        exchange_middleware(
            token_exchange_policy="test_token_exchange:allow_every_exchange",
            **jwt_settings(keys, grants=f"client_credentials password {TOKEN_EXCHANGE}"),
        )
    )
    subject = user_token(app)
    form = exchange_form(subject, JWT_TYPE, actor_token=client_token(app), actor_token_type=JWT_TYPE)
    delegated = app.post(TOKEN, form, headers=auth()).json["access_token"]
    claims = jwt.decode(delegated, options={"verify_signature": False})
    assert (claims["sub"], claims["client_id"], claims["act"]) == ("alice", API, {"sub": API})
    app.get("/", headers={"Authorization": f"Bearer {delegated}"})
    assert dict(echo.environ["oauth2.token"].act) == {"sub": API}
    assert introspect(app, delegated)["act"] == {"sub": API}


# -- end to end over HTTP ---------------------------------------------------------------


@pytest.mark.parametrize("store_name", ["sqlite", "redis"])
def test_requests_oauth2client_token_exchange_end_to_end(tmp_path, store_name, request):
    key_server = KeyServer([JWK])
    with serve_wsgi(key_server) as keys_url, BACKENDS[store_name].open(request, SYSTEM_CLOCK) as opened:
        middleware = OAuth2Middleware(
            DemoApp(),
            store_backend=opened,
            issuer="http://127.0.0.1",
            require_https="false",
            scopes="read write",
            grants=f"client_credentials {TOKEN_EXCHANGE}",
            trusted_issuers_file=issuer_file(tmp_path, jwks_uri=keys_url + "/jwks"),
            fetch_allowed_networks="127.0.0.1",  # the key server is on loopback
            introspection_clients=API,
        )
        register(
            middleware, API, API_SECRET, grant_types=["client_credentials", TOKEN_EXCHANGE], scopes=["read"]
        )
        with serve_wsgi(middleware) as url:
            client = requests_oauth2client.OAuth2Client(
                url + TOKEN,
                introspection_endpoint=url + INTROSPECT,
                auth=requests_oauth2client.ClientSecretBasic(API, API_SECRET),
                testing=True,  # plain HTTP on loopback
            )
            own = client.client_credentials(scope="read")
            token = client.token_exchange(
                subject_token=peer_jwt(aud="http://127.0.0.1", scope="read write"),
                subject_token_type="jwt",
                actor_token=own,
                scope="read",
            )
            assert token.scope == "read" and token.kwargs["issued_token_type"] == ACCESS_TOKEN_TYPE
            me = requests.get(
                url + "/api/me", headers={"Authorization": f"Bearer {token.access_token}"}, timeout=10
            )
            assert me.json()["user"] == "alice" and me.json()["client_id"] == API
            assert client.introspect_token(token.access_token)["act"] == {"sub": API}
            # Our own token as the subject, narrowed to one API with the library's resource parameter.
            narrowed = client.token_exchange(
                subject_token=token, requested_token_type=ACCESS_TOKEN_TYPE, resource="https://api.example/a"
            )
            assert narrowed.kwargs["issued_token_type"] == ACCESS_TOKEN_TYPE
            assert client.introspect_token(narrowed.access_token)["aud"] == ["https://api.example/a"]
            with pytest.raises(requests_oauth2client.InvalidTarget):
                client.token_exchange(subject_token=narrowed, resource="https://api.example/b")
            with pytest.raises(requests_oauth2client.InvalidScope):
                client.token_exchange(subject_token=own, actor_token=own, scope="write")
            with pytest.raises(requests_oauth2client.InvalidRequest):
                client.token_exchange(subject_token="made-up", subject_token_type="access_token")
    assert key_server.hits == 1


# -- CLI, clients_file and the ini ------------------------------------------------------


@pytest.mark.parametrize(
    "grant", [pytest.param(TOKEN_EXCHANGE, id="token-exchange"), pytest.param(JWT_BEARER, id="jwt-bearer")]
)
def test_client_add_and_clients_file_register_the_grants(capsys, tmp_path, clock, grant):
    ini = tmp_path / "app.ini"
    (tmp_path / "clients.ini").write_text(f"[client:from-file]\nsecret_hash = {'0' * 64}\ngrants = {grant}\n")
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        "store = sqlite:///%(here)s/oauth.db\nscopes = read write\nissuer = http://localhost\n"
        f"require_https = false\ngrants = client_credentials {grant}\n"
        f"trusted_issuers_file = {issuer_file(tmp_path)}\nclients_file = %(here)s/clients.ini\n"
    )
    status = main(["client", "add", str(ini), "--client-id", "exchanger", "--secret", API_SECRET,
                   "--grant", grant, "--grant", "client_credentials", "--scope", "read"])  # fmt: skip
    assert status == 0 and grant in capsys.readouterr().out
    assert main(["client", "add", str(ini), "--client-id", "spa", "--public", "--grant", grant]) != 0
    assert "public client cannot use" in capsys.readouterr().err
    app = webtest.TestApp(loadapp(f"config:{ini}"))
    assert grant in app.get("/.well-known/oauth-authorization-server").json["grant_types_supported"]
    headers = auth("exchanger", API_SECRET)
    if grant == JWT_BEARER:
        form = {"grant_type": JWT_BEARER, "assertion": peer_jwt()}
    else:
        own = app.post(TOKEN, {"grant_type": "client_credentials"}, headers=headers).json["access_token"]
        form = exchange_form(own)
    assert app.post(TOKEN, form, headers=headers).json["scope"] == "read"


# -- no 5xx, whatever the tokens say -------------------------------------------------------

PEER_CLAIMS = st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "client_id", "act"])


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    middleware = OAuth2Middleware(
        DemoApp(),
        store="memory://",
        issuer="http://localhost",
        require_https="false",
        grants=f"{JWT_BEARER} {TOKEN_EXCHANGE}",
        trusted_issuers_file=issuer_file(tmp_path_factory.mktemp("issuers")),
        throttle_max_failures="1000000",
        throttle_address_max_failures="1000000",
    )
    register(middleware, API, API_SECRET, grant_types=[JWT_BEARER, TOKEN_EXCHANGE], scopes=["read"])
    return webtest.TestApp(middleware)


@given(
    claims=st.dictionaries(PEER_CLAIMS, JSON_VALUES, max_size=3),
    as_grant=st.booleans(),
    token_type=st.sampled_from([ACCESS_TOKEN_TYPE, JWT_TYPE, "urn:x"]),
    actor=st.booleans(),
)
@example(claims={"act": {"sub": "x", "act": {"sub": 1}}}, as_grant=False, token_type=JWT_TYPE, actor=True)
@example(claims={"exp": float("nan")}, as_grant=True, token_type=JWT_TYPE, actor=False)
@hypothesis.settings(
    max_examples=200, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
def test_any_signed_peer_jwt_is_a_4xx_never_a_5xx(fuzz_app, claims, as_grant, token_type, actor):
    # Signed by the trusted issuer's key, so that every check after the signature meets odd values.
    body = {**jwt.decode(peer_jwt(), options={"verify_signature": False}), **claims}
    token = jwt.PyJWS().encode(json.dumps(body).encode(), KEY, algorithm="ES256", headers={"kid": "idp-1"})
    if as_grant:
        form = {"grant_type": JWT_BEARER, "assertion": token}
    else:
        form = exchange_form(token, token_type)
        if actor:
            form.update(actor_token=token, actor_token_type=token_type)
    response = fuzz_app.post(TOKEN, form, headers=auth(), expect_errors=True)
    assert response.status_int in (200, 400), response.text
