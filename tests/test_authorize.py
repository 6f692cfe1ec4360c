"""Authorization endpoint: validation, login, consent, CSRF and clickjacking (RFC 6749 §3.1, §4.1, §4.2)."""

from __future__ import annotations

import logging
import time

import pytest
import webtest
from oauth_flows import (
    AUTHORIZE,
    CHALLENGE,
    NATIVE_ID,
    NATIVE_REDIRECT,
    SPA_ID,
    SPA_REDIRECT,
    WEB_ID,
    WEB_REDIRECT,
    api_status,
    approve,
    code_request,
    flow_middleware,
    location_params,
    login,
)

from oauth_middleware.errors import ConfigError
from oauth_middleware.users import Session


@pytest.fixture
def middleware(make_middleware):
    return flow_middleware(make_middleware)


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware)


def form_fields(page):
    """The values a browser would post from the page's form, without the buttons."""
    return {
        name: field[0].value for name, field in page.forms[0].fields.items() if name and name != "decision"
    }


def assert_page_not_redirect(response, status=400):
    assert response.status_int == status
    assert "Location" not in response.headers
    assert response.content_type == "text/html"
    assert response.headers["X-Frame-Options"] == "DENY"


# -- the client and redirect URI: never a redirect ------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"client_id": None}, id="missing-client-id"),
        pytest.param({"client_id": "nobody"}, id="unknown-client"),
        pytest.param({"redirect_uri": "https://evil.example/cb"}, id="unregistered-uri"),
        pytest.param({"redirect_uri": NATIVE_REDIRECT + "/more"}, id="longer-path"),
        pytest.param({"redirect_uri": NATIVE_REDIRECT + "?x=1"}, id="added-query"),
        pytest.param({"redirect_uri": NATIVE_REDIRECT + "#frag"}, id="fragment"),
        pytest.param({"redirect_uri": "https://127.0.0.1/callback"}, id="other-scheme"),
        pytest.param({"redirect_uri": "http://127.0.0.2/callback"}, id="other-loopback-host"),
        pytest.param({"redirect_uri": "http://user@127.0.0.1:5000/callback"}, id="userinfo"),
        pytest.param({"redirect_uri": "http://127.0.0.1:99999/callback"}, id="bad-port"),
        # urlsplit raises on a bracketed host that is not an IPv6 address (found by fuzzing).
        pytest.param({"redirect_uri": "http://[evil.example]/callback"}, id="bracketed-host"),
        pytest.param({"redirect_uri": "http://localhost/callback"}, id="localhost-for-ip"),
        pytest.param({"redirect_uri": "com.example.app:/cb/x"}, id="private-scheme-path"),
        pytest.param({"redirect_uri": None}, id="omitted-with-two-registered"),
    ],
)
def test_bad_client_or_redirect_uri_shows_a_page(app, overrides):
    # Even with other errors in the request, nothing may go to an untrusted URI.
    response = app.get(AUTHORIZE, code_request(response_type="bogus", **overrides), status=400)
    assert_page_not_redirect(response)


def test_repeated_client_id_or_redirect_uri_is_a_page(app):
    query = "&".join(f"{k}={v}" for k, v in code_request().items())
    response = app.get(f"{AUTHORIZE}?{query}&client_id={NATIVE_ID}", status=400)
    assert_page_not_redirect(response)
    response = app.get(f"{AUTHORIZE}?{query}&redirect_uri={NATIVE_REDIRECT}", status=400)
    assert_page_not_redirect(response)


def test_error_page_escapes_html(app):
    response = app.get(AUTHORIZE, code_request(client_id="<script>"), status=400)
    assert "<script>" not in response.text


def test_loopback_port_is_free_for_native_clients(app):
    # RFC 8252 §7.3: a native app gets whatever port the OS gives it.
    response = app.get(AUTHORIZE, code_request(redirect_uri="http://127.0.0.1:51234/callback"))
    assert response.status_int == 200
    location = approve(app, code_request(redirect_uri="http://127.0.0.1:51234/callback"))
    assert location.startswith("http://127.0.0.1:51234/callback?")


def test_loopback_port_is_exact_for_confidential_clients(middleware, app):
    from conftest import register

    register(
        middleware,
        "devweb",
        "devweb-secret",
        redirect_uris=["http://127.0.0.1:8000/cb"],
        grant_types=["authorization_code"],
    )
    params = code_request(client_id="devweb", redirect_uri="http://127.0.0.1:8001/cb")
    assert_page_not_redirect(app.get(AUTHORIZE, params, status=400))


def test_redirect_uri_may_be_omitted_when_only_one_is_registered(app):
    params = code_request(client_id=SPA_ID, redirect_uri=None, response_type="token", code_challenge=None)
    params.pop("code_challenge_method")
    # spa has one redirect URI; implicit is off on this server, so the error goes there.
    response = app.get(AUTHORIZE, params, status=302)
    assert response.headers["Location"].startswith(SPA_REDIRECT + "#")


def test_registered_query_is_kept(app):
    params = code_request(client_id=WEB_ID, redirect_uri="https://web.example/other?x=1", scope="nope")
    response = app.get(AUTHORIZE, params, status=302)
    assert location_params(response.headers["Location"]) == {
        "x": "1",
        "error": "invalid_scope",
        "error_description": "unknown scope nope",
        "state": "st-123",
        "iss": "http://localhost",  # RFC 9207
    }


# -- everything else: redirected with error and state -----------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"response_type": None}, "invalid_request", id="no-response-type"),
        pytest.param({"response_type": "bogus"}, "unsupported_response_type", id="bad-response-type"),
        pytest.param({"response_type": "code id_token"}, "unsupported_response_type", id="hybrid"),
        pytest.param({"scope": "admin"}, "invalid_scope", id="scope-beyond-client"),
        pytest.param({"scope": "nonsense"}, "invalid_scope", id="unknown-scope"),
        pytest.param({"scope": 'bad"scope'}, "invalid_scope", id="malformed-scope"),
        pytest.param(
            {"code_challenge": None, "code_challenge_method": None}, "invalid_request", id="no-pkce-public"
        ),
        pytest.param({"code_challenge": None}, "invalid_request", id="method-without-challenge"),
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="plain-not-allowed"),
        pytest.param({"code_challenge_method": None}, "invalid_request", id="default-plain-not-allowed"),
        pytest.param({"code_challenge_method": "S512"}, "invalid_request", id="unknown-method"),
        pytest.param({"code_challenge": "short"}, "invalid_request", id="short-challenge"),
        pytest.param({"code_challenge": CHALLENGE + "!"}, "invalid_request", id="bad-challenge-chars"),
    ],
)
def test_request_errors_redirect_with_state(app, overrides, error):
    response = app.get(AUTHORIZE, code_request(**overrides), status=302)
    location = response.headers["Location"]
    assert location.startswith(NATIVE_REDIRECT + "?")
    params = location_params(location)
    assert params["error"] == error
    assert params["error_description"]
    assert params["state"] == "st-123"
    assert response.headers["Cache-Control"] == "no-store"


def test_repeated_parameter_is_invalid_request_without_state(app):
    query = "&".join(f"{k}={v}" for k, v in code_request().items())
    response = app.get(f"{AUTHORIZE}?{query}&state=again", status=302)
    params = location_params(response.headers["Location"])
    assert params["error"] == "invalid_request"
    assert "state" not in params  # which of the two would we echo?


def test_confidential_client_needs_pkce_by_default(app):
    params = code_request(
        client_id=WEB_ID, redirect_uri=WEB_REDIRECT, code_challenge=None, code_challenge_method=None
    )
    response = app.get(AUTHORIZE, params, status=302)
    assert location_params(response.headers["Location"])["error"] == "invalid_request"


def test_require_pkce_false_lets_confidential_clients_skip_it(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, require_pkce="false"))
    params = code_request(
        client_id=WEB_ID, redirect_uri=WEB_REDIRECT, code_challenge=None, code_challenge_method=None
    )
    assert app.get(AUTHORIZE, params).status_int == 200
    # ... but never public clients.
    response = app.get(AUTHORIZE, code_request(code_challenge=None, code_challenge_method=None), status=302)
    assert location_params(response.headers["Location"])["error"] == "invalid_request"


def test_client_not_registered_for_the_response_type(app):
    params = code_request(client_id=SPA_ID, redirect_uri=SPA_REDIRECT, scope="read")
    response = app.get(AUTHORIZE, params, status=302)
    assert location_params(response.headers["Location"])["error"] == "unauthorized_client"


def test_code_is_off_without_the_authorization_code_grant(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, grants="client_credentials"))
    response = app.get(AUTHORIZE, code_request(), status=302)
    assert location_params(response.headers["Location"])["error"] == "unsupported_response_type"


# -- login ---------------------------------------------------------------------------


def test_login_page_is_not_framable_cacheable_or_cors(app):
    response = app.get(AUTHORIZE, code_request(), headers={"Origin": "https://evil.example"})
    assert response.status_int == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response.headers["Cache-Control"] == "no-store"
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("oauth2_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/oauth/authorize" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    form = response.forms[0]
    assert form.method.upper() == "POST" and form.action == AUTHORIZE
    assert form["client_id"].value == NATIVE_ID and form["step"].value == "login"


def test_session_cookie_is_secure_over_https(app):
    response = app.get(
        AUTHORIZE, code_request(), extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"}
    )
    assert "secure" in response.headers["Set-Cookie"].lower()


def test_wrong_password_shows_the_form_again_and_logs_no_password(app, caplog):
    page = app.get(AUTHORIZE, code_request())
    form = page.forms[0]
    form["username"], form["password"] = "alice", "guess-Secret-42"
    with caplog.at_level(logging.WARNING, logger="oauth_middleware"):
        answer = form.submit()
    assert answer.status_int == 200
    assert "Wrong username or password" in answer.text
    assert "alice" in caplog.text
    assert "guess-Secret-42" not in caplog.text
    assert "Set-Cookie" not in answer.headers


def test_login_starts_a_new_session(app):
    page = app.get(AUTHORIZE, code_request())
    before = app.cookies["oauth2_session"]
    form = page.forms[0]
    form["username"], form["password"] = "alice", "alice-password"
    answer = form.submit(status=303)
    assert answer.headers["Location"].startswith("http://localhost/oauth/authorize?")
    assert location_params(answer.headers["Location"]) == code_request()
    assert app.cookies["oauth2_session"] != before


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda form: form.__setitem__("csrf_token", ""), id="missing"),
        pytest.param(lambda form: form.__setitem__("csrf_token", "0" * 64), id="wrong"),
        pytest.param(lambda form: form.__setitem__("scope", "read write"), id="request-changed"),
    ],
)
def test_login_csrf(app, tamper):
    form = app.get(AUTHORIZE, code_request()).forms[0]
    form["username"], form["password"] = "alice", "alice-password"
    tamper(form)
    assert_page_not_redirect(form.submit(status=400))


def test_login_csrf_needs_the_session_cookie(app):
    form = app.get(AUTHORIZE, code_request()).forms[0]
    form["username"], form["password"] = "alice", "alice-password"
    app.reset()  # another browser posting this form: no session cookie
    assert_page_not_redirect(form.submit(status=400))


def test_tampered_or_expired_session_is_ignored(middleware, app):
    app.get(AUTHORIZE, code_request())
    sessions = middleware.server.users.sessions
    forged = sessions.encode(Session("sid", "alice", int(time.time()) + 60))
    body, _, signature = forged.partition(".")
    app.set_cookie("oauth2_session", f"{body}.{signature[:-2]}AA")
    assert app.get(AUTHORIZE, code_request()).forms[0]["step"].value == "login"
    app.set_cookie("oauth2_session", sessions.encode(Session("sid", "alice", int(time.time()) - 1)))
    assert app.get(AUTHORIZE, code_request()).forms[0]["step"].value == "login"
    app.set_cookie("oauth2_session", sessions.encode(Session("sid", "alice", int(time.time()) + 60)))
    assert app.get(AUTHORIZE, code_request()).forms[0]["step"].value == "consent"


def test_login_url_gets_the_way_back(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, login_url="https://sso.example/login?app=1"))
    response = app.get(AUTHORIZE, code_request(), status=303)
    params = location_params(response.headers["Location"])
    assert response.headers["Location"].startswith("https://sso.example/login?")
    assert params["app"] == "1"
    assert params["next"].startswith("http://localhost/oauth/authorize?")
    assert location_params(params["next"]) == code_request()


def test_no_way_to_log_in_is_a_page(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, verify_password=""))
    assert_page_not_redirect(app.get(AUTHORIZE, code_request(), status=400))


def test_remote_user_skips_the_login(app):
    page = app.get(AUTHORIZE, code_request(), extra_environ={"REMOTE_USER": "carol"})
    assert page.forms[0]["step"].value == "consent"
    assert "carol" in page.text
    answer = page.forms[0].submit(
        "decision", value="approve", extra_environ={"REMOTE_USER": "carol"}, status=303
    )
    assert "code" in location_params(answer.headers["Location"])


def authenticate_from_header(request):
    return request.headers.get("X-Test-User")


def test_authenticate_user_callable(make_middleware):
    app = webtest.TestApp(
        flow_middleware(make_middleware, authenticate_user="test_authorize:authenticate_from_header")
    )
    page = app.get(AUTHORIZE, code_request(), headers={"X-Test-User": "dave"})
    assert page.forms[0]["step"].value == "consent" and "dave" in page.text
    assert app.get(AUTHORIZE, code_request()).forms[0]["step"].value == "login"


# -- consent -------------------------------------------------------------------------


def test_consent_page_shows_client_and_scopes(app):
    page = login(app, code_request(client_id=WEB_ID, redirect_uri=WEB_REDIRECT, scope="read write"))
    assert page.status_int == 200
    assert "Web &lt;App&gt;" in page.text  # escaped
    assert "<code>read</code>" in page.text and "<code>write</code>" in page.text
    assert "web.example" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert not [name for name in page.headers if name.lower().startswith("access-control-")]


def test_approve_redirects_303_with_code_and_state(app):
    location = approve(app, code_request())
    params = location_params(location)
    assert location.startswith(NATIVE_REDIRECT + "?")
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "st-123"
    assert len(params["code"]) >= 43


def test_deny_redirects_with_access_denied(app):
    location = approve(app, code_request(), decision="deny")
    params = location_params(location)
    assert params["error"] == "access_denied"
    assert params["state"] == "st-123"
    assert "code" not in params


def test_unknown_decision_is_invalid_request(app):
    consent = login(app, code_request())
    answer = app.post(AUTHORIZE, {**form_fields(consent), "decision": "maybe"}, status=303)
    assert location_params(answer.headers["Location"])["error"] == "invalid_request"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda fields: fields.pop("csrf_token"), id="missing"),
        pytest.param(lambda fields: fields.update(csrf_token="f" * 64), id="wrong"),
        pytest.param(lambda fields: fields.update(scope="read write"), id="scope-widened"),
        pytest.param(lambda fields: fields.update(step="login"), id="login-token-for-consent"),
    ],
)
def test_consent_csrf(app, tamper):
    consent = login(app, code_request())
    fields = form_fields(consent)
    fields["decision"] = "approve"
    tamper(fields)
    # (A consent token never passes as a login token either.)
    assert_page_not_redirect(app.post(AUTHORIZE, fields, expect_errors=True))


def test_consent_token_is_bound_to_the_user(app, middleware):
    consent = login(app, code_request(), user="alice")
    fields = form_fields(consent)
    # bob, in another browser, replays alice's form.
    other = webtest.TestApp(middleware)
    login(other, code_request(), user="bob")
    response = other.post(AUTHORIZE, {**fields, "decision": "approve"}, expect_errors=True)
    assert_page_not_redirect(response)


def test_consent_post_without_a_user_asks_to_log_in(app):
    consent = login(app, code_request())
    fields = form_fields(consent)
    app.reset()
    response = app.post(AUTHORIZE, {**fields, "decision": "approve"})
    assert response.status_int == 200
    assert response.forms[0]["step"].value == "login"


def test_post_authorization_request_is_accepted(app):
    response = app.post(AUTHORIZE, code_request())
    assert response.status_int == 200 and response.forms[0]["step"].value == "login"


def test_other_methods_are_refused(app):
    response = app.put(AUTHORIZE, code_request(), status=405)
    assert response.headers["Allow"] == "GET, POST"


def test_json_post_is_a_page(app):
    assert_page_not_redirect(app.post_json(AUTHORIZE, code_request(), status=400))


def web_code_request(**overrides):
    return code_request(client_id=WEB_ID, redirect_uri=WEB_REDIRECT, **overrides)


def test_remembered_consent(make_middleware):
    # A confidential client (a public one is always asked: see below).
    app = webtest.TestApp(flow_middleware(make_middleware, remember_consent="true"))
    approve(app, web_code_request(scope="read write"))
    # Same or fewer scopes: no question, straight back with a code.
    response = app.get(AUTHORIZE, web_code_request(scope="read"), status=302)
    assert "code" in location_params(response.headers["Location"])
    # Another user still gets asked.
    app.reset()
    assert login(app, web_code_request(scope="read"), user="bob").forms[0]["step"].value == "consent"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param(NATIVE_REDIRECT, id="same-redirect-uri"),
        pytest.param("http://127.0.0.1:50123/callback", id="another-loopback-port"),
    ],
)
def test_remembered_consent_never_answers_a_public_client(make_middleware, redirect_uri):
    """Regression: any local program could take a public client's id and get a code silently (RFC 8252 §8.6)."""
    app = webtest.TestApp(flow_middleware(make_middleware, remember_consent="true"))
    approve(app, code_request(scope="read"))
    page = app.get(AUTHORIZE, code_request(scope="read", redirect_uri=redirect_uri), status=200)
    assert page.forms[0]["step"].value == "consent"


def test_remembered_consent_never_sends_a_public_client_a_fragment_token(make_middleware):
    middleware = flow_middleware(make_middleware, remember_consent="true", response_types="code token")
    app = webtest.TestApp(middleware)
    approve(app, implicit_request())
    page = app.get(AUTHORIZE, implicit_request(), status=200)
    assert page.forms[0]["step"].value == "consent"


def test_consent_is_not_remembered_by_default(app):
    approve(app, code_request())
    assert app.get(AUTHORIZE, code_request()).forms[0]["step"].value == "consent"


def test_custom_consent_template(make_middleware, tmp_path):
    template = tmp_path / "consent.html"
    template.write_text(
        "<html><body><h1>May $client_name read your files?</h1>"
        "<form method='post' action='$action_url'>$hidden_fields"
        "<button name='decision' value='approve'>Yes</button></form></body></html>"
    )
    app = webtest.TestApp(flow_middleware(make_middleware, consent_template=str(template)))
    page = login(app, code_request())
    assert f"May {NATIVE_ID} read your files?" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    answer = page.forms[0].submit("decision", value="approve", status=303)
    assert "code" in location_params(answer.headers["Location"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "<form>$hidden_fields $password</form>", "unknown placeholder $password", id="unknown-name"
        ),
        pytest.param("<form></form>", "must put $hidden_fields", id="no-hidden-fields"),
    ],
)
def test_bad_consent_template_is_a_config_error(make_middleware, tmp_path, content, message):
    template = tmp_path / "consent.html"
    template.write_text(content)
    with pytest.raises(ConfigError, match="consent_template") as info:
        flow_middleware(make_middleware, consent_template=str(template))
    assert message in str(info.value)


def test_missing_consent_template_is_a_config_error(make_middleware, tmp_path):
    with pytest.raises(ConfigError, match="consent_template: cannot read"):
        flow_middleware(make_middleware, consent_template=str(tmp_path / "nope.html"))


# -- implicit (response_type=token) -----------------------------------------------------


def implicit_request(**overrides):
    params = {
        "response_type": "token",
        "client_id": SPA_ID,
        "redirect_uri": SPA_REDIRECT,
        "scope": "read",
        "state": "s1",
    }
    params.update(overrides)
    return params


def test_implicit_is_off_by_default(app):
    response = app.get(AUTHORIZE, implicit_request(), status=302)
    location = response.headers["Location"]
    assert location.startswith(SPA_REDIRECT + "#")
    assert location_params(location, fragment=True)["error"] == "unsupported_response_type"


def test_implicit_grant_returns_the_token_in_the_fragment(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, response_types="code token"))
    location = approve(app, implicit_request())
    assert "?" not in location.split("#")[0]
    params = location_params(location, fragment=True)
    assert params["token_type"] == "Bearer"
    assert params["expires_in"] == "3600"
    assert params["scope"] == "read"
    assert params["state"] == "s1"
    assert "refresh_token" not in params  # RFC 6749 §4.2.2
    assert api_status(app, params["access_token"]) == 200


def test_implicit_errors_go_in_the_fragment(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, response_types="code token"))
    response = app.get(AUTHORIZE, implicit_request(scope="write"), status=302)
    params = location_params(response.headers["Location"], fragment=True)
    assert params["error"] == "invalid_scope" and params["state"] == "s1"
    location = approve(app, implicit_request(), decision="deny")
    assert location_params(location, fragment=True)["error"] == "access_denied"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"response_types": "code id_token"}, "response_types", id="response-types"),
        pytest.param({"session_secret": "too-short"}, "session_secret", id="short-secret"),
        pytest.param({"login_url": "javascript:alert(1)"}, "login_url", id="login-url"),
        pytest.param(
            {"refresh_token_grants": "client_credentials"}, "refresh_token_grants", id="refresh-grants"
        ),
        pytest.param({"session_cookie": "bad name"}, "session_cookie", id="cookie-name"),
        pytest.param({"authenticate_user": "nowhere.module:func"}, "authenticate_user", id="callable"),
        pytest.param({"refresh_token_reuse_grace": "-1"}, "refresh_token_reuse_grace", id="grace"),
    ],
)
def test_bad_settings_name_the_key(make_middleware, settings, message):
    with pytest.raises(ConfigError, match=f"^{message}: "):
        flow_middleware(make_middleware, **settings)


def test_session_secret_is_not_in_repr(make_middleware):
    middleware = flow_middleware(make_middleware, session_secret="s" * 40)
    assert "s" * 40 not in repr(middleware.settings)


def test_sessions_survive_across_processes_with_a_shared_secret(make_middleware):
    """Two servers (two processes of one deployment) with one session_secret share sessions."""
    secret = "shared-session-secret-0123456789abcdef"
    first = flow_middleware(make_middleware, session_secret=secret)
    second = flow_middleware(make_middleware, session_secret=secret)
    app = webtest.TestApp(first)
    consent = login(app, code_request())
    other = webtest.TestApp(second, cookiejar=app.cookiejar)
    fields = form_fields(consent)
    assert other.post(AUTHORIZE, {**fields, "decision": "deny"}).status_int == 303
    # Without the secret, another process knows neither the session nor the form.
    third = webtest.TestApp(flow_middleware(make_middleware), cookiejar=app.cookiejar)
    assert third.post(AUTHORIZE, {**fields, "decision": "deny"}).forms[0]["step"].value == "login"
