"""Trusted proxies and the HTTPS requirement (oauth_middleware.proxies, ``require_https``)."""

from __future__ import annotations

import ipaddress

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic
from oauth_flows import AUTHORIZE, code_request, flow_middleware

from oauth_middleware.demo import DemoApp
from oauth_middleware.errors import ConfigError
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.proxies import Origin, TrustedProxies, parse_ip, request_origin
from oauth_middleware.settings import Settings

PROXIES = Settings.from_config({"trusted_proxies": "10.0.0.0/8 ::1 192.168.1.5"}).trusted_proxies
NOBODY = TrustedProxies()
TOKEN = "/oauth/token"
PROXY = "10.1.2.3"
CLIENT = "198.51.100.7"


def ip(text):
    return ipaddress.ip_address(text)


# -- where a request comes from ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "address", "scheme", "proxied"),
    [
        pytest.param({"REMOTE_ADDR": CLIENT}, CLIENT, "http", False, id="direct"),
        pytest.param(
            {"REMOTE_ADDR": CLIENT, "HTTP_X_FORWARDED_FOR": "203.0.113.1", "HTTP_X_FORWARDED_PROTO": "https"},
            CLIENT,
            "http",
            False,
            id="untrusted-peer-headers-ignored",
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": CLIENT}, CLIENT, "http", True, id="one-proxy"
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"6.6.6.6, {CLIENT}, 10.9.9.9"},
            CLIENT,
            "http",
            True,
            id="right-to-left-skipping-trusted-hops",
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "127.0.0.1, 6.6.6.6"},
            "6.6.6.6",
            "http",
            True,
            id="forged-left-part-never-read",
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "10.4.4.4, 192.168.1.5"},
            "10.4.4.4",
            "http",
            True,
            id="all-trusted-leftmost",
        ),
        pytest.param({"REMOTE_ADDR": PROXY}, PROXY, "http", True, id="proxy-without-xff"),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"{CLIENT}, unknown"},
            None,
            "http",
            True,
            id="garbage-entry-unknown-client",
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"{CLIENT}:5555"}, CLIENT, "http", True, id="port"
        ),
        pytest.param(
            {"REMOTE_ADDR": "::1", "HTTP_X_FORWARDED_FOR": "[2001:db8::5]:443"},
            "2001:db8::5",
            "http",
            True,
            id="ipv6-with-port",
        ),
        pytest.param(
            {"REMOTE_ADDR": "::ffff:10.1.2.3", "HTTP_X_FORWARDED_FOR": CLIENT},
            CLIENT,
            "http",
            True,
            id="ipv4-mapped-peer",
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_PROTO": "https"}, PROXY, "https", True, id="proto"
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_PROTO": "https, http"},
            PROXY,
            "http",
            True,
            id="proto-last-value",
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_PROTO": "gopher", "wsgi.url_scheme": "https"},
            PROXY,
            "https",
            True,
            id="proto-garbage-keeps-scheme",
        ),
        pytest.param({}, None, "http", False, id="no-remote-addr"),
        pytest.param({"REMOTE_ADDR": "/run/sock"}, None, "http", False, id="unix-socket"),
    ],
)
def test_request_origin(environ, address, scheme, proxied):
    origin = request_origin(environ, PROXIES)
    assert origin.address == (None if address is None else ip(address))
    assert (origin.scheme, origin.proxied) == (scheme, proxied)


def test_no_trusted_proxies_means_headers_are_ignored():
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": CLIENT, "HTTP_X_FORWARDED_PROTO": "https"}
    assert request_origin(environ, NOBODY) == Origin(ip("127.0.0.1"), "http")


#: ``trusted_proxies = unix 10.0.0.0/8``: a Unix-socket peer and one network.
UNIX = Settings.from_config({"trusted_proxies": "unix 10.0.0.0/8"}).trusted_proxies
FORWARDED = {"HTTP_X_FORWARDED_FOR": f"6.6.6.6, {CLIENT}", "HTTP_X_FORWARDED_PROTO": "https"}


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param(FORWARDED, id="no-remote-addr"),
        pytest.param({"REMOTE_ADDR": "", **FORWARDED}, id="gunicorn-unix-empty"),
        pytest.param({"REMOTE_ADDR": "localhost", **FORWARDED}, id="waitress-unix-localhost"),
        pytest.param({"REMOTE_ADDR": PROXY, **FORWARDED}, id="trusted-network-still"),
    ],
)
def test_a_trusted_unix_peer_is_a_proxy(environ):
    # Issue 10 item 4: no setting could name a Unix-socket peer, so X-Forwarded-For was never read.
    assert request_origin(environ, UNIX) == Origin(ip(CLIENT), "https", proxied=True)


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"REMOTE_ADDR": "127.0.0.1", **FORWARDED}, id="loopback-is-not-unix"),
        pytest.param({"REMOTE_ADDR": CLIENT, **FORWARDED}, id="remote"),
    ],
)
def test_unix_trusts_no_ip_peer(environ):
    assert request_origin(environ, UNIX) == Origin(ip(environ["REMOTE_ADDR"]), "http")


def test_an_untrusted_unix_peer_is_an_unknown_address():
    assert request_origin({"REMOTE_ADDR": "", **FORWARDED}, PROXIES) == Origin(None, "http")


def test_trusted_proxies_keyword():
    assert Settings.from_config({"trusted_proxies": "unix"}).trusted_proxies == TrustedProxies((), unix=True)
    assert Settings.from_config({}).trusted_proxies == NOBODY


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.2.3.4", "1.2.3.4"), (" 1.2.3.4:80 ", "1.2.3.4"), ("[::1]", "::1"), ("::1", "::1"), ("x", None)],
)
def test_parse_ip(text, expected):
    assert parse_ip(text) == (None if expected is None else ip(expected))


@pytest.mark.parametrize(
    "value", ["10.0.0.1/8", "0.0.0.0/0", "::/0", "proxy.example", "10.0.0.300", "Unix", "unix:/run/x"]
)
def test_bad_trusted_proxies_is_a_config_error(value):
    with pytest.raises(ConfigError, match=r"^trusted_proxies: "):
        Settings.from_config({"trusted_proxies": value})


# -- HTTPS required ------------------------------------------------------------------------------------


@pytest.fixture
def middleware(make_middleware):
    return flow_middleware(make_middleware, trusted_proxies="10.0.0.0/8", require_https="true")


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware)


def token_request(app, environ, status=200):
    headers = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    return app.post(
        TOKEN, {"grant_type": "client_credentials"}, headers=headers, extra_environ=environ, status=status
    )


def assert_https_required(response):
    assert response.status_int == 400
    assert response.json == {"error": "invalid_request", "error_description": "HTTPS is required"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param(TOKEN, {"grant_type": "client_credentials"}, id="token"),
        pytest.param("/oauth/revoke", {"token": "x"}, id="revoke"),
        pytest.param("/oauth/introspect", {"token": "x"}, id="introspect"),
    ],
)
def test_plain_http_from_a_remote_client_is_refused(app, path, params):
    headers = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    response = app.post(path, params, headers=headers, extra_environ={"REMOTE_ADDR": CLIENT}, status=400)
    assert_https_required(response)


def test_plain_http_authorization_request_is_an_error_page(app):
    response = app.get(AUTHORIZE, code_request(), extra_environ={"REMOTE_ADDR": CLIENT}, status=400)
    assert response.content_type == "text/html"
    assert "HTTPS is required" in response.text
    assert "Location" not in response.headers  # never a redirect over an untrusted channel


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"REMOTE_ADDR": CLIENT, "wsgi.url_scheme": "https"}, id="https"),
        pytest.param({"REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "https"}, id="loopback-https"),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": CLIENT, "HTTP_X_FORWARDED_PROTO": "https"},
            id="trusted-proxy-https",
        ),
    ],
)
def test_accepted(app, environ):
    assert token_request(app, environ).json["token_type"] == "Bearer"


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "auth.example.com"}, id="same-host-proxy-untrusted"
        ),
        pytest.param({"REMOTE_ADDR": CLIENT, "HTTP_X_FORWARDED_PROTO": "https"}, id="spoofed-proto"),
        pytest.param(
            {"REMOTE_ADDR": CLIENT, "HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_HOST": "localhost"},
            id="spoofed-loopback-xff",
        ),
        pytest.param({"HTTP_HOST": "auth.example.com"}, id="no-remote-addr-public-host"),
        # Issue 10 item 5: these were exempt because Host named a loopback address, a
        # header a same-host proxy (nginx's default) forwards for internet traffic.
        pytest.param({"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8080"}, id="loopback"),
        pytest.param({"REMOTE_ADDR": "::1", "HTTP_HOST": "[::1]:8080"}, id="loopback-v6"),
        pytest.param({"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost"}, id="same-host-proxy-localhost"),
        pytest.param({"HTTP_HOST": "localhost:80"}, id="webtest-no-remote-addr"),
        pytest.param({"REMOTE_ADDR": "", "HTTP_HOST": "localhost"}, id="unix-socket-peer"),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": CLIENT, "HTTP_X_FORWARDED_PROTO": "http"},
            id="trusted-proxy-http",
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": CLIENT, "HTTP_X_FORWARDED_PROTO": "https, http"},
            id="client-proto-ahead-of-proxy",
        ),
        pytest.param(
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": CLIENT, "HTTP_HOST": "localhost"},
            id="proxied-remote-client-to-localhost",
        ),
    ],
)
def test_refused(app, environ):
    assert_https_required(token_request(app, environ, status=400))


def test_require_https_off(make_middleware):
    app = webtest.TestApp(make_middleware(require_https="false"))
    assert token_request(app, {"REMOTE_ADDR": CLIENT, "HTTP_HOST": "auth.example.com"}).status_int == 200


def test_documents_and_the_guard_are_not_refused(app):
    token = token_request(app, {"wsgi.url_scheme": "https"}).json["access_token"]
    remote = {"REMOTE_ADDR": CLIENT, "HTTP_HOST": "auth.example.com"}
    app.get("/.well-known/oauth-authorization-server", extra_environ=remote, status=200)
    app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, extra_environ=remote, status=200)


def test_trusted_proxy_scheme_reaches_cookies(app):
    # The issuer is a setting since issue 10 (item 9): the proxy's scheme reaches the cookies only.
    behind = {
        "REMOTE_ADDR": PROXY,
        "HTTP_X_FORWARDED_FOR": CLIENT,
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_HOST": "auth.example.com",
    }
    page = app.get(AUTHORIZE, code_request(), extra_environ=behind)
    assert "secure" in page.headers["Set-Cookie"].lower()


def test_untrusted_proto_does_not_reach_the_issuer(make_middleware):
    app = webtest.TestApp(make_middleware(require_https="false"))
    spoofed = {"REMOTE_ADDR": CLIENT, "HTTP_X_FORWARDED_PROTO": "https", "HTTP_HOST": "auth.example.com"}
    document = app.get("/.well-known/oauth-authorization-server", extra_environ=spoofed).json
    assert document["issuer"] == "http://localhost"  # the setting, whatever the headers say


# -- the address throttling counts ----------------------------------------------------------------------


def failed_auth(app, environ, client_id="nobody"):
    headers = {"Authorization": basic(client_id, "wrong-secret")}
    body = {"grant_type": "client_credentials"}
    return app.post(
        TOKEN, body, headers=headers, extra_environ={"wsgi.url_scheme": "https", **environ}, status="*"
    )


def test_throttling_counts_the_address_a_trusted_proxy_reports(make_middleware):
    app = webtest.TestApp(make_middleware(trusted_proxies="10.0.0.0/8", throttle_address_max_failures="2"))
    via = {"REMOTE_ADDR": PROXY}
    for n in range(2):
        assert failed_auth(app, {**via, "HTTP_X_FORWARDED_FOR": CLIENT}, f"nobody-{n}").status_int == 401
    blocked = token_request(
        app, {**via, "HTTP_X_FORWARDED_FOR": CLIENT, "wsgi.url_scheme": "https"}, status=429
    )
    assert blocked.json["error"] == "invalid_request"
    # The proxy itself, and other clients behind it, are not blocked.
    token_request(app, {**via, "HTTP_X_FORWARDED_FOR": "198.51.100.8", "wsgi.url_scheme": "https"})


def test_spoofed_xff_from_an_untrusted_peer_does_not_dodge_the_throttle(make_middleware):
    app = webtest.TestApp(make_middleware(trusted_proxies="10.0.0.0/8", throttle_address_max_failures="2"))
    attacker = "203.0.113.66"
    for n, forged in enumerate(["1.1.1.1", "2.2.2.2"]):
        environ = {"REMOTE_ADDR": attacker, "HTTP_X_FORWARDED_FOR": forged}
        assert failed_auth(app, environ, f"nobody-{n}").status_int == 401
    environ = {"REMOTE_ADDR": attacker, "HTTP_X_FORWARDED_FOR": "3.3.3.3", "wsgi.url_scheme": "https"}
    token_request(app, environ, status=429)


def test_https_is_required_by_default_even_from_loopback():
    # Issue 10 item 5: only the setting allows plain HTTP, never where a request seems to come from.
    app = webtest.TestApp(OAuth2Middleware(DemoApp(), issuer="http://localhost", store="memory://"))
    local = {"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8080"}
    assert_https_required(
        app.post(TOKEN, {"grant_type": "client_credentials"}, extra_environ=local, status=400)
    )
