"""Throttling of failed client authentications and wrong passwords (oauth_middleware.throttle).

Every request here names its client address (``REMOTE_ADDR``) unless it
tests an unknown address, so per-pair and per-address counting can be told
apart. ``throttle_max_failures`` (per client id or username *and* address)
is 3 unless a test says otherwise; ``throttle_address_max_failures`` (per
address) keeps its default of 100 unless a test lowers it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, allow_body_secret, basic, register
from oauth_flows import AUTHORIZE, NATIVE_ID, TOKEN, SlowReads, code_request, flow_middleware, race, serve
from oauth_flows import verify_password as flow_verify_password
from paste.deploy import loadapp
from store_fixtures import backend, store  # noqa: F401

from oauth_middleware.cli import main
from oauth_middleware.errors import StoreUnavailable
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import digest
from oauth_middleware.stores.memory import MemoryStore

OTHER_ID, OTHER_SECRET = "other", "other-secret-0123456789"
CLI_ID, CLI_SECRET = "cli", "cli-secret-0123456789"
WRONG = "wrong-secret-0123456789"


def addr(ip: str | None) -> dict[str, str]:
    """A request from ``ip`` over HTTPS; None: no ``REMOTE_ADDR`` at all."""
    return {"wsgi.url_scheme": "https"} | ({} if ip is None else {"REMOTE_ADDR": ip})


def client_token(app, client_id=SERVICE_ID, secret=SERVICE_SECRET, *, ip="192.0.2.1", status=200, path=TOKEN):
    params = {"grant_type": "client_credentials"} if path == TOKEN else {"token": "x" * 43}
    return app.post(
        path,
        params,
        headers={"Authorization": basic(client_id, secret)},
        extra_environ=addr(ip),
        status=status,
    )


def password_token(app, username="alice", password="alice-password", *, ip="192.0.2.1", status=200):
    params = {"grant_type": "password", "username": username, "password": password}
    headers = {"Authorization": basic(CLI_ID, CLI_SECRET)}
    return app.post(TOKEN, params, headers=headers, extra_environ=addr(ip), status=status)


def assert_throttled(response, window=300):
    assert response.status_int == 429
    assert response.json["error"] == "invalid_request"
    assert "too many failed attempts" in response.json["error_description"]
    assert 1 <= int(response.headers["Retry-After"]) <= window
    assert response.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in response.headers  # nothing says the credentials were checked


def throttled_middleware(make_middleware, **settings):
    """The flow test server with two more clients; at most 3 failures per pair unless ``settings`` say."""
    settings.setdefault("throttle_max_failures", "3")
    middleware = flow_middleware(
        make_middleware, grants="authorization_code password refresh_token client_credentials", **settings
    )
    register(middleware, OTHER_ID, OTHER_SECRET, grant_types=["client_credentials"])
    register(middleware, CLI_ID, CLI_SECRET, grant_types=["password"], scopes=["read"])
    return middleware


def throttled_app(make_middleware, **settings):
    return webtest.TestApp(throttled_middleware(make_middleware, **settings))


@pytest.fixture
def middleware(make_middleware):
    return throttled_middleware(make_middleware)


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware)


# -- client authentication ---------------------------------------------------------------------


def test_the_right_secret_gets_429_once_the_client_is_blocked(app):
    for _ in range(3):
        response = client_token(app, secret=WRONG, status=401)
        assert response.json["error"] == "invalid_client"
    # Blocked before the secret is looked at: the right secret learns nothing either.
    assert_throttled(client_token(app, status=429))
    assert_throttled(client_token(app, secret=WRONG, status=429))


def test_failures_below_the_limit_are_not_throttled(app):
    for _ in range(2):
        client_token(app, secret=WRONG, status=401)
    client_token(app, status=200)


def test_a_strangers_failures_do_not_block_the_right_secret_from_another_address(app):
    # Issue 10 item 4: a block per client id let anyone lock a client out from anywhere.
    for _ in range(3):
        client_token(app, secret=WRONG, ip="203.0.113.66", status=401)
    assert_throttled(client_token(app, ip="203.0.113.66", status=429))  # the stranger is blocked
    client_token(app, ip="192.0.2.1", status=200)  # the client, from its own address, is not
    client_token(app, secret=WRONG, ip="192.0.2.1", status=401)  # and its own count starts at one


def test_failures_spread_over_addresses_block_none_of_them(app):
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        client_token(app, secret=WRONG, ip=ip, status=401)
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.9"):
        client_token(app, ip=ip, status=200)


def test_address_block_holds_for_every_client(make_middleware):
    app = throttled_app(make_middleware, throttle_address_max_failures="3")
    for client_id in ("nobody-1", "nobody-2", OTHER_ID):
        client_token(app, client_id, WRONG, ip="203.0.113.7", status=401)
    assert_throttled(client_token(app, ip="203.0.113.7", status=429))
    client_token(app, ip="203.0.113.8", status=200)


def test_the_address_limit_is_its_own(app):
    # Below the per-address limit (100), failures for many clients block only their pairs.
    for n in range(5):
        client_token(app, f"nobody-{n}", WRONG, ip="203.0.113.7", status=401)
    client_token(app, ip="203.0.113.7", status=200)


def test_basic_and_body_credentials_count_for_the_same_client(app):
    client_token(app, secret=WRONG, status=401)
    body = {"grant_type": "client_credentials", "client_id": SERVICE_ID, "client_secret": WRONG}
    app.post(TOKEN, body, extra_environ=addr("192.0.2.1"), status=401)
    client_token(app, secret=WRONG, status=401)
    body["client_secret"] = SERVICE_SECRET
    assert_throttled(app.post(TOKEN, body, extra_environ=addr("192.0.2.1"), status=429))


def test_revocation_and_introspection_failures_count_too(app):
    client_token(app, secret=WRONG, path="/oauth/revoke", status=401)
    client_token(app, secret=WRONG, path="/oauth/introspect", status=401)
    client_token(app, secret=WRONG, status=401)
    assert_throttled(client_token(app, path="/oauth/revoke", status=429))
    assert_throttled(client_token(app, path="/oauth/introspect", status=429))


def test_ipv6_clients_count_per_64(app):
    for ip in ("2001:db8:0:7::1", "2001:db8:0:7::2", "2001:db8:0:7:ffff:1:2:3"):
        client_token(app, secret=WRONG, ip=ip, status=401)
    assert_throttled(client_token(app, ip="2001:db8:0:7::abcd", status=429))
    client_token(app, ip="2001:db8:0:8::1", status=200)


def test_other_errors_are_not_counted(app):
    for _ in range(5):
        params = {"grant_type": "refresh_token", "refresh_token": "not-a-refresh-token"}
        headers = {"Authorization": basic(CLI_ID, CLI_SECRET)}
        response = app.post(TOKEN, params, headers=headers, extra_environ=addr("192.0.2.1"), status=400)
        assert response.json["error"] in ("invalid_grant", "unauthorized_client")
    client_token(app, status=200)


def test_success_does_not_reset_the_count(app):
    client_token(app, secret=WRONG, status=401)
    client_token(app, secret=WRONG, status=401)
    client_token(app, status=200)
    client_token(app, secret=WRONG, status=401)
    assert_throttled(client_token(app, status=429))


@pytest.mark.parametrize("store_url", ["memory://", "sqlite"])
@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param({"grant_type": "client_credentials"}, 200, id="token-issued"),
        pytest.param({"grant_type": "client_credentials", "scope": "nope"}, 400, id="grant-refused"),
        pytest.param(
            {"grant_type": "password", "username": "x", "password": "y"}, 400, id="grant-not-allowed"
        ),
    ],
)
def test_right_secrets_are_given_back_whether_or_not_a_token_follows(
    make_middleware, tmp_path, store_url, params, status
):
    # A right secret's attempt is given back whatever the grant then answers, on every store.
    store_url = f"sqlite:///{tmp_path}/oauth.db" if store_url == "sqlite" else store_url
    middleware = throttled_middleware(make_middleware, store=store_url, throttle_address_max_failures="3")
    app = webtest.TestApp(middleware)
    headers = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    for _ in range(5):  # beyond both limits
        app.post(TOKEN, params, headers=headers, extra_environ=addr("192.0.2.1"), status=status)
    counts = [
        middleware.server.store.get(f"fail:{subject}")
        for subject in ("addr:192.0.2.1", f"addr:192.0.2.1|client:{SERVICE_ID}")
    ]
    assert counts == [{"n": 0}, {"n": 0}]
    client_token(app, secret=WRONG, status=401)
    client_token(app, secret=WRONG, status=401)
    client_token(app, status=200)  # two failures, still below the limit of 3


def test_block_ends_after_the_window_and_blocked_requests_do_not_extend_it(make_middleware, clock):
    app = webtest.TestApp(make_middleware(throttle_max_failures="2", throttle_window="1", clock=clock))
    client_token(app, secret=WRONG, status=401)
    client_token(app, secret=WRONG, status=401)
    for _ in range(5):
        assert_throttled(client_token(app, status=429), window=1)
    clock.advance(1.2)
    # The count started again with the window: one failure is not a block.
    client_token(app, secret=WRONG, status=401)
    client_token(app, status=200)


def test_throttle_off(make_middleware):
    app = webtest.TestApp(make_middleware(throttle="false", throttle_max_failures="1"))
    for _ in range(5):
        client_token(app, secret=WRONG, status=401)
    client_token(app, status=200)


def test_block_is_logged_once(app, caplog):
    with caplog.at_level("WARNING", logger="oauth_middleware.throttle"):
        for _ in range(3):
            client_token(app, secret=WRONG, status=401)
        client_token(app, status=429)
    lines = [record.getMessage() for record in caplog.records if record.name == "oauth_middleware.throttle"]
    assert lines == [f"throttling addr:192.0.2.1|client:{SERVICE_ID} for 300 s after 3 failures"]


# -- passwords -------------------------------------------------------------------------------------


def test_wrong_passwords_block_the_user_before_the_password_is_checked(app):
    for _ in range(3):
        assert password_token(app, password="guess", status=400).json["error"] == "invalid_grant"
    assert_throttled(password_token(app, status=429))
    # The client all users share is not blocked, nor another user.
    password_token(app, "bob", "bob-password", status=200)


def test_a_strangers_wrong_passwords_do_not_block_the_user_from_another_address(app):
    # Issue 10 item 4: a block per username let anyone lock a user out from anywhere.
    for _ in range(3):
        password_token(app, password="guess", ip="203.0.113.66", status=400)
    assert_throttled(password_token(app, ip="203.0.113.66", status=429))
    password_token(app, ip="192.0.2.1", status=200)


@pytest.mark.parametrize(
    "variants",
    [
        pytest.param(("alice", "Alice", " ALICE "), id="case-and-spaces"),
        pytest.param(("alice", "\uff41lice", "alice\t"), id="width-and-tab"),
    ],
)
def test_spelling_variants_of_a_username_share_one_count(app, variants):
    for username in variants:
        password_token(app, username, "guess", status=400)
    assert_throttled(password_token(app, status=429))


def first_word(username: str) -> str:
    """A ``normalize_username`` hook for the tests: ``alice@example`` counts as ``alice``."""
    return username.partition("@")[0].strip().lower()


def test_normalize_username_hook(make_middleware):
    app = throttled_app(make_middleware, normalize_username="test_throttling:first_word")
    for username in ("alice@one", "alice@two", "Alice"):
        password_token(app, username, "guess", status=400)
    assert_throttled(password_token(app, status=429))
    password_token(app, "bob", "bob-password", status=200)


def test_wrong_passwords_block_the_address(make_middleware):
    app = throttled_app(make_middleware, throttle_address_max_failures="3")
    for username in ("alice", "bob", "mallory"):
        password_token(app, username, "guess", ip="203.0.113.7", status=400)
    assert_throttled(password_token(app, "bob", "bob-password", ip="203.0.113.7", status=429))
    password_token(app, "bob", "bob-password", ip="203.0.113.8", status=200)


def test_usernames_are_kept_hashed(make_middleware):
    memory = MemoryStore()
    middleware = flow_middleware(make_middleware, store_backend=memory, grants="password client_credentials")
    register(middleware, CLI_ID, CLI_SECRET, grant_types=["password"], scopes=["read"])
    app = webtest.TestApp(middleware)
    password_token(app, "alice", "guess", status=400)
    keys = list(memory._values)
    assert not [key for key in keys if "alice" in key]
    assert f"fail:addr:192.0.2.1|user:{hashlib.sha256(b'alice').hexdigest()}" in keys


def login_attempt(app, password, ip="192.0.2.1"):
    page = app.get(AUTHORIZE, code_request(), extra_environ=addr(ip))
    form = page.forms[0]
    form["username"], form["password"] = "alice", password
    return form.submit(extra_environ=addr(ip), expect_errors=True)


def test_login_page_is_throttled_with_the_password_grant(app):
    for _ in range(2):
        assert login_attempt(app, "guess").status_int == 200
    password_token(app, password="guess", status=400)  # the same user's count
    answer = login_attempt(app, "alice-password")
    assert answer.status_int == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 300
    assert "Too many failed attempts" in answer.text
    assert answer.forms[0]["step"].value == "login"  # the form again, no session, no redirect
    assert "Location" not in answer.headers and "Set-Cookie" not in answer.headers
    assert_throttled(password_token(app, status=429))
    assert login_attempt(app, "alice-password", ip="192.0.2.9").status_int == 303  # from elsewhere: in


# -- unknown addresses and Unix sockets -----------------------------------------------------------

#: ``REMOTE_ADDR`` of a request through a Unix socket: absent (in-process), empty (gunicorn), a name (waitress).
UNKNOWN = [
    pytest.param(None, id="no-remote-addr"),
    pytest.param("", id="gunicorn-unix"),
    pytest.param("localhost", id="waitress-unix"),
]


@pytest.mark.parametrize("peer", UNKNOWN)
def test_unknown_addresses_do_not_share_one_block(app, peer):
    # Issue 10 item 4: every such request counted as ``addr:unknown``, so three
    # failures for made-up clients and users locked every client and user out.
    for n in range(3):
        client_token(app, f"nobody-{n}", WRONG, ip=peer, status=401)
        password_token(app, f"nobody-{n}", "guess", ip=peer, status=400)
    client_token(app, ip=peer, status=200)
    password_token(app, ip=peer, status=200)


@pytest.mark.parametrize("peer", UNKNOWN)
def test_with_an_unknown_address_a_subject_is_still_throttled_and_a_warning_says_why(app, caplog, peer):
    with caplog.at_level("WARNING", logger="oauth_middleware.throttle"):
        for _ in range(3):
            client_token(app, secret=WRONG, ip=peer, status=401)
        assert_throttled(client_token(app, ip=peer, status=429))
    warnings = [r.getMessage() for r in caplog.records if "address is unknown" in r.getMessage()]
    assert len(warnings) == 1
    assert "trusted_proxies = unix" in warnings[0]


@pytest.mark.parametrize("peer", UNKNOWN)
def test_a_trusted_unix_peer_forwards_the_client_address(make_middleware, caplog, peer):
    app = throttled_app(make_middleware, trusted_proxies="unix")
    stranger, owner = (
        addr(peer) | {"HTTP_X_FORWARDED_FOR": "203.0.113.66"},
        addr(peer) | {"HTTP_X_FORWARDED_FOR": "192.0.2.1"},
    )
    headers = {"Authorization": basic(SERVICE_ID, WRONG)}
    body = {"grant_type": "client_credentials"}
    with caplog.at_level("WARNING", logger="oauth_middleware.throttle"):
        for _ in range(3):
            app.post(TOKEN, body, headers=headers, extra_environ=stranger, status=401)
        headers = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
        assert_throttled(app.post(TOKEN, body, headers=headers, extra_environ=stranger, status=429))
        app.post(TOKEN, body, headers=headers, extra_environ=owner, status=200)
    assert not [r for r in caplog.records if "address is unknown" in r.getMessage()]


# -- concurrent guesses (issue 10 item 12) ----------------------------------------------------------

THREADS = 20
#: Calls of :func:`slow_verify`, the ``verify_password`` of the race test.
verify_calls = 0
_verify_lock = threading.Lock()


def slow_verify(username: str, password: str) -> str | None:
    """The flow tests' ``verify_password``, counted and slowed down so that guesses overlap."""
    global verify_calls
    with _verify_lock:
        verify_calls += 1
    time.sleep(0.05)
    return flow_verify_password(username, password)


class BlockWakesWaiters(SlowReads):
    """:class:`SlowReads`, and a real clock whose ``sleep`` (the throttle's wait for
    attempts being checked) ends early when a block is stored: the waiting attempts
    then see it at once, instead of polling until it is there."""

    def __init__(self, store, prefixes, readers):  # noqa: F811
        super().__init__(store, prefixes, readers=readers)
        self._blocked = threading.Condition()
        self.time, self.monotonic = time.time, time.monotonic

    def sleep(self, seconds: float) -> None:
        with self._blocked:
            self._blocked.wait(seconds)  # a block stored just before this wait is seen after it

    def add(self, key, value, ttl):
        added = self.store.add(key, value, ttl)
        if key.startswith("block:"):
            with self._blocked:
                self._blocked.notify_all()
        return added


@pytest.mark.parametrize("kind", ["client-secret", "password"])
def test_concurrent_wrong_guesses_get_no_more_checks_than_the_limit(make_middleware, store, kind):  # noqa: F811
    # Issue 10 item 12: the throttle checked, then counted, so every request in
    # flight at once had its credentials checked before the first one was counted.
    global verify_calls
    verify_calls = 0
    store_and_clock = BlockWakesWaiters(store, ("client:",), readers=THREADS)
    middleware = throttled_middleware(
        make_middleware,
        store_backend=store_and_clock,
        clock=store_and_clock,
        verify_password="test_throttling:slow_verify",
    )
    if kind == "client-secret":
        data = {"grant_type": "client_credentials", "client_id": SERVICE_ID, "client_secret": WRONG}
        refused = 401
    else:
        data = {"grant_type": "password", "client_id": NATIVE_ID, "username": "alice", "password": "guess"}
        refused = 400
    with serve(middleware, threads=THREADS) as base:
        results = race(base + TOKEN, data, threads=THREADS)
    statuses = sorted(response.status_code for response in results)
    assert statuses == [refused] * 3 + [429] * (THREADS - 3)
    if kind == "password":
        assert verify_calls == 3


def test_a_burst_of_right_secrets_beyond_the_limit_all_pass(make_middleware, store):  # noqa: F811
    # Attempts being checked fill the counter for a moment; the right ones wait, they are not refused.
    middleware = throttled_middleware(
        make_middleware, store_backend=SlowReads(store, ("client:",), 0.02, readers=10)
    )
    allow_body_secret(middleware, SERVICE_ID)  # registered for client_secret_post
    data = {"grant_type": "client_credentials", "client_id": SERVICE_ID, "client_secret": SERVICE_SECRET}
    with serve(middleware, threads=10) as base:
        results = race(base + TOKEN, data, threads=10)
    assert [response.status_code for response in results] == [200] * 10


# -- across workers, and store outages ----------------------------------------------------------


def test_two_workers_sharing_sqlite_share_the_count(tmp_path):
    url = f"sqlite:///{tmp_path / 'oauth.db'}"
    workers = [
        OAuth2Middleware(
            lambda e, s: [], issuer="http://localhost", store=url, throttle_max_failures="3", scopes="read"
        )
        for _ in range(2)
    ]
    register(workers[0], SERVICE_ID, SERVICE_SECRET, grant_types=["client_credentials"], scopes=["read"])
    first, second = (webtest.TestApp(worker) for worker in workers)
    client_token(first, secret=WRONG, status=401)
    client_token(second, secret=WRONG, status=401)
    client_token(first, secret=WRONG, status=401)
    assert_throttled(client_token(second, status=429))
    assert_throttled(client_token(first, status=429))


class OutageOn(MemoryStore):
    """A memory store whose calls of one kind fail: ``get`` of block markers, ``incr`` or ``decr``."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def get(self, key):
        if self.what == "block" and key.startswith("block:"):
            raise StoreUnavailable("connection refused")
        return super().get(key)

    def incr(self, key, ttl):
        if self.what == "incr":
            raise StoreUnavailable("connection refused")
        return super().incr(key, ttl)

    def decr(self, key):
        if self.what == "decr":
            raise StoreUnavailable("connection refused")
        super().decr(key)


@pytest.mark.parametrize(
    ("what", "secret"),
    [
        pytest.param("block", SERVICE_SECRET, id="check-before-a-right-secret"),
        pytest.param("block", WRONG, id="check-before-a-wrong-secret"),
        pytest.param("incr", WRONG, id="counting-a-wrong-secret"),
        pytest.param("incr", SERVICE_SECRET, id="counting-a-right-secret"),
        pytest.param("decr", SERVICE_SECRET, id="giving-back-a-right-secret"),
    ],
)
def test_store_outage_in_the_throttle_fails_closed(make_middleware, what, secret):
    app = webtest.TestApp(make_middleware(store_backend=OutageOn(what)))
    response = client_token(app, secret=secret, status=503)
    assert response.json["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"].isdigit()


# -- a real gunicorn on a Unix socket ------------------------------------------------------------


class UnixConnection(http.client.HTTPConnection):
    """HTTP over the Unix socket at ``socket_path`` (what a proxy such as nginx does)."""

    def __init__(self, socket_path: str) -> None:
        super().__init__("auth.example")
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.socket_path)


def unix_post(socket_path: str, client_ip: str, secret: str) -> int:
    """A client-credentials request for the service client, forwarded for ``client_ip`` over HTTPS."""
    connection = UnixConnection(socket_path)
    try:
        connection.request(
            "POST",
            TOKEN,
            body="grant_type=client_credentials",
            headers={
                "Authorization": basic(SERVICE_ID, secret),
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Forwarded-For": client_ip,
                "X-Forwarded-Proto": "https",
            },
        )
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.fixture
def gunicorn_on_a_unix_socket(tmp_path):
    """``gunicorn --paste --bind unix:...`` with ``trusted_proxies = unix``; yields the socket path."""
    (tmp_path / "clients.ini").write_text(
        f"[client:{SERVICE_ID}]\nsecret_hash = {digest(SERVICE_SECRET)}\n"
        "grants = client_credentials\nscopes = read\n"
    )
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nstore = sqlite:///%(here)s/oauth.db\n"
        "issuer = https://auth.example\ngrants = client_credentials\nscopes = read\n"
        "clients_file = %(here)s/clients.ini\ntrusted_proxies = unix\nthrottle_max_failures = 3\n"
    )
    directory = tempfile.mkdtemp(prefix="om-")  # a socket path must be short (108 bytes)
    socket_path = os.path.join(directory, "gunicorn.sock")
    log = tmp_path / "gunicorn.log"
    argv = [sys.executable, "-m", "gunicorn", "--paste", str(ini), "--bind", f"unix:{socket_path}", "-w", "1"]
    with log.open("wb") as output:
        process = subprocess.Popen(argv, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(socket_path):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield socket_path
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_behind_gunicorn_on_a_unix_socket_a_stranger_blocks_only_itself(gunicorn_on_a_unix_socket):
    for _ in range(3):
        assert unix_post(gunicorn_on_a_unix_socket, "203.0.113.66", WRONG) == 401
    assert unix_post(gunicorn_on_a_unix_socket, "203.0.113.66", SERVICE_SECRET) == 429
    assert unix_post(gunicorn_on_a_unix_socket, "192.0.2.1", SERVICE_SECRET) == 200


# -- oauth-middleware throttle clear ----------------------------------------------------------------


def write_ini(directory) -> str:
    """An ini on SQLite with the service client and at most 3 failures per pair."""
    (directory / "clients.ini").write_text(
        f"[client:{SERVICE_ID}]\nsecret_hash = {digest(SERVICE_SECRET)}\n"
        "grants = client_credentials\nscopes = read\n"
    )
    ini = directory / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nstore = sqlite:///%(here)s/oauth.db\n"
        "issuer = https://auth.example\ngrants = client_credentials\nscopes = read\n"
        "clients_file = %(here)s/clients.ini\nthrottle_max_failures = 3\n"
    )
    return str(ini)


def test_throttle_clear_lifts_a_block(tmp_path, capsys):
    ini = write_ini(tmp_path)
    app = webtest.TestApp(loadapp(f"config:{ini}"))
    for _ in range(3):
        client_token(app, secret=WRONG, ip="203.0.113.66", status=401)
    assert_throttled(client_token(app, ip="203.0.113.66", status=429))
    assert main(["throttle", "clear", ini, "--address", "203.0.113.66", "--client-id", SERVICE_ID]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"cleared addr:203.0.113.66|client:{SERVICE_ID}",
        "cleared addr:203.0.113.66",
    ]
    client_token(app, ip="203.0.113.66", status=200)
    for _ in range(3):  # counted afresh
        client_token(app, secret=WRONG, ip="203.0.113.66", status=401)
    client_token(app, ip="203.0.113.66", status=429)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--address", "nowhere"], "--address: expected an IP address or unknown, got 'nowhere'"),
        pytest.param(
            ["--address", "unknown"], "--address unknown: name the --client-id or --username to clear"
        ),
    ],
)
def test_throttle_clear_errors(tmp_path, capsys, argv, message):
    assert main(["throttle", "clear", write_ini(tmp_path), *argv]) == 2
    assert capsys.readouterr().err == f"oauth-middleware: error: {message}\n"


def test_throttle_clear_names_a_user_by_its_normalised_hash(tmp_path, capsys):
    argv = ["throttle", "clear", write_ini(tmp_path), "--address", "2001:db8::7", "--username", " Alice"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"cleared addr:2001:db8::/64|user:{hashlib.sha256(b'alice').hexdigest()}",
        "cleared addr:2001:db8::/64",
    ]


def test_throttle_off_counts_nothing_and_warns_of_nothing(make_middleware, caplog):
    memory = MemoryStore()
    app = throttled_app(make_middleware, throttle="false", store_backend=memory)
    with caplog.at_level("WARNING", logger="oauth_middleware.throttle"):
        client_token(app, secret=WRONG, ip=None, status=401)
    assert not [r for r in caplog.records if r.name == "oauth_middleware.throttle"]
    assert not [key for key in memory._values if key.startswith(("fail:", "block:"))]
