"""The FAPI 2.0 Security Profile (``profile = fapi2``): a conforming flow end to end, every refusal.

The end-to-end flow runs requests-oauth2client (PAR + PKCE S256 +
private_key_jwt + DPoP) against the served middleware over real HTTPS: the
profile refuses plain HTTP and an ``http`` issuer, so the test serves TLS
with a certificate it makes for 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socketserver
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import jwt
import pytest
import requests
import requests_oauth2client
import webtest
from conftest import basic
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from dpop_support import Prover
from oauth_flows import browser_approve, verify_password  # noqa: F401  (named by dotted path)
from store_fixtures import BACKENDS
from test_client_assertions import JWK, KEY

from oauth_middleware import guard_from_settings
from oauth_middleware.client_auth import JWT_BEARER
from oauth_middleware.clients import build_client
from oauth_middleware.clock import SYSTEM_CLOCK
from oauth_middleware.demo import DemoApp
from oauth_middleware.errors import ConfigError
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import digest
from oauth_middleware.settings import Settings

ISSUER = "https://as.example"
CLIENT = "signed-client"
REDIRECT = "https://app.example/cb"
SECRET_CLIENT, SECRET = "secret-client", "secret-client-secret-0123456789"
PUBLIC_CLIENT = "public-client"
RSA_CLIENT = "rsa-client"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # S256 of RFC 7636's example verifier
FAPI = {
    "profile": "fapi2",
    "scopes": "read write",
    "session_secret": "fapi-session-secret-0123456789abcdef",
    "verify_password": "oauth_flows:verify_password",
    "grants": "authorization_code refresh_token client_credentials",
}
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_JWK = {
    **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key())),
    "kid": "r1",
    "alg": "RS256",
}
#: An RSA client whose key is for PS256 (FAPI 2.0 §5.4.1 item 1.2): conforming like :data:`CLIENT`.
PS_CLIENT = "ps256-client"
PS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PS_JWK = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(PS_KEY.public_key())), "kid": "p1", "alg": "PS256"}


def register_clients(middleware: OAuth2Middleware) -> None:
    """The conforming private_key_jwt clients (ES256, PS256), and three the profile must refuse."""
    code = {"grant_types": ["authorization_code", "refresh_token", "client_credentials"], "scopes": ["read"]}
    save = middleware.server.repository.save_client
    save(build_client(CLIENT, secret_hash=None, jwks=[JWK], redirect_uris=[REDIRECT], **code))
    save(build_client(SECRET_CLIENT, secret_hash=digest(SECRET), redirect_uris=[REDIRECT], **code))
    save(
        build_client(
            PUBLIC_CLIENT, secret_hash=None, redirect_uris=[REDIRECT], grant_types=["authorization_code"]
        )
    )
    save(build_client(RSA_CLIENT, secret_hash=None, jwks=[RSA_JWK], redirect_uris=[REDIRECT], **code))
    save(build_client(PS_CLIENT, secret_hash=None, jwks=[PS_JWK], redirect_uris=[REDIRECT], **code))


def assertion(client_id: str = CLIENT, key: Any = KEY, alg: str = "ES256", **claims: Any) -> dict[str, str]:
    """The client_assertion form fields for ``client_id``; ``claims`` override."""
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "exp": now + 60,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    return {"client_assertion_type": JWT_BEARER, "client_assertion": jwt.encode(body, key, algorithm=alg)}


@pytest.fixture
def fapi_app() -> webtest.TestApp:
    middleware = OAuth2Middleware(DemoApp(), store="memory://", issuer=ISSUER, **FAPI)
    register_clients(middleware)
    # As a TLS-terminating server would pass them: https, and the issuer's host.
    return webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "as.example"})


def pushed(**overrides: Any) -> dict[str, str]:
    """A conforming pushed authorization request of :data:`CLIENT`; None removes a parameter."""
    params = {
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "read",
        "state": "s1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        **assertion(),
        **overrides,
    }
    return {name: value for name, value in params.items() if value is not None}


def token_request(**overrides: Any) -> dict[str, str]:
    """A client credentials request of :data:`CLIENT` with private_key_jwt."""
    params = {"grant_type": "client_credentials", "scope": "read", **assertion(), **overrides}
    return {name: value for name, value in params.items() if value is not None}


def dpop(method: str = "POST", path: str = "/oauth/token", **kwargs: Any) -> dict[str, str]:
    return {"DPoP": Prover().proof(method, ISSUER + path, **kwargs)}


def test_a_conforming_push_and_dpop_token_request_pass(fapi_app):
    response = fapi_app.post("/oauth/par", pushed(), status=201)
    assert response.json["expires_in"] < 600
    token = fapi_app.post("/oauth/token", token_request(), headers=dpop(), status=200).json
    assert token["token_type"] == "DPoP"


# Each request the profile refuses: (method, path, form, headers) and the answer.
# Forms are made when each test runs: an assertion made at collection could expire before it is sent.
REFUSED = [
    pytest.param(
        "GET",
        "/oauth/authorize",
        {"response_type": "code", "client_id": CLIENT, "redirect_uri": REDIRECT, "state": "s",
         "code_challenge": CHALLENGE, "code_challenge_method": "S256"},
        {},
        (302, "invalid_request"),
        id="no-par",
    ),
    pytest.param("POST", "/oauth/par", lambda: pushed(code_challenge_method="plain"), {}, (400, "invalid_request"), id="plain-pkce"),
    pytest.param(
        "POST", "/oauth/par", lambda: pushed(code_challenge=None, code_challenge_method=None), {}, (400, "invalid_request"),
        id="no-pkce",
    ),
    pytest.param("POST", "/oauth/par", lambda: pushed(redirect_uri=None), {}, (400, "invalid_request"), id="par-without-redirect-uri"),
    pytest.param(
        "POST", "/oauth/par", lambda: pushed(response_type="token"), {}, (400, "unsupported_response_type"), id="implicit",
    ),
    pytest.param(
        "POST",
        "/oauth/par",
        lambda: pushed(client_assertion=None, client_assertion_type=None),
        {"Authorization": basic(SECRET_CLIENT, SECRET)},
        (401, "invalid_client"),
        id="par-client-secret-basic",
    ),
    pytest.param(
        "POST",
        "/oauth/par",
        lambda: {**pushed(client_assertion=None, client_assertion_type=None), "client_id": PUBLIC_CLIENT},
        {},
        (401, "invalid_client"),
        id="par-public-client",
    ),
    pytest.param(
        "POST", "/oauth/token", lambda: token_request(client_assertion=None, client_assertion_type=None),
        {"Authorization": basic(SECRET_CLIENT, SECRET)}, (401, "invalid_client"), id="token-client-secret-basic",
    ),
    pytest.param("POST", "/oauth/token", lambda: token_request(), {}, (400, "invalid_dpop_proof"), id="bearer-token-request-without-dpop"),
    pytest.param(
        "POST", "/oauth/token", lambda: token_request(**assertion(aud=[ISSUER])), "dpop", (401, "invalid_client"), id="aud-array",
    ),
    pytest.param(
        "POST", "/oauth/token", lambda: token_request(**assertion(aud=ISSUER + "/oauth/token")), "dpop", (401, "invalid_client"),
        id="aud-token-endpoint",
    ),
    pytest.param(
        "POST", "/oauth/token", lambda: token_request(**assertion(RSA_CLIENT, RSA_KEY, "RS256")), "dpop", (401, "invalid_client"),
        id="rs256-assertion",
    ),
    pytest.param(
        "POST", "/oauth/token", lambda: token_request(**assertion(PS_CLIENT, PS_KEY, "RS256")), "dpop", (401, "invalid_client"),
        id="rs256-assertion-with-a-ps256-key",
    ),
    pytest.param(
        "POST", "/oauth/token", lambda: token_request(**assertion(aud=ISSUER + "/oauth/par")), "dpop", (401, "invalid_client"),
        id="aud-par-endpoint",
    ),
    pytest.param(
        "POST", "/oauth/token", lambda: token_request(grant_type="password", username="alice", password="alice-password"),
        "dpop", (400, "unsupported_grant_type"), id="password-grant",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "form", "headers", "expected"), REFUSED)
def test_the_profile_refuses_each_non_conforming_request(fapi_app, method, path, form, headers, expected):
    status, error = expected
    form = form() if callable(form) else form
    headers = dpop() if headers == "dpop" else headers
    if method == "GET":
        response = fapi_app.get(path, form, headers=headers, status=status)
        assert parse_qs(urlsplit(response.headers["Location"]).query)["error"] == [error]
    else:
        response = fapi_app.post(path, form, headers=headers, status=status)
        assert response.json["error"] == error


def test_plain_http_is_refused(fapi_app):
    response = fapi_app.post("/oauth/par", pushed(), status=400, extra_environ={"wsgi.url_scheme": "http"})
    assert response.json["error"] == "invalid_request"


def test_a_bearer_token_is_refused_at_the_guard(fapi_app):
    token = fapi_app.post("/oauth/token", token_request(), headers=dpop()).json["access_token"]
    response = fapi_app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=401)
    assert response.headers["WWW-Authenticate"].startswith("DPoP")
    # The same token with its proof would pass; without the key it is only a string.
    fapi_app.get(f"/api/me?access_token={token}", status=401)


def test_the_metadata_offers_only_what_the_profile_accepts(fapi_app):
    document = fapi_app.get("/.well-known/oauth-authorization-server").json
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["PS256", "ES256", "EdDSA"]
    assert document["require_pushed_authorization_requests"] is True
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert set(document["dpop_signing_alg_values_supported"]) <= {"PS256", "ES256", "EdDSA"}


def test_the_profile_sets_its_defaults():
    settings = Settings.from_config({"profile": "fapi2", "issuer": ISSUER})
    assert settings.token_types == ("DPoP",) and settings.code_ttl == 60
    assert settings.require_pushed_authorization_requests and not settings.rotate_refresh_tokens
    assert settings.dpop_signing_algs == ("PS256", "ES256", "EdDSA")


# -- configurations the profile refuses at load time ----------------------------------


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        pytest.param({"require_https": "false"}, "require_https", id="plain-http"),
        pytest.param({"issuer": "http://as.example"}, "issuer", id="http-issuer"),
        pytest.param({"grants": "authorization_code password"}, "grants", id="password-grant"),
        pytest.param({"response_types": "code token"}, "response_types", id="implicit"),
        pytest.param(
            {"client_assertion_audience_token_endpoint": "true"}, "client_assertion_audience", id="token-aud"
        ),
        pytest.param({"rotate_refresh_tokens": "true"}, "rotate_refresh_tokens", id="rotation-without-retry"),
        pytest.param({"code_ttl": "61"}, "code_ttl", id="long-codes"),
        pytest.param({"require_pushed_authorization_requests": "false"}, "require_pushed", id="no-par"),
        pytest.param({"require_pkce": "false"}, "require_pkce", id="no-pkce"),
        pytest.param({"allow_plain_pkce": "true"}, "allow_plain_pkce", id="plain-pkce"),
        pytest.param({"par_ttl": "600"}, "par_ttl", id="long-request-uri"),
        pytest.param({"dpop_signing_algs": "ES256 RS256"}, "dpop_signing_algs", id="rs256-dpop"),
        pytest.param({"token_types": "Bearer DPoP"}, "token_types", id="bearer-tokens"),
        pytest.param({"jwt_leeway": "5"}, "jwt_leeway", id="leeway-under-10"),
        pytest.param({"jwt_leeway": "61"}, "jwt_leeway", id="leeway-over-60"),
        pytest.param({"token_from_query": "true"}, "token_from_query", id="query-tokens"),
        pytest.param(
            {
                "token_format": "jwt",
                "jwt_algorithm": "HS256",
                "jwt_secret": "j" * 40,
                "audience": "https://api",
            },
            "jwt_algorithm",
            id="hs256-access-tokens",
        ),
    ],
)
def test_contradicting_settings_are_refused_at_load(settings, key):
    config = {
        "store": "memory://",
        "issuer": ISSUER,
        **FAPI,
        "verify_password": "oauth_flows:verify_password",
    }
    with pytest.raises(ConfigError, match=rf"^{key}\w*: contradicts profile = fapi2 \(FAPI 2\.0 §5"):
        OAuth2Middleware(DemoApp(), **{**config, **settings})


def test_rotation_with_a_retry_window_is_the_allowed_exception():
    # §5.3.2.1 Note 1: rotation only with a time-limited retry with the old refresh token.
    OAuth2Middleware(
        DemoApp(),
        store="memory://",
        issuer=ISSUER,
        **FAPI,
        rotate_refresh_tokens="true",
        refresh_token_reuse_grace="30",
    )


def test_a_guard_alone_refuses_bearer_tokens_too():
    settings = Settings.from_config({"profile": "fapi2", "token_types": "Bearer", "store": "memory://"})
    with pytest.raises(ConfigError, match=r"^token_types: contradicts profile = fapi2"):
        guard_from_settings(DemoApp(), settings)


def test_a_guard_alone_refuses_tokens_in_the_query_too():
    settings = Settings.from_config({"profile": "fapi2", "token_from_query": "true", "store": "memory://"})
    with pytest.raises(
        ConfigError, match=r"^token_from_query: contradicts profile = fapi2 \(FAPI 2\.0 §5\.3\.4"
    ):
        guard_from_settings(DemoApp(), settings)


def test_a_clients_file_client_the_profile_never_accepts_is_refused(tmp_path):
    path = tmp_path / "clients.ini"
    path.write_text(f"[client:basic]\ngrants = client_credentials\nsecret_hash = {'0' * 64}\n")
    with pytest.raises(
        ConfigError, match=r"\[client:basic\] token_endpoint_auth_method client_secret_basic contra"
    ):
        OAuth2Middleware(DemoApp(), store="memory://", issuer=ISSUER, clients_file=str(path), **FAPI)


def test_a_clients_file_client_with_a_plain_http_jwks_uri_is_refused(tmp_path):
    path = tmp_path / "clients.ini"
    path.write_text("[client:keyed]\ngrants = client_credentials\njwks_uri = http://127.0.0.1:9/jwks\n")
    with pytest.raises(ConfigError, match=r"\[client:keyed\] jwks_uri must be https with profile = fapi2"):
        OAuth2Middleware(DemoApp(), store="memory://", issuer=ISSUER, clients_file=str(path), **FAPI)


def test_client_add_refuses_a_client_the_profile_never_accepts(tmp_path, capsys):
    from oauth_middleware.cli import main

    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nprofile = fapi2\n"
        f"store = sqlite:///%(here)s/oauth.db\nissuer = {ISSUER}\n"
    )
    status = main(["client", "add", str(ini), "--client-id", "basic", "--grant", "client_credentials"])
    assert status != 0
    assert "client_secret_basic contradicts profile = fapi2" in capsys.readouterr().err
    status = main(["client", "add", str(ini), "--client-id", "keyed", "--grant", "client_credentials",
                   "--jwks-uri", "http://127.0.0.1:9/jwks"])  # fmt: skip
    assert status != 0
    assert "jwks_uri must be https with profile = fapi2" in capsys.readouterr().err


# -- end to end over HTTPS with requests-oauth2client --------------------------------


def self_signed(directory: Path) -> tuple[str, str]:
    """A certificate and key for 127.0.0.1, as PEM files: (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


class _TLSServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[_TLSServer, str, str]]:
    """A threaded TLS WSGI server on loopback: (server, base URL, certificate); set its app before use."""
    cert, key = self_signed(tmp_path)
    server = make_server("127.0.0.1", 0, lambda e, s: [], server_class=_TLSServer, handler_class=_Quiet)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"https://127.0.0.1:{server.server_port}", cert
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("store_name", ["sqlite", "redis"])
def test_a_fapi2_flow_end_to_end_with_requests_oauth2client(https_server, store_name, request):
    server, base, cert = https_server
    with BACKENDS[store_name].open(request, SYSTEM_CLOCK) as opened:
        middleware = OAuth2Middleware(DemoApp(), store_backend=opened, issuer=base, **FAPI)
        register_clients(middleware)
        server.set_app(
            lambda environ, start: middleware({**environ, "HTTPS": "on", "wsgi.url_scheme": "https"}, start)
        )
        session = requests.Session()
        # Our certificate only: a REQUESTS_CA_BUNDLE in the environment would override verify.
        session.trust_env, session.verify = False, cert
        private_jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(KEY)), "kid": "k1", "alg": "ES256"}
        client = requests_oauth2client.OAuth2Client.from_discovery_endpoint(
            f"{base}/.well-known/oauth-authorization-server",
            issuer=base,
            auth=requests_oauth2client.PrivateKeyJwt(CLIENT, private_jwk, alg="ES256", aud=base),
            redirect_uri=REDIRECT,
            dpop_bound_access_tokens=True,
            session=session,
        )
        request_ = client.authorization_request(scope="read", nonce=None)
        pushed_request = client.pushed_authorization_request(request_)
        # The browser gets client_id and request_uri only (§5.3.3.2 item 6).
        assert set(parse_qs(urlsplit(str(pushed_request.uri)).query)) == {"client_id", "request_uri"}
        with requests.Session() as browser:
            browser.trust_env, browser.verify = False, cert
            location = browser_approve(browser, str(pushed_request.uri))
        assert parse_qs(urlsplit(location).query)["iss"] == [base]  # RFC 9207, §5.3.2.2 item 7
        response = request_.validate_callback(location)
        token = client.authorization_code(response)
        assert isinstance(token, requests_oauth2client.DPoPToken) and token.refresh_token
        api = session.get(f"{base}/api/me", auth=token, timeout=10)
        assert api.status_code == 200 and api.json()["user"] == "alice"
        # No rotation (§5.3.2.1 item 9): no new refresh token, and the one the client has keeps working.
        refreshed = client.refresh_token(token)
        assert refreshed.refresh_token is None
        assert session.get(f"{base}/api/me", auth=refreshed, timeout=10).status_code == 200
        assert client.refresh_token(token).access_token not in (token.access_token, refreshed.access_token)
        # The DPoP-bound token as a bearer token is refused by the guard of the same pipeline.
        stolen = session.get(
            f"{base}/api/me", headers={"Authorization": f"Bearer {token.access_token}"}, timeout=10
        )
        assert stolen.status_code == 401
        middleware.close()


def test_a_ps256_client_assertion_passes(fapi_app):
    form = token_request(**assertion(PS_CLIENT, PS_KEY, "PS256"))
    assert fapi_app.post("/oauth/token", form, headers=dpop(), status=200).json["token_type"] == "DPoP"
    fapi_app.post("/oauth/par", pushed(**assertion(PS_CLIENT, PS_KEY, "PS256")), status=201)


@pytest.mark.parametrize("store_name", ["sqlite", "redis"])
def test_a_ps256_client_with_requests_oauth2client(https_server, store_name, request):
    server, base, cert = https_server
    with BACKENDS[store_name].open(request, SYSTEM_CLOCK) as opened:
        middleware = OAuth2Middleware(DemoApp(), store_backend=opened, issuer=base, **FAPI)
        register_clients(middleware)
        server.set_app(
            lambda environ, start: middleware({**environ, "HTTPS": "on", "wsgi.url_scheme": "https"}, start)
        )
        session = requests.Session()
        session.trust_env, session.verify = False, cert
        private_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(PS_KEY)), "kid": "p1", "alg": "PS256"}
        client = requests_oauth2client.OAuth2Client.from_discovery_endpoint(
            f"{base}/.well-known/oauth-authorization-server",
            issuer=base,
            auth=requests_oauth2client.PrivateKeyJwt(PS_CLIENT, private_jwk, alg="PS256", aud=base),
            redirect_uri=REDIRECT,
            dpop_bound_access_tokens=True,
            session=session,
        )
        token = client.client_credentials(scope="read")
        assert isinstance(token, requests_oauth2client.DPoPToken)
        pushed_request = client.pushed_authorization_request(
            client.authorization_request(scope="read", nonce=None)
        )
        assert str(pushed_request.request_uri).startswith("urn:ietf:params:oauth:request_uri:")
        # The same RSA key signing RS256 is refused: the profile and the key's own alg both say PS256.
        rs256 = requests_oauth2client.OAuth2Client.from_discovery_endpoint(
            f"{base}/.well-known/oauth-authorization-server",
            issuer=base,
            auth=requests_oauth2client.PrivateKeyJwt(
                PS_CLIENT, {**private_jwk, "alg": "RS256"}, alg="RS256", aud=base
            ),
            dpop_bound_access_tokens=True,
            session=session,
        )
        with pytest.raises(requests_oauth2client.InvalidClient):
            rs256.client_credentials(scope="read")
        middleware.close()


@pytest.mark.parametrize(
    ("metadata", "refusal"),
    [
        pytest.param({"jwks": {"keys": [JWK]}}, None, id="private-key-jwt"),
        pytest.param(
            {"token_endpoint_auth_method": "client_secret_basic"}, "contradicts", id="client-secret-basic"
        ),
        pytest.param({"token_endpoint_auth_method": "none"}, "contradicts", id="public"),
        pytest.param({"jwks_uri": "http://127.0.0.1:9/jwks"}, "jwks_uri must be https", id="http-jwks-uri"),
    ],
)
def test_registration_refuses_a_client_the_profile_never_accepts(metadata, refusal):
    middleware = OAuth2Middleware(DemoApp(), store="memory://", issuer=ISSUER, registration="open", **FAPI)
    app = webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "as.example"})
    body = {"redirect_uris": [REDIRECT], "grant_types": ["authorization_code"], **metadata}
    response = app.post_json("/oauth/register", body, status=201 if refusal is None else 400)
    if refusal is not None:
        assert response.json["error"] == "invalid_client_metadata"
        assert refusal in response.json["error_description"]
