"""The interaction (oauth_middleware.interaction) used by a flow other than the authorization request.

A test-only "device" page parks the request a user code names as a
:class:`PendingRequest` and hands it to the same :class:`Interaction` the
authorization endpoint uses: login, consent and the decision run over HTTP
without any authorization-request parameter, and the forms' CSRF tokens are
bound to the pending request, the browser session and the user.
"""

from __future__ import annotations

import html

import pytest
import webtest
from oauth_flows import NATIVE_ID, flow_middleware
from webob import Request, Response

from oauth_middleware.endpoints import ENDPOINTS, Endpoint
from oauth_middleware.endpoints.base import with_webob
from oauth_middleware.errors import FatalClientError, OAuthError
from oauth_middleware.interaction import PendingRequest
from oauth_middleware.responses import html_page
from oauth_middleware.server import AuthorizationServer

DEVICE = "/test/device"
#: user code -> the scopes its (fake) device asked for, for the ``native`` client.
USER_CODES = {"ABCD-EFGH": ("read",), "WXYZ-1234": ("read", "write")}
#: user code -> what became of it: "approved by <user>" or the error code.
DECISIONS: dict[str, str] = {}


def device_page(server: AuthorizationServer, request: Request) -> Response:
    """The user-code page of a fake device flow: one more user of the interaction."""
    items = list(request.GET.items()) if request.method == "GET" else list(request.POST.items())
    code = dict(items).get("user_code", "")
    scopes = USER_CODES.get(code)
    client = server.repository.get_client(NATIVE_ID)
    if scopes is None or client is None:
        raise FatalClientError("unknown user code")

    def approve(user_id: str) -> Response:
        DECISIONS[code] = f"approved by {user_id}"
        return html_page("Device approved", "<p>You may go back to your device.</p>")

    def deny(error: OAuthError) -> Response:
        DECISIONS[code] = error.error
        return html_page("Device refused", f"<p>{html.escape(error.error)}</p>")

    pending = PendingRequest(
        id=f"device:{code}",
        client=client,
        scopes=scopes,
        destination="",
        fields={"user_code": code},
        approve=approve,
        deny=deny,
    )
    interaction = server.authorize_context.interaction
    if request.method == "GET":
        return interaction.start(request, pending)
    return interaction.resume(request, pending, items)


@pytest.fixture
def middleware(make_middleware):
    ENDPOINTS.register(
        "test_device", Endpoint("test_device", with_webob(device_page), ("GET", "POST"), path=DEVICE)
    )
    DECISIONS.clear()
    yield flow_middleware(make_middleware, endpoints="test_device", throttle_max_failures="3")
    ENDPOINTS.unregister("test_device")


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware)


def fields(page: webtest.TestResponse) -> dict[str, str]:
    """What a browser posts from the page's form, without the buttons."""
    return {name: f[0].value for name, f in page.forms[0].fields.items() if name and name != "decision"}


def logged_in(app: webtest.TestApp, code: str, user: str = "alice") -> webtest.TestResponse:
    """Log in on the device page for ``code``; the consent page that follows."""
    form = app.get(DEVICE, {"user_code": code}).forms[0]
    form["username"], form["password"] = user, f"{user}-password"
    answer = form.submit(status=303)
    assert answer.headers["Location"] == f"http://localhost{DEVICE}?user_code={code}"
    return answer.follow(status=200)


def test_login_consent_and_approval_on_another_flow(app):
    login = app.get(DEVICE, {"user_code": "WXYZ-1234"}, status=200)
    assert fields(login) == {
        "user_code": "WXYZ-1234",
        "step": "login",
        "csrf_token": login.forms[0]["csrf_token"].value,
        "username": "",
        "password": "",
    }
    assert "oauth2_session" in app.cookies
    assert f"Path={DEVICE}" in login.headers["Set-Cookie"]
    consent = logged_in(app, "WXYZ-1234")
    assert consent.forms[0]["step"].value == "consent"
    assert "<code>read</code>" in consent.text and "<code>write</code>" in consent.text
    assert "response_type" not in fields(consent)
    answer = app.post(DEVICE, {**fields(consent), "decision": "approve"}, status=200)
    assert "Device approved" in answer.text
    assert DECISIONS == {"WXYZ-1234": "approved by alice"}


@pytest.mark.parametrize(
    ("decision", "outcome"),
    [
        pytest.param("deny", "access_denied", id="denied"),
        pytest.param("maybe", "invalid_request", id="no-such-decision"),
    ],
)
def test_refusals_go_to_the_pending_request(app, decision, outcome):
    consent = logged_in(app, "ABCD-EFGH")
    answer = app.post(DEVICE, {**fields(consent), "decision": decision}, status=200)
    assert "Device refused" in answer.text
    assert {"ABCD-EFGH": outcome} == DECISIONS


def test_a_repeated_form_field_is_refused(app):
    consent = logged_in(app, "ABCD-EFGH")
    body = [*fields(consent).items(), ("decision", "approve"), ("decision", "approve")]
    app.post(DEVICE, body, status=200)
    assert DECISIONS == {"ABCD-EFGH": "invalid_request"}


def assert_refused_page(response: webtest.TestResponse) -> None:
    assert response.status_int == 400
    assert "Location" not in response.headers
    assert "did not come from this server" in response.text
    assert DECISIONS == {}


def test_a_consent_token_of_one_pending_request_fails_on_another(app):
    consent = logged_in(app, "ABCD-EFGH")
    # Same browser session, same user, another pending request.
    stolen = {**fields(consent), "user_code": "WXYZ-1234", "decision": "approve"}
    assert_refused_page(app.post(DEVICE, stolen, expect_errors=True))


def test_a_login_token_of_one_pending_request_fails_on_another(app):
    login = app.get(DEVICE, {"user_code": "ABCD-EFGH"})
    posted = {**fields(login), "user_code": "WXYZ-1234", "username": "alice", "password": "alice-password"}
    assert_refused_page(app.post(DEVICE, posted, expect_errors=True))
    # Nobody logged in: the page still asks for a login.
    assert app.get(DEVICE, {"user_code": "WXYZ-1234"}).forms[0]["step"].value == "login"


def test_a_consent_token_fails_in_another_session_of_the_same_user(middleware, app):
    consent = logged_in(app, "ABCD-EFGH")
    other = webtest.TestApp(middleware)
    logged_in(other, "ABCD-EFGH")  # alice again, in another browser
    assert_refused_page(other.post(DEVICE, {**fields(consent), "decision": "approve"}, expect_errors=True))


def test_a_consent_token_fails_for_another_user(middleware, app):
    consent = logged_in(app, "ABCD-EFGH", user="alice")
    other = webtest.TestApp(middleware)
    logged_in(other, "ABCD-EFGH", user="bob")
    assert_refused_page(other.post(DEVICE, {**fields(consent), "decision": "approve"}, expect_errors=True))


def test_a_throttled_login_is_a_429_page(app):
    def attempt(password: str) -> webtest.TestResponse:
        form = app.get(DEVICE, {"user_code": "ABCD-EFGH"}).forms[0]
        form["username"], form["password"] = "alice", password
        return form.submit(expect_errors=True)

    for _ in range(3):
        assert "Wrong username or password." in attempt("guess").text
    answer = attempt("alice-password")
    assert answer.status_int == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 300
    assert answer.forms[0]["step"].value == "login"
    assert answer.forms[0]["user_code"].value == "ABCD-EFGH"
    assert "Location" not in answer.headers and "Set-Cookie" not in answer.headers


def test_an_unknown_user_code_is_a_page(app):
    assert "unknown user code" in app.get(DEVICE, {"user_code": "NOPE"}, status=400).text
