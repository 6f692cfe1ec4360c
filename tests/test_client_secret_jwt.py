"""client_secret_jwt client authentication (RFC 7523 §2.2, §3; RFC 7518 §3.2), through HTTP and the CLI.

The secret is kept sealed (AES-GCM under ``client_secret_key``), never in clear.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import requests_oauth2client
import webtest
from conftest import serve_wsgi
from oauth_flows import race
from paste.deploy import loadapp
from servers import shared_redis
from store_fixtures import BACKENDS, backend, store  # noqa: F401
from test_client_assertions import KEY, OTHER_CLIENT_ENDPOINTS, assertion, form

from oauth_middleware.cli import main
from oauth_middleware.clients import build_client
from oauth_middleware.clock import SYSTEM_CLOCK
from oauth_middleware.errors import ConfigError
from oauth_middleware.sealed_secrets import SecretSealer

ISSUER = "http://localhost"
TOKEN = "/oauth/token"
CLIENT = "hmac-client"
SECRET = "s" * 40 + "-client-secret-jwt-0123456789abcdef"  # 75 bytes: enough for HS512
SECRET_KEY = "client-secret-key-for-tests-0123456789"


def hmac_assertion(
    secret: str = SECRET, *, alg: str = "HS256", now: float | None = None, **claims: Any
) -> str:
    """A client_secret_jwt assertion for :data:`CLIENT`; ``claims`` override (None removes one)."""
    return assertion(secret.encode(), alg=alg, kid=None, now=now, client=CLIENT, **claims)


def hmac_client(client_id: str = CLIENT, secret: str = SECRET, **fields: Any) -> Any:
    """A client_secret_jwt client whose secret is sealed with :data:`SECRET_KEY`."""
    fields.setdefault("grant_types", ["client_credentials"])
    fields.setdefault("scopes", ["read"])
    sealed = SecretSealer(SECRET_KEY).seal(client_id, secret)
    return build_client(client_id, secret_hash=None, secret_sealed=sealed, **fields)


@pytest.fixture
def hmac_app(make_middleware, clock):
    middleware = make_middleware(clock=clock, client_secret_key=SECRET_KEY)
    middleware.server.repository.save_client(hmac_client())
    return webtest.TestApp(middleware)


def refused(app: webtest.TestApp, data: dict[str, str], path: str = TOKEN) -> None:
    response = app.post(path, data, status=401)
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_client_secret_jwt_gets_a_token(hmac_app, clock):
    response = hmac_app.post(TOKEN, form(hmac_assertion(now=clock.time())))
    assert response.json["token_type"] == "Bearer" and response.json["scope"] == "read"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_every_hmac_algorithm_passes_without_a_registered_one(hmac_app, clock, alg):
    hmac_app.post(TOKEN, form(hmac_assertion(alg=alg, now=clock.time())), status=200)


def test_a_replayed_assertion_is_refused(hmac_app, clock):
    data = form(hmac_assertion(now=clock.time()))
    hmac_app.post(TOKEN, data, status=200)
    refused(hmac_app, data)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda now: hmac_assertion("w" * 80, now=now), id="wrong-secret"),
        pytest.param(lambda now: hmac_assertion(now=now, exp=int(now) - 1), id="expired"),
        pytest.param(lambda now: hmac_assertion(now=now, exp=int(now) + 301), id="too-long-lifetime"),
        pytest.param(
            lambda now: hmac_assertion(now=now, iat=int(now) - 100, exp=int(now) + 250),
            id="iat-to-exp-too-long",
        ),
        pytest.param(lambda now: hmac_assertion(now=now, aud="http://elsewhere"), id="wrong-aud"),
        pytest.param(lambda now: hmac_assertion(now=now, aud=ISSUER + TOKEN), id="token-endpoint-aud"),
        pytest.param(lambda now: hmac_assertion(now=now, iss="other"), id="iss-not-sub"),
        pytest.param(lambda now: hmac_assertion(now=now, jti=None), id="no-jti"),
        pytest.param(lambda now: hmac_assertion(now=now, exp=None), id="no-exp"),
        pytest.param(lambda now: hmac_assertion(now=now, iat=int(now) + 30), id="iat-beyond-leeway"),
        pytest.param(lambda now: hmac_assertion(now=now, sub="nobody", iss="nobody"), id="unknown-client"),
        pytest.param(
            lambda now: jwt.encode(
                {"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "exp": int(now) + 60, "jti": "x"},
                KEY,
                algorithm="ES256",
            ),
            id="signed-with-a-private-key",
        ),
        pytest.param(
            lambda now: jwt.encode(
                {"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "exp": int(now) + 60, "jti": "y"},
                None,
                algorithm="none",
            ),
            id="unsigned",
        ),
    ],
)
def test_bad_assertions_are_invalid_client(hmac_app, clock, make):
    refused(hmac_app, form(make(clock.time())))


def test_a_clock_a_little_ahead_is_tolerated(hmac_app, clock):
    # jwt_leeway (10 s by default): an iat and nbf 5 s ahead of ours pass.
    now = clock.time()
    hmac_app.post(TOKEN, form(hmac_assertion(now=now, iat=int(now) + 5, nbf=int(now) + 5)), status=200)


# The client side signs with a short key on purpose: PyJWT warns, the server refuses.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize(
    ("registered", "secret", "alg"),
    [
        pytest.param("HS256", SECRET, "HS384", id="alg-not-the-registered-one"),
        pytest.param("HS256", SECRET, "HS512", id="alg-not-the-registered-one-512"),
        pytest.param(None, "k" * 32, "HS512", id="short-secret-for-hs512"),
        pytest.param("HS384", "k" * 40, "HS384", id="short-secret-for-hs384"),
    ],
)
def test_algorithm_and_secret_length_errors(make_middleware, clock, registered, secret, alg):
    middleware = make_middleware(clock=clock, client_secret_key=SECRET_KEY)
    # Saved after start, so the load-time length check has not seen it: the request check refuses too.
    middleware.server.repository.save_client(
        hmac_client(secret=secret, token_endpoint_auth_signing_alg=registered)
    )
    refused(webtest.TestApp(middleware), form(hmac_assertion(secret, alg=alg, now=clock.time())))


def test_without_client_secret_key_no_assertion_verifies(make_middleware, clock, caplog):
    middleware = make_middleware(clock=clock)
    middleware.server.repository.save_client(hmac_client())
    refused(webtest.TestApp(middleware), form(hmac_assertion(now=clock.time())))


def test_a_private_key_jwt_client_never_has_its_key_tried_as_an_hmac_secret(make_middleware, clock):
    from test_client_assertions import JWK

    middleware = make_middleware(clock=clock, client_secret_key=SECRET_KEY)
    middleware.server.repository.save_client(
        build_client(CLIENT, secret_hash=None, grant_types=["client_credentials"], jwks=[JWK])
    )
    refused(webtest.TestApp(middleware), form(hmac_assertion(JWK["x"] + JWK["y"], now=clock.time())))


@pytest.mark.parametrize(("path", "extra"), OTHER_CLIENT_ENDPOINTS)
def test_every_endpoint_that_authenticates_clients_takes_it(make_middleware, clock, path, extra):
    middleware = make_middleware(clock=clock, introspection_clients=CLIENT, client_secret_key=SECRET_KEY)
    middleware.server.repository.save_client(
        hmac_client(grant_types=["authorization_code"], redirect_uris=["https://app.example/cb"])
    )
    app = webtest.TestApp(middleware)
    data = {**form(hmac_assertion(now=clock.time())), **extra}
    del data["grant_type"]
    assert app.post(path, data).status_int in (200, 201)
    refused(app, data, path)  # the same assertion a second time


def test_failed_assertions_are_counted_against_the_client_they_name(make_middleware, clock):
    middleware = make_middleware(clock=clock, throttle_max_failures="3", client_secret_key=SECRET_KEY)
    middleware.server.repository.save_client(hmac_client())
    app = webtest.TestApp(middleware)
    for _ in range(3):
        refused(app, form(hmac_assertion("w" * 80, now=clock.time())))
    response = app.post(TOKEN, form(hmac_assertion(now=clock.time())), status=429)
    assert "too many failed attempts" in response.json["error_description"]


# -- load time ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "secret", "message"),
    [
        pytest.param({}, SECRET, "client_secret_key: required: client hmac-client", id="no-key"),
        pytest.param(
            {"client_secret_key": "another-key-0123456789-0123456789"},
            SECRET,
            "client_secret_key: does not open the secret of client hmac-client",
            id="another-key",
        ),
        pytest.param(
            {"client_secret_key": SECRET_KEY},
            "k" * 40,
            "needs at least 64 bytes for HS512",
            id="short-secret",
        ),
    ],
)
def test_load_time_errors(make_middleware, settings, secret, message):
    from oauth_middleware.stores.memory import MemoryStore

    shared = MemoryStore()
    first = make_middleware(store_backend=shared, client_secret_key=SECRET_KEY)
    first.server.repository.save_client(hmac_client(secret=secret))
    with pytest.raises(ConfigError, match=message):
        make_middleware(store_backend=shared, **settings)


# -- races and end to end over HTTP ---------------------------------------------


def test_one_assertion_raced_from_20_threads_is_accepted_once(make_middleware, store):  # noqa: F811
    middleware = make_middleware(
        store_backend=store, throttle_max_failures="100", client_secret_key=SECRET_KEY
    )
    middleware.server.repository.save_client(hmac_client())
    with serve_wsgi(middleware, threads=20) as url:
        responses = race(url + TOKEN, form(hmac_assertion()))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [401] * 19
    assert {r.json()["error"] for r in responses if r.status_code == 401} == {"invalid_client"}


@pytest.mark.parametrize("store_name", ["sqlite", "redis"])
def test_requests_oauth2client_client_secret_jwt_end_to_end(make_middleware, store_name, request):
    with BACKENDS[store_name].open(request, SYSTEM_CLOCK) as opened:
        middleware = make_middleware(
            store_backend=opened,
            issuer="http://127.0.0.1",
            introspection_clients=CLIENT,
            client_secret_key=SECRET_KEY,
        )
        middleware.server.repository.save_client(hmac_client())
        with serve_wsgi(middleware) as url:
            client = requests_oauth2client.OAuth2Client(
                url + TOKEN,
                auth=requests_oauth2client.ClientSecretJwt(
                    CLIENT, SECRET, alg="HS256", aud="http://127.0.0.1"
                ),
                revocation_endpoint=url + "/oauth/revoke",
                introspection_endpoint=url + "/oauth/introspect",
                testing=True,  # plain HTTP on loopback
            )
            token = client.client_credentials(scope="read")
            assert token.scope == "read"
            assert client.introspect_token(token.access_token)["active"] is True
            bearer = {"Authorization": f"Bearer {token.access_token}"}
            assert requests.get(url + "/", headers=bearer, timeout=10).status_code == 200
            assert client.revoke_access_token(token.access_token)
            assert requests.get(url + "/", headers=bearer, timeout=10).status_code == 401
            # A wrong secret through the same library: 401 invalid_client.
            wrong = requests_oauth2client.OAuth2Client(
                url + TOKEN,
                auth=requests_oauth2client.ClientSecretJwt(CLIENT, "w" * 80, aud="http://127.0.0.1"),
                testing=True,
            )
            with pytest.raises(requests_oauth2client.InvalidClient):
                wrong.client_credentials(scope="read")


# -- CLI and clients_file ---------------------------------------------------------


@pytest.fixture
def config(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        "store = sqlite:///%(here)s/oauth.db\nscopes = read write\nissuer = http://localhost\n"
        f"require_https = false\nclient_secret_key = {SECRET_KEY}\n"
    )
    return str(ini)


def _printed(out: str, name: str) -> str:
    return next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(name + ": "))


def test_client_add_generates_a_long_secret_kept_sealed(capsys, config, tmp_path):
    status = main(["client", "add", config, "--client-id", CLIENT, "--grant", "client_credentials",
                   "--scope", "read", "--auth-method", "client_secret_jwt"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "token_endpoint_auth_method: client_secret_jwt" in out.splitlines()
    assert "kept encrypted" in out
    secret = _printed(out, "client_secret")
    assert len(secret.encode()) >= 64  # enough for HS512 (RFC 7518 §3.2)
    main(["client", "list", config])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{CLIENT}\tconfidential\t")
    assert line.endswith("\ttoken_endpoint_auth_method=client_secret_jwt")
    # Nothing secret at rest: the database file holds the sealed secret, not the secret.
    raw = b"".join(path.read_bytes() for path in Path(tmp_path).glob("oauth.db*"))
    assert secret.encode() not in raw and b"aesgcm1:" in raw
    app = webtest.TestApp(loadapp(f"config:{config}"))
    app.post(TOKEN, form(hmac_assertion(secret, alg="HS512")), status=200)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--secret", "k" * 31, "--signing-alg", "HS256"], "at least 32 bytes for HS256", id="short-hs256"
        ),
        pytest.param(["--secret", "k" * 63], "at least 64 bytes for HS512", id="short-without-alg"),
        pytest.param(["--public"], "needs a secret", id="public"),
        pytest.param(["--jwks-uri", "https://c.example/jwks"], "needs a secret", id="with-keys"),
        pytest.param(["--signing-alg", "ES256"], "is not one of HS256", id="asymmetric-alg"),
    ],
)
def test_client_add_errors(capsys, config, argv, message):
    status = main(["client", "add", config, "--client-id", CLIENT, "--grant", "client_credentials",
                   "--auth-method", "client_secret_jwt", *argv])  # fmt: skip
    assert status != 0
    assert message in capsys.readouterr().err


def test_client_add_needs_client_secret_key(capsys, config):
    Path(config).write_text(Path(config).read_text().replace(f"client_secret_key = {SECRET_KEY}\n", ""))
    status = main(["client", "add", config, "--client-id", CLIENT, "--auth-method", "client_secret_jwt"])
    assert status != 0
    assert "needs client_secret_key" in capsys.readouterr().err


def test_client_seal_for_a_clients_file(capsys, config, tmp_path, make_middleware, clock):
    assert main(["client", "seal", config, "--client-id", CLIENT, "--signing-alg", "HS256"]) == 0
    out = capsys.readouterr().out
    secret, sealed = _printed(out, "client_secret"), _printed(out, "secret_sealed")
    clients = tmp_path / "clients.ini"
    clients.write_text(
        f"[client:{CLIENT}]\ngrants = client_credentials\nscopes = read\nsecret_sealed = {sealed}\n"
        "token_endpoint_auth_signing_alg = HS256\n"
    )
    middleware = make_middleware(clock=clock, clients_file=str(clients), client_secret_key=SECRET_KEY)
    registered = middleware.server.repository.get_client(CLIENT)
    assert registered.token_endpoint_auth_method == "client_secret_jwt" and registered.secret_hash is None
    app = webtest.TestApp(middleware)
    app.post(TOKEN, form(hmac_assertion(secret, now=clock.time())), status=200)
    refused(app, form(hmac_assertion(secret, alg="HS512", now=clock.time())))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("secret_sealed = aesgcm1:short\n", "secret_sealed must be", id="not-sealed"),
        pytest.param(
            f"secret_sealed = {SecretSealer(SECRET_KEY).seal('someone-else', SECRET)}\n",
            "does not open the secret",
            id="sealed-for-another-client",
        ),
        pytest.param(
            f"secret_sealed = {SecretSealer(SECRET_KEY).seal(CLIENT, SECRET)}\n"
            "token_endpoint_auth_signing_alg = ES256\n",
            "is not one of HS256",
            id="asymmetric-alg",
        ),
        pytest.param(
            "secret_hash = " + "0" * 64 + "\ntoken_endpoint_auth_method = client_secret_jwt\n",
            "needs its secret sealed",
            id="hashed-secret",
        ),
    ],
)
def test_clients_file_errors(make_middleware, tmp_path, text, message):
    path = tmp_path / "clients.ini"
    path.write_text(f"[client:{CLIENT}]\ngrants = client_credentials\n{text}")
    with pytest.raises(ConfigError, match=message):
        make_middleware(clients_file=str(path), client_secret_key=SECRET_KEY)


def test_the_store_never_holds_the_secret(request, tmp_path):
    """SQLite file and Redis keys after a registration and a token: the sealed form only."""
    for name in ("sqlite", "redis"):
        with BACKENDS[name].open(request, SYSTEM_CLOCK) as opened:
            from conftest import DemoApp

            from oauth_middleware.middleware import OAuth2Middleware

            middleware = OAuth2Middleware(
                DemoApp(),
                store_backend=opened,
                issuer=ISSUER,
                require_https="false",
                client_secret_key=SECRET_KEY,
            )
            middleware.server.repository.save_client(hmac_client())
            webtest.TestApp(middleware).post(TOKEN, form(hmac_assertion()), status=200)
            if name == "sqlite":
                raw = b"".join(Path(opened.path + suffix).read_bytes() for suffix in ("", "-wal")
                               if Path(opened.path + suffix).exists())  # fmt: skip
            else:
                import redis

                client = redis.Redis.from_url(shared_redis(request).url)
                raw = b"".join(
                    (client.get(key) or b"") for key in client.keys(opened._prefix.encode() + b"*")
                    if client.type(key) == b"string"
                )  # fmt: skip
                client.close()
            assert SECRET.encode() not in raw and SECRET_KEY.encode() not in raw
            assert b"aesgcm1:" in raw
