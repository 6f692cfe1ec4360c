"""Races on every store (memory, SQLite, Redis, memcached, PostgreSQL, MySQL), 20 threads at once over real HTTP.

* One authorization code redeemed 20 times: one 200, nineteen ``invalid_grant``.
* One refresh token rotated 20 times: one 200, nineteen ``invalid_grant``.
* One access token validated by 19 threads while a 20th revokes it: once the
  revocation has answered, no validation succeeds.
* One user approving 20 scopes of one client at once, one per request, with
  ``remember_consent``: every approval is remembered.

Never a 5xx, and nothing half-written: every token a race produced is either
fully usable or fully dead. In the first two races the 19 losers *are*
replays of a used code or a rotated refresh token, so the winner's tokens
are revoked too (RFC 6749 §4.1.2, RFC 9700 §4.14.2): after the race not one
token of the family works, whichever request got there first.

Reads of the contended keys are held until every racing request has read
(:class:`oauth_flows.SlowReads`), so that every request reads before any of them writes, which is the case
where only an atomic claim in the store keeps one winner.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests
import webtest
from conftest import register
from jwt_keys import jwt_settings, make_keys
from oauth_flows import (
    AUTHORIZE,
    NATIVE_ID,
    NATIVE_REDIRECT,
    TOKEN,
    VERIFIER,
    SlowReads,
    api_status,
    code_request,
    flow_middleware,
    get_code,
    location_params,
    login,
    race,
    redeem,
    serve,
)
from store_fixtures import backend, store  # noqa: F401

THREADS = 20
REVOKE = "/oauth/revoke"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(params=["opaque", "jwt"])
def token_format(request):
    return request.param


def racing_middleware(make_middleware, store, prefixes, token_format="opaque", keys=None, readers=THREADS):  # noqa: F811
    """The three-legged test server on ``store``, its reads of ``prefixes`` keys held until
    ``readers`` racing requests have read them."""
    config = {"store_backend": SlowReads(store, prefixes, readers=readers)}
    if token_format == "jwt":
        grants = "authorization_code refresh_token client_credentials password"
        config.update(jwt_settings(keys, grants=grants, jwt_check_revocation="true"))
    return flow_middleware(make_middleware, **config)


def assert_one_winner(results):
    statuses = sorted(response.status_code for response in results)
    assert statuses == [200] + [400] * (THREADS - 1)  # and no 5xx
    assert {response.json()["error"] for response in results if response.status_code == 400} == {
        "invalid_grant"
    }
    return next(response.json() for response in results if response.status_code == 200)


def refresh(app, refresh_token, status=200):
    params = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": NATIVE_ID}
    return app.post(TOKEN, params, status=status).json


def test_code_redeemed_by_20_threads_has_one_winner(make_middleware, store, token_format, keys):  # noqa: F811
    middleware = racing_middleware(make_middleware, store, ("code:",), token_format, keys)
    app = webtest.TestApp(middleware)
    code = get_code(app)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": NATIVE_ID,
        "redirect_uri": NATIVE_REDIRECT,
        "code_verifier": VERIFIER,
    }
    with serve(middleware, threads=THREADS) as base:
        winner = assert_one_winner(race(base + TOKEN, data, threads=THREADS))
    # The 19 others were replays: the winner's access and refresh tokens are both dead.
    assert api_status(app, winner["access_token"]) == 401
    assert refresh(app, winner["refresh_token"], status=400)["error"] == "invalid_grant"
    assert redeem(app, code, status=400)["error"] == "invalid_grant"
    assert middleware.server.repository.find_code(code) is None


def test_refresh_token_rotated_by_20_threads_has_one_winner(make_middleware, store, token_format, keys):  # noqa: F811
    middleware = racing_middleware(make_middleware, store, ("rt:",), token_format, keys)
    app = webtest.TestApp(middleware)
    first = redeem(app, get_code(app, scope="read write"))
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": NATIVE_ID}
    with serve(middleware, threads=THREADS) as base:
        results = race(base + TOKEN, data, threads=THREADS)
    winner = assert_one_winner(results)
    assert sum("refresh_token" in response.json() for response in results) == 1  # one new refresh token
    # The 19 losers presented a rotated token: the whole chain is revoked, the winner's part too.
    assert refresh(app, winner["refresh_token"], status=400)["error"] == "invalid_grant"
    assert refresh(app, first["refresh_token"], status=400)["error"] == "invalid_grant"
    assert api_status(app, winner["access_token"]) == 401
    assert api_status(app, first["access_token"]) == 401


def test_revocation_while_20_threads_validate(make_middleware, store, token_format, keys):  # noqa: F811
    # The 19 validating threads read together, each holding a value the revocation may make stale.
    middleware = racing_middleware(make_middleware, store, ("at:", "deny:"), token_format, keys, THREADS - 1)
    app = webtest.TestApp(middleware)
    tokens = redeem(app, get_code(app))
    access = tokens["access_token"]
    validations: list[tuple[float, float, int]] = []  # (sent, answered, status)
    revoked_at: list[float] = []
    answered = threading.Condition()
    barrier = threading.Barrier(THREADS)
    stop = threading.Event()

    def sent_after_revocation() -> int:
        return sum(1 for sent, _, _ in validations if revoked_at and sent > revoked_at[0])

    with serve(middleware, threads=THREADS) as base:

        def validate() -> None:
            with requests.Session() as session:
                barrier.wait()
                while not stop.is_set():
                    sent = time.monotonic()
                    status = session.get(
                        base + "/api/me", headers={"Authorization": f"Bearer {access}"}
                    ).status_code
                    with answered:
                        validations.append((sent, time.monotonic(), status))
                        answered.notify_all()

        def revoke() -> None:
            # Rather than waiting a fixed while: revoke once every validating thread
            # could have had an answer, stop once as many were sent after the revocation.
            with requests.Session() as session:
                barrier.wait()
                with answered:
                    answered.wait_for(lambda: len(validations) >= THREADS - 1, timeout=30)
                response = session.post(base + REVOKE, data={"token": access, "client_id": NATIVE_ID})
                revoked_at.append(time.monotonic())
                assert response.status_code == 200
                with answered:
                    answered.wait_for(lambda: sent_after_revocation() >= THREADS - 1, timeout=30)
                stop.set()

        workers = [threading.Thread(target=validate) for _ in range(THREADS - 1)]
        workers.append(threading.Thread(target=revoke))
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)

    assert revoked_at, "the revocation did not answer"
    statuses = {status for _, _, status in validations}
    assert statuses <= {200, 401}  # no 5xx
    assert any(status == 200 for sent, _, status in validations if sent < revoked_at[0])  # it did work
    after = [status for sent, _, status in validations if sent > revoked_at[0]]
    assert after and set(after) == {401}
    assert api_status(app, access) == 401
    # Revoking the access token leaves the refresh token of the grant alone (RFC 7009 §2.1 "may").
    assert refresh(app, tokens["refresh_token"])["token_type"] == "Bearer"


def test_20_concurrent_consent_approvals_are_all_remembered(make_middleware, store):  # noqa: F811
    """Regression: approving consent was get-merge-put, so concurrent approvals lost scopes."""
    scopes = [f"s{n}" for n in range(THREADS)]
    middleware = flow_middleware(
        make_middleware,
        store_backend=SlowReads(store, ("consent:",), readers=THREADS),
        remember_consent="true",
        scopes=" ".join(scopes),
    )
    redirect_uri = "https://many.example/cb"
    register(
        middleware,
        "many",
        "many-secret-0123456789",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code"],
        scopes=scopes,
    )
    app = webtest.TestApp(middleware)

    def request(scope: str) -> dict[str, str]:
        return code_request(client_id="many", redirect_uri=redirect_uri, scope=scope)

    # One browser, logged in once, with a consent page open per scope.
    forms = [dict(login(app, request(scope)).forms[0].submit_fields()) for scope in scopes]
    cookie = f"oauth2_session={app.cookies['oauth2_session']}"
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []

    with serve(middleware, threads=THREADS) as base:

        def decide(fields: dict[str, str]) -> None:
            with requests.Session() as session:
                barrier.wait()
                response = session.post(
                    base + AUTHORIZE,
                    data={**fields, "decision": "approve"},
                    headers={"Cookie": cookie},
                    allow_redirects=False,
                    timeout=30,
                )
            statuses.append(response.status_code)

        workers = [threading.Thread(target=decide, args=(fields,)) for fields in forms]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)

    assert statuses == [303] * THREADS
    # Every scope was remembered: asking for all of them at once needs no consent page.
    response = app.get(AUTHORIZE, request(" ".join(scopes)), status=302)
    assert "code" in location_params(response.headers["Location"])
