"""One client assertion's single use across worker processes (RFC 7523 §3; issue 13).

``gunicorn --paste`` with two sync workers shares nothing but the store
(SQLite or Redis). One ``private_key_jwt`` assertion is posted by 20 threads at
the same moment, so that the requests reach both processes: exactly one gets
a token, every other one 401 ``invalid_client``.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest
from oauth_flows import race
from servers import shared_redis
from test_client_assertions import CLIENT, JWK, assertion, form
from test_multiprocess import access_entries, wait_for_entries, write_ini
from test_par_workers import serve_gunicorn

THREADS = 20


@pytest.fixture(params=["sqlite", "redis"])
def signed_gunicorn(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[tuple[str, pathlib.Path]]:
    """Two workers on one store with the private_key_jwt client: (base URL, access log)."""
    store = f"sqlite:///{tmp_path / 'oauth.db'}" if request.param == "sqlite" else shared_redis(request).url
    ini = write_ini(tmp_path, store)
    with (tmp_path / "clients.ini").open("a") as clients:
        clients.write(
            f"\n[client:{CLIENT}]\ngrants = client_credentials\njwks = {json.dumps({'keys': [JWK]})}\n"
        )
    # Every refusal of a race counts for the throttle: keep it out of the way of ten races.
    with ini.open("a") as settings:
        settings.write("throttle_max_failures = 1000\n")
    with serve_gunicorn(ini) as base:
        yield base, tmp_path / "access.log"


def test_one_assertion_raced_across_two_workers_is_accepted_once(signed_gunicorn):
    base, access_log = signed_gunicorn
    # One sync worker may drain a whole burst by itself: race fresh assertions
    # until one race was split between the processes (each must have exactly one winner).
    for _ in range(10):
        before = len(access_entries(access_log))
        results = race(f"{base}/oauth/token", form(assertion(aud="http://127.0.0.1")), THREADS)
        statuses = sorted(response.status_code for response in results)
        assert statuses == [200] + [401] * (THREADS - 1), [r.text[:200] for r in results]
        assert {r.json()["error"] for r in results if r.status_code == 401} == {"invalid_client"}
        entries = wait_for_entries(access_log, before + THREADS)[before:]
        if len({pid for pid, path, _ in entries if path == "/oauth/token"}) > 1:
            break
    else:
        pytest.fail("no race was split between worker processes")
