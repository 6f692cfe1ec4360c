"""A resource server elsewhere: the guard alone, in its own app, checking tokens of an authorization server.

Two ways, each with its shipped example files:

* JWTs checked with the public keys of the authorization server's JWKS
  (``examples/auth_server_jwt.ini`` and ``examples/resource_server_jwt.ini``,
  setting ``jwks_url``): fetched at load, fetched again on an unknown ``kid``
  at most once per ``jwks_refetch_interval``;
* opaque tokens looked up in the Redis both share
  (``examples/redis.ini`` and ``examples/resource_server_redis.ini``).

The authorization server runs under waitress (a thread, or an
``oauth-middleware serve`` process); the resource server is loaded from its
own ini with PasteDeploy (or served by its own process). The examples are
copied into ``tmp_path`` with their URLs pointed at the test's ports.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import hmac
import json
import logging
import pathlib
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
import requests
import webtest
from conftest import basic, free_port, serve_wsgi
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from dpop_support import Prover
from fake_clock import FakeClock
from jwt_keys import b64, b64json, pem
from paste.deploy import loadapp
from servers import RedisServer, redis_server  # noqa: F401  (the session's Redis)
from test_serve import cli, running

from oauth_middleware.cli import main
from oauth_middleware.errors import ConfigError
from oauth_middleware.guard import Guard
from oauth_middleware.keys import write_private_key

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
#: The demo's machine client (examples/demo_clients.ini).
SERVICE = ("demo-service", "demo-service-secret")
#: The URLs written in the example files, replaced by the test's own.
AS_URL, RS_URL = "http://127.0.0.1:8080", "http://127.0.0.1:8081"


def copy_example(name: str, directory: pathlib.Path, urls: dict[str, str], **settings: str) -> pathlib.Path:
    """Copy ``examples/NAME`` into ``directory`` with its URLs replaced and ``settings`` changed.

    :param urls: old URL -> new URL, replaced everywhere in the file.
    :param settings: ``SECTION__KEY=value`` changes (``filter_guard__jwks_refetch_interval="1"``).
    """
    text = (EXAMPLES / name).read_text()
    for old, new in urls.items():
        assert old in text, f"{name} does not mention {old}"
        text = text.replace(old, new)
    target = directory / name
    target.write_text(text)
    if settings:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(target)
        for spec, value in settings.items():
            section, _, key = spec.partition("__")
            section = section.replace("_", ":", 1)
            assert parser.has_section(section), f"{name} has no [{section}]"
            parser.set(section, key, value)
        with target.open("w") as handle:
            parser.write(handle)
    return target


class SwappableServer:
    """The WSGI app served on the authorization server's port; the app behind it can be replaced.

    Replacing it is restarting the authorization server with another ini (a
    new key), on the same URL. Requests for the JWKS are counted; with
    ``jwks_down`` they get 503, as from a server that is down.
    """

    def __init__(self) -> None:
        self.app: Any = None
        self.jwks_requests = 0
        self.jwks_down = False
        self.jwks_delay = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/oauth/jwks":
            self.jwks_requests += 1
            time.sleep(self.jwks_delay)
            if self.jwks_down:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"down"]
        return self.app(environ, start_response)  # type: ignore[no-any-return]


class Deployment:
    """An authorization server on a real port and a guard-only resource server loaded from its ini."""

    def __init__(self, directory: pathlib.Path, front: SwappableServer, url: str) -> None:
        self.directory = directory
        self.front = front
        self.url = url
        self.urls = {AS_URL: url, RS_URL: "https://api.test"}
        for name in ("demo_clients.ini",):
            (directory / name).write_text((EXAMPLES / name).read_text())
        (directory / "keys").mkdir()
        self.signing_key = self.new_key("first.pem")

    def new_key(self, name: str) -> pathlib.Path:
        """A new ES256 private key file under ``keys/``."""
        path = self.directory / "keys" / name
        write_private_key(str(path), "ES256")
        return path

    def start_authorization_server(self, signing_key: pathlib.Path, *old_keys: pathlib.Path) -> None:
        """(Re)start the authorization server: signing with ``signing_key``, verifying ``old_keys`` too."""
        changes = {"filter_oauth2__jwt_signing_key": str(signing_key)}
        if old_keys:
            changes["filter_oauth2__jwt_verification_keys"] = " ".join(str(key) for key in old_keys)
        ini = copy_example("auth_server_jwt.ini", self.directory, self.urls, **changes)
        self.front.app = loadapp(f"config:{ini}")

    def load_resource_server(self, **settings: str) -> webtest.TestApp:
        """The guard-only app of ``resource_server_jwt.ini`` (``settings`` change its guard)."""
        changes = {f"filter_guard__{key}": value for key, value in settings.items()}
        ini = copy_example("resource_server_jwt.ini", self.directory, self.urls, **changes)
        app = loadapp(f"config:{ini}")
        assert isinstance(app, Guard)  # the guard alone: no token endpoint
        return webtest.TestApp(app)

    def token(self, scope: str = "read") -> str:
        """A client-credentials JWT from the authorization server, over HTTP."""
        response = requests.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials", "scope": scope},
            headers={"Authorization": basic(*SERVICE)},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@pytest.fixture
def deployment(tmp_path: pathlib.Path) -> Iterator[Deployment]:
    """The authorization server of ``auth_server_jwt.ini`` under waitress, signing with a new key."""
    front = SwappableServer()
    with serve_wsgi(front) as url:
        deployment = Deployment(tmp_path, front, url)
        deployment.start_authorization_server(deployment.signing_key)
        yield deployment


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def me(resource_server: webtest.TestApp, token: str, status: int = 200) -> webtest.TestResponse:
    return resource_server.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=status)


def claims_of(deployment: Deployment, **changes: Any) -> dict[str, Any]:
    """The claims of a client-only token of the authorization server, with ``changes``."""
    now = int(time.time())
    claims = {
        "iss": deployment.url,
        "sub": SERVICE[0],
        "aud": "https://api.test",
        "client_id": SERVICE[0],
        "scope": "read",
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(8),
    }
    return {**claims, **changes}


def forged(deployment: Deployment, key: Any, alg: str, kid: str, **changes: Any) -> str:
    """A token like the authorization server's, signed with ``key`` and naming ``kid``."""
    return jwt.encode(
        claims_of(deployment, **changes), key, algorithm=alg, headers={"typ": "at+jwt", "kid": kid}
    )


def hs256(deployment: Deployment, secret: bytes, kid: str) -> str:
    """A token "signed" with HMAC-SHA256 under ``secret`` (PyJWT refuses to do it with a PEM key)."""
    signing_input = (
        f"{b64json({'typ': 'at+jwt', 'alg': 'HS256', 'kid': kid})}.{b64json(claims_of(deployment))}"
    )
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


# -- JWTs and the JWKS -----------------------------------------------------------


def test_a_jwt_of_the_authorization_server_is_accepted(deployment: Deployment) -> None:
    resource_server = deployment.load_resource_server()
    assert deployment.front.jwks_requests == 1  # fetched once, at load

    token = deployment.token()
    answer = me(resource_server, token)
    assert answer.json["client_id"] == SERVICE[0]
    assert answer.json["scopes"] == ["read"]
    assert (
        'error="insufficient_scope"'
        in resource_server.post("/api/me", headers={"Authorization": f"Bearer {token}"}, status=403).headers[
            "WWW-Authenticate"
        ]
    )
    # The resource server has no endpoint of its own: the token path is guarded like any other.
    resource_server.post("/oauth/token", {"grant_type": "client_credentials"}, status=401)
    for _ in range(5):
        me(resource_server, token)
    assert deployment.front.jwks_requests == 1  # no fetch on the request path for a known kid


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        pytest.param({"iss": "https://evil.test"}, "iss", id="other-issuer"),
        pytest.param({"aud": "https://other-api.test"}, "aud", id="other-audience"),
        pytest.param({"exp": int(time.time()) - 3600}, "exp", id="expired"),
    ],
)
def test_issuer_audience_and_expiry_are_still_checked(
    deployment: Deployment, claims: dict[str, Any], reason: str
) -> None:
    resource_server = deployment.load_resource_server()
    private = serialization.load_pem_private_key(deployment.signing_key.read_bytes(), password=None)
    kid = kid_of(deployment.token())
    me(resource_server, forged(deployment, private, "ES256", kid))  # the control: right claims pass
    answer = me(resource_server, forged(deployment, private, "ES256", kid, **claims), status=401)
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"], reason


def test_the_algorithm_is_pinned_by_the_fetched_key(deployment: Deployment) -> None:
    resource_server = deployment.load_resource_server()
    kid = kid_of(deployment.token())
    # The right kid, but another key and another algorithm: refused, and no refetch for a known kid.
    me(resource_server, forged(deployment, ed25519.Ed25519PrivateKey.generate(), "EdDSA", kid), status=401)
    me(resource_server, forged(deployment, ec.generate_private_key(ec.SECP256R1()), "ES256", kid), status=401)
    # The classic confusion: HS256 "signed" with the published public key as the secret.
    public = pem(serialization.load_pem_private_key(deployment.signing_key.read_bytes(), None), private=False)
    me(resource_server, hs256(deployment, public, kid), status=401)
    assert deployment.front.jwks_requests == 1


def test_a_rotated_key_is_fetched_once(deployment: Deployment) -> None:
    resource_server = deployment.load_resource_server(jwks_refetch_interval="1")
    clock = FakeClock()  # from the load on, the guard's refetch interval runs on it
    resource_server.app.tokens.remote.clock = clock.monotonic
    old_token = deployment.token()
    me(resource_server, old_token)

    # Restart the authorization server with a new signing key, the old one kept to verify.
    new_key = deployment.new_key("second.pem")
    deployment.start_authorization_server(new_key, deployment.signing_key)
    new_token = deployment.token()
    assert kid_of(new_token) != kid_of(old_token)

    clock.advance(1.05)  # a refetch is due
    assert me(resource_server, new_token).json["client_id"] == SERVICE[0]
    assert deployment.front.jwks_requests == 2  # the load, and one refetch
    for token in (new_token, old_token, deployment.token()):
        me(resource_server, token)
    assert deployment.front.jwks_requests == 2


def test_many_requests_with_the_new_kid_at_once_share_one_fetch(deployment: Deployment) -> None:
    resource_server = deployment.load_resource_server()
    resource_server.app.tokens.remote.clock = lambda: time.monotonic() + 60  # a refetch is due
    deployment.start_authorization_server(deployment.new_key("second.pem"))
    tokens = [deployment.token() for _ in range(16)]
    deployment.front.jwks_delay = 0.3  # the others arrive while the one fetch is under way

    with serve_wsgi(resource_server.app, threads=16) as url, ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(
            pool.map(
                lambda token: (
                    requests.get(
                        f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
                    ).status_code
                ),
                tokens,
            )
        )
    assert statuses == [200] * len(tokens)
    assert deployment.front.jwks_requests == 2


def test_unknown_kids_do_not_hammer_the_authorization_server(deployment: Deployment) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    # Within the interval (60 s, as shipped) after the load: no refetch at all.
    resource_server = deployment.load_resource_server()
    for _ in range(30):
        me(resource_server, forged(deployment, attacker, "ES256", secrets.token_urlsafe(8)), status=401)
    assert deployment.front.jwks_requests == 1

    # With a 1 s interval: once it has passed, a burst of made-up kids costs one fetch.
    deployment.front.jwks_requests = 0
    resource_server = deployment.load_resource_server(jwks_refetch_interval="1")
    clock = FakeClock()
    resource_server.app.tokens.remote.clock = clock.monotonic
    clock.advance(1.05)
    start = time.monotonic()
    for _ in range(50):
        me(resource_server, forged(deployment, attacker, "ES256", secrets.token_urlsafe(8)), status=401)
    elapsed = time.monotonic() - start
    # The load, then at most one fetch per started second of the burst (one, unless the machine stalls).
    assert 2 <= deployment.front.jwks_requests <= 2 + int(elapsed)
    me(resource_server, deployment.token())  # the real kid is still known


def test_jwks_outage_fails_closed_for_unknown_kids_only(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    resource_server = deployment.load_resource_server()  # one refetch a minute at most
    # The guard's clock, moved by the test instead of waiting minutes.
    remote = resource_server.app.tokens.remote
    now = [time.monotonic()]
    remote.clock = lambda: now[0]
    known = deployment.token()
    deployment.start_authorization_server(deployment.new_key("second.pem"), deployment.signing_key)
    rotated = deployment.token()
    deployment.front.jwks_down = True
    now[0] += 60

    caplog.set_level(logging.INFO, logger="oauth_middleware")
    # The refetch fails: the token may be valid, nobody can tell: 503, not invalid_token.
    answer = me(resource_server, rotated, status=503)
    assert answer.json["error"] == "temporarily_unavailable"
    assert "Retry-After" in answer.headers
    # Until the next attempt is due, unknown kids keep getting 503 without a fetch...
    now[0] += 59
    me(resource_server, rotated, status=503)
    me(
        resource_server,
        forged(deployment, ec.generate_private_key(ec.SECP256R1()), "ES256", "made-up"),
        status=503,
    )
    assert deployment.front.jwks_requests == 2
    # ...while tokens of a known key keep working.
    me(resource_server, known)
    failures = [r for r in caplog.records if r.name == "oauth_middleware.keys" and r.levelno == logging.ERROR]
    assert len(failures) == 1, caplog.text
    assert "JWKS unavailable" in failures[0].getMessage()

    deployment.front.jwks_down = False
    now[0] += 1
    me(resource_server, rotated)
    assert deployment.front.jwks_requests == 3
    recovered = [
        r for r in caplog.records if r.name == "oauth_middleware.keys" and r.levelno == logging.WARNING
    ]
    assert len(recovered) == 1 and "reachable again" in recovered[0].getMessage()
    assert rotated not in caplog.text and known not in caplog.text


def test_an_unreachable_jwks_at_load_is_one_line_naming_jwks_url(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    ini = copy_example("resource_server_jwt.ini", tmp_path, {AS_URL: closed})
    with pytest.raises(ConfigError, match=r"^jwks_url: cannot fetch http://127\.0\.0\.1:\d+/oauth/jwks: "):
        loadapp(f"config:{ini}")
    assert main(["check", str(ini)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("oauth-middleware: error: jwks_url: cannot fetch")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param(b"not json", "cannot fetch", id="not-json"),
        pytest.param(b'{"nokeys": []}', "did not answer with a JWK Set", id="no-keys-member"),
        pytest.param(
            b'{"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "s"}]}',
            "has no key this guard can verify with",
            id="only-a-secret",
        ),
        # Valid JSON, but more than the 256 KiB read: never parsed (a client's jwks_uri is its own to choose).
        pytest.param(
            b'{"keys": [' + b" " * (4 * 1024 * 1024) + b"]}", "larger than 262144 bytes", id="too-large"
        ),
    ],
)
def test_an_unusable_jwks_at_load_is_one_line_naming_jwks_url(
    tmp_path: pathlib.Path, document: bytes, message: str
) -> None:
    def jwks(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [document]

    with serve_wsgi(jwks) as url:
        ini = copy_example("resource_server_jwt.ini", tmp_path, {AS_URL: url})
        with pytest.raises(ConfigError) as raised:
            loadapp(f"config:{ini}")
    assert str(raised.value).startswith("jwks_url: ")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_jwks_url_is_for_the_guard_alone(deployment: Deployment) -> None:
    ini = copy_example(
        "auth_server_jwt.ini",
        deployment.directory,
        deployment.urls,
        filter_oauth2__jwt_signing_key=str(deployment.signing_key),
        filter_oauth2__jwks_url=f"{deployment.url}/oauth/jwks",
    )
    with pytest.raises(ConfigError, match=r"^jwks_url: only for a guard-only resource server"):
        loadapp(f"config:{ini}")


# -- what the guard alone loads ------------------------------------------------------

#: Modules of the authorization server: none may be loaded by the guard-only filter.
AUTHORIZATION_SERVER = (
    "oauth_middleware.authorization",
    "oauth_middleware.cli",
    "oauth_middleware.clients",
    "oauth_middleware.consent",
    "oauth_middleware.demo",
    "oauth_middleware.endpoints",
    "oauth_middleware.grants",
    "oauth_middleware.middleware",
    "oauth_middleware.pkce",
    "oauth_middleware.scopes",
    "oauth_middleware.server",
    "oauth_middleware.serverkey",
    "oauth_middleware.throttle",
    "oauth_middleware.tokens.issuer",
    "oauth_middleware.tokens.refresh",
    "oauth_middleware.tokens.unique",
    "oauth_middleware.users",
)

#: Run in a fresh interpreter: build the guard-only filter, send it one request, list the modules.
LOAD_GUARD = """
import json, sys
from webob import Request

def app(environ, start_response):
    start_response("200 OK", [])
    return [b""]

how, config = sys.argv[1], sys.argv[2]
if how == "ini":
    from paste.deploy import loadfilter
    guard = loadfilter("config:" + config, name="guard")(app)
else:
    from oauth_middleware import Settings, guard_from_settings
    guard = guard_from_settings(app, Settings.from_config(json.loads(config)))
status = Request.blank("/api", headers={"Authorization": "Bearer made-up"}).get_response(guard).status_int
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(
    ("how", "token_format"),
    [
        pytest.param("ini", "opaque", id="ini-opaque"),
        pytest.param("ini", "jwt", id="ini-jwt"),
        pytest.param("python", "opaque", id="python-opaque"),
        pytest.param("python", "jwt", id="python-jwt-with-revocation"),
    ],
)
def test_the_guard_alone_loads_nothing_of_the_authorization_server(
    tmp_path: pathlib.Path, how: str, token_format: str
) -> None:
    """Regression (issue 11, item 1): ``resource.py`` imported ``server.py``, hence every grant,
    endpoint, the consent pages and the throttle, and so did ``import oauth_middleware``."""
    config = {"store": f"sqlite:///{tmp_path / 'oauth.db'}", "token_format": token_format}
    if token_format == "jwt":
        key = tmp_path / "key.pem"
        write_private_key(str(key), "ES256")
        config |= {"issuer": AS_URL, "audience": RS_URL, "jwt_verification_keys": str(key)}
        config |= {"jwt_check_revocation": "true"} if how == "python" else {}
    if how == "ini":
        ini = tmp_path / "guard.ini"
        lines = ["[filter:guard]", "use = egg:oauth-middleware#guard"]
        ini.write_text("\n".join([*lines, *(f"{k} = {v}" for k, v in config.items())]) + "\n")
        argument = str(ini)
    else:
        argument = json.dumps(config)
    done = subprocess.run(
        [sys.executable, "-c", LOAD_GUARD, how, argument],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(done.stdout)
    assert loaded["status"] == 401
    server_modules = [
        name
        for name in loaded["modules"]
        if any(name == module or name.startswith(f"{module}.") for module in AUTHORIZATION_SERVER)
    ]
    assert server_modules == []
    assert "oauth_middleware.guard" in loaded["modules"]


def test_every_public_name_is_importable_from_the_package() -> None:
    """The package's names are imported on first use; each still comes with ``from oauth_middleware import``."""
    import oauth_middleware

    for name in oauth_middleware.__all__:
        value = getattr(oauth_middleware, name)
        assert getattr(value, "__name__", name) == name
    assert set(oauth_middleware.__all__) <= set(dir(oauth_middleware))
    with pytest.raises(AttributeError, match="no attribute 'OAuth3Middleware'"):
        oauth_middleware.OAuth3Middleware  # noqa: B018


# -- two real processes ----------------------------------------------------------


def test_two_processes_and_a_restart_with_a_new_key(tmp_path: pathlib.Path) -> None:
    """``oauth-middleware serve`` of both example files; the authorization server restarts with a new key."""
    as_port, rs_port = free_port(), free_port()
    as_url, rs_url = f"http://127.0.0.1:{as_port}", f"http://127.0.0.1:{rs_port}"
    urls = {AS_URL: as_url, RS_URL: rs_url}
    (tmp_path / "demo_clients.ini").write_text((EXAMPLES / "demo_clients.ini").read_text())
    (tmp_path / "keys").mkdir()
    first, second = tmp_path / "keys" / "auth-server.pem", tmp_path / "keys" / "next.pem"
    for key in (first, second):
        assert main(["keys", "generate", "--alg", "ES256", "--out", str(key)]) == 0
    rs_ini = copy_example("resource_server_jwt.ini", tmp_path, urls, filter_guard__jwks_refetch_interval="1")

    def serve_authorization_server(log: str, **changes: str) -> contextlib.AbstractContextManager[Any]:
        ini = copy_example("auth_server_jwt.ini", tmp_path, urls, **changes)
        return running(cli("serve", str(ini), "--port", str(as_port)), as_url, tmp_path / log)

    def token() -> str:
        response = requests.post(
            f"{as_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=SERVICE, timeout=5
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def status(access_token: str) -> int:
        headers = {"Authorization": f"Bearer {access_token}"}
        return requests.get(f"{rs_url}/api/me", headers=headers, timeout=5).status_code

    with contextlib.ExitStack() as processes:
        first_run = contextlib.ExitStack()
        first_run.enter_context(serve_authorization_server("as.log"))  # signs with keys/auth-server.pem
        old_token = token()
        processes.enter_context(
            running(cli("serve", str(rs_ini), "--port", str(rs_port)), rs_url, tmp_path / "rs.log")
        )
        started = time.monotonic()
        assert status(old_token) == 200
        assert status(old_token[:-4] + ("AAAA" if not old_token.endswith("AAAA") else "BBBB")) == 401

        first_run.close()  # the authorization server stops: known keys keep working without it
        assert status(old_token) == 200
        # Restarted with a new signing key; the old one still verifies.
        processes.enter_context(
            serve_authorization_server(
                "as2.log",
                filter_oauth2__jwt_signing_key=str(second),
                filter_oauth2__jwt_verification_keys=str(first),
            )
        )
        new_token = token()
        assert kid_of(new_token) != kid_of(old_token)
        time.sleep(max(0.0, started + 1.05 - time.monotonic()))  # a refetch is due
        assert status(new_token) == 200
        assert status(old_token) == 200
    assert "JWKS refetched" in (tmp_path / "rs.log").read_text()


def test_dpop_bound_jwts_checked_by_a_guard_in_another_process(tmp_path: pathlib.Path) -> None:
    """Issue 12: the authorization server and a guard-only resource server, each ``oauth-middleware serve``;
    the resource server knows the signing key from the JWKS only, and checks the proof on its own."""
    as_port, rs_port = free_port(), free_port()
    as_url, rs_url = f"http://127.0.0.1:{as_port}", f"http://127.0.0.1:{rs_port}"
    urls = {AS_URL: as_url, RS_URL: rs_url}
    (tmp_path / "demo_clients.ini").write_text((EXAMPLES / "demo_clients.ini").read_text())
    (tmp_path / "keys").mkdir()
    assert (
        main(["keys", "generate", "--alg", "ES256", "--out", str(tmp_path / "keys" / "auth-server.pem")]) == 0
    )
    as_ini = copy_example("auth_server_jwt.ini", tmp_path, urls, filter_oauth2__token_types="Bearer DPoP")
    rs_ini = copy_example(
        "resource_server_jwt.ini",
        tmp_path,
        urls,
        filter_guard__token_types="Bearer DPoP",
        # The proofs' jti are the resource server's own: its own store.
        filter_guard__store=f"sqlite:///{tmp_path / 'resource.db'}",
    )
    prover = Prover()
    api = f"{rs_url}/api/me"

    def call(token: str, proof: str | None, scheme: str = "DPoP") -> requests.Response:
        headers = {"Authorization": f"{scheme} {token}", **({"DPoP": proof} if proof else {})}
        return requests.get(api, headers=headers, timeout=5)

    with contextlib.ExitStack() as processes:
        processes.enter_context(
            running(cli("serve", str(as_ini), "--port", str(as_port)), as_url, tmp_path / "as.log")
        )
        response = requests.post(
            f"{as_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=SERVICE,
            headers={"DPoP": prover.proof("POST", f"{as_url}/oauth/token")},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        assert response.json()["token_type"] == "DPoP"
        token = response.json()["access_token"]
        assert jwt.decode(token, options={"verify_signature": False})["cnf"] == {"jkt": prover.jkt}
        processes.enter_context(
            running(cli("serve", str(rs_ini), "--port", str(rs_port)), rs_url, tmp_path / "rs.log")
        )

        proof = prover.proof("GET", api, token=token)
        answer = call(token, proof)
        assert answer.status_code == 200, answer.text
        assert answer.json()["client_id"] == SERVICE[0]
        # The same proof again, a proof of another key, the bound token as a bearer token.
        assert call(token, proof).status_code == 401
        assert call(token, Prover().proof("GET", api, token=token)).status_code == 401
        refused = call(token, None, scheme="Bearer")
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
        assert call(token, prover.proof("GET", api, token=token)).status_code == 200


# -- opaque tokens through the shared Redis ---------------------------------------------


def test_opaque_tokens_through_the_shared_redis(
    tmp_path: pathlib.Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    """``examples/redis.ini`` and ``examples/resource_server_redis.ini``, each served by its own process."""
    as_port, rs_port = free_port(), free_port()
    as_url, rs_url = f"http://127.0.0.1:{as_port}", f"http://127.0.0.1:{rs_port}"
    prefix = f"rs-{uuid.uuid4().hex[:12]}:"
    redis_urls = {
        "redis://127.0.0.1:6379/0": redis_server.url,
        "store_prefix = oauth2:": f"store_prefix = {prefix}",
    }
    (tmp_path / "demo_clients.ini").write_text((EXAMPLES / "demo_clients.ini").read_text())
    as_ini = copy_example("redis.ini", tmp_path, {**redis_urls, AS_URL: as_url})
    rs_ini = copy_example("resource_server_redis.ini", tmp_path, redis_urls)

    def status(access_token: str) -> int:
        headers = {"Authorization": f"Bearer {access_token}"}
        return requests.get(f"{rs_url}/api/me", headers=headers, timeout=5).status_code

    with (
        running(cli("serve", str(as_ini), "--port", str(as_port)), as_url, tmp_path / "as.log"),
        running(cli("serve", str(rs_ini), "--port", str(rs_port)), rs_url, tmp_path / "rs.log"),
    ):
        service = requests.post(
            f"{as_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=SERVICE, timeout=5
        ).json()["access_token"]
        # The password grant gives a refresh token too: revoking it revokes its whole family.
        cli_client = ("demo-cli", "demo-cli-secret")
        grant = requests.post(
            f"{as_url}/oauth/token",
            data={"grant_type": "password", "username": "alice", "password": "alice-password"},
            auth=cli_client,
            timeout=5,
        ).json()
        assert status(service) == 200
        assert status(grant["access_token"]) == 200
        assert status(secrets.token_urlsafe(32)) == 401

        revoked = requests.post(f"{as_url}/oauth/revoke", data={"token": service}, auth=SERVICE, timeout=5)
        assert revoked.status_code == 200
        assert status(service) == 401
        requests.post(
            f"{as_url}/oauth/revoke",
            data={"token": grant["refresh_token"], "token_type_hint": "refresh_token"},
            auth=cli_client,
            timeout=5,
        ).raise_for_status()
        assert status(grant["access_token"]) == 401
