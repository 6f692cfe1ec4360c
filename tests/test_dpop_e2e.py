"""DPoP end to end over real HTTP with a client nobody here wrote: requests-oauth2client.

The library makes the keys and proofs, answers ``use_dpop_nonce`` and signs
each API call; the test only plays the person on the login and consent
pages. Every combination of SQLite and Redis with opaque tokens and JWTs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import requests_oauth2client
from conftest import serve_wsgi
from oauth_flows import browser_approve, race, verify_password  # noqa: F401  (named by dotted path)
from servers import shared_redis

from oauth_middleware.clients import build_client
from oauth_middleware.demo import DemoApp
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import digest

SERVICE_ID, SERVICE_SECRET = "e2e-service", "e2e-service-secret-0123456789"
NATIVE_ID, REDIRECT = "e2e-native", "http://127.0.0.1:8765/callback"


@pytest.fixture(params=["sqlite-opaque", "sqlite-jwt", "redis-opaque", "redis-jwt"])
def server(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """The demo app behind the middleware with DPoP and nonces on, served by waitress; its base URL."""
    store_kind, token_format = request.param.split("-")
    store = f"sqlite:///{tmp_path / 'oauth.db'}" if store_kind == "sqlite" else shared_redis(request).url
    settings: dict[str, str] = {
        "store": store,
        "store_prefix": f"dpop-e2e-{uuid.uuid4().hex[:8]}:",
        "token_format": token_format,
        "token_types": "Bearer DPoP",
        "dpop_nonce": "true",
        "session_secret": "e2e-session-secret-0123456789abcdef",
        "require_https": "false",
        "scopes": "read write",
        "verify_password": "oauth_flows:verify_password",
        "grants": "authorization_code refresh_token client_credentials",
    }
    if token_format == "jwt":
        settings.update(jwt_algorithm="HS256", jwt_secret="j" * 40, audience="http://127.0.0.1/api")
    middleware = OAuth2Middleware(DemoApp(), issuer="http://127.0.0.1", **settings)
    repository = middleware.server.repository
    repository.save_client(
        build_client(
            SERVICE_ID,
            secret_hash=digest(SERVICE_SECRET),
            grant_types=["client_credentials"],
            scopes=["read"],
            dpop_bound_access_tokens=True,
            token_endpoint_auth_method="client_secret_post",  # the library's default
        )
    )
    repository.save_client(
        build_client(
            NATIVE_ID,
            secret_hash=None,
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            scopes=["read", "write"],
        )
    )
    with serve_wsgi(middleware) as base:
        yield base
    middleware.close()


def api(base: str, token: Any) -> requests.Response:
    """``GET /api/me`` signed by the library's token (``Authorization: DPoP`` and a proof)."""
    return requests.get(f"{base}/api/me", auth=token, timeout=10)


def test_client_credentials_with_dpop(server: str) -> None:
    client = requests_oauth2client.OAuth2Client(
        token_endpoint=f"{server}/oauth/token",
        client_id=SERVICE_ID,
        client_secret=SERVICE_SECRET,
        dpop_bound_access_tokens=True,
        testing=True,  # plain http on loopback
    )
    token = client.client_credentials(scope="read")
    assert isinstance(token, requests_oauth2client.DPoPToken)
    assert token.token_type == "DPoP"
    first = api(server, token)
    assert first.status_code == 200, first.text
    assert first.json()["client_id"] == SERVICE_ID
    # The same token as a bearer token is refused: it is bound to the key.
    stolen = requests.get(
        f"{server}/api/me", headers={"Authorization": f"Bearer {token.access_token}"}, timeout=10
    )
    assert stolen.status_code == 401


def test_code_flow_login_consent_refresh_with_dpop(server: str) -> None:
    client = requests_oauth2client.OAuth2Client(
        token_endpoint=f"{server}/oauth/token",
        authorization_endpoint=f"{server}/oauth/authorize",
        client_id=NATIVE_ID,
        redirect_uri=REDIRECT,
        testing=True,  # plain http on loopback
    )
    request = client.authorization_request(scope="read write", nonce=None, dpop=True)
    assert request.dpop_jkt
    with requests.Session() as browser:
        location = browser_approve(browser, str(request.uri))
    response = request.validate_callback(location)
    token = client.authorization_code(response, dpop=True)
    assert token.token_type == "DPoP" and token.refresh_token
    assert api(server, token).json()["user"] == "alice"
    refreshed = client.refresh_token(token)
    assert refreshed.token_type == "DPoP" and refreshed.access_token != token.access_token
    assert api(server, refreshed).status_code == 200
    # Refreshing without the key (a stolen refresh token) fails.
    thief = requests.post(
        f"{server}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refreshed.refresh_token,
            "client_id": NATIVE_ID,
        },
        timeout=10,
    )
    assert thief.status_code == 400 and thief.json()["error"] == "invalid_grant"


def test_the_readme_client_against_the_demo_with_dpop(tmp_path: Any) -> None:
    """The README's requests-oauth2client snippet, against the shipped demo with ``token_types = Bearer DPoP``."""
    import configparser
    import pathlib
    import shutil

    from paste.deploy import loadapp
    from requests_oauth2client import ClientSecretBasic, OAuth2Client

    examples = pathlib.Path(__file__).resolve().parent.parent / "examples"
    shutil.copy(examples / "demo_clients.ini", tmp_path / "demo_clients.ini")
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(examples / "demo.ini")
    ini["filter:oauth2"]["token_types"] = "Bearer DPoP"
    with open(tmp_path / "demo.ini", "w") as handle:
        ini.write(handle)
    with serve_wsgi(loadapp(f"config:{tmp_path / 'demo.ini'}")) as base:
        client = OAuth2Client(
            token_endpoint=f"{base}/oauth/token",
            auth=ClientSecretBasic("demo-service", "demo-service-secret"),
            dpop_bound_access_tokens=True,
            testing=True,
        )
        token = client.client_credentials(scope="read")
        assert token.token_type == "DPoP"
        assert requests.get(f"{base}/api/me", auth=token, timeout=10).json()["client_id"] == "demo-service"


def test_a_proof_raced_across_two_gunicorn_workers_is_accepted_once(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """20 token requests with one proof at the same moment, spread over 2 worker processes on Redis: one token."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import basic, free_port
    from dpop_support import Prover
    from test_multiprocess import (
        SERVICE,
        SERVICE_SECRET,
        TESTS,
        access_entries,
        wait_for_entries,
        wait_until_up,
        write_ini,
    )

    ini = write_ini(tmp_path, shared_redis(request).url)
    ini.write_text(ini.read_text() + "token_types = Bearer DPoP\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    access_log = tmp_path / "access.log"
    argv = [
        sys.executable, "-m", "gunicorn", "--paste", str(ini), "-w", "2", "-b", f"127.0.0.1:{port}",
        "--graceful-timeout", "3", "--access-logfile", str(access_log),
        "--access-logformat", "%(p)s %(m)s %(U)s %(s)s",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
    }
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        wait_until_up(process, base, log)
        prover = Prover()
        for _ in range(10):
            before = len(access_entries(access_log))
            headers = {
                "Authorization": basic(SERVICE, SERVICE_SECRET),
                "DPoP": prover.proof("POST", f"http://127.0.0.1:{port}/oauth/token"),
            }
            results = race(f"{base}/oauth/token", {"grant_type": "client_credentials"}, headers=headers)
            assert sorted(r.status_code for r in results) == [200] + [400] * 19, [r.text for r in results]
            assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_dpop_proof"}
            entries = wait_for_entries(access_log, before + 20)[before:]
            if len({pid for pid, path, _ in entries if path == "/oauth/token"}) > 1:
                break
        else:
            pytest.fail("no race was split between worker processes")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
