"""A pushed request's one-time use across worker processes (RFC 9126 §7.3 via §2.2; issue 12).

``gunicorn --paste`` with two sync workers shares nothing but the store
(SQLite or Redis) and ``session_secret``. The user's approval of one pushed
``request_uri`` is posted by 20 threads at the same moment, so that the
decisions reach both processes: exactly one gets a code, every other one
the error page.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
from collections.abc import Iterator

import pytest
import requests
from oauth_flows import CHALLENGE, location_params, page_form, race
from servers import shared_redis
from test_multiprocess import (
    NATIVE,
    NATIVE_REDIRECT,
    TESTS,
    USER_HEADER,
    access_entries,
    wait_for_entries,
    wait_until_up,
    write_ini,
)
from test_serve import gunicorn_argv, listening_socket

THREADS = 20


@pytest.fixture(params=["sqlite", "redis"])
def gunicorn(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    """Two sync workers on one store: (base URL, access log with each answer's worker pid)."""
    store = f"sqlite:///{tmp_path / 'oauth.db'}" if request.param == "sqlite" else shared_redis(request).url
    with serve_gunicorn(write_ini(tmp_path, store)) as base:
        yield base, tmp_path / "access.log"


@contextlib.contextmanager
def serve_gunicorn(ini: pathlib.Path) -> Iterator[str]:
    """``gunicorn --paste ini`` with two sync workers, run in the ini's directory; yield its base URL."""
    tmp_path = ini.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
    }
    log = tmp_path / "gunicorn.log"
    # gunicorn inherits the listening socket: no other process can take the port first.
    with listening_socket() as listener, log.open("wb") as output:
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        process = subprocess.Popen(
            gunicorn_argv(ini, listener),
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            pass_fds=(listener.fileno(),),
        )
    try:
        wait_until_up(process, base, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def consent_decision(base: str) -> tuple[dict[str, str], dict[str, str]]:
    """Push the native client's request, open its consent page as alice: (decision form, headers)."""
    pushed = requests.post(
        f"{base}/oauth/par",
        data={
            "response_type": "code",
            "client_id": NATIVE,
            "redirect_uri": NATIVE_REDIRECT,
            "scope": "read",
            "state": "s1",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        },
        timeout=10,
    )
    assert pushed.status_code == 201, pushed.text
    with requests.Session() as browser:
        browser.headers[USER_HEADER] = "alice"
        consent = browser.get(
            f"{base}/oauth/authorize",
            params={"client_id": NATIVE, "request_uri": pushed.json()["request_uri"]},
            allow_redirects=False,
            timeout=10,
        )
        assert consent.status_code == 200, consent.text
        target, hidden = page_form(consent)
        assert target == f"{base}/oauth/authorize"
        cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    # The decision as the browser would post it, with the cookies it holds (its session).
    headers = {USER_HEADER: "alice", **({"Cookie": cookies} if cookies else {})}
    return {**hidden, "decision": "approve"}, headers


def test_a_decision_on_one_request_uri_raced_across_two_workers_gives_one_code(
    gunicorn: tuple[str, pathlib.Path],
) -> None:
    base, access_log = gunicorn
    # One sync worker may drain a whole burst by itself: race fresh pushed
    # requests until one race was split between the processes (each race must
    # have exactly one winner all the same).
    for _ in range(10):
        form, headers = consent_decision(base)
        before = len(access_entries(access_log))
        results = race(f"{base}/oauth/authorize", form, THREADS, headers=headers, allow_redirects=False)
        statuses = sorted(response.status_code for response in results)
        assert statuses == [303] + [400] * (THREADS - 1), [r.text[:200] for r in results]
        winner = next(response for response in results if response.status_code == 303)
        answer = location_params(winner.headers["Location"])
        assert set(answer) == {"code", "state", "iss"} and answer["state"] == "s1"
        assert all(
            "invalid_request_uri" in response.text and "Location" not in response.headers
            for response in results
            if response.status_code == 400
        )
        entries = wait_for_entries(access_log, before + THREADS)[before:]
        if len({pid for pid, path, _ in entries if path == "/oauth/authorize"}) > 1:
            break
    else:
        pytest.fail("no race was split between worker processes")
