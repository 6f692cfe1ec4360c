"""The device authorization grant (RFC 8628) over HTTP: the endpoint, the user-code page, polling."""

from __future__ import annotations

import json
import re

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, register
from oauth_flows import WEB_ID, flow_middleware

from oauth_middleware.cli import main
from oauth_middleware.demo import DemoApp
from oauth_middleware.grants.device_code import USER_CODE_ALPHABET, normalize_user_code
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.records import DeviceCodeRecord

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_AUTHORIZATION = "/oauth/device_authorization"
PAGE = "/oauth/device"
TOKEN = "/oauth/token"
TV_ID, OTHER_TV_ID = "tv", "other-tv"


@pytest.fixture
def middleware(make_middleware, clock):
    middleware = flow_middleware(
        make_middleware,
        clock=clock,
        grants=f"authorization_code refresh_token client_credentials {GRANT}",
        refresh_token_grants=f"authorization_code {GRANT}",
        throttle_max_failures="3",
    )
    for client_id in (TV_ID, OTHER_TV_ID):
        register(middleware, client_id, None, grant_types=[GRANT, "refresh_token"], scopes=["read", "write"])
    return middleware


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware, extra_environ={"REMOTE_ADDR": "203.0.113.5"})


def authorize_device(app: webtest.TestApp, client_id: str = TV_ID, **params: str) -> dict[str, object]:
    """The device's first request: its device code, user code and where the user goes."""
    response = app.post(DEVICE_AUTHORIZATION, {"client_id": client_id, "scope": "read", **params})
    assert response.headers["Cache-Control"] == "no-store"
    return dict(response.json)


def poll(
    app: webtest.TestApp, device_code: str, client_id: str = TV_ID, status: int = 400
) -> dict[str, object]:
    """One poll of the token endpoint; its JSON answer."""
    body = {"grant_type": GRANT, "device_code": device_code, "client_id": client_id}
    return dict(app.post(TOKEN, body, status=status).json)


def fields(page: webtest.TestResponse) -> dict[str, str]:
    """What a browser posts from the page's form, without the buttons."""
    return {name: f[0].value for name, f in page.forms[0].fields.items() if name and name != "decision"}


def decide(
    app: webtest.TestApp, user_code: str, decision: str = "approve", user: str = "alice"
) -> webtest.TestResponse:
    """The user: enter the code, log in, approve or deny on the consent page."""
    login = app.get(PAGE, {"user_code": user_code}, status=200)
    form = login.forms[0]
    form["username"], form["password"] = user, f"{user}-password"
    consent = form.submit(status=303).follow(status=200)
    assert consent.forms[0]["step"].value == "consent"
    return app.post(PAGE, {**fields(consent), "decision": decision})


# -- the device authorization endpoint -------------------------------------------------


def test_device_authorization_response(app, clock):
    answer = authorize_device(app)
    assert set(answer) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert len(str(answer["device_code"])) >= 43
    assert re.fullmatch(f"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}", str(answer["user_code"]))
    assert answer["verification_uri"] == "http://localhost/oauth/device"
    assert (
        answer["verification_uri_complete"]
        == f"http://localhost/oauth/device?user_code={answer['user_code']}"
    )
    assert (answer["expires_in"], answer["interval"]) == (600, 5)


def test_device_code_is_stored_hashed(middleware, app):
    answer = authorize_device(app)
    keys = list(middleware.server.store._values)  # the memory store's keys
    assert not any(str(answer["device_code"]) in key for key in keys)
    assert not any(str(answer["user_code"]).replace("-", "") in key.replace("-", "") for key in keys)


def test_confidential_client_authenticates(middleware, app):
    register(middleware, "box", "box-secret-0123456789", grant_types=[GRANT], scopes=["read"])
    app.post(
        DEVICE_AUTHORIZATION, {"scope": "read"}, headers={"Authorization": basic("box", "nope")}, status=401
    )
    answer = app.post(
        DEVICE_AUTHORIZATION,
        {"scope": "read"},
        headers={"Authorization": basic("box", "box-secret-0123456789")},
    )
    assert answer.json["interval"] == 5


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        pytest.param({"client_id": "nobody"}, {}, 401, "invalid_client", id="unknown-client"),
        pytest.param({"scope": "read"}, {}, 401, "invalid_client", id="no-client"),
        pytest.param(
            {"client_id": TV_ID, "scope": "admin"}, {}, 400, "invalid_scope", id="scope-not-allowed"
        ),
        pytest.param({"client_id": TV_ID, "scope": "nope"}, {}, 400, "invalid_scope", id="unknown-scope"),
        pytest.param(
            {"scope": "read"},
            {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            400,
            "unauthorized_client",
            id="client-without-the-grant",
        ),
        pytest.param(
            {"client_id": TV_ID, "scope": "read", "x": "1"}, {}, 200, None, id="unknown-parameter-ignored"
        ),
    ],
)
def test_device_authorization_errors(app, form, headers, status, error):
    response = app.post(DEVICE_AUTHORIZATION, form, headers=headers, status=status)
    assert response.json.get("error") == error


def test_get_is_not_allowed(app):
    assert app.get(DEVICE_AUTHORIZATION, status=405).headers["Allow"] == "POST"


def test_metadata_names_the_endpoint(app):
    document = app.get("/.well-known/oauth-authorization-server").json
    assert document["device_authorization_endpoint"] == "http://localhost/oauth/device_authorization"
    assert GRANT in document["grant_types_supported"]


def test_without_the_grant_nothing_is_served(make_middleware):
    app = webtest.TestApp(make_middleware())
    assert "device_authorization_endpoint" not in app.get("/.well-known/oauth-authorization-server").json
    app.post(DEVICE_AUTHORIZATION, {"client_id": TV_ID}, status=401)  # the demo app's guard
    app.get(PAGE, status=401)


# -- polling (RFC 8628 §3.4, §3.5) -----------------------------------------------------


def test_approved_device_gets_tokens_once(app, clock):
    answer = authorize_device(app, scope="read write")
    assert poll(app, str(answer["device_code"]))["error"] == "authorization_pending"
    approved = decide(app, str(answer["user_code"]))
    assert approved.status_int == 200 and "Device connected" in approved.text
    assert approved.headers["X-Frame-Options"] == "DENY"
    clock.advance(5)
    tokens = poll(app, str(answer["device_code"]), status=200)
    assert tokens["scope"] == "read write" and tokens["token_type"] == "Bearer"
    assert "refresh_token" in tokens
    clock.advance(5)
    assert poll(app, str(answer["device_code"])) == {
        "error": "invalid_grant",
        "error_description": "the device code was already used",
    }
    me = app.get("/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}, status=200)
    assert "alice" in me.text
    refreshed = app.post(
        TOKEN, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": TV_ID}
    )
    assert refreshed.json["scope"] == "read write"


def polled_after(app, clock, case: str) -> str:
    """A device code in the state ``case`` names, and the client polling for it."""
    if case == "unknown":
        return "x" * 43
    answer = authorize_device(app)
    device_code, user_code = str(answer["device_code"]), str(answer["user_code"])
    if case == "denied":
        assert "Device refused" in decide(app, user_code, "deny").text
    elif case == "expired":
        clock.advance(601)
    elif case == "used":
        decide(app, user_code)
        poll(app, device_code, status=200)
    elif case == "expired-after-approval":
        decide(app, user_code)
        clock.advance(601)
    return device_code


@pytest.mark.parametrize(
    ("case", "client_id", "error"),
    [
        pytest.param("unknown", TV_ID, "invalid_grant", id="unknown-device-code"),
        pytest.param("pending", OTHER_TV_ID, "invalid_grant", id="foreign-device-code"),
        pytest.param("pending", TV_ID, "authorization_pending", id="pending"),
        pytest.param("denied", TV_ID, "access_denied", id="denied"),
        pytest.param("expired", TV_ID, "expired_token", id="expired"),
        pytest.param("expired-after-approval", TV_ID, "expired_token", id="approved-then-expired"),
        pytest.param("used", TV_ID, "invalid_grant", id="used"),
    ],
)
def test_poll_errors(app, clock, case, client_id, error):
    device_code = polled_after(app, clock, case)
    clock.advance(5)
    answer = poll(app, device_code, client_id=client_id)
    assert answer["error"] == error


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        pytest.param({"grant_type": GRANT, "client_id": TV_ID}, 400, "invalid_request", id="no-device-code"),
        pytest.param(
            {"grant_type": GRANT, "client_id": WEB_ID, "device_code": "x"},
            401,
            "invalid_client",
            id="confidential-without-secret",
        ),
        pytest.param(
            {"grant_type": GRANT, "client_id": "native", "device_code": "x"},
            400,
            "unauthorized_client",
            id="client-without-the-grant",
        ),
    ],
)
def test_poll_request_errors(app, form, status, error):
    assert app.post(TOKEN, form, status=status).json["error"] == error


def test_polling_too_fast_is_slow_down_and_raises_the_interval(app, clock):
    device_code = str(authorize_device(app)["device_code"])
    assert poll(app, device_code)["error"] == "authorization_pending"
    clock.advance(4)
    assert poll(app, device_code)["error"] == "slow_down"
    # The interval is now 10 s: 5 s later is still too fast.
    clock.advance(5)
    slow = poll(app, device_code)
    assert slow["error"] == "slow_down"
    assert "15 seconds" in str(slow["error_description"])
    clock.advance(15)
    assert poll(app, device_code)["error"] == "authorization_pending"


def test_slow_down_is_remembered_by_another_process(middleware, make_middleware, clock):
    """A second middleware on the same store (another worker) asks for the raised interval."""
    first = webtest.TestApp(middleware)
    second = webtest.TestApp(
        make_middleware(
            store_backend=middleware.server.store,
            clock=clock,
            grants=f"refresh_token {GRANT}",
            refresh_token_grants=GRANT,
        )
    )
    device_code = str(authorize_device(first)["device_code"])
    assert poll(first, device_code)["error"] == "authorization_pending"
    assert poll(second, device_code)["error"] == "slow_down"
    clock.advance(6)
    assert poll(first, device_code)["error"] == "slow_down"  # 10 s from the last poll, now 15
    clock.advance(15)
    assert poll(first, device_code)["error"] == "authorization_pending"


# -- the user-code page ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entered", "normalized"),
    [
        pytest.param("BCDF-GHJK", "BCDF-GHJK", id="as-shown"),
        pytest.param("bcdfghjk", "BCDF-GHJK", id="lower-case-no-dash"),
        pytest.param(" bc df - gh jk ", "BCDF-GHJK", id="spaces-and-dashes"),
        pytest.param("BCDF-GHJ", None, id="too-short"),
        pytest.param("BCDF-GHJKL", None, id="too-long"),
        pytest.param("ABCD-EFGH", None, id="vowels-are-not-in-the-alphabet"),
        pytest.param("BCDF-GHJ1", None, id="digits-are-not-in-the-alphabet"),
        pytest.param("BCDF\u2013GHJK", None, id="en-dash"),
    ],
)
def test_user_code_normalization(entered, normalized):
    assert normalize_user_code(entered) == normalized


def test_entry_page_is_protected(app):
    page = app.get(PAGE, status=200)
    assert page.forms[0].method.upper() == "GET"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert "no-store" in page.headers["Cache-Control"]


def test_code_typed_in_lower_case_without_dash(app, clock):
    answer = authorize_device(app)
    typed = str(answer["user_code"]).replace("-", "").lower()
    page = app.get(PAGE, {"user_code": typed}, status=200)
    assert page.forms[0]["step"].value == "login"
    assert page.forms[0]["user_code"].value == answer["user_code"]


def test_consent_page_names_client_and_scopes(app):
    answer = authorize_device(app, scope="read write")
    login = app.get(str(answer["verification_uri_complete"]).removeprefix("http://localhost"))
    form = login.forms[0]
    form["username"], form["password"] = "alice", "alice-password"
    consent = form.submit(status=303).follow(status=200)
    assert "<code>read</code>" in consent.text and "<code>write</code>" in consent.text
    assert TV_ID in consent.text
    assert consent.headers["X-Frame-Options"] == "DENY"


def test_consent_without_csrf_token_is_refused(app, clock):
    answer = authorize_device(app)
    login = app.get(PAGE, {"user_code": answer["user_code"]})
    form = login.forms[0]
    form["username"], form["password"] = "alice", "alice-password"
    consent = form.submit(status=303).follow(status=200)
    forged = {**fields(consent), "csrf_token": "0" * 64, "decision": "approve"}
    refused = app.post(PAGE, forged, status=400)
    assert "did not come from this server" in refused.text
    clock.advance(5)
    assert poll(app, str(answer["device_code"]))["error"] == "authorization_pending"


def test_a_user_code_decides_once(app, clock):
    answer = authorize_device(app)
    login = app.get(PAGE, {"user_code": answer["user_code"]})
    form = login.forms[0]
    form["username"], form["password"] = "alice", "alice-password"
    consent = form.submit(status=303).follow(status=200)
    approve = {**fields(consent), "decision": "approve"}
    assert "Device connected" in app.post(PAGE, approve, status=200).text
    # The same form again (a second tab): the code is gone.
    assert "wrong or has expired" in app.post(PAGE, {**fields(consent), "decision": "deny"}, status=400).text
    clock.advance(5)
    assert poll(app, str(answer["device_code"]), status=200)["access_token"]


@pytest.mark.parametrize(
    "entered",
    [
        pytest.param("BCDF-GHJK", id="unknown"),
        pytest.param("not a code", id="malformed"),
        pytest.param("x" * 5000, id="long"),
    ],
)
def test_wrong_user_code_is_the_entry_page_again(app, entered):
    page = app.get(PAGE, {"user_code": entered}, status=400)
    assert "wrong or has expired" in page.text
    assert page.forms[0].method.upper() == "GET"


def test_expired_user_code_is_refused(app, clock):
    answer = authorize_device(app)
    clock.advance(601)
    assert "wrong or has expired" in app.get(PAGE, {"user_code": answer["user_code"]}, status=400).text


def test_user_code_guessing_is_throttled_per_address(app, clock):
    answer = authorize_device(app)
    for guess in ("BCDF-BCDF", "BCDF-BCDG", "BCDF-BCDH"):
        app.get(PAGE, {"user_code": guess}, status=400)
    # Blocked: even the right code is not looked up from this address.
    blocked = app.get(PAGE, {"user_code": answer["user_code"]}, status=429)
    assert 1 <= int(blocked.headers["Retry-After"]) <= 300
    assert "Too many wrong codes" in blocked.text
    # Another address still may.
    other = app.get(PAGE, {"user_code": answer["user_code"]}, extra_environ={"REMOTE_ADDR": "192.0.2.9"})
    assert other.forms[0]["step"].value == "login"
    clock.advance(301)
    assert app.get(PAGE, {"user_code": answer["user_code"]}).status_int == 200


def test_user_code_guessing_is_throttled_globally(make_middleware, clock):
    middleware = flow_middleware(
        make_middleware, clock=clock, grants=GRANT, refresh_token_grants="", device_user_code_max_failures="4"
    )
    register(middleware, TV_ID, None, grant_types=[GRANT], scopes=["read"])
    app = webtest.TestApp(middleware)
    answer = authorize_device(app)
    for n in range(4):  # four addresses, one wrong code each
        app.get(PAGE, {"user_code": "BCDF-BCDF"}, extra_environ={"REMOTE_ADDR": f"192.0.2.{n}"}, status=400)
    app.get(
        PAGE, {"user_code": answer["user_code"]}, extra_environ={"REMOTE_ADDR": "198.51.100.1"}, status=429
    )


def test_right_codes_are_not_counted(app):
    for _ in range(5):
        answer = authorize_device(app)
        app.get(PAGE, {"user_code": answer["user_code"]}, status=200)


def test_page_post_must_be_a_form(app):
    app.post(PAGE, b"{}", content_type="application/json", status=400)


def test_a_public_device_is_never_approved_without_the_user(make_middleware, clock):
    """RFC 8628 §5.5: anyone can send a public device client's id, so consent is never remembered for it."""
    middleware = flow_middleware(
        make_middleware, clock=clock, grants=GRANT, refresh_token_grants="", remember_consent="true"
    )
    register(middleware, TV_ID, None, grant_types=[GRANT], scopes=["read"])
    app = webtest.TestApp(middleware, extra_environ={"REMOTE_ADDR": "203.0.113.5"})
    decide(app, str(authorize_device(app)["user_code"]))
    again = app.get(PAGE, {"user_code": authorize_device(app)["user_code"]}, status=200)
    assert again.forms[0]["step"].value == "consent"


def test_cli_registers_a_device_client(capsys, tmp_path):
    """``client add --grant urn:ietf:params:oauth:grant-type:device_code``: the grant registry knows the name."""
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        f"store = sqlite:///%(here)s/oauth.db\nscopes = read write\ngrants = {GRANT}\n"
    )
    argv = ["client", "add", str(ini), "--client-id", "tv", "--public", "--grant", GRANT, "--scope", "read"]
    assert main(argv) == 0
    assert main(["client", "list", str(ini)]) == 0
    assert f"tv\tpublic\tgrants={GRANT}" in capsys.readouterr().out
    middleware = OAuth2Middleware(
        DemoApp(), issuer="http://localhost", store=f"sqlite:///{tmp_path}/oauth.db", scopes="read write",
        require_https="false", grants=GRANT,
    )  # fmt: skip
    assert authorize_device(webtest.TestApp(middleware))["interval"] == 5
    middleware.close()


def test_a_malformed_decision_decides_nothing(app, clock):
    answer = authorize_device(app)
    login = app.get(PAGE, {"user_code": answer["user_code"]})
    form = login.forms[0]
    form["username"], form["password"] = "alice", "alice-password"
    consent = form.submit(status=303).follow(status=200)
    refused = app.post(PAGE, {**fields(consent), "decision": "maybe"}, status=400)
    assert "decision must be approve or deny" in refused.text
    clock.advance(5)
    assert poll(app, str(answer["device_code"]))["error"] == "authorization_pending"
    # The code still works for a real decision.
    assert "Device connected" in app.post(PAGE, {**fields(consent), "decision": "approve"}, status=200).text


def test_the_page_over_plain_http_is_an_error_page_under_require_https(make_middleware):
    middleware = flow_middleware(make_middleware, grants=GRANT, refresh_token_grants="", require_https="true")
    page = webtest.TestApp(middleware).get(PAGE, status=400)
    assert page.content_type == "text/html" and "HTTPS is required" in page.text
    refused = webtest.TestApp(middleware).post(DEVICE_AUTHORIZATION, {"client_id": TV_ID}, status=400)
    assert refused.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(DeviceCodeRecord("tv", ("read", "write"), "f" * 64, 2_000_000_000), id="pending"),
        pytest.param(DeviceCodeRecord("tv", (), "f" * 64, 2_000_000_000, "approved", "alice"), id="approved"),
        pytest.param(DeviceCodeRecord("tv", ("read",), "f" * 64, 2_000_000_000, "denied"), id="denied"),
    ],
)
def test_a_device_code_record_comes_back_from_its_store_value(record):
    assert DeviceCodeRecord.from_value(json.loads(json.dumps(record.to_value()))) == record
