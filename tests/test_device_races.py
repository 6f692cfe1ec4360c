"""RFC 8628 device codes under concurrency, on every store: an approved device code is redeemed once."""

from __future__ import annotations

import webtest
from conftest import register
from oauth_flows import TOKEN, SlowReads, flow_middleware, race, serve
from store_fixtures import backend, store  # noqa: F401
from test_device import GRANT, TV_ID, authorize_device, decide

THREADS = 20


def test_20_concurrent_polls_after_approval_give_one_token(make_middleware, store):  # noqa: F811
    """Every racer reads the approved record before any claims it: only the atomic claim decides."""
    middleware = flow_middleware(
        make_middleware,
        store_backend=SlowReads(store, ("device:",), readers=THREADS),
        grants=f"refresh_token {GRANT}",
        refresh_token_grants=GRANT,
    )
    register(middleware, TV_ID, None, grant_types=[GRANT, "refresh_token"], scopes=["read"])
    app = webtest.TestApp(middleware)
    answer = authorize_device(app)
    decide(app, str(answer["user_code"]))
    data = {"grant_type": GRANT, "device_code": str(answer["device_code"]), "client_id": TV_ID}
    with serve(middleware, threads=THREADS) as base:
        results = race(base + TOKEN, data, threads=THREADS)
    assert sorted(response.status_code for response in results) == [200] + [400] * (THREADS - 1)
    errors = {response.json()["error"] for response in results if response.status_code == 400}
    assert errors == {"invalid_grant"}
