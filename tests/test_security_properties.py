"""Security properties checked across the code rather than per feature (SECURITY.rst cites them).

* Every token, code, secret and session id comes straight from :mod:`secrets`
  with at least 128 bits (RFC 9700 §4.1.1 wants them unguessable; RFC 6819
  §5.1.4.2.2 asks for at least 128 bits), and :mod:`random` is never used.
* Every comparison with a secret goes through :func:`hmac.compare_digest`.
* No response of any endpoint carries CORS headers, least of all the
  authorization endpoint's (RFC 9700 §2.6): browsers navigate to it,
  scripts of other origins must not call it.
* The guard's ``WWW-Authenticate`` challenges are exactly those of RFC 6750 §3.
* Every redirect answering a POST to the authorization endpoint is a 303.
"""

from __future__ import annotations

import ast
import base64
import hmac
import json
import secrets
from pathlib import Path

import jwt
import pytest
import webtest
from conftest import SERVICE_ID, basic, issue_token
from jwt_keys import jwt_settings, make_keys
from oauth_flows import (
    AUTHORIZE,
    CHALLENGE,
    NATIVE_ID,
    TOKEN,
    USERS,
    VERIFIER,
    approve,
    code_request,
    flow_middleware,
    get_code,
    login,
    redeem,
)

from oauth_middleware import clients
from oauth_middleware.models import digest

PACKAGE = Path(__file__).resolve().parent.parent / "oauth_middleware"
GRANTS = "authorization_code refresh_token client_credentials password"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


# -- randomness ----------------------------------------------------------------------------------


class SecretsSpy:
    """Records what :mod:`secrets` hands out: ``(function, bytes of entropy, value)``."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, int, object]] = []
        for name in ("token_urlsafe", "token_hex", "token_bytes"):
            real = getattr(secrets, name)
            monkeypatch.setattr(secrets, name, self._wrap(name, real))

    def _wrap(self, name, real):
        def spy(nbytes=None):
            value = real(nbytes)
            self.calls.append((name, nbytes, value))
            return value

        return spy

    def entropy_of(self, value):
        """Bytes of entropy behind ``value``; fails unless ``value`` came from :mod:`secrets` unchanged."""
        found = [nbytes for _, nbytes, made in self.calls if made == value]
        assert found, f"{value!r:.20} did not come from the secrets module"
        return found[0]


def jwt_claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def session_id(app):
    body = app.cookies["oauth2_session"].split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["i"]


def _access_token(app, spy, middleware):
    return issue_token(app)


def _refresh_token(app, spy, middleware):
    params = {
        "grant_type": "password",
        "username": "alice",
        "password": USERS["alice"],
        "client_id": NATIVE_ID,
    }
    return app.post(TOKEN, params).json["refresh_token"]


def _refresh_family(app, spy, middleware):
    refresh_token = _refresh_token(app, spy, middleware)
    return middleware.server.repository.find_refresh_token(digest(refresh_token)).family


def _code(app, spy, middleware):
    return get_code(app)


def _session_id(app, spy, middleware):
    app.reset()  # a new browser: a new session
    app.get(AUTHORIZE, code_request())
    return session_id(app)


def _client_secret(app, spy, middleware):
    return clients.generate_secret()


def _jwt_id(app, spy, middleware):
    return jwt_claims(issue_token(app))["jti"]


#: What is made -> (how to get one made, the server's token format, the least bytes of entropy).
MADE = {
    "access-token": (_access_token, "opaque", 32),
    "refresh-token": (_refresh_token, "opaque", 32),
    "refresh-family-id": (_refresh_family, "opaque", 16),
    "authorization-code": (_code, "opaque", 32),
    "session-id": (_session_id, "opaque", 16),
    "client-secret": (_client_secret, "opaque", 32),
    "jwt-id": (_jwt_id, "jwt", 16),
}


@pytest.mark.parametrize("kind", MADE)
def test_every_token_secret_and_code_comes_from_secrets_with_128_bits_or_more(
    make_middleware, monkeypatch, keys, kind
):
    make, token_format, least = MADE[kind]
    config = {"grants": GRANTS}
    if token_format == "jwt":
        config = jwt_settings(keys, grants=GRANTS)
    middleware = flow_middleware(make_middleware, **config)
    app = webtest.TestApp(middleware)
    spy = SecretsSpy(monkeypatch)
    values = {make(app, spy, middleware) for _ in range(20)}
    assert len(values) == 20  # never twice the same
    assert min(spy.entropy_of(value) for value in values) >= least >= 16


def test_the_key_made_without_session_secret_has_256_bits(monkeypatch):
    from oauth_middleware.serverkey import master_key

    spy = SecretsSpy(monkeypatch)
    assert spy.entropy_of(master_key("")) == 32


def test_uuid4_tokens_are_the_documented_exception(make_middleware):
    # token_generator = uuid4 exists for migrations only: 122 random bits, never the default.
    app = webtest.TestApp(make_middleware(token_generator="uuid4"))
    token = issue_token(app)
    assert len(token) == 32 and int(token, 16) >> 76 & 0xF == 4  # a version-4 UUID
    assert len(issue_token(webtest.TestApp(make_middleware()))) >= 43


def test_the_random_module_is_never_used():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(alias.name != "random" for alias in node.names), path
            elif isinstance(node, ast.ImportFrom):
                assert node.module != "random", path


# -- constant-time comparisons ------------------------------------------------------------------------


class CompareSpy:
    """Records every pair :func:`hmac.compare_digest` compares."""

    def __init__(self, monkeypatch):
        self.pairs: list[tuple[object, object]] = []
        real = hmac.compare_digest

        def spy(a, b):
            self.pairs.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", spy)

    def saw(self, *expected):
        return any(set(expected) <= {a, b} for a, b in self.pairs)


@pytest.fixture
def flows(make_middleware):
    return webtest.TestApp(flow_middleware(make_middleware, grants=GRANTS))


def test_client_secret_is_compared_in_constant_time(flows, monkeypatch):
    spy = CompareSpy(monkeypatch)
    flows.post(
        TOKEN,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE_ID, "wrong")},
        status=401,
    )
    stored = flows.app.server.repository.get_client(SERVICE_ID).secret_hash
    assert spy.saw(digest("wrong"), stored)


def test_pkce_verifier_is_compared_in_constant_time(flows, monkeypatch):
    code = get_code(flows)
    spy = CompareSpy(monkeypatch)
    redeem(flows, code)
    assert spy.saw(CHALLENGE.encode(), CHALLENGE.encode())


def test_csrf_token_is_compared_in_constant_time(flows, monkeypatch):
    consent = login(flows, code_request())
    presented = consent.forms[0]["csrf_token"].value
    spy = CompareSpy(monkeypatch)
    assert consent.forms[0].submit("decision", value="approve").status_int == 303
    assert spy.saw(presented.encode(), presented.encode())


def test_session_cookie_signature_is_compared_in_constant_time(flows, monkeypatch):
    login(flows, code_request())
    signature = flows.cookies["oauth2_session"].split(".")[1]
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    spy = CompareSpy(monkeypatch)
    flows.get(AUTHORIZE, code_request())
    assert spy.saw(raw, raw)


def test_demo_password_hash_is_compared_in_constant_time(monkeypatch):
    from oauth_middleware import demo

    stored = demo.hash_password("right", iterations=1000)
    spy = CompareSpy(monkeypatch)
    assert not demo.check_password_hash(stored, "guess")
    assert spy.saw(stored.rsplit("$", 1)[1])
    assert demo.verify_password("nobody", "guess") is None  # an unknown user costs the same comparison
    assert len(spy.pairs) == 2


# -- no CORS, anywhere ---------------------------------------------------------------------------------

ENDPOINTS = ["/oauth/authorize", "/oauth/token", "/oauth/revoke", "/oauth/introspect", "/oauth/jwks"]
ENDPOINTS += ["/.well-known/oauth-authorization-server", "/api/me"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("method", ["OPTIONS", "GET", "POST"])
def test_no_cors_headers(make_middleware, keys, path, method):
    app = webtest.TestApp(flow_middleware(make_middleware, **jwt_settings(keys, grants=GRANTS)))
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    params = code_request() if path == AUTHORIZE else {"grant_type": "client_credentials"}
    if method == "GET":
        response = app.get(path, params, headers=headers, expect_errors=True)
    elif method == "POST":
        response = app.post(path, params, headers=headers, expect_errors=True)
    else:  # a CORS preflight
        response = app.options(path, headers=headers, expect_errors=True)
    assert response.status_int < 500
    assert [name for name in response.headers if name.lower().startswith("access-control-")] == []


def test_pages_keep_the_request_out_of_referer_headers(flows):
    # The page's URL carries the request's state and PKCE challenge (RFC 9700 §4.2.4).
    login_page = flows.get(AUTHORIZE, code_request())
    consent_page = login(flows, code_request())
    error_page = flows.get(AUTHORIZE, code_request(client_id="nobody"), status=400)
    for page in (login_page, consent_page, error_page):
        assert page.headers["Referrer-Policy"] == "no-referrer"


# -- RFC 6750 §3 challenges, exactly --------------------------------------------------------------------

INVALID = 'error="invalid_token", error_description="the access token is invalid or has expired"'


@pytest.mark.parametrize(
    ("request_kwargs", "status", "challenge"),
    [
        pytest.param({}, 401, 'Bearer realm="oauth2"', id="no-token"),
        pytest.param(
            {"headers": {"Authorization": "Bearer nope"}},
            401,
            f'Bearer realm="oauth2", {INVALID}',
            id="unknown-token",
        ),
        pytest.param(
            {"headers": {"Authorization": "Bearer a b"}},
            400,
            'Bearer realm="oauth2", error="invalid_request", error_description="malformed bearer token"',
            id="malformed-header",
        ),
        pytest.param(
            {"headers": {"Authorization": "Bearer TOKEN"}, "query": "access_token=TOKEN"},
            400,
            'Bearer realm="oauth2", error="invalid_request", '
            'error_description="use exactly one way to send the access token"',
            id="two-sources",
        ),
        pytest.param(
            {"headers": {"Authorization": "Bearer TOKEN"}, "path": "/admin"},
            403,
            'Bearer realm="oauth2", error="insufficient_scope", '
            'error_description="the token lacks a required scope", scope="admin"',
            id="insufficient-scope",
        ),
        pytest.param(
            {"headers": {"Authorization": "Basic Zm9vOmJhcg=="}},
            401,
            'Bearer realm="oauth2"',
            id="other-scheme",
        ),
    ],
)
def test_bearer_challenges_are_exactly_rfc6750(make_middleware, request_kwargs, status, challenge):
    app = webtest.TestApp(make_middleware(token_from_query="true", scope_rules="* /admin admin"))
    token = issue_token(app)
    headers = {
        name: value.replace("TOKEN", token) for name, value in request_kwargs.get("headers", {}).items()
    }
    query = request_kwargs.get("query", "").replace("TOKEN", token)
    path = request_kwargs.get("path", "/api/me") + (f"?{query}" if query else "")
    response = app.get(path, headers=headers, status=status)
    assert response.headers.getall("WWW-Authenticate") == [challenge]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == "Authorization"
    error = challenge.partition('error="')[2].partition('"')[0]
    assert response.json.get("error") == (error or None)  # no error code without credentials


# -- 303 after every POST to the authorization endpoint ----------------------------------------------------


def test_every_redirect_after_a_post_to_the_authorization_endpoint_is_303(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, login_url="https://sso.example/login"))
    assert app.post(AUTHORIZE, code_request(), status=303)  # to the login URL
    app = webtest.TestApp(flow_middleware(make_middleware))
    assert app.post(AUTHORIZE, code_request(scope="nonsense"), status=303)  # an error back to the client
    assert app.post(AUTHORIZE, {**code_request(), "step": "login", "csrf_token": "x"}, status=400)  # a page
    assert approve(app, code_request())  # login, then consent: both 303 (asserted in approve)
    assert approve(app, code_request(), decision="deny")
    page = app.post(AUTHORIZE, code_request())  # logged in now: the consent page
    fields = {
        name: field[0].value for name, field in page.forms[0].fields.items() if name and name != "decision"
    }
    assert app.post(AUTHORIZE, {**fields, "decision": "maybe"}, status=303)
    assert VERIFIER  # (the code flow above used the PKCE pair of oauth_flows)
