"""Token endpoint: client authentication and the client credentials grant (RFC 6749 §2.3, §4.4, §5)."""

from __future__ import annotations

import base64

import pytest
from conftest import SERVICE_ID, SERVICE_SECRET, allow_body_secret, basic, issue_token, register
from flaky_store import FlakyStore

from oauth_middleware.models import digest

TOKEN = "/oauth/token"


def post_token(app, params, *, headers=None, status=200):
    return app.post(TOKEN, params, headers=headers or {}, status=status)


def test_client_credentials_with_basic_auth(app):
    response = post_token(
        app,
        {"grant_type": "client_credentials", "scope": "read"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
    )
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read"
    assert len(body["access_token"]) >= 43  # 256 bits, base64url
    assert "refresh_token" not in body  # RFC 6749 §4.4.3
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.content_type == "application/json"


def test_client_credentials_with_body_auth(middleware, app):
    allow_body_secret(middleware, SERVICE_ID)  # registered for client_secret_post
    response = post_token(
        app,
        {"grant_type": "client_credentials", "client_id": SERVICE_ID, "client_secret": SERVICE_SECRET},
    )
    # No scope asked: the client's registered scopes.
    assert response.json["scope"] == "read write"


def test_basic_credentials_are_form_decoded(middleware, app):
    register(middleware, "odd id", "p@ss:w/rd+=", grant_types=["client_credentials"])
    response = post_token(
        app, {"grant_type": "client_credentials"}, headers={"Authorization": basic("odd id", "p@ss:w/rd+=")}
    )
    assert response.json["token_type"] == "Bearer"


def test_default_scope_setting(make_middleware):
    import webtest

    app = webtest.TestApp(make_middleware(default_scope="read"))
    response = post_token(
        app,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
    )
    assert response.json["scope"] == "read"


def test_tokens_are_unique_and_stored_hashed(middleware, app):
    first, second = issue_token(app), issue_token(app)
    assert first != second
    store = middleware.server.store
    assert store.get(f"at:{first}") is None
    assert store.get(f"at:{digest(first)}") is not None


def _error(response):
    assert response.headers["Cache-Control"] == "no-store"
    return response.json["error"]


@pytest.mark.parametrize(
    ("params", "headers", "status", "error"),
    [
        pytest.param(
            {"scope": "read"},
            {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            400,
            "invalid_request",
            id="no-grant-type",
        ),
        pytest.param(
            {"grant_type": "urn:unknown"},
            {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            400,
            "unsupported_grant_type",
            id="unknown-grant",
        ),
        pytest.param(
            {"grant_type": "password", "username": "u", "password": "p"},
            {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            400,
            "unsupported_grant_type",
            id="grant-not-enabled",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "scope": "admin"},
            {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            400,
            "invalid_scope",
            id="scope-beyond-client",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "scope": "nonsense"},
            {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            400,
            "invalid_scope",
            id="scope-unknown-to-server",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "scope": 'bad"scope'},
            {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            400,
            "invalid_scope",
            id="scope-bad-characters",
        ),
        pytest.param({"grant_type": "client_credentials"}, {}, 401, "invalid_client", id="no-client-auth"),
        pytest.param(
            {"grant_type": "client_credentials", "client_id": SERVICE_ID},
            {},
            401,
            "invalid_client",
            id="confidential-without-secret",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "client_id": SERVICE_ID, "client_secret": "wrong"},
            {},
            401,
            "invalid_client",
            id="wrong-secret-in-body",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
            {},
            401,
            "invalid_client",
            id="unknown-client",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "client_secret": SERVICE_SECRET},
            {},
            401,
            "invalid_client",
            id="secret-without-id",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "client_secret": SERVICE_SECRET},
            {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            400,
            "invalid_request",
            id="two-auth-methods",
        ),
        pytest.param(
            {"grant_type": "client_credentials", "client_id": "other"},
            {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            400,
            "invalid_request",
            id="body-client-id-differs-from-basic",
        ),
    ],
)
def test_token_errors(app, params, headers, status, error):
    response = post_token(app, params, headers=headers, status=status)
    assert _error(response) == error


def test_stored_hash_is_not_accepted_as_the_secret(middleware, app):
    """Regression for a bug other libraries shipped: comparing the presented secret with the stored hash."""
    stored_hash = middleware.server.repository.get_client(SERVICE_ID).secret_hash
    response = post_token(
        app,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE_ID, stored_hash)},
        status=401,
    )
    assert _error(response) == "invalid_client"


def test_chosen_secret_hash_is_checked_in_constant_time_and_only_right_secrets_pass(
    middleware, app, monkeypatch
):
    import hmac

    from oauth_middleware.clients import build_client
    from oauth_middleware.secret_hash import pbkdf2_hash

    stored = pbkdf2_hash("chosen-secret", iterations=1000)
    client = build_client("chosen", secret_hash=stored, grant_types=["client_credentials"])
    middleware.server.repository.save_client(client)
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))

    def status(secret):
        headers = {"Authorization": basic("chosen", secret)}
        return post_token(app, {"grant_type": "client_credentials"}, headers=headers, status="*").status_int

    assert status("chosen-secret!") == 401
    assert any(stored.rsplit("$", 1)[1] in pair for pair in compared)
    # A right secret passes (again from memory), a wrong one never does, nor the stored hash.
    assert [status("chosen-secret"), status("chosen-secret"), status("chosen-secre"), status(stored)] == [
        200,
        200,
        401,
        401,
    ]


def test_invalid_client_with_basic_has_basic_challenge(app):
    response = post_token(
        app,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE_ID, "wrong")},
        status=401,
    )
    assert response.headers["WWW-Authenticate"] == 'Basic realm="oauth2"'
    assert _error(response) == "invalid_client"


def test_invalid_client_without_basic_still_has_a_basic_challenge(app):
    # Changed in 0.2.0 (issue 10, item 10): every 401 carries a challenge (RFC 9110 §15.5.2).
    response = post_token(
        app, {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}, status=401
    )
    assert response.headers["WWW-Authenticate"] == 'Basic realm="oauth2"'


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic !!!notbase64", id="not-base64"),
        pytest.param("Basic " + base64.b64encode(b"no-colon").decode(), id="no-colon"),
        pytest.param("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), id="not-utf8"),
        pytest.param("Basic " + base64.b64encode(b":secret").decode(), id="empty-id"),
    ],
)
def test_malformed_basic_is_invalid_client(app, header):
    response = post_token(
        app, {"grant_type": "client_credentials"}, headers={"Authorization": header}, status=401
    )
    assert _error(response) == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_public_client_cannot_use_client_credentials(middleware, app):
    register(
        middleware, "spa", None, grant_types=["authorization_code"], redirect_uris=["https://spa.example/cb"]
    )
    response = post_token(app, {"grant_type": "client_credentials", "client_id": "spa"}, status=400)
    assert _error(response) == "unauthorized_client"


def test_client_not_registered_for_grant(middleware, app):
    register(
        middleware,
        "web",
        "web-secret",
        grant_types=["authorization_code"],
        redirect_uris=["https://web.example/cb"],
    )
    response = post_token(
        app,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic("web", "web-secret")},
        status=400,
    )
    assert _error(response) == "unauthorized_client"


def test_get_is_method_not_allowed(app):
    response = app.get(TOKEN, {"grant_type": "client_credentials"}, status=405)
    assert response.headers["Allow"] == "POST"
    assert _error(response) == "invalid_request"


def test_json_body_is_invalid_request(app):
    response = app.post_json(TOKEN, {"grant_type": "client_credentials"}, status=400)
    assert _error(response) == "invalid_request"


def test_repeated_parameter_is_invalid_request(app):
    body = "grant_type=client_credentials&scope=read&scope=write"
    response = app.post(
        TOKEN,
        body,
        headers={
            "Authorization": basic(SERVICE_ID, SERVICE_SECRET),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        status=400,
    )
    assert _error(response) == "invalid_request"


def test_non_utf8_body_is_invalid_request(app):
    response = app.post(
        TOKEN,
        b"grant_type=client_credentials&scope=%ff%fe",
        headers={
            "Authorization": basic(SERVICE_ID, SERVICE_SECRET),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        status=400,
    )
    assert _error(response) == "invalid_request"


def test_store_down_is_503_temporarily_unavailable(make_middleware):
    import webtest

    store = FlakyStore()
    middleware = make_middleware(store_backend=store)
    app = webtest.TestApp(middleware)
    store.down = True
    response = post_token(
        app,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
        status=503,
    )
    assert _error(response) == "temporarily_unavailable"
    assert response.headers["Retry-After"].isdigit()
    store.down = False
    post_token(
        app,
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
    )


def test_a_body_cut_short_of_its_content_length_is_invalid_request(middleware):
    """The edge reads the form straight from the stream; a message cut short is not acted on (it was)."""
    from webob import Request

    request = Request.blank(
        "/oauth/token",
        method="POST",
        body=b"grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
    )
    request.environ["CONTENT_LENGTH"] = "100"  # more than was sent (a client that hung up)
    response = request.get_response(middleware)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"
