"""DPoP (RFC 9449): proofs at the token endpoint and at the guard, binding, nonces, replay, policy."""

from __future__ import annotations

import threading
from typing import Any

import jwt
import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, register
from cryptography.hazmat.primitives.asymmetric import ec
from dpop_support import Prover
from fake_clock import FakeClock
from oauth_flows import (
    NATIVE_ID,
    USERS,
    VERIFIER,
    approve,
    code_request,
    flow_middleware,
    location_params,
    redeem,
)
from store_fixtures import backend, store  # noqa: F401

from oauth_middleware.dpop import Nonces, ProofVerifier, normalized_url
from oauth_middleware.errors import ConfigError, InvalidDPoPProof
from oauth_middleware.proxies import TrustedProxies
from oauth_middleware.repository import Repository
from oauth_middleware.settings import Settings
from oauth_middleware.stores import Store

TOKEN_URL = "http://localhost/oauth/token"
API_URL = "http://localhost/api/me"
SECRET = "s" * 40
CC = {"grant_type": "client_credentials", "scope": "read"}


@pytest.fixture(params=["opaque", "jwt"])
def token_format(request: pytest.FixtureRequest, tmp_path: Any) -> dict[str, str]:
    """The settings of each token format."""
    if request.param == "opaque":
        return {"token_format": "opaque"}
    return {
        "token_format": "jwt",
        "jwt_algorithm": "HS256",
        "jwt_secret": "j" * 40,
        "audience": "http://localhost/api",
    }


@pytest.fixture
def dpop_app(make_middleware: Any, token_format: dict[str, str], clock: FakeClock) -> webtest.TestApp:
    """Bearer and DPoP accepted, in each token format, on a fake clock."""
    return webtest.TestApp(make_middleware(token_types="Bearer DPoP", clock=clock, **token_format))


@pytest.fixture
def prover(clock: FakeClock) -> Prover:
    """The client's DPoP key."""
    return Prover(clock)


def dpop_token(app: webtest.TestApp, prover: Prover, **kwargs: Any) -> Any:
    """A client-credentials token request of the service client with a proof; the response."""
    return app.post(
        "/oauth/token",
        CC,
        headers={
            "Authorization": basic(SERVICE_ID, SERVICE_SECRET),
            "DPoP": prover.proof("POST", TOKEN_URL),
        },
        **kwargs,
    )


def call_api(app: webtest.TestApp, token: str, proof: str | None, scheme: str = "DPoP", **kw: Any) -> Any:
    """``GET /api/me`` with ``token`` under ``scheme`` and a proof."""
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return app.get("/api/me", headers=headers, **kw)


# -- token endpoint ---------------------------------------------------------------


def test_a_proof_gets_a_dpop_bound_token(dpop_app: webtest.TestApp, prover: Prover) -> None:
    response = dpop_token(dpop_app, prover)
    assert response.json["token_type"] == "DPoP"
    token = response.json["access_token"]
    if token.count(".") == 2:  # JWT: cnf.jkt (RFC 9449 §6.1)
        assert jwt.decode(token, options={"verify_signature": False})["cnf"] == {"jkt": prover.jkt}
    assert call_api(dpop_app, token, prover.proof("GET", API_URL, token=token)).status_int == 200


def test_without_a_proof_the_token_is_bearer(dpop_app: webtest.TestApp) -> None:
    response = dpop_app.post("/oauth/token", CC, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)})
    assert response.json["token_type"] == "Bearer"
    token = response.json["access_token"]
    assert call_api(dpop_app, token, None, scheme="Bearer").status_int == 200


def test_with_dpop_off_a_proof_is_ignored(make_middleware: Any, prover: Prover) -> None:
    app = webtest.TestApp(make_middleware())
    assert dpop_token(app, prover).json["token_type"] == "Bearer"


#: proof makers (the prover, the URL) -> each check of RFC 9449 §4.3 refused as invalid_dpop_proof.
BAD_PROOFS = [
    pytest.param(lambda p, u: "not-a-jwt", id="not-a-jws"),
    pytest.param(lambda p, u: f"{p.proof('POST', u)}, {p.proof('POST', u)}", id="two-proofs"),
    pytest.param(lambda p, u: p.proof("POST", u, header={"typ": "JWT"}), id="typ-jwt"),
    pytest.param(lambda p, u: p.proof("POST", u, header={"typ": None}), id="typ-missing"),
    pytest.param(lambda p, u: p.proof("POST", u, header={"jwk": None}), id="jwk-missing"),
    pytest.param(
        lambda p, u: p.proof("POST", u, header={"jwk": {"kty": "oct", "k": "a" * 43}}), id="jwk-oct"
    ),
    pytest.param(lambda p, u: p.proof("POST", u, header={"jwk": {**p.jwk, "d": "AAAA"}}), id="jwk-private"),
    pytest.param(lambda p, u: p.proof("POST", u, alg="HS256", key="k" * 32), id="alg-hmac"),
    pytest.param(
        lambda p, u: p.proof("POST", u, alg="none", key=None, header={"alg": "none"}), id="alg-none"
    ),
    pytest.param(
        lambda p, u: p.proof("POST", u, alg="ES384", key=ec.generate_private_key(ec.SECP384R1())),
        id="alg-not-allowed",
    ),
    pytest.param(
        lambda p, u: p.proof("POST", u, key=ec.generate_private_key(ec.SECP256R1())),
        id="signed-by-another-key",
    ),
    pytest.param(lambda p, u: p.proof("POST", u)[:-4] + "AAAA", id="bad-signature"),
    pytest.param(lambda p, u: p.proof("GET", u), id="htm-wrong"),
    pytest.param(lambda p, u: p.proof("post", u), id="htm-lowercase"),
    pytest.param(lambda p, u: p.proof("POST", "http://localhost/oauth/other"), id="htu-other-path"),
    pytest.param(lambda p, u: p.proof("POST", "https://localhost/oauth/token"), id="htu-other-scheme"),
    pytest.param(lambda p, u: p.proof("POST", "http://evil.example/oauth/token"), id="htu-other-host"),
    pytest.param(lambda p, u: p.proof("POST", "http://localhost:8080/oauth/token"), id="htu-other-port"),
    pytest.param(lambda p, u: p.proof("POST", "/oauth/token"), id="htu-relative"),
    pytest.param(lambda p, u: p.proof("POST", u, htu=5), id="htu-not-string"),
    pytest.param(lambda p, u: p.proof("POST", u, drop=("jti",)), id="jti-missing"),
    pytest.param(lambda p, u: p.proof("POST", u, jti=""), id="jti-empty"),
    pytest.param(lambda p, u: p.proof("POST", u, drop=("htm",)), id="htm-missing"),
    pytest.param(lambda p, u: p.proof("POST", u, drop=("htu",)), id="htu-missing"),
    pytest.param(lambda p, u: p.proof("POST", u, drop=("iat",)), id="iat-missing"),
    pytest.param(lambda p, u: p.proof("POST", u, iat=int(p.clock.time()) - 400), id="iat-too-old"),
    pytest.param(lambda p, u: p.proof("POST", u, iat=int(p.clock.time()) + 60), id="iat-in-the-future"),
    pytest.param(lambda p, u: p.proof("POST", u, iat="now"), id="iat-not-a-number"),
]


@pytest.mark.parametrize("make_proof", BAD_PROOFS)
def test_a_bad_proof_is_invalid_dpop_proof_at_the_token_endpoint(
    dpop_app: webtest.TestApp, prover: Prover, make_proof: Any
) -> None:
    response = dpop_app.post(
        "/oauth/token",
        CC,
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET), "DPoP": make_proof(prover, TOKEN_URL)},
        status=400,
    )
    assert response.json["error"] == "invalid_dpop_proof"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("make_proof", BAD_PROOFS)
def test_a_bad_proof_is_invalid_dpop_proof_at_the_guard(
    dpop_app: webtest.TestApp, prover: Prover, make_proof: Any
) -> None:
    token = dpop_token(dpop_app, prover).json["access_token"]
    proof = make_proof(prover, API_URL).replace('"POST"', '"GET"')
    # The table's proofs are for POST; the guard is called with POST here.
    response = dpop_app.post("/api/me", headers={"Authorization": f"DPoP {token}", "DPoP": proof}, status=401)
    assert response.json["error"] == "invalid_dpop_proof"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(
        'DPoP realm="oauth2", algs="ES256 RS256 PS256 EdDSA", error="invalid_dpop_proof"'
    )


@pytest.mark.parametrize(
    "htu",
    [
        pytest.param("HTTP://LOCALHOST/oauth/token", id="case"),
        pytest.param("http://localhost:80/oauth/token", id="default-port"),
        pytest.param("http://localhost/oauth/token?x=1#f", id="query-and-fragment"),
        pytest.param("http://localhost/oauth/%74oken", id="percent-encoded-unreserved"),
    ],
)
def test_htu_is_compared_after_normalisation(dpop_app: webtest.TestApp, prover: Prover, htu: str) -> None:
    response = dpop_app.post(
        "/oauth/token",
        CC,
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET), "DPoP": prover.proof("POST", htu)},
    )
    assert response.json["token_type"] == "DPoP"


def test_htu_behind_a_trusted_proxy_is_the_public_url(make_middleware: Any, prover: Prover) -> None:
    app = webtest.TestApp(make_middleware(token_types="Bearer DPoP", trusted_proxies="127.0.0.1"))
    headers = {
        "Authorization": basic(SERVICE_ID, SERVICE_SECRET),
        "X-Forwarded-Proto": "https",
        "Host": "localhost",
        "DPoP": prover.proof("POST", "https://localhost/oauth/token"),
    }
    ok = app.post("/oauth/token", CC, headers=headers, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert ok.json["token_type"] == "DPoP"
    headers["DPoP"] = prover.proof("POST", TOKEN_URL)  # the internal URL
    refused = app.post(
        "/oauth/token", CC, headers=headers, extra_environ={"REMOTE_ADDR": "127.0.0.1"}, status=400
    )
    assert refused.json["error"] == "invalid_dpop_proof"


def test_a_replayed_proof_is_refused(dpop_app: webtest.TestApp, prover: Prover) -> None:
    headers = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET), "DPoP": prover.proof("POST", TOKEN_URL)}
    dpop_app.post("/oauth/token", CC, headers=headers)
    again = dpop_app.post("/oauth/token", CC, headers=headers, status=400)
    assert again.json == {
        "error": "invalid_dpop_proof",
        "error_description": "the DPoP proof was already used",
    }


def test_a_client_registered_for_dpop_needs_a_proof(make_middleware: Any, prover: Prover) -> None:
    middleware = make_middleware(token_types="Bearer DPoP")
    register(
        middleware,
        "bound",
        "bound-secret-0123456789",
        grant_types=["client_credentials"],
        scopes=["read"],
        dpop_bound_access_tokens=True,
    )
    app = webtest.TestApp(middleware)
    auth = {"Authorization": basic("bound", "bound-secret-0123456789")}
    refused = app.post("/oauth/token", CC, headers=auth, status=400)
    assert refused.json["error"] == "invalid_dpop_proof"
    ok = app.post("/oauth/token", CC, headers={**auth, "DPoP": prover.proof("POST", TOKEN_URL)})
    assert ok.json["token_type"] == "DPoP"


def test_without_bearer_in_token_types_every_token_request_needs_a_proof(
    make_middleware: Any, prover: Prover
) -> None:
    app = webtest.TestApp(make_middleware(token_types="DPoP"))
    refused = app.post(
        "/oauth/token", CC, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}, status=400
    )
    assert refused.json["error"] == "invalid_dpop_proof"
    assert dpop_token(app, prover).json["token_type"] == "DPoP"


# -- guard ------------------------------------------------------------------------


def test_a_bound_token_presented_as_bearer_is_refused(dpop_app: webtest.TestApp, prover: Prover) -> None:
    token = dpop_token(dpop_app, prover).json["access_token"]
    response = call_api(dpop_app, token, None, scheme="Bearer", status=401)
    assert response.json["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="oauth2", error="invalid_token"')


@pytest.mark.parametrize(
    ("proof", "error"),
    [
        pytest.param(lambda p, t: None, "invalid_dpop_proof", id="no-proof"),
        pytest.param(lambda p, t: p.proof("GET", API_URL), "invalid_dpop_proof", id="no-ath"),
        pytest.param(
            lambda p, t: p.proof("GET", API_URL, token=t + "x"), "invalid_dpop_proof", id="wrong-ath"
        ),
        pytest.param(
            lambda p, t: Prover(p.clock).proof("GET", API_URL, token=t),
            "invalid_dpop_proof",
            id="another-key",
        ),
        pytest.param(
            lambda p, t: p.proof("GET", API_URL, ath="\u00e9" * 43), "invalid_dpop_proof", id="ath-non-ascii"
        ),
        pytest.param(
            lambda p, t: p.signed(b'{"x":' + b"[" * 2500 + b"]" * 2500 + b"}"),
            "invalid_dpop_proof",
            id="deeply-nested-claims",
        ),
        pytest.param(
            lambda p, t: p.proof("GET", "http://localhost/api/other", token=t),
            "invalid_dpop_proof",
            id="htu-of-another-resource",
        ),
    ],
)
def test_the_guard_checks_the_proof_against_the_token(
    dpop_app: webtest.TestApp, prover: Prover, proof: Any, error: str
) -> None:
    token = dpop_token(dpop_app, prover).json["access_token"]
    response = call_api(dpop_app, token, proof(prover, token), status=401)
    assert response.json["error"] == error
    assert response.headers["WWW-Authenticate"].startswith("DPoP ")


def test_the_guard_refuses_a_replayed_proof(dpop_app: webtest.TestApp, prover: Prover) -> None:
    token = dpop_token(dpop_app, prover).json["access_token"]
    proof = prover.proof("GET", API_URL, token=token)
    assert call_api(dpop_app, token, proof).status_int == 200
    assert call_api(dpop_app, token, proof, status=401).json["error"] == "invalid_dpop_proof"


def test_a_bearer_token_under_the_dpop_scheme_is_refused(dpop_app: webtest.TestApp, prover: Prover) -> None:
    response = dpop_app.post("/oauth/token", CC, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)})
    token = response.json["access_token"]
    refused = call_api(dpop_app, token, prover.proof("GET", API_URL, token=token), status=401)
    assert refused.json["error"] == "invalid_token"


def test_the_app_sees_the_binding(make_middleware: Any, prover: Prover) -> None:
    seen: dict[str, Any] = {}

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen["jkt"] = environ["oauth2.token"].jkt
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    test_app = webtest.TestApp(make_middleware(app, token_types="Bearer DPoP"))
    token = dpop_token(test_app, prover).json["access_token"]
    call_api(test_app, token, prover.proof("GET", API_URL, token=token))
    assert seen["jkt"] == prover.jkt


def test_a_request_without_token_is_offered_both_schemes(dpop_app: webtest.TestApp) -> None:
    response = dpop_app.get("/api/me", status=401)
    assert response.headers.getall("WWW-Authenticate") == [
        'Bearer realm="oauth2"',
        'DPoP realm="oauth2", algs="ES256 RS256 PS256 EdDSA"',
    ]


# -- nonces -----------------------------------------------------------------------


def test_the_nonce_flow(make_middleware: Any, clock: FakeClock, prover: Prover) -> None:
    app = webtest.TestApp(
        make_middleware(token_types="Bearer DPoP", dpop_nonce="true", session_secret=SECRET, clock=clock)
    )
    auth = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    first = app.post(
        "/oauth/token", CC, headers={**auth, "DPoP": prover.proof("POST", TOKEN_URL)}, status=400
    )
    assert first.json["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    ok = app.post("/oauth/token", CC, headers={**auth, "DPoP": prover.proof("POST", TOKEN_URL, nonce=nonce)})
    assert ok.json["token_type"] == "DPoP"
    assert ok.headers["DPoP-Nonce"]
    token = ok.json["access_token"]
    refused = call_api(app, token, prover.proof("GET", API_URL, token=token), status=401)
    assert refused.json["error"] == "use_dpop_nonce"
    assert 'error="use_dpop_nonce"' in refused.headers["WWW-Authenticate"]
    assert refused.headers["DPoP-Nonce"] == nonce
    assert call_api(app, token, prover.proof("GET", API_URL, token=token, nonce=nonce)).status_int == 200
    # The previous slot's nonce still works; two periods later it does not.
    clock.advance(300)
    assert call_api(app, token, prover.proof("GET", API_URL, token=token, nonce=nonce)).status_int == 200
    clock.advance(300)
    stale = call_api(app, token, prover.proof("GET", API_URL, token=token, nonce=nonce), status=401)
    assert stale.json["error"] == "use_dpop_nonce"


def test_the_guard_supplies_the_next_nonce_on_success(make_middleware: Any, clock: FakeClock) -> None:
    # Before: only the token endpoint's success and the guard's use_dpop_nonce carried DPoP-Nonce.
    app = webtest.TestApp(
        make_middleware(token_types="Bearer DPoP", dpop_nonce="true", session_secret=SECRET, clock=clock)
    )
    prover = Prover(clock)
    nonces = Nonces(SECRET, 300, clock)
    auth = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    proof = prover.proof("POST", TOKEN_URL, nonce=nonces.current())
    token = app.post("/oauth/token", CC, headers={**auth, "DPoP": proof}).json["access_token"]
    first = call_api(app, token, prover.proof("GET", API_URL, token=token, nonce=nonces.current()))
    assert first.status_int == 200
    assert first.headers.getall("DPoP-Nonce") == [nonces.current()]
    assert "Authorization" in first.headers["Vary"]
    # After a rotation the old nonce still passes, and the answer hands over the new one.
    old = nonces.current()
    clock.advance(300)
    second = call_api(app, token, prover.proof("GET", API_URL, token=token, nonce=old))
    assert second.status_int == 200
    assert second.headers["DPoP-Nonce"] == nonces.current() != old
    third = call_api(
        app, token, prover.proof("GET", API_URL, token=token, nonce=second.headers["DPoP-Nonce"])
    )
    assert third.status_int == 200


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"token_types": "Bearer DPoP"}, id="dpop-without-nonces"),
        pytest.param({"token_types": "Bearer DPoP", "dpop_nonce": "true"}, id="bearer-with-nonces"),
    ],
)
def test_no_nonce_header_without_a_dpop_request_under_nonces(
    make_middleware: Any, clock: FakeClock, settings: dict[str, str]
) -> None:
    app = webtest.TestApp(make_middleware(session_secret=SECRET, clock=clock, **settings))
    prover = Prover(clock)
    auth = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    bearer = app.post("/oauth/token", CC, headers=auth).json["access_token"]
    assert "DPoP-Nonce" not in call_api(app, bearer, None, scheme="Bearer").headers
    if "dpop_nonce" not in settings:
        token = dpop_token(app, prover).json["access_token"]
        response = call_api(app, token, prover.proof("GET", API_URL, token=token))
        assert response.status_int == 200
        assert "DPoP-Nonce" not in response.headers


def test_nonces_are_accepted_by_every_process_with_the_same_secret(clock: FakeClock) -> None:
    nonce = Nonces(SECRET, 300, clock).current()
    assert Nonces(SECRET, 300, clock).accepts(nonce)
    assert not Nonces("t" * 40, 300, clock).accepts(nonce)
    assert not Nonces(SECRET, 300, clock).accepts(None)
    assert not Nonces(SECRET, 300, clock).accepts("\u00e9" + nonce[1:])
    assert not Nonces(SECRET, 300, clock).accepts("\ud800" + nonce[1:])  # a lone surrogate JSON can carry


# -- refresh, code and introspection ----------------------------------------------


def test_a_public_clients_refresh_token_is_bound_to_its_key(make_middleware: Any, prover: Prover) -> None:
    app = webtest.TestApp(
        flow_middleware(
            make_middleware, token_types="Bearer DPoP", grants="authorization_code refresh_token password"
        )
    )
    form = {
        "grant_type": "password",
        "client_id": NATIVE_ID,
        "username": "alice",
        "password": USERS["alice"],
        "scope": "read",
    }
    issued = app.post("/oauth/token", form, headers={"DPoP": prover.proof("POST", TOKEN_URL)}).json
    assert issued["token_type"] == "DPoP"
    refresh = {
        "grant_type": "refresh_token",
        "client_id": NATIVE_ID,
        "refresh_token": issued["refresh_token"],
    }
    without = app.post("/oauth/token", refresh, status=400)
    assert without.json["error"] == "invalid_grant"
    other = app.post("/oauth/token", refresh, headers={"DPoP": Prover().proof("POST", TOKEN_URL)}, status=400)
    assert other.json["error"] == "invalid_grant"
    same = app.post("/oauth/token", refresh, headers={"DPoP": prover.proof("POST", TOKEN_URL)}).json
    assert same["token_type"] == "DPoP"
    # The rotated token stays bound.
    refresh["refresh_token"] = same["refresh_token"]
    assert app.post("/oauth/token", refresh, status=400).json["error"] == "invalid_grant"


def test_dpop_jkt_binds_the_code(make_middleware: Any, prover: Prover) -> None:
    app = webtest.TestApp(flow_middleware(make_middleware, token_types="Bearer DPoP"))
    code = location_params(approve(app, code_request(dpop_jkt=prover.jkt)))["code"]
    other = app.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": NATIVE_ID,
            "redirect_uri": code_request()["redirect_uri"],
            "code_verifier": VERIFIER,
        },
        headers={"DPoP": Prover().proof("POST", TOKEN_URL)},
        status=400,
    )
    assert other.json["error"] == "invalid_grant"
    code = location_params(approve(app, code_request(dpop_jkt=prover.jkt)))["code"]
    assert redeem(app, code, status=400)["error"] == "invalid_grant"  # no proof at all
    code = location_params(approve(app, code_request(dpop_jkt=prover.jkt)))["code"]
    app.extra_environ = {"HTTP_DPOP": prover.proof("POST", TOKEN_URL)}
    assert redeem(app, code)["token_type"] == "DPoP"


#: dpop_jkt values the authorization endpoint refuses (RFC 9449 §10: a base64url SHA-256 thumbprint).
BAD_DPOP_JKT = [
    pytest.param("a" * 42, id="too-short"),
    pytest.param("a" * 44, id="too-long"),
    pytest.param("a" * 42 + "=", id="padded"),
    pytest.param("a" * 42 + "+", id="base64-not-url"),
    pytest.param("a" * 41 + "\u00e9", id="non-ascii"),
    pytest.param("a" * 64, id="hex-digest"),
]


@pytest.mark.parametrize("value", BAD_DPOP_JKT)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_malformed_dpop_jkt_is_sent_back_invalid_request(
    make_middleware: Any, value: str, method: str
) -> None:
    # Before: accepted, and the code then failed at redemption as invalid_grant.
    app = webtest.TestApp(flow_middleware(make_middleware, token_types="Bearer DPoP"))
    params = code_request(dpop_jkt=value)
    if method == "GET":
        response = app.get("/oauth/authorize", params, status=302)
    else:
        response = app.post("/oauth/authorize", params, status=303)
    location = response.headers["Location"]
    assert location.startswith(code_request()["redirect_uri"] + "?")
    answer = location_params(location)
    assert answer["error"] == "invalid_request"
    assert "dpop_jkt" in answer["error_description"]
    assert answer["state"] == "st-123"
    assert answer["iss"] == "http://localhost"
    assert "code" not in answer


def test_a_malformed_dpop_jkt_is_refused_at_push_time(make_middleware: Any) -> None:
    app = webtest.TestApp(flow_middleware(make_middleware, token_types="Bearer DPoP"))
    response = app.post("/oauth/par", code_request(dpop_jkt="a" * 42), status=400)
    assert response.json["error"] == "invalid_request"


def test_a_well_formed_dpop_jkt_reaches_the_consent_page(make_middleware: Any, prover: Prover) -> None:
    app = webtest.TestApp(flow_middleware(make_middleware, token_types="Bearer DPoP"))
    assert app.get("/oauth/authorize", code_request(dpop_jkt=prover.jkt), status=200)
    assert app.get("/oauth/authorize", code_request(dpop_jkt="_-" * 21 + "A"), status=200)


def test_introspection_returns_cnf(
    make_middleware: Any, token_format: dict[str, str], prover: Prover
) -> None:
    dpop_app = webtest.TestApp(
        make_middleware(token_types="Bearer DPoP", introspection_clients=SERVICE_ID, **token_format)
    )
    token = dpop_token(dpop_app, prover).json["access_token"]
    body = dpop_app.post(
        "/oauth/introspect", {"token": token}, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    ).json
    assert body["active"] is True
    assert body["cnf"] == {"jkt": prover.jkt}
    assert body["token_type"] == "DPoP"


# -- metadata and settings --------------------------------------------------------


def test_metadata_advertises_dpop_only_when_enabled(make_middleware: Any) -> None:
    path = "/.well-known/oauth-authorization-server"
    on = webtest.TestApp(make_middleware(token_types="Bearer DPoP", dpop_signing_algs="ES256")).get(path).json
    assert on["dpop_signing_alg_values_supported"] == ["ES256"]
    off = webtest.TestApp(make_middleware()).get(path).json
    assert "dpop_signing_alg_values_supported" not in off


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({"dpop_signing_algs": "HS256"}, "dpop_signing_algs:", id="hmac"),
        pytest.param({"dpop_signing_algs": "none"}, "dpop_signing_algs:", id="none"),
        pytest.param({"dpop_signing_algs": ""}, "dpop_signing_algs:", id="empty"),
        pytest.param({"dpop_nonce": "true"}, "dpop_nonce: needs session_secret", id="nonce-without-secret"),
        pytest.param({"dpop_proof_max_age": "5"}, "dpop_proof_max_age:", id="max-age-too-short"),
    ],
)
def test_bad_dpop_settings_are_refused(config: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_config({"store": "memory://", **config})


def test_normalized_url() -> None:
    assert normalized_url("HTTPS://Example.COM:443") == ("https", "example.com", None, "/")
    assert normalized_url("ftp://example.com/") is None
    assert normalized_url("http://example.com:99999/") is None


# -- replay, raced on every store ---------------------------------------------------


def test_a_proof_raced_from_20_threads_is_accepted_once(store: Store) -> None:  # noqa: F811
    verifier = ProofVerifier(
        algorithms=("ES256",),
        max_age=300,
        leeway=10,
        repository=Repository(store),
        nonces=None,
        trusted_proxies=TrustedProxies((), False),
    )
    prover = Prover()
    environ = {
        "REQUEST_METHOD": "POST",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "localhost",
        "PATH_INFO": "/oauth/token",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_DPOP": prover.proof("POST", TOKEN_URL),
    }
    results: list[str] = []
    barrier = threading.Barrier(20)

    def check() -> None:
        barrier.wait()
        try:
            verifier.verify(dict(environ), access_token=None)
            results.append("accepted")
        except InvalidDPoPProof as exc:
            results.append(exc.error)

    threads = [threading.Thread(target=check) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["accepted"] + ["invalid_dpop_proof"] * 19


# -- the guard alone, on another host ----------------------------------------------


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_a_guard_only_resource_server_checks_dpop_bound_tokens(
    make_middleware: Any, tmp_path: Any, prover: Prover, token_format: str
) -> None:
    """JWTs with cnf.jkt by signature, opaque tokens in the shared store; proofs' jti in that store."""
    from oauth_middleware import guard_from_settings
    from oauth_middleware.demo import DemoApp

    config = {
        "store": f"sqlite:///{tmp_path / 'oauth.db'}",
        "token_types": "Bearer DPoP",
        "token_format": token_format,
        "issuer": "http://localhost",
    }
    if token_format == "jwt":
        config |= {"jwt_algorithm": "HS256", "jwt_secret": "j" * 40, "audience": "http://localhost/api"}
    server = webtest.TestApp(make_middleware(**config))
    token = dpop_token(server, prover).json["access_token"]
    resource = webtest.TestApp(guard_from_settings(DemoApp(), Settings.from_config(config)))
    proof = prover.proof("GET", API_URL, token=token)
    assert call_api(resource, token, proof).status_int == 200
    # A proof replayed to the authorization server's own guard: the store they share refuses it.
    assert call_api(server, token, proof, status=401).json["error"] == "invalid_dpop_proof"
    assert call_api(resource, token, None, scheme="Bearer", status=401).json["error"] == "invalid_token"


def test_the_guard_alone_with_dpop_loads_nothing_of_the_authorization_server(tmp_path: Any) -> None:
    import json
    import subprocess
    import sys

    from test_resource_server import AUTHORIZATION_SERVER, LOAD_GUARD

    config = {"store": f"sqlite:///{tmp_path / 'oauth.db'}", "token_types": "Bearer DPoP"}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_GUARD, "python", json.dumps(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(done.stdout)
    assert loaded["status"] == 401
    assert "oauth_middleware.dpop" in loaded["modules"]
    assert [
        m for m in loaded["modules"] if any(m == s or m.startswith(f"{s}.") for s in AUTHORIZATION_SERVER)
    ] == []


# -- registration ------------------------------------------------------------------


def test_client_add_dpop_bound_access_tokens(capsys: Any, tmp_path: Any) -> None:
    from oauth_middleware.cli import main
    from oauth_middleware.demo import DemoApp
    from oauth_middleware.middleware import OAuth2Middleware

    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        "store = sqlite:///%(here)s/oauth.db\nscopes = read write\n"
    )
    argv = ["client", "add", str(ini), "--client-id", "svc", "--secret", "svc-secret-0123"]
    assert main([*argv, "--grant", "client_credentials", "--dpop-bound-access-tokens"]) == 0
    assert "dpop_bound_access_tokens: true" in capsys.readouterr().out.splitlines()
    middleware = OAuth2Middleware(
        DemoApp(),
        issuer="http://localhost",
        store=f"sqlite:///{tmp_path / 'oauth.db'}",
        scopes="read write",
        require_https="false",
        token_types="Bearer DPoP",
    )
    app = webtest.TestApp(middleware)
    auth = {"Authorization": basic("svc", "svc-secret-0123")}
    refused = app.post("/oauth/token", {"grant_type": "client_credentials"}, headers=auth, status=400)
    assert refused.json["error"] == "invalid_dpop_proof"


@pytest.mark.parametrize(("value", "bound"), [("true", True), ("false", False)])
def test_clients_file_dpop_bound_access_tokens(tmp_path: Any, value: str, bound: bool) -> None:
    from oauth_middleware.clients import load_clients_file

    path = tmp_path / "clients.ini"
    path.write_text(
        f"[client:app]\npublic = true\ngrants = authorization_code\ndpop_bound_access_tokens = {value}\n"
    )
    assert load_clients_file(str(path))[0].dpop_bound_access_tokens is bound


def test_clients_file_refuses_a_misspelt_dpop_flag(tmp_path: Any) -> None:
    from oauth_middleware.clients import load_clients_file

    path = tmp_path / "clients.ini"
    path.write_text(
        "[client:app]\npublic = true\ngrants = authorization_code\ndpop_bound_access_tokens = ture\n"
    )
    with pytest.raises(ConfigError, match=r"\[client:app\] dpop_bound_access_tokens:"):
        load_clients_file(str(path))
