"""Real processes: ``oauth-middleware serve``, ``gunicorn --paste`` and ``oauth-middleware check``.

Each test writes its own ini (SQLite store and clients file in ``tmp_path``),
starts the command with ``sys.executable -m ...`` so PATH does not matter,
talks HTTP to it with ``requests`` and always stops it again.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import basic, free_port

from oauth_middleware.models import digest

CLIENT_ID = "svc"
CLIENT_SECRET = "svc-secret-0123456789abcdef"
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

#: The [filter:oauth2] settings of the test ini: those of examples/demo.ini.
FILTER: Mapping[str, str] = {
    "use": "egg:oauth-middleware#oauth2",
    "store": "sqlite:///%(here)s/oauth.db",
    "issuer": "http://127.0.0.1:8080",
    "require_https": "false",
    "token_format": "opaque",
    "grants": "client_credentials",
    "scopes": "read write",
    "default_scope": "read",
    "access_token_ttl": "3600",
    "clients_file": "%(here)s/clients.ini",
    "public_paths": "/ /health",
    "scope_rules": "\n    GET,HEAD /api/* read\n    POST,PUT,PATCH,DELETE /api/* write",
}

#: Settings that must stop the server at load time, and the key the error names.
BAD_SETTINGS = [
    pytest.param({"access_token_ttl": "soon"}, "access_token_ttl", id="bad-value"),
    pytest.param({"frobnicate": "1"}, "frobnicate", id="unknown-key"),
    pytest.param({"store": "sqlite:////nonexistent/dir/x.db"}, "store", id="store-dir-missing"),
    # Issue 10, item 9: never taken from the request's Host header.
    pytest.param({"issuer": ""}, "issuer", id="issuer-missing"),
]

#: How long a server gets to answer its first request.
START_TIMEOUT = 15.0


def write_config(directory: pathlib.Path, **changes: str) -> pathlib.Path:
    """Write ``app.ini`` and its ``clients.ini`` into ``directory``; return the ini path.

    :param changes: [filter:oauth2] settings to change or add.
    """
    (directory / "clients.ini").write_text(
        f"[client:{CLIENT_ID}]\nsecret_hash = {digest(CLIENT_SECRET)}\n"
        "grants = client_credentials\nscopes = read write\nname = Test service\n"
    )
    settings = "\n".join(f"{key} = {value}" for key, value in {**FILTER, **changes}.items())
    ini = directory / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        f"[filter:oauth2]\n{settings}\n\n"
        "[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\nport = 8080\n"
    )
    return ini


def cli(*args: str) -> list[str]:
    """The argv of our command, run from this interpreter."""
    return [sys.executable, "-m", "oauth_middleware.cli", *args]


def run(argv: Sequence[str], cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run a command to its end (killed if it is still running after 30 s)."""
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def running(
    argv: Sequence[str], base_url: str, log: pathlib.Path, pass_fds: Sequence[int] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until ``/health`` answers, and stop it (and its workers) afterwards.

    The server runs in its own process group so that a hard kill also
    reaches workers it forked. ``pass_fds``: descriptors it inherits (a listening socket).
    """
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            cwd=log.parent,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )
    try:
        wait_until_up(process, base_url, log)
        yield process
    finally:
        stop(process)


def wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: pathlib.Path) -> None:
    """Poll ``/health`` until it answers 200; fail with the server's output if it never does."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"server did not answer within {START_TIMEOUT} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server; kill its whole process group if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def issue(base_url: str) -> str:
    """A client-credentials access token from the server (client authenticates with Basic)."""
    response = requests.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        headers={"Authorization": basic(CLIENT_ID, CLIENT_SECRET)},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    return str(body["access_token"])


def me(base_url: str, token: str) -> requests.Response:
    """``GET /api/me`` with the token in the Authorization header."""
    return requests.get(f"{base_url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)


# -- oauth-middleware serve --------------------------------------------------


def test_serve_issues_and_guards(tmp_path: pathlib.Path) -> None:
    ini = write_config(tmp_path)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    argv = cli("serve", str(ini), "--port", str(port))
    with running(argv, base_url, tmp_path / "serve.log"):
        token = issue(base_url)

        response = me(base_url, token)
        assert response.status_code == 200, response.text
        assert response.json()["client_id"] == CLIENT_ID
        assert response.json()["scopes"] == ["read"]
        assert "Authorization" in response.headers["Vary"]

        anonymous = requests.get(f"{base_url}/api/me", timeout=5)
        assert anonymous.status_code == 401
        challenge = anonymous.headers["WWW-Authenticate"]
        assert re.match(r'Bearer realm="[^"]+"', challenge), challenge
        # RFC 6750 §3.1: no error code when the request carried no token at all.
        assert "error=" not in challenge

        forged = me(base_url, token[:-2] + ("aa" if not token.endswith("aa") else "bb"))
        assert forged.status_code == 401
        assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]
    assert (tmp_path / "oauth.db").exists()


@pytest.mark.parametrize(("changes", "key"), BAD_SETTINGS)
def test_serve_refuses_a_bad_config_in_one_line(
    tmp_path: pathlib.Path, changes: dict[str, str], key: str
) -> None:
    ini = write_config(tmp_path, **changes)
    result = run(cli("serve", str(ini), "--port", str(free_port())), tmp_path)
    assert result.returncode != 0
    assert_one_line_naming(result.stderr, key)


def test_serve_on_a_port_in_use_is_one_line_and_status_2(tmp_path: pathlib.Path) -> None:
    # Regression (issue 10, item 15): it printed "serving ..." and then a traceback.
    ini = write_config(tmp_path, session_secret="s" * 43)  # no start-up log line about it
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        port = occupied.getsockname()[1]
        result = run(cli("serve", str(ini), "--port", str(port)), tmp_path)
    assert result.returncode == 2
    assert "serving" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("oauth-middleware: error: ")
    assert f"127.0.0.1:{port}" in lines[0]


# -- gunicorn --paste --------------------------------------------------------


@pytest.fixture
def gunicorn(tmp_path: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    """``gunicorn --paste`` with two sync workers on the SQLite store: (base URL, access log).

    The test binds the port and gunicorn inherits the listening socket
    (``fd://``): with a free port's number instead, another process could
    take the port before gunicorn binds it, and the test would talk to that
    server (another test run's gunicorn, which stops under it), while this
    one retries its bind.
    """
    ini = write_config(tmp_path)
    with listening_socket() as listener:
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        log = tmp_path / "gunicorn.log"
        with running(gunicorn_argv(ini, listener), base_url, log, (listener.fileno(),)):
            yield base_url, tmp_path / "access.log"


@contextlib.contextmanager
def listening_socket() -> Iterator[socket.socket]:
    """A socket listening on a free loopback port, for a server to inherit; closed afterwards."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.set_inheritable(True)
        yield listener


def gunicorn_argv(ini: pathlib.Path, listener: socket.socket) -> list[str]:
    """``gunicorn --paste ini`` with two sync workers on the inherited ``listener``, access log beside ``ini``."""
    access_log = ini.parent / "access.log"
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--paste",
        str(ini),
        "-w",
        "2",
        "-b",
        f"fd://{listener.fileno()}",
        "--graceful-timeout",
        "3",
        "--access-logfile",
        str(access_log),
        # The worker's pid first, so tests can tell which worker served what.
        "--access-logformat",
        "%(p)s %(m)s %(U)s %(s)s",
    ]


def workers_that_served(access_log: pathlib.Path, path: str, status: str = "200") -> set[str]:
    """The pids of the workers that answered ``path`` with ``status``, from the access log."""
    served = set()
    for line in access_log.read_text().splitlines():
        pid, _, rest = line.partition(" ")
        if rest.endswith(f" {path} {status}"):
            served.add(pid)
    return served


def test_gunicorn_workers_share_tokens(gunicorn: tuple[str, pathlib.Path]) -> None:
    base_url, access_log = gunicorn
    token = issue(base_url)

    # Four at a time, so that a busy sync worker leaves requests to the other one.
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: me(base_url, token), range(40)))
        assert [r.status_code for r in responses] == [200] * 40
        assert {r.json()["client_id"] for r in responses} == {CLIENT_ID}

        # Both workers must have accepted the token (only one of them issued it).
        deadline = time.monotonic() + 5
        while len(workers_that_served(access_log, "/api/me")) < 2 and time.monotonic() < deadline:
            assert all(r.status_code == 200 for r in pool.map(lambda _: me(base_url, token), range(20)))
    assert len(workers_that_served(access_log, "/api/me")) == 2, access_log.read_text()


def test_gunicorn_parallel_client_credentials(gunicorn: tuple[str, pathlib.Path]) -> None:
    base_url, _ = gunicorn

    def issue_and_use(_: int) -> tuple[str, int]:
        token = issue(base_url)
        return token, me(base_url, token).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(issue_and_use, range(32)))
    tokens = [token for token, _ in results]
    assert len(set(tokens)) == len(tokens)
    assert [status for _, status in results] == [200] * len(results)


# -- oauth-middleware check --------------------------------------------------


def test_check_accepts_a_good_config(tmp_path: pathlib.Path) -> None:
    ini = write_config(tmp_path)
    result = run(cli("check", str(ini)), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{ini}: ok"


def test_check_accepts_the_shipped_demo(tmp_path: pathlib.Path) -> None:
    for name in ("demo.ini", "demo_clients.ini"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    result = run(cli("check", str(tmp_path / "demo.ini")), tmp_path)
    assert result.returncode == 0, result.stderr


def test_check_refuses_an_oauth2_filter_outside_the_pipeline(tmp_path: pathlib.Path) -> None:
    # Regression (issue 10, item 17): the filter was defined but no app used it, and
    # check said "ok" for an app that then ran unguarded.
    ini = write_config(tmp_path)
    ini.write_text(ini.read_text().replace("filter-with = oauth2\n", ""))
    result = run(cli("check", str(ini)), tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "[filter:oauth2]" in lines[0]
    assert "pipeline" in lines[0]


def test_check_accepts_the_filter_in_a_pipeline(tmp_path: pathlib.Path) -> None:
    ini = write_config(tmp_path)
    text = ini.read_text().replace("[app:main]", "[app:demo]").replace("filter-with = oauth2\n", "")
    ini.write_text(text + "\n[pipeline:main]\npipeline = oauth2 demo\n")
    result = run(cli("check", str(ini)), tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("changes", "key"), BAD_SETTINGS)
def test_check_names_the_bad_key_in_one_line(
    tmp_path: pathlib.Path, changes: dict[str, str], key: str
) -> None:
    ini = write_config(tmp_path, **changes)
    result = run(cli("check", str(ini)), tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert_one_line_naming(result.stderr, key)


def assert_one_line_naming(stderr: str, key: str) -> None:
    """The error output is exactly one line, which names ``key``, and no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert re.search(rf"\b{re.escape(key)}: ", lines[0]), lines[0]
