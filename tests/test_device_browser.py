"""A real browser (headless Chromium) on the device grant's user-code page of the shipped demo.

The device's part is done with requests (the demo's public client ``demo-tv``);
the user types the code as people do (lower case, a space instead of the dash),
signs in and approves; the device's next poll gets the token.
"""

from __future__ import annotations

import pytest
import requests
from oauth_flows import load_demo, serve
from test_browser import chromium

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def demo(tmp_path):
    with serve(load_demo(tmp_path)) as base:
        yield base


def test_a_user_connects_a_device_in_a_browser(demo):
    device = requests.post(
        f"{demo}/oauth/device_authorization", data={"client_id": "demo-tv", "scope": "read"}
    )
    assert device.status_code == 200, device.text
    user_code = device.json()["user_code"]
    poll = {"grant_type": GRANT, "client_id": "demo-tv", "device_code": device.json()["device_code"]}
    with chromium() as browser:
        page = browser.new_context().new_page()
        page.goto(f"{demo}/oauth/device")
        assert page.title() == "Connect a device"
        page.fill("input[name=user_code]", user_code.lower().replace("-", " "))
        page.click("button[type=submit]")
        page.wait_for_selector("input[name=username]")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice-password")
        page.click("button[type=submit]")
        page.wait_for_selector("button[value=approve]")
        assert "Demo TV" in page.content()
        page.click("button[value=approve]")
        page.wait_for_selector("text=You may go back to your device")
    token = requests.post(f"{demo}/oauth/token", data=poll)
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "read" and "refresh_token" in token.json()
    again = requests.post(f"{demo}/oauth/token", data=poll)
    assert again.json()["error"] == "invalid_grant"
