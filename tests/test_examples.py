"""The framework examples: each ini loads with PasteDeploy and guards a real app.

Every example (``examples/<framework>_app``) is loaded from a copy of its
``app.ini`` and ``clients.ini`` in a temporary directory, so its SQLite
store (``%(here)s/oauth.db``) lands there and not in the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import webtest
from conftest import basic
from paste.deploy import loadapp

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = [pytest.param(name, id=name) for name in ("flask", "django", "pyramid", "bottle")]


class Example(NamedTuple):
    """One loaded example: its framework, WebTest app and realm."""

    framework: str
    app: webtest.TestApp
    directory: Path

    @property
    def realm(self) -> str:
        return f"{self.framework}-example"

    @property
    def client_id(self) -> str:
        return f"{self.framework}-service"

    def token(self, scope: str) -> str:
        """A client-credentials token of the example's service client."""
        response = self.app.post(
            "/oauth/token",
            {"grant_type": "client_credentials", "scope": scope},
            headers={"Authorization": basic(self.client_id, f"{self.framework}-service-secret")},
        )
        assert response.json["token_type"] == "Bearer"
        assert response.json["scope"] == scope
        return str(response.json["access_token"])


def copy_example(framework: str, target: Path) -> Path:
    """Copy an example's ini files into ``target``; return the copied ``app.ini``."""
    source = ROOT / "examples" / f"{framework}_app"
    for name in ("app.ini", "clients.ini"):
        shutil.copy(source / name, target / name)
    return target / "app.ini"


@pytest.fixture(params=FRAMEWORKS)
def example(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Example:
    """An example loaded with ``paste.deploy.loadapp``, as ``oauth-middleware serve`` would."""
    monkeypatch.syspath_prepend(str(ROOT))  # what PYTHONPATH=. does for the command
    ini = copy_example(request.param, tmp_path)
    app = loadapp(f"config:{ini}")
    return Example(request.param, webtest.TestApp(app), tmp_path)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_challenge(
    response: webtest.TestResponse, realm: str, error: str | None, scope: str | None
) -> None:
    """The response is the guard's RFC 6750 error, challenge included."""
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{realm}"')
    if error is None:
        assert challenge == f'Bearer realm="{realm}"'
        assert response.json == {}  # no error code without credentials (RFC 6750 §3.1)
    else:
        assert f'error="{error}"' in challenge
        assert response.json["error"] == error
    if scope is not None:
        assert challenge.endswith(f'scope="{scope}"')
    assert response.content_type == "application/json"
    assert "Authorization" in response.headers["Vary"]


def test_store_is_the_ini_directory(example: Example) -> None:
    example.token("read")
    assert (example.directory / "oauth.db").exists()


def test_home_is_public(example: Example) -> None:
    response = example.app.get("/")
    assert response.json == {"framework": example.framework, "public": True}


def test_whoami_reads_the_token_from_the_request(example: Example) -> None:
    token = example.token("read write")
    response = example.app.get("/whoami", headers=bearer(token))
    body = response.json
    assert body["framework"] == example.framework
    assert body["client_id"] == example.client_id
    assert body["user"] is None
    assert body["scopes"] == ["read", "write"]
    assert 0 < body["expires_at"] - time.time() <= 3600
    assert "Authorization" in response.headers["Vary"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/whoami", id="whoami"),
        pytest.param("GET", "/reports", id="reports"),
        pytest.param("POST", "/notes", id="notes"),
    ],
)
def test_no_token_is_401(example: Example, method: str, path: str) -> None:
    response = example.app.request(path, method=method, status=401)
    assert_challenge(response, example.realm, None, None)


def test_invalid_token_is_401(example: Example) -> None:
    response = example.app.get("/whoami", headers=bearer("not-a-token"), status=401)
    assert_challenge(response, example.realm, "invalid_token", None)


def test_reports_need_read_by_scope_rule(example: Example) -> None:
    denied = example.app.get("/reports", headers=bearer(example.token("write")), status=403)
    assert_challenge(denied, example.realm, "insufficient_scope", "read")
    allowed = example.app.get("/reports", headers=bearer(example.token("read")))
    assert allowed.json == {"framework": example.framework, "reports": ["daily", "weekly"]}


def test_notes_need_write_in_the_view(example: Example) -> None:
    denied = example.app.post_json(
        "/notes", {"text": "hello"}, headers=bearer(example.token("read")), status=403
    )
    # The view's challenge names the filter's realm, like the guard's.
    assert_challenge(denied, example.realm, "insufficient_scope", "write")
    writer = bearer(example.token("write"))
    first = example.app.post_json("/notes", {"text": "hello"}, headers=writer, status=201)
    assert first.json == {
        "framework": example.framework,
        "note": {"id": 1, "text": "hello", "client_id": example.client_id},
    }
    second = example.app.post_json("/notes", {"text": "again"}, headers=writer, status=201)
    assert second.json["note"]["id"] == 2


@pytest.mark.parametrize(
    "body",
    [pytest.param({"text": ""}, id="empty-text"), pytest.param({"note": "x"}, id="no-text")],
)
def test_notes_refuse_a_bad_body(example: Example, body: dict[str, Any]) -> None:
    response = example.app.post_json("/notes", body, headers=bearer(example.token("write")), status=400)
    assert "text" in response.json["error"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_check_command_loads_the_example(framework: str, tmp_path: Path) -> None:
    """``oauth-middleware check`` on the ini, with the repository root on PYTHONPATH."""
    ini = copy_example(framework, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from oauth_middleware.cli import main; raise SystemExit(main())",
            "check",
            str(ini),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{ini}: ok"


def test_django_refuses_a_second_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Django settings are per process: a different second configuration is an error."""
    monkeypatch.syspath_prepend(str(ROOT))
    loadapp(f"config:{copy_example('django', tmp_path)}")
    from examples.django_app.app import make_app

    with pytest.raises(RuntimeError, match="OAUTH2_REALM"):
        make_app({"oauth2_realm": "another-realm"}, allowed_hosts="127.0.0.1 localhost")
