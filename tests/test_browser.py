"""A real browser (headless Chromium) through the demo's login and consent pages.

Debian's ``chromium`` package is driven by Playwright's Python package
(``executable_path='/usr/bin/chromium'``; ``.ci/run`` installs it, and
``playwright install`` is never run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import requests
from oauth_flows import load_demo, serve
from playwright import sync_api
from servers import find_binary

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium() -> Iterator[sync_api.Browser]:
    """Headless Chromium from the system's package; without it the test fails saying how to install it."""
    path = find_binary("chromium", "chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with serve(load_demo(tmp_path_factory.mktemp("browser-demo"))) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser):
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def test_login_consent_and_a_token_in_hand(demo, page):
    page.goto(f"{demo}/")
    page.click("#start")
    # The demo's login page.
    page.wait_for_selector("input[name=username]")
    assert page.title() == "Sign in"
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Wrong username or password")
    page.fill("input[name=password]", "alice-password")
    page.click("button[type=submit]")
    # The consent page.
    page.wait_for_selector("button[value=approve]")
    assert "Demo web app" in page.content()
    page.click("button[value=approve]")
    # Back at the client, which shows its code and PKCE verifier.
    page.wait_for_selector("#code")
    assert page.url.startswith(f"{demo}/callback?code=")
    code, verifier = page.inner_text("#code"), page.inner_text("#verifier")

    token = requests.post(
        f"{demo}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "demo-web",
            "redirect_uri": f"{demo}/callback",
            "code": code,
            "code_verifier": verifier,
        },
        timeout=10,
    ).json()
    assert token["token_type"] == "Bearer", token
    me = requests.get(
        f"{demo}/api/me", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10
    )
    assert me.json()["user"] == "alice"


def test_deny_sends_access_denied(demo, page):
    page.goto(f"{demo}/start")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "bob-password")
    page.click("button[type=submit]")
    page.click("button[value=deny]")
    page.wait_for_selector("#error")
    assert page.inner_text("#error") == "access_denied"


def test_consent_page_refuses_to_be_framed(demo, page):
    page.goto(f"{demo}/start")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password")
    page.click("button[type=submit]")
    page.wait_for_selector("button[value=approve]")
    consent_url = page.url

    def hostile(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        return [f"<iframe id='victim' src='{consent_url}'></iframe>".encode()]

    # Another origin (same loopback host, another port) frames the consent page.
    with serve(hostile) as evil:
        page.goto(evil + "/")
        frame = page.wait_for_selector("#victim").content_frame()
        page.wait_for_timeout(500)
        assert frame is not None
        assert frame.query_selector("button[value=approve]") is None
        assert not frame.url.startswith(demo)
