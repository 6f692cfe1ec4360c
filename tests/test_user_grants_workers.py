"""``grants revoke`` while a user's tokens are in use on two gunicorn workers (issue 18 item 2).

``gunicorn --paste`` with two sync workers shares nothing but the store.
Threads keep calling the API with alice's tokens (opaque, or JWTs the guard
checks against the deny list) while ``oauth-middleware grants revoke`` runs
in another process (on every shared store: SQLite, Redis, memcached,
PostgreSQL, MariaDB): every request sent after the command returned is
refused, whichever worker answers it; bob's tokens and alice's tokens of
another client keep working, until alice's grants are all revoked.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
from oauth_flows import USERS
from servers import shared_mariadb, shared_memcached, shared_postgres, shared_redis
from test_multiprocess import TESTS
from test_par_workers import serve_gunicorn
from test_serve import workers_that_served

NATIVE, OTHER = "native", "other"
JWT = (
    "token_format = jwt\njwt_algorithm = HS256\njwt_secret = " + "s" * 32 + "\n"
    "audience = https://api.example\njwt_check_revocation = true\n"
)


def write_ini(directory: pathlib.Path, store: str, token_format: str) -> pathlib.Path:
    (directory / "clients.ini").write_text(
        "".join(
            f"[client:{client}]\npublic = true\ngrants = password refresh_token\nscopes = read write\n"
            for client in (NATIVE, OTHER)
        )
    )
    ini = directory / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nissuer = http://127.0.0.1\n"
        f"store = {store}\nstore_prefix = grants-{uuid.uuid4().hex[:12]}:\nstore_timeout = 2\n"
        f"store_table_prefix = grants_{uuid.uuid4().hex[:12]}_\n"
        "grants = password refresh_token\nscopes = read write\ndefault_scope = read\n"
        "require_https = false\nclients_file = %(here)s/clients.ini\n"
        "verify_password = oauth_flows:verify_password\npublic_paths = /health\n"
        + (JWT if token_format == "jwt" else "")
    )
    return ini


def password_tokens(base: str, user: str, client_id: str) -> dict[str, str]:
    form = {"grant_type": "password", "username": user, "password": USERS[user], "client_id": client_id}
    answer = requests.post(f"{base}/oauth/token", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def api_status(base: str, token: str) -> int:
    # A new connection per request: the two sync workers take turns.
    return requests.get(
        f"{base}/api/me", headers={"Authorization": f"Bearer {token}", "Connection": "close"}, timeout=10
    ).status_code


def grants_command(ini: pathlib.Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``oauth-middleware grants ACTION INI ...`` in a process of its own, as an operator would run it."""
    # The tests on the path: the ini names oauth_flows:verify_password.
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "oauth_middleware.cli", "grants", argv[0], str(ini), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ini.parent,
        env={**os.environ, "PYTHONPATH": path},
        check=False,
    )


STORES = [
    f"{store}-{token_format}"
    for store in ("sqlite", "redis", "memcache", "postgresql", "mysql")
    for token_format in ("opaque", "jwt")
]


@pytest.mark.parametrize("case", STORES)
def test_revoke_while_tokens_are_in_use_on_two_workers(request, tmp_path, case):
    store_name, token_format = case.split("-")
    store = {
        "sqlite": lambda: f"sqlite:///{tmp_path / 'oauth.db'}",
        "redis": lambda: shared_redis(request).url,
        "memcache": lambda: shared_memcached(request).url,
        "postgresql": lambda: shared_postgres(request).url,
        "mysql": lambda: shared_mariadb(request).url,
    }[store_name]()
    ini = write_ini(tmp_path, store, token_format)
    with serve_gunicorn(ini) as base:
        alice = [password_tokens(base, "alice", NATIVE) for _ in range(3)]
        alice_other = password_tokens(base, "alice", OTHER)
        bob = password_tokens(base, "bob", NATIVE)

        results: list[tuple[float, int]] = []
        stop = threading.Event()

        def use(token: str) -> None:
            while not stop.is_set():
                sent = time.monotonic()
                results.append((sent, api_status(base, token)))

        threads = [threading.Thread(target=use, args=(body["access_token"],)) for body in alice]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        revoked = grants_command(ini, "revoke", "--user", "alice", "--client", NATIVE)
        done = time.monotonic()
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.startswith(f"{NATIVE}\t")

        before = [status for sent, status in results if sent < done]
        after = [status for sent, status in results if sent > done]
        assert 200 in before  # the tokens were in use
        assert after and set(after) == {401}, after  # every request after the command: refused
        # Both workers refused them: the revocation reached every process through the store.
        assert len(workers_that_served(tmp_path / "access.log", "/api/me", "401")) == 2
        for body in alice:
            assert api_status(base, body["access_token"]) == 401
            refresh = {
                "grant_type": "refresh_token",
                "refresh_token": body["refresh_token"],
                "client_id": NATIVE,
            }
            answer = requests.post(f"{base}/oauth/token", data=refresh, timeout=10)
            assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
        # Other users' and other clients' tokens are untouched.
        assert api_status(base, bob["access_token"]) == 200
        assert api_status(base, alice_other["access_token"]) == 200

        listed = grants_command(ini, "list", "--user", "alice")
        assert listed.returncode == 0 and listed.stdout.startswith(f"{OTHER}\t")
        assert grants_command(ini, "revoke", "--user", "alice").returncode == 0
        assert api_status(base, alice_other["access_token"]) == 401
        assert api_status(base, bob["access_token"]) == 200
        gone = grants_command(ini, "list", "--user", "alice")
        assert (gone.returncode, gone.stderr) == (2, "oauth-middleware: error: user 'alice' has no grants\n")
