"""The authorized-applications page (issue 18 item 3): off by default, login required, the list,
revoking per client with a CSRF-checked POST and a 303, the consent page's headers, escaping."""

from __future__ import annotations

import pytest
import webtest
from conftest import register
from oauth_flows import NATIVE_ID, TOKEN, USERS, api_status, flow_middleware

PAGE = "/oauth/applications"
OTHER_ID = "other"


def page_middleware(make_middleware, **settings):
    settings.setdefault("applications_path", PAGE)
    middleware = flow_middleware(
        make_middleware, grants="authorization_code refresh_token password client_credentials", **settings
    )
    register(
        middleware,
        OTHER_ID,
        None,
        grant_types=["password", "refresh_token"],
        scopes=["read", "write"],
        name="Other <b>app</b>",
        meta={"description": "<script>alert(1)</script>"},
    )
    return middleware


def tokens(app, user, client_id, scope="read"):
    form = {"grant_type": "password", "username": user, "password": USERS[user], "client_id": client_id}
    return app.post(TOKEN, {**form, "scope": scope}).json


def logged_in(app, user="alice"):
    """Open the page, sign in on its login form; the page that follows."""
    login = app.get(PAGE, status=200)
    form = login.forms[0]
    assert form["step"].value == "login"
    form["username"], form["password"] = user, USERS[user]
    answer = form.submit(status=303)
    assert answer.headers["Location"] == f"http://localhost{PAGE}"
    return answer.follow(status=200)


def revoke_form(page, client_id):
    return next(form for form in page.forms.values() if form["client_id"].value == client_id)


def test_off_by_default(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware))
    # Not ours: the guard asks for a token.
    assert app.get(PAGE, status=401).headers["WWW-Authenticate"].startswith("Bearer")


def test_login_list_revoke_and_the_token_refused(make_middleware):
    app = webtest.TestApp(page_middleware(make_middleware))
    native = tokens(app, "alice", NATIVE_ID, "read write")
    other = tokens(app, "alice", OTHER_ID)
    bob = tokens(app, "bob", NATIVE_ID)
    page = logged_in(app)
    assert "Signed in as <strong>alice</strong>" in page.text
    assert f"(<code>{NATIVE_ID}</code>)" in page.text and "<code>read</code> <code>write</code>" in page.text
    assert "Other &lt;b&gt;app&lt;/b&gt;" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    answer = revoke_form(page, NATIVE_ID).submit(status=303)
    assert answer.headers["Location"] == f"http://localhost{PAGE}"
    assert api_status(app, native["access_token"]) == 401
    assert api_status(app, other["access_token"]) == 200
    assert api_status(app, bob["access_token"]) == 200
    after = answer.follow(status=200)
    assert f"<code>{NATIVE_ID}</code>" not in after.text
    assert f"<code>{OTHER_ID}</code>" in after.text


def test_the_page_has_the_consent_pages_headers(make_middleware):
    app = webtest.TestApp(page_middleware(make_middleware))
    for page in (app.get(PAGE), logged_in(app)):
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
        assert "no-store" in page.headers["Cache-Control"]
        assert page.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda form: form.__setitem__("csrf_token", ""), id="no-token"),
        pytest.param(lambda form: form.__setitem__("csrf_token", "0" * 64), id="wrong-token"),
    ],
)
def test_a_revocation_without_the_right_csrf_token_is_refused(make_middleware, tamper):
    app = webtest.TestApp(page_middleware(make_middleware))
    native = tokens(app, "alice", NATIVE_ID)
    form = revoke_form(logged_in(app), NATIVE_ID)
    tamper(form)
    assert form.submit(status=400).headers["X-Frame-Options"] == "DENY"
    assert api_status(app, native["access_token"]) == 200


def test_a_token_of_another_users_page_fails(make_middleware):
    """A form shown to bob, posted with alice's session, is refused (bound to session and user)."""
    middleware = page_middleware(make_middleware)
    alice_app, bob_app = webtest.TestApp(middleware), webtest.TestApp(middleware)
    native = tokens(alice_app, "alice", NATIVE_ID)
    tokens(bob_app, "bob", NATIVE_ID)
    bob_token = revoke_form(logged_in(bob_app, "bob"), NATIVE_ID)["csrf_token"].value
    form = revoke_form(logged_in(alice_app), NATIVE_ID)
    form["csrf_token"] = bob_token
    form.submit(status=400)
    assert api_status(alice_app, native["access_token"]) == 200


def test_a_post_without_login_revokes_nothing(make_middleware):
    app = webtest.TestApp(page_middleware(make_middleware))
    native = tokens(app, "alice", NATIVE_ID)
    page = app.post(PAGE, {"client_id": NATIVE_ID, "csrf_token": "x"}, status=400)
    assert "unknown step" in page.text
    assert api_status(app, native["access_token"]) == 200


def test_a_post_that_is_not_a_form_is_a_page(make_middleware):
    app = webtest.TestApp(page_middleware(make_middleware))
    page = app.post(PAGE, "{}", content_type="application/json", status=400)
    assert page.content_type == "text/html"


def test_remote_user_sees_the_page_without_the_login(make_middleware):
    middleware = page_middleware(make_middleware)
    app = webtest.TestApp(middleware, extra_environ={"REMOTE_USER": "alice"})
    tokens(app, "alice", OTHER_ID)
    page = app.get(PAGE, status=200)
    assert f"<code>{OTHER_ID}</code>" in page.text
    revoke_form(page, OTHER_ID).submit(status=303)
    assert middleware.list_grants("alice") == []
