"""Many processes, one Redis, PostgreSQL or MariaDB: ``gunicorn --paste`` with three workers sharing the store.

A token issued by one worker must be accepted by the others, and a code
redeemed by 20 clients at once, across processes, must give exactly one
token. The processes share nothing but the store (and ``session_secret``, which
signs the consent form's session). The user is whoever the ``X-Test-User``
header names (:func:`header_user`, the ``authenticate_user`` of the ini),
so the consent page is reached without the login form.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import webtest
from conftest import basic, free_port
from oauth_flows import CHALLENGE, VERIFIER, location_params, race, submit_form
from paste.deploy import loadapp
from servers import RedisServer, redis_server, shared_mariadb, shared_postgres, shared_redis  # noqa: F401

from oauth_middleware.guard import Guard
from oauth_middleware.models import digest

TESTS = pathlib.Path(__file__).resolve().parent
SERVICE, SERVICE_SECRET = "mp-service", "mp-service-secret-0123456789"
NATIVE, NATIVE_REDIRECT = "mp-native", "http://127.0.0.1/callback"
USER_HEADER = "X-Test-User"
WORKERS = 3
#: Seconds gunicorn gets to answer its first request.
START_TIMEOUT = 20.0


def header_user(request: Any) -> str | None:
    """The ``authenticate_user`` of the test ini: the user named by a header (tests only!)."""
    return request.headers.get(USER_HEADER) or None


def write_ini(directory: pathlib.Path, store: str) -> pathlib.Path:
    """The demo behind the oauth2 filter on ``store``, with a service and a native client."""
    (directory / "clients.ini").write_text(
        f"[client:{SERVICE}]\nsecret_hash = {digest(SERVICE_SECRET)}\n"
        "grants = client_credentials\nscopes = read write\n\n"
        f"[client:{NATIVE}]\npublic = true\nredirect_uris = {NATIVE_REDIRECT}\n"
        "grants = authorization_code\nscopes = read write\n"
    )
    ini = directory / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nissuer = http://127.0.0.1\n"
        f"store = {store}\nstore_prefix = mp-{uuid.uuid4().hex[:12]}:\nstore_timeout = 2\n"
        f"store_table_prefix = mp_{uuid.uuid4().hex[:12]}_\n"
        "grants = authorization_code client_credentials\nscopes = read write\ndefault_scope = read\n"
        "require_https = false\n"
        "clients_file = %(here)s/clients.ini\n"
        "authenticate_user = test_multiprocess:header_user\n"
        "session_secret = multiprocess-test-session-secret-0123456789\n"
        "public_paths = /health\nscope_rules = GET,HEAD /api/* read\n"
    )
    return ini


#: The shared stores the workers are run on, by name (the test id).
STORES = {"redis": shared_redis, "postgresql": shared_postgres, "mysql": shared_mariadb}


@pytest.fixture(scope="module", params=list(STORES))
def gunicorn(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, pathlib.Path]]:
    """``gunicorn --paste`` with three sync workers on each shared store: (base URL, access log).

    Sync workers take one connection at a time, so concurrent requests are
    spread over the processes (a threaded worker would queue them all). The
    workers open the store (and a database's schema) at the same moment.
    """
    tmp_path = tmp_path_factory.mktemp("multiprocess")
    ini = write_ini(tmp_path, STORES[request.param](request).url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    access_log = tmp_path / "access.log"
    argv = [
        sys.executable, "-m", "gunicorn", "--paste", str(ini),
        "-w", str(WORKERS), "-b", f"127.0.0.1:{port}",
        "--graceful-timeout", "3", "--access-logfile", str(access_log),
        "--access-logformat", "%(p)s %(m)s %(U)s %(s)s",  # the worker's pid first
    ]  # fmt: skip
    log = tmp_path / "gunicorn.log"
    # The workers import header_user from this directory; the process gets
    # its own session so that a hard kill reaches every worker.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        wait_until_up(process, base, log)
        yield base, access_log
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_up(process: subprocess.Popen[bytes], base: str, log: pathlib.Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer within {START_TIMEOUT} s:\n{log.read_text()}")


def access_entries(access_log: pathlib.Path) -> list[tuple[str, str, str]]:
    """``(worker pid, path, status)`` of every request answered so far, in order."""
    entries = []
    for line in access_log.read_text().splitlines():
        pid, _method, path, status = line.split(" ")
        entries.append((pid, path, status))
    return entries


def wait_for_entries(access_log: pathlib.Path, count: int) -> list[tuple[str, str, str]]:
    """The access log once it has ``count`` entries (a worker logs just after answering)."""
    deadline = time.monotonic() + 5
    while len(entries := access_entries(access_log)) < count:
        assert time.monotonic() < deadline, f"the access log stopped at {len(entries)} of {count} entries"
        time.sleep(0.02)
    return entries


def workers_that_served(access_log: pathlib.Path, path: str, status: str) -> set[str]:
    """Pids of the workers that answered ``path`` with ``status``."""
    return {pid for pid, served, answer in access_entries(access_log) if (served, answer) == (path, status)}


def issue(base: str) -> str:
    """A client-credentials token, over a connection of its own (any worker may answer)."""
    response = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(SERVICE, SERVICE_SECRET)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def me(base: str, token: str) -> requests.Response:
    return requests.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_tokens_are_accepted_by_every_worker(gunicorn: tuple[str, pathlib.Path]) -> None:
    base, access_log = gunicorn
    tokens = [issue(base) for _ in range(5)]
    # Many requests at once (fresh connections), so that busy workers leave
    # requests to the others: each token is checked by several processes.
    with ThreadPoolExecutor(max_workers=12) as pool:
        deadline = time.monotonic() + 10
        while True:
            responses = list(pool.map(lambda i: me(base, tokens[i % len(tokens)]), range(60)))
            assert [r.status_code for r in responses] == [200] * len(responses)
            assert {r.json()["client_id"] for r in responses} == {SERVICE}
            if len(workers_that_served(access_log, "/api/me", "200")) == WORKERS:
                break
            assert time.monotonic() < deadline, access_log.read_text()
        # A token never issued is refused by every worker, as is a token from
        # another server's store: nothing but the store decides.
        unknown = list(pool.map(lambda _: me(base, "not-a-token").status_code, range(12)))
    assert unknown == [401] * 12


def get_code(base: str) -> str:
    """Alice approves the native client on the consent page, over real HTTP."""
    with requests.Session() as browser:
        browser.headers[USER_HEADER] = "alice"
        params = {
            "response_type": "code",
            "client_id": NATIVE,
            "redirect_uri": NATIVE_REDIRECT,
            "scope": "read",
            "state": "s1",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        }
        consent = browser.get(f"{base}/oauth/authorize", params=params, allow_redirects=False, timeout=10)
        assert consent.status_code == 200, consent.text
        decision = submit_form(browser, consent, decision="approve")
        assert decision.status_code == 303, decision.text
    answer = location_params(decision.headers["Location"])
    assert answer["state"] == "s1"
    return answer["code"]


def test_a_code_redeemed_from_twenty_threads_gives_one_token(gunicorn: tuple[str, pathlib.Path]) -> None:
    base, access_log = gunicorn
    # One sync worker often drains a whole burst of connections by itself, so
    # race new codes until a race was split between processes (each race must
    # have exactly one winner all the same).
    for _ in range(10):
        before = len(access_entries(access_log))
        data = {
            "grant_type": "authorization_code",
            "code": get_code(base),
            "client_id": NATIVE,
            "redirect_uri": NATIVE_REDIRECT,
            "code_verifier": VERIFIER,
        }
        results = race(f"{base}/oauth/token", data, threads=20)
        assert sorted(r.status_code for r in results) == [200] + [400] * 19, [r.text for r in results]
        assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_grant"}
        # The 19 others were replays, so the one token issued is revoked, in every worker.
        winner = next(r.json()["access_token"] for r in results if r.status_code == 200)
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = [r.status_code for r in pool.map(me, [base] * 12, [winner] * 12)]
        assert statuses == [401] * 12
        # Two authorize requests, 20 token requests and 12 API calls since ``before``.
        entries = wait_for_entries(access_log, before + 34)[before:]
        racers = {pid for pid, path, _ in entries if path == "/oauth/token"}
        if len(racers) > 1:
            break
    else:
        pytest.fail("no race was split between worker processes")


# -- the shipped scale-out examples ----------------------------------------------


def test_the_redis_examples_issue_and_check_tokens(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: pathlib.Path,
) -> None:
    """examples/redis.ini issues tokens that examples/resource_server_redis.ini accepts."""
    examples = TESTS.parent / "examples"
    prefix = f"ex-{uuid.uuid4().hex[:12]}:"
    for name in ("redis.ini", "resource_server_redis.ini", "demo_clients.ini"):
        text = (examples / name).read_text()
        if name != "demo_clients.ini":
            assert "store = redis://127.0.0.1:6379/0\n" in text and "store_prefix = oauth2:\n" in text
            text = text.replace("redis://127.0.0.1:6379/0", redis_server.url)
            text = text.replace("store_prefix = oauth2:", f"store_prefix = {prefix}")
        (tmp_path / name).write_text(text)
    authorization_server = webtest.TestApp(loadapp(f"config:{tmp_path / 'redis.ini'}"))
    resource_server = webtest.TestApp(loadapp(f"config:{tmp_path / 'resource_server_redis.ini'}"))
    assert isinstance(resource_server.app, Guard)  # the guard alone: no token endpoint
    resource_server.post("/oauth/token", {"grant_type": "client_credentials"}, status=401)

    token = authorization_server.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": "read"},
        headers={"Authorization": basic("demo-service", "demo-service-secret")},
    ).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert resource_server.get("/api/me", headers=headers).json["client_id"] == "demo-service"
    answer = resource_server.post("/api/me", headers=headers, status=403)
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
    resource_server.get("/api/me", headers={"Authorization": "Bearer unknown"}, status=401)
    # Revoked on the authorization server, refused by the resource server at once.
    authorization_server.post(
        "/oauth/revoke",
        {"token": token},
        headers={"Authorization": basic("demo-service", "demo-service-secret")},
    )
    resource_server.get("/api/me", headers=headers, status=401)


@pytest.mark.parametrize(
    ("name", "shipped_url"),
    [
        pytest.param(
            "postgresql.ini",
            "postgresql://oauth:change-me@127.0.0.1:5432/app?sslmode=prefer",
            id="postgresql",
        ),
        pytest.param("mysql.ini", "mysql://oauth:change-me@127.0.0.1:3306/app", id="mysql"),
    ],
)
def test_the_database_examples_migrate_issue_and_revoke(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, name: str, shipped_url: str
) -> None:
    """examples/postgresql.ini and examples/mysql.ini, pointed at the test servers."""
    from oauth_middleware.cli import main

    server = (shared_postgres if name.startswith("postgresql") else shared_mariadb)(request)
    examples = TESTS.parent / "examples"
    text = (examples / name).read_text()
    assert f"store = {shipped_url}\n" in text and "store_table_prefix = oauth_\n" in text
    text = text.replace(shipped_url, server.url)
    text = text.replace("store_table_prefix = oauth_", f"store_table_prefix = ex_{uuid.uuid4().hex[:12]}_")
    (tmp_path / name).write_text(text)
    (tmp_path / "demo_clients.ini").write_text((examples / "demo_clients.ini").read_text())
    assert main(["store", "migrate", str(tmp_path / name)]) == 0

    app = webtest.TestApp(loadapp(f"config:{tmp_path / name}"))
    service = {"Authorization": basic("demo-service", "demo-service-secret")}
    token = app.post("/oauth/token", {"grant_type": "client_credentials", "scope": "read"}, headers=service)
    headers = {"Authorization": f"Bearer {token.json['access_token']}"}
    assert app.get("/api/me", headers=headers).json["client_id"] == "demo-service"
    app.post("/oauth/revoke", {"token": token.json["access_token"]}, headers=service)
    app.get("/api/me", headers=headers, status=401)
