"""The authorized-applications page in a real browser (headless Chromium, as ``test_browser``):
log in, see the clients, revoke one, its token refused afterwards; the page cannot be framed."""

from __future__ import annotations

import pytest
import requests
from conftest import register
from oauth_flows import NATIVE_ID, USERS, flow_middleware, serve
from test_browser import chromium

PAGE = "/oauth/applications"
OTHER_ID = "other"


@pytest.fixture
def site(make_middleware):
    middleware = flow_middleware(
        make_middleware, applications_path=PAGE, grants="authorization_code refresh_token password"
    )
    register(
        middleware,
        OTHER_ID,
        None,
        grant_types=["password"],
        scopes=["read"],
        name="Reports <beta>",
        meta={"description": "Reads your <b>files</b>"},
    )
    with serve(middleware) as base:
        yield base


@pytest.fixture
def page():
    with chromium() as browser:
        yield browser.new_context().new_page()


def password_token(base, user, client_id):
    form = {"grant_type": "password", "username": user, "password": USERS[user], "client_id": client_id}
    answer = requests.post(f"{base}/oauth/token", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def api_status(base, token):
    return requests.get(
        f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).status_code


def test_login_list_revoke_in_a_browser(site, page):
    native, other = password_token(site, "alice", NATIVE_ID), password_token(site, "alice", OTHER_ID)
    bob = password_token(site, "bob", NATIVE_ID)
    page.goto(f"{site}{PAGE}")
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", USERS["alice"])
    page.click("button[type=submit]")
    page.wait_for_selector("text=Authorized applications")
    assert page.url == f"{site}{PAGE}"
    items = page.locator("li")
    assert items.count() == 2
    # Client attributes are text, never markup.
    assert page.locator("li >> text=Reports <beta>").count() == 1
    assert page.locator("li >> text=Reads your <b>files</b>").count() == 1
    assert page.locator("li b").count() == 0
    page.locator("li", has_text=f"({NATIVE_ID})").locator("button").click()
    page.wait_for_load_state()
    page.wait_for_function("document.querySelectorAll('li').length === 1")
    assert page.url == f"{site}{PAGE}"
    assert OTHER_ID in page.inner_text("li")
    assert api_status(site, native) == 401
    assert api_status(site, other) == 200
    assert api_status(site, bob) == 200


def test_the_page_refuses_to_be_framed(site, page):
    page.goto(f"{site}{PAGE}")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", USERS["alice"])
    page.click("button[type=submit]")
    page.wait_for_selector("text=Authorized applications")

    def hostile(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        return [f"<iframe id='victim' src='{site}{PAGE}'></iframe>".encode()]

    with serve(hostile) as evil:
        page.goto(evil + "/")
        frame = page.wait_for_selector("#victim").content_frame()
        page.wait_for_timeout(500)
        assert frame is not None
        assert frame.query_selector("text=Authorized applications") is None
        assert not frame.url.startswith(site)
