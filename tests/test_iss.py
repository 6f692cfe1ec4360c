"""RFC 9207: every authorization response names the issuer in ``iss``: success and error, query and fragment."""

from __future__ import annotations

import pytest
import webtest
from oauth_flows import (
    AUTHORIZE,
    NATIVE_REDIRECT,
    SPA_ID,
    SPA_REDIRECT,
    approve,
    code_request,
    flow_middleware,
    location_params,
    login,
)

ISSUER = "https://auth.example.com/tenant-1"
METADATA = "/.well-known/oauth-authorization-server"


@pytest.fixture
def app(make_middleware):
    return webtest.TestApp(flow_middleware(make_middleware, issuer=ISSUER, response_types="code token"))


def implicit_request(**overrides):
    params = {"response_type": "token", "client_id": SPA_ID, "scope": "read", "state": "st-9", **overrides}
    return {key: value for key, value in params.items() if value is not None}


def test_code_response_carries_iss(app):
    params = location_params(approve(app, code_request()))
    assert set(params) == {"code", "state", "iss"}
    assert params["iss"] == ISSUER


def test_token_response_in_the_fragment_carries_iss(app):
    location = approve(app, implicit_request())
    assert location.startswith(SPA_REDIRECT + "#")
    params = location_params(location, fragment=True)
    assert params["iss"] == ISSUER
    assert params["state"] == "st-9"
    assert "access_token" in params


@pytest.mark.parametrize(
    ("params", "fragment", "error"),
    [
        pytest.param(code_request(scope="nope"), False, "invalid_scope", id="query-invalid-scope"),
        pytest.param(code_request(code_challenge=None), False, "invalid_request", id="query-no-pkce"),
        pytest.param(
            code_request(response_type="magic"), False, "unsupported_response_type", id="query-type"
        ),
        pytest.param(implicit_request(scope="nope"), True, "invalid_scope", id="fragment-invalid-scope"),
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_redirected_errors_carry_iss(app, params, fragment, error, method):
    response = getattr(app, method)(AUTHORIZE, params, status=302 if method == "get" else 303)
    answer = location_params(response.headers["Location"], fragment=fragment)
    assert answer["error"] == error
    assert answer["iss"] == ISSUER


@pytest.mark.parametrize(
    ("params", "fragment"),
    [pytest.param(code_request(), False, id="code"), pytest.param(implicit_request(), True, id="token")],
)
def test_access_denied_carries_iss(app, params, fragment):
    answer = location_params(approve(app, params, decision="deny"), fragment=fragment)
    assert answer == {
        "error": "access_denied",
        "error_description": "the user denied the request",
        "state": params["state"],
        "iss": ISSUER,
    }


def test_interaction_errors_carry_iss(app):
    consent = login(app, code_request())
    form = consent.forms[0]
    fields = [(name, value) for name, value in form.submit_fields() if name != "step"] + [("step", "nowhere")]
    response = app.post(AUTHORIZE, fields, status=303)
    answer = location_params(response.headers["Location"])
    assert answer["error"] == "invalid_request"
    assert answer["iss"] == ISSUER


def test_error_pages_have_no_redirect(app):
    response = app.get(AUTHORIZE, code_request(redirect_uri="https://evil.example/cb"), status=400)
    assert "Location" not in response.headers


def test_iss_is_encoded_in_the_redirect(app):
    location = approve(app, code_request())
    assert location.startswith(NATIVE_REDIRECT + "?")
    assert "iss=https%3A%2F%2Fauth.example.com%2Ftenant-1" in location


@pytest.mark.parametrize(
    ("settings", "advertised"),
    [
        pytest.param({}, True, id="code"),
        pytest.param({"response_types": "code token"}, True, id="code-and-token"),
        pytest.param({"grants": "client_credentials"}, False, id="no-authorization-endpoint"),
    ],
)
def test_metadata_advertises_iss_support_with_the_authorization_endpoint(
    make_middleware, settings, advertised
):
    document = webtest.TestApp(make_middleware(**settings)).get(METADATA).json
    assert ("authorization_response_iss_parameter_supported" in document) is advertised
    assert ("authorization_endpoint" in document) is advertised
    if advertised:
        assert document["authorization_response_iss_parameter_supported"] is True
