"""Logging: one line per event that matters, under ``oauth_middleware.*``, never a secret.

Each event of the table runs a real flow on the in-process middleware, and
the records it logs are checked: exactly the expected line, at its level,
from its logger, and no token, code, secret, verifier or password of the
flow anywhere in what was logged. Then ``oauth-middleware serve`` with an
ini's ``[loggers]`` sections: the shipped demo's console format, and a file
handler of our own.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, free_port, register
from flaky_store import FlakyStore
from oauth_flows import (
    AUTHORIZE,
    NATIVE_ID,
    TOKEN,
    USERS,
    VERIFIER,
    WEB_SECRET,
    code_request,
    flow_middleware,
    get_code,
    redeem,
)
from test_serve import (
    CLIENT_ID,
    CLIENT_SECRET,
    EXAMPLES,
    assert_one_line_naming,
    cli,
    run,
    running,
    write_config,
)

from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.outage import OutageLog

CLI_ID, CLI_SECRET = "cli", "cli-secret-0123456789"


class Flow:
    """A middleware with the flow tests' clients and users, and everything secret seen so far.

    :param middleware: the middleware under test.
    :param caplog: pytest's log capture, recording from DEBUG up.
    """

    def __init__(self, middleware: OAuth2Middleware, caplog: pytest.LogCaptureFixture) -> None:
        self.middleware = middleware
        # From a known address: an unknown one is an event of its own (address_unknown).
        self.app = webtest.TestApp(middleware, extra_environ={"REMOTE_ADDR": "192.0.2.1"})
        self.caplog = caplog
        self.secrets: set[str] = {SERVICE_SECRET, WEB_SECRET, CLI_SECRET, VERIFIER, *USERS.values()}
        self.records: list[logging.LogRecord] = []

    def keep(self, *values: str) -> None:
        """Remember values that must never be logged."""
        self.secrets.update(values)

    @contextlib.contextmanager
    def event(self) -> Iterator[None]:
        """Collect the records logged inside the block: the event under test."""
        start = len(self.caplog.records)
        yield
        self.records = self.caplog.records[start:]

    def token(self, **params: str) -> dict[str, Any]:
        """The token endpoint's JSON for the service client (every token in it kept secret)."""
        params.setdefault("grant_type", "client_credentials")
        answer = self.app.post(TOKEN, params, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)})
        return self.tokens_of(answer.json)

    def tokens_of(self, body: dict[str, Any]) -> dict[str, Any]:
        self.keep(*(body[name] for name in ("access_token", "refresh_token") if name in body))
        return body

    def code(self) -> str:
        code = get_code(self.app)
        self.keep(code)
        return code


# -- the events ------------------------------------------------------------------


def token_issued(flow: Flow) -> None:
    with flow.event():
        flow.token(scope="read")


def token_issued_to_a_user(flow: Flow) -> None:
    with flow.event():
        flow.tokens_of(
            flow.app.post(
                TOKEN,
                {"grant_type": "password", "username": "alice", "password": USERS["alice"]},
                headers={"Authorization": basic(CLI_ID, CLI_SECRET)},
            ).json
        )


def client_authentication_failed(flow: Flow) -> None:
    wrong = "not-the-secret-9876543210"
    flow.keep(wrong)
    with flow.event():
        flow.app.post(
            TOKEN,
            {"grant_type": "client_credentials"},
            headers={"Authorization": basic(SERVICE_ID, wrong)},
            status=401,
        )


def address_unknown(flow: Flow) -> None:
    with flow.event():
        flow.app.post(
            TOKEN,
            {"grant_type": "client_credentials"},
            headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            extra_environ={"REMOTE_ADDR": ""},  # what gunicorn gives behind a Unix socket
        )


def code_replayed(flow: Flow) -> None:
    code = flow.code()
    flow.tokens_of(redeem(flow.app, code))
    with flow.event():
        redeem(flow.app, code, status=400)


def refresh_reuse_detected(flow: Flow) -> None:
    first = flow.tokens_of(redeem(flow.app, flow.code()))

    def refresh(refresh_token: str, status: int = 200) -> dict[str, Any]:
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": NATIVE_ID}
        return flow.tokens_of(flow.app.post(TOKEN, params, status=status).json)

    refresh(first["refresh_token"])
    with flow.event():
        refresh(first["refresh_token"], status=400)


def store_unavailable(flow: Flow) -> None:
    token = flow.token()["access_token"]
    store = flow.middleware.server.store
    assert isinstance(store, FlakyStore)
    # A JWT guard never reads the store: it keeps working, and must not announce a recovery.
    guard_status = 200 if flow.middleware.settings.token_format == "jwt" else 503
    store.down = True
    with flow.event():
        # Failed store calls from the token endpoint and the guard: one line.
        flow.app.post(
            TOKEN,
            {"grant_type": "client_credentials"},
            headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)},
            status=503,
        )
        for _ in range(3):
            flow.app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=guard_status)
    store.down = False


def store_recovered(flow: Flow) -> None:
    store_unavailable(flow)
    with flow.event():
        # The token endpoint is the first to reach the store again: it says so, once.
        flow.token()
        flow.token()
        flow.app.get("/api/me", headers={"Authorization": f"Bearer {flow.token()['access_token']}"})


def password_grant_failed(flow: Flow) -> None:
    wrong = "Hunter2-not-her-password"
    flow.keep(wrong)
    with flow.event():
        flow.app.post(
            TOKEN,
            {"grant_type": "password", "username": "alice", "password": wrong},
            headers={"Authorization": basic(CLI_ID, CLI_SECRET)},
            status=400,
        )


def login_page_failed(flow: Flow) -> None:
    wrong = "guess-Secret-42"
    flow.keep(wrong)
    form = flow.app.get(AUTHORIZE, code_request()).forms[0]
    form["username"], form["password"] = "alice", wrong
    with flow.event():
        assert form.submit().status_int == 200


def access_token_revoked(flow: Flow) -> None:
    token = flow.token()["access_token"]
    with flow.event():
        flow.app.post(
            "/oauth/revoke", {"token": token}, headers={"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
        )


def refresh_token_revoked(flow: Flow) -> None:
    tokens = flow.tokens_of(redeem(flow.app, flow.code()))
    with flow.event():
        flow.app.post("/oauth/revoke", {"token": tokens["refresh_token"], "client_id": NATIVE_ID})


def jwt_rejected(flow: Flow) -> None:
    token = flow.token()["access_token"]
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    flow.keep(forged)
    with flow.event():
        flow.app.get("/api/me", headers={"Authorization": f"Bearer {forged}"}, status=401)


@dataclass(frozen=True)
class Event:
    """What one event must log: exactly one record of ``logger`` at ``level`` matching ``line``.

    :param others: patterns of the other records the same requests may log.
    """

    run: Callable[[Flow], None]
    logger: str
    level: int
    line: str
    settings: tuple[tuple[str, str], ...] = ()
    others: tuple[str, ...] = ()


EVENTS = [
    pytest.param(
        Event(
            token_issued,
            "oauth_middleware.tokens",
            logging.INFO,
            r"token issued: client_id='service' user=None grant=client_credentials scope='read'",
        ),
        id="token-issued",
    ),
    pytest.param(
        Event(
            token_issued_to_a_user,
            "oauth_middleware.tokens",
            logging.INFO,
            r"token issued: client_id='cli' user='alice' grant=password scope='read write'",
        ),
        id="token-issued-to-a-user",
    ),
    pytest.param(
        Event(
            client_authentication_failed,
            "oauth_middleware.clients",
            logging.WARNING,
            r"client authentication failed: client_id='service' reason=wrong secret",
        ),
        id="client-authentication-failed",
    ),
    pytest.param(
        Event(
            address_unknown,
            "oauth_middleware.throttle",
            logging.WARNING,
            r"the client address is unknown \(REMOTE_ADDR ''\): failures are counted per client id and "
            r"username alone, so anyone can block one for everyone\. Behind a Unix socket, set "
            r"trusted_proxies = unix and let the proxy send X-Forwarded-For\.",
            others=(
                r"token issued: client_id='service' user=None grant=client_credentials scope='read write'",
            ),
        ),
        id="address-unknown",
    ),
    pytest.param(
        Event(
            code_replayed,
            "oauth_middleware.grants",
            logging.WARNING,
            r"authorization code replayed: its tokens are revoked: client_id='native' family=[0-9a-f]{12}",
        ),
        id="code-replayed",
    ),
    pytest.param(
        Event(
            refresh_reuse_detected,
            "oauth_middleware.grants",
            logging.WARNING,
            r"rotated refresh token reused: family revoked: client_id='native' family=\S{1,12}",
        ),
        id="refresh-reuse-detected",
    ),
    pytest.param(
        Event(
            store_unavailable,
            "oauth_middleware.store",
            logging.ERROR,
            r"store unavailable, failing closed: connection refused",
            settings=(("store", "flaky"),),
        ),
        id="store-unavailable",
    ),
    pytest.param(
        Event(
            store_recovered,
            "oauth_middleware.store",
            logging.WARNING,
            r"store reachable again",
            settings=(("store", "flaky"),),
            others=(r"token issued: .*",) * 3,
        ),
        id="store-recovered",
    ),
    pytest.param(
        Event(
            store_recovered,
            "oauth_middleware.store",
            logging.WARNING,
            r"store reachable again",
            # A JWT guard that never reads the store must not announce it is back.
            settings=(
                ("store", "flaky"),
                ("token_format", "jwt"),
                ("jwt_algorithm", "HS256"),
                ("jwt_secret", "s" * 32),
                ("jwt_check_revocation", "false"),  # on by default: it would read the deny list
            ),
            others=(r"token issued: .*",) * 3,
        ),
        id="store-recovered-jwt",
    ),
    pytest.param(
        Event(
            password_grant_failed,
            "oauth_middleware.users",
            logging.WARNING,
            r"password grant: wrong username or password: username='alice' client_id='cli'",
        ),
        id="password-grant-failed",
    ),
    pytest.param(
        Event(
            login_page_failed,
            "oauth_middleware.users",
            logging.WARNING,
            r"login page: wrong username or password: username='alice' client_id='native'",
        ),
        id="login-page-failed",
    ),
    pytest.param(
        Event(
            access_token_revoked,
            "oauth_middleware.revoke",
            logging.INFO,
            r"access token revoked: client_id='service'",
        ),
        id="access-token-revoked",
    ),
    pytest.param(
        Event(
            access_token_revoked,
            "oauth_middleware.revoke",
            logging.INFO,
            r"access token revoked: client_id='service'",
            settings=(("token_format", "jwt"), ("jwt_algorithm", "HS256"), ("jwt_secret", "s" * 32)),
        ),
        id="jwt-revoked",
    ),
    pytest.param(
        Event(
            refresh_token_revoked,
            "oauth_middleware.revoke",
            logging.INFO,
            r"refresh token and its family revoked: client_id='native'",
        ),
        id="refresh-token-revoked",
    ),
    pytest.param(
        Event(
            jwt_rejected,
            "oauth_middleware.tokens",
            logging.INFO,
            r"JWT access token rejected: InvalidSignatureError",
            settings=(("token_format", "jwt"), ("jwt_algorithm", "HS256"), ("jwt_secret", "s" * 32)),
        ),
        id="jwt-rejected",
    ),
]


@pytest.mark.parametrize("event", EVENTS)
def test_each_event_is_one_line_without_secrets(
    event: Event, make_middleware: Callable[..., OAuth2Middleware], caplog: pytest.LogCaptureFixture
) -> None:
    settings: dict[str, Any] = {"grants": "authorization_code refresh_token client_credentials password"}
    for name, value in event.settings:
        settings[name] = value
    if settings.get("token_format") == "jwt":
        settings.update(issuer="https://auth.test", audience="https://api.test")
    if settings.pop("store", None) == "flaky":
        settings["store_backend"] = FlakyStore()
    caplog.set_level(logging.DEBUG, logger="oauth_middleware")
    middleware = flow_middleware(make_middleware, **settings)
    register(
        middleware, CLI_ID, CLI_SECRET, grant_types=["password", "refresh_token"], scopes=["read", "write"]
    )
    flow = Flow(middleware, caplog)

    event.run(flow)

    lines = [(record.name, record.levelno, record.getMessage()) for record in flow.records]
    matching = [line for line in lines if re.fullmatch(event.line, line[2])]
    assert len(matching) == 1, lines
    # Once in the whole flow, too: not also before the event (a recovery announced too early).
    assert sum(bool(re.fullmatch(event.line, record.getMessage())) for record in caplog.records) == 1, (
        caplog.text
    )
    assert matching[0][:2] == (event.logger, event.level), lines
    # Nothing else was logged by the event's requests, beyond what is expected.
    others = [line[2] for line in lines if line not in matching]
    assert len(others) == len(event.others), lines
    for pattern, message in zip(sorted(event.others), sorted(others), strict=True):
        assert re.fullmatch(pattern, message), lines
    # Every record of the whole flow: one line, under oauth_middleware, no secret.
    assert flow.secrets
    for record in caplog.records:
        message = record.getMessage()
        assert "\n" not in message and record.exc_info is None, message
        assert record.name.startswith("oauth_middleware"), record.name
        leaked = [secret for secret in flow.secrets if secret in message]
        assert not leaked, message


def test_a_recovery_is_logged_once_by_many_requests_at_once(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog()
    caplog.set_level(logging.WARNING, logger="oauth_middleware.store")
    outage.failed(ConnectionError("refused"))
    caplog.clear()
    threads = [threading.Thread(target=outage.succeeded) for _ in range(8)]
    # All eight see the outage before any of them may end it: they queue on its lock.
    with outage._lock:
        for thread in threads:
            thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    assert [r.getMessage() for r in caplog.records] == ["store reachable again"]


def test_missing_session_secret_is_a_warning_naming_the_consequence(
    make_middleware: Callable[..., OAuth2Middleware], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oauth_middleware")
    make_middleware()
    about = [record for record in caplog.records if "session_secret" in record.getMessage()]
    assert [(record.name, record.levelno) for record in about] == [("oauth_middleware", logging.WARNING)]
    message = about[0].getMessage()
    assert "several worker processes" in message and "the login form expired" in message, message


def test_no_warning_with_a_session_secret(
    make_middleware: Callable[..., OAuth2Middleware], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="oauth_middleware")
    make_middleware(session_secret="a-session-secret-of-32-characters-or-more")
    assert not [record for record in caplog.records if "session_secret" in record.getMessage()]


# -- oauth-middleware serve and the ini's logging sections ------------------------------


def test_serve_logs_with_the_shipped_demo_format(tmp_path: pathlib.Path) -> None:
    for name in ("demo.ini", "demo_clients.ini"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    output = tmp_path / "serve.log"
    with running(cli("serve", str(tmp_path / "demo.ini"), "--port", str(port)), base_url, output):
        answer = requests.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("demo-service", "demo-service-secret"),
            timeout=5,
        )
        token = answer.json()["access_token"]
    text = output.read_text()
    pattern = (
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO    \[oauth_middleware\.tokens\] "
        r"token issued: client_id='demo-service' user=None grant=client_credentials scope='read'"
    )
    assert re.search(pattern, text, re.MULTILINE), text
    assert token not in text and "demo-service-secret" not in text


LOGGING_SECTIONS = """
[loggers]
keys = root, oauth_middleware

[handlers]
keys = audit

[formatters]
keys = audit

[logger_root]
level = WARNING
handlers =

[logger_oauth_middleware]
level = INFO
handlers = audit
qualname = oauth_middleware
propagate = 0

[handler_audit]
class = FileHandler
args = ('%(here)s/audit.log', 'a')
formatter = audit

[formatter_audit]
format = AUDIT %(levelname)s %(name)s %(message)s
"""


def test_serve_applies_the_ini_logging_sections(tmp_path: pathlib.Path) -> None:
    ini = write_config(tmp_path)
    ini.write_text(ini.read_text() + LOGGING_SECTIONS)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    wrong = "wrong-secret-0123456789"
    with running(cli("serve", str(ini), "--port", str(port)), base_url, tmp_path / "serve.log"):
        token = requests.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
            timeout=5,
        ).json()["access_token"]
        denied = requests.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, wrong),
            timeout=5,
        )
        assert denied.status_code == 401
    lines = (tmp_path / "audit.log").read_text().splitlines()
    assert all(line.startswith("AUDIT ") for line in lines), lines
    assert lines[-2:] == [
        "AUDIT INFO oauth_middleware.tokens token issued: client_id='svc' user=None grant=client_credentials "
        "scope='read'",
        "AUDIT WARNING oauth_middleware.clients client authentication failed: client_id='svc' reason=wrong secret",
    ]
    served = (tmp_path / "serve.log").read_text()
    assert "token issued" not in served  # the file handler took them, not a console
    for secret in (token, CLIENT_SECRET, wrong):
        assert secret not in served


def test_serve_reports_broken_logging_sections_in_one_line(tmp_path: pathlib.Path) -> None:
    ini = write_config(tmp_path)
    ini.write_text(ini.read_text() + "\n[loggers]\nkeys = root, missing\n")
    result = run(cli("serve", str(ini), "--port", str(free_port())), tmp_path)
    assert result.returncode == 2
    assert_one_line_naming(result.stderr, "logging sections")
