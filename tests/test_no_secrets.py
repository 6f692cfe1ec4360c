"""Nothing secret at rest or in the logs.

A full flow — client credentials, a wrong client secret, the authorization
code with PKCE (login page included, a wrong password too), a replayed
code, refresh and refresh-token reuse, a confidential client's code, the
password grant and a wrong password, the implicit grant, the guard with good
and forged tokens, introspection and revocation — runs on every store and
both token formats. Then the store's raw contents are read the way an
attacker with a copy would read them (the SQLite file with its ``-wal`` and
``-shm``, every Redis key and value under the prefix, every memcached item
``lru_crawler metadump`` lists, every row of the PostgreSQL and MySQL tables), and everything the flow logged at DEBUG is
collected. Neither may hold any access token, refresh token, code, client
secret, user password, PKCE verifier, session secret or private key.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path
from urllib.parse import unquote

import pytest
import redis
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic
from flaky_store import FlakyStore
from jwt_keys import jwt_settings, make_keys
from oauth_flows import (
    AUTHORIZE,
    NATIVE_ID,
    SPA_ID,
    SPA_REDIRECT,
    TOKEN,
    USERS,
    VERIFIER,
    WEB_ID,
    WEB_REDIRECT,
    WEB_SECRET,
    api_status,
    approve,
    code_request,
    flow_middleware,
    get_code,
    location_params,
    redeem,
)
from servers import shared_memcached, shared_redis
from store_fixtures import backend, store  # noqa: F401

from oauth_middleware.models import digest

SESSION_SECRET = "session-secret-never-stored-0123456789"
WRONG_CLIENT_SECRET = "wrong-client-secret-4815162342"
WRONG_PASSWORD = "wrong-user-password-4815162342"
FORGED_TOKEN = "forged-token-4815162342-abcdefghijklmnopqrstuvwxyz"
GRANTS = "authorization_code refresh_token client_credentials password"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


def server_config(token_format, keys):
    """Settings of the flow: every grant and response type, introspection, both token formats."""
    config = {
        "grants": GRANTS,
        "response_types": "code token",
        "introspection_clients": SERVICE_ID,
        "session_secret": SESSION_SECRET,
    }
    if token_format == "jwt":
        # JWTs (never stored) with the deny list; unique_tokens keeps an encrypted copy of each.
        config.update(jwt_settings(keys, grants=GRANTS, jwt_check_revocation="true", unique_tokens="true"))
    return config


def private_key_lines(token_format, keys):
    """The base64 lines of the signing key's PEM: as secret as anything here."""
    if token_format != "jwt":
        return []
    lines = Path(keys.rsa_pem).read_text().splitlines()
    return [line for line in lines if line and not line.startswith("-----")][:3]


def full_flow(app):
    """Run every flow and every failure once; return every secret that was sent or handed out."""
    secrets = [SERVICE_SECRET, WEB_SECRET, *USERS.values(), VERIFIER, SESSION_SECRET]
    secrets += [WRONG_CLIENT_SECRET, WRONG_PASSWORD, FORGED_TOKEN]
    service = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}

    def keep(body):
        secrets.extend(body[name] for name in ("access_token", "refresh_token") if name in body)
        return body

    def refresh(refresh_token, status=200):
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": NATIVE_ID}
        return app.post(TOKEN, params, status=status).json

    # Client credentials; then a wrong secret, by Basic and in the body.
    machine = keep(app.post(TOKEN, {"grant_type": "client_credentials"}, headers=service).json)
    wrong = {"Authorization": basic(SERVICE_ID, WRONG_CLIENT_SECRET)}
    app.post(TOKEN, {"grant_type": "client_credentials"}, headers=wrong, status=401)
    body = {"grant_type": "client_credentials", "client_id": SERVICE_ID, "client_secret": WRONG_CLIENT_SECRET}
    app.post(TOKEN, body, status=401)

    # A wrong password on the login page, then the code flow with PKCE; the code replayed.
    page = app.get(AUTHORIZE, code_request())
    form = page.forms[0]
    form["username"], form["password"] = "alice", WRONG_PASSWORD
    assert "Wrong username or password" in form.submit().text
    code = get_code(app)
    secrets.append(code)
    first = keep(redeem(app, code))
    assert redeem(app, code, status=400)["error"] == "invalid_grant"

    # Another code: refresh, then reuse the rotated refresh token.
    code = get_code(app, scope="read write")
    secrets.append(code)
    second = keep(redeem(app, code))
    rotated = keep(refresh(second["refresh_token"], status=200))
    assert refresh(second["refresh_token"], status=400)["error"] == "invalid_grant"

    # A confidential client's code, redeemed with Basic authentication.
    code = location_params(approve(app, code_request(client_id=WEB_ID, redirect_uri=WEB_REDIRECT)))["code"]
    secrets.append(code)
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": WEB_REDIRECT,
        "code_verifier": VERIFIER,
    }
    web = keep(app.post(TOKEN, params, headers={"Authorization": basic(WEB_ID, WEB_SECRET)}).json)

    # The password grant, right and wrong.
    params = {"grant_type": "password", "username": "bob", "password": USERS["bob"], "client_id": NATIVE_ID}
    password = keep(app.post(TOKEN, params).json)
    params["password"] = WRONG_PASSWORD
    assert app.post(TOKEN, params, status=400).json["error"] == "invalid_grant"

    # The implicit grant: the token travels in the fragment.
    implicit = {"response_type": "token", "client_id": SPA_ID, "redirect_uri": SPA_REDIRECT, "state": "s"}
    keep(location_params(approve(app, implicit), fragment=True))

    # The guard, with good and forged tokens; introspection; revocation of both kinds.
    assert api_status(app, rotated["access_token"]) == 401  # the reuse revoked its chain
    assert api_status(app, web["access_token"]) == 200
    assert api_status(app, FORGED_TOKEN) == 401
    app.get(f"/api/me?access_token={FORGED_TOKEN}", status=401)
    app.post("/api/me", {"access_token": FORGED_TOKEN}, status=401)
    assert app.post("/oauth/introspect", {"token": web["access_token"]}, headers=service).json["active"]
    assert not app.post("/oauth/introspect", {"token": FORGED_TOKEN}, headers=service).json["active"]
    app.post("/oauth/revoke", {"token": machine["access_token"]}, headers=service)
    app.post("/oauth/revoke", {"token": password["refresh_token"], "client_id": NATIVE_ID})
    app.post("/oauth/revoke", {"token": FORGED_TOKEN}, headers=service)
    assert api_status(app, machine["access_token"]) == 401
    assert api_status(app, first["access_token"]) == 401  # the replay revoked it
    return secrets


def leaked(secrets, data: str):
    """The secrets found in ``data``, as they are or URL-encoded."""
    return sorted({secret[:12] + "..." for secret in secrets if secret in data or secret in unquote(data)})


# -- raw store contents, as someone with a copy of the store would read them -------------------


def raw_memory(opened, request):
    return json.dumps({"values": opened._values, "indexes": opened._indexes}, default=sorted)


def raw_sqlite(opened, request):
    parts = []
    for suffix in ("", "-wal", "-shm"):
        path = Path(opened.path + suffix)
        if path.exists():
            parts.append(path.read_bytes().decode("latin-1"))
    assert parts, "no database file"
    return "\n".join(parts)


def raw_redis(opened, request):
    client = redis.Redis.from_url(shared_redis(request).url)
    try:
        lines = []
        for key in client.keys(opened._prefix.encode() + b"*"):
            kind = client.type(key).decode()
            value = client.smembers(key) if kind == "set" else client.get(key)
            lines.append(f"{key!r} {kind} {value!r}")
        return "\n".join(lines)
    finally:
        client.close()


def memcached_command(port, command):
    """One text-protocol command to the test memcached; the raw reply up to its END."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command.encode() + b"\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def raw_memcache(opened, request):
    port = shared_memcached(request).port
    listing = memcached_command(port, "lru_crawler metadump all").decode("latin-1")
    keys = [unquote(match) for match in re.findall(r"^key=(\S+)", listing, re.MULTILINE)]
    ours = [key for key in keys if key.startswith(opened._prefix)]
    assert ours, "metadump listed none of the store's keys"
    return "\n".join(f"{key} {memcached_command(port, f'get {key}').decode('latin-1')}" for key in ours)


def raw_database(opened, request):
    """Every row of the store's tables (PostgreSQL, MySQL), read on a connection of its own."""
    conn = opened.dialect.connect()
    try:
        cursor = conn.cursor()
        tables = opened.tables
        lines = []
        for table in (tables.meta, tables.kv, tables.sets, tables.members):
            cursor.execute(f"SELECT * FROM {table}")
            lines += [f"{table} {row!r}" for row in cursor.fetchall()]
        return "\n".join(lines)
    finally:
        conn.close()


RAW = {
    "memory": raw_memory,
    "sqlite": raw_sqlite,
    "redis": raw_redis,
    "memcache": raw_memcache,
    "postgresql": raw_database,
    "mysql": raw_database,
}


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_store_holds_no_secret_after_a_full_flow(
    make_middleware,
    store,  # noqa: F811
    backend,  # noqa: F811
    request,
    keys,
    token_format,
):
    middleware = flow_middleware(make_middleware, store_backend=store, **server_config(token_format, keys))
    app = webtest.TestApp(middleware)
    secrets = full_flow(app) + private_key_lines(token_format, keys)
    name = request.node.callspec.params["backend"]
    raw = RAW[name](store, request)
    # The dump is real: it holds the clients (with their secrets' hashes) and token records.
    assert digest(SERVICE_SECRET) in raw and NATIVE_ID in raw
    assert "rt:" in raw and "family:" in raw and "code-used:" in raw
    assert leaked(secrets, raw) == []


# -- logs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_logs_hold_no_secret_after_a_full_flow(make_middleware, caplog, keys, token_format):
    middleware = flow_middleware(make_middleware, **server_config(token_format, keys))
    app = webtest.TestApp(middleware)
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="oauth_middleware"):
        secrets = full_flow(app) + private_key_lines(token_format, keys)
    # The flow's failures were logged, so the check below looks at real lines.
    assert "client authentication failed" in caplog.text
    assert "replayed" in caplog.text and "reused" in caplog.text
    assert "wrong username or password" in caplog.text
    everything = caplog.text + "\n".join(
        f"{record.getMessage()} {record.args!r} {vars(record)!r}" for record in caplog.records
    )
    assert leaked(secrets, everything) == []


def test_logs_of_a_store_outage_hold_no_secret(make_middleware, caplog):
    flaky = FlakyStore()
    app = webtest.TestApp(make_middleware(store_backend=flaky))
    service = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    token = app.post(TOKEN, {"grant_type": "client_credentials"}, headers=service).json["access_token"]
    flaky.down = True
    with caplog.at_level(logging.DEBUG):
        app.get("/api/me", headers={"Authorization": f"Bearer {token}"}, status=503)
        app.post(TOKEN, {"grant_type": "client_credentials"}, headers=service, status=503)
    assert "store unavailable" in caplog.text
    assert leaked([token, SERVICE_SECRET], caplog.text) == []


def test_leaked_finds_what_it_looks_for():
    assert leaked(["s3cr3t-value-0000"], "a=s3cr3t-value-0000") == ["s3cr3t-value..."]
    assert leaked(["a b/c+d=e-secret"], "x=a%20b%2Fc%2Bd%3De-secret") == ["a b/c+d=e-se..."]
    assert leaked(["s3cr3t-value-0000"], "a=" + digest("s3cr3t-value-0000")) == []
