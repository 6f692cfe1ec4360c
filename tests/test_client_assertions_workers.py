"""One assertion's single use across worker processes (RFC 7523 §3 item 7; issue 13).

``gunicorn --paste`` with two sync workers shares nothing but the store
(SQLite or Redis). One assertion is posted by 20 threads at the same moment,
so that the requests reach both processes: exactly one gets a token, every
other one is refused. Three kinds of assertion are raced: a ``private_key_jwt``
and a ``client_secret_jwt`` client assertion (401 ``invalid_client``), and the
JWT of a trusted issuer presented to the JWT bearer grant (400 ``invalid_grant``).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from conftest import basic
from oauth_flows import race
from peer_issuer import JWT_BEARER, issuer_file, peer_jwt
from servers import shared_redis
from test_client_assertions import CLIENT, JWK, assertion, form
from test_client_secret_jwt import CLIENT as HMAC_CLIENT
from test_client_secret_jwt import SECRET as HMAC_SECRET
from test_client_secret_jwt import SECRET_KEY, hmac_assertion
from test_multiprocess import access_entries, wait_for_entries, write_ini
from test_par_workers import serve_gunicorn

from oauth_middleware.models import digest
from oauth_middleware.sealed_secrets import SecretSealer

THREADS = 20
#: The issuer of :func:`~test_multiprocess.write_ini`, which every assertion is addressed to.
AUDIENCE = "http://127.0.0.1"
GRANT_CLIENT, GRANT_SECRET = "grant-client", "grant-client-secret-0123456789"


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """The store both workers share."""
    return f"sqlite:///{tmp_path / 'oauth.db'}" if request.param == "sqlite" else shared_redis(request).url


@contextmanager
def two_workers(
    directory: pathlib.Path, store: str, client: str, settings: str = "", grant: str | None = None
) -> Iterator[str]:
    """Two gunicorn workers on ``store`` with ``client`` (a clients_file section) and ``settings`` added.

    :param grant: a grant type enabled beside those of :func:`~test_multiprocess.write_ini`.
    """
    ini = write_ini(directory, store)
    if grant is not None:
        grants = "grants = authorization_code client_credentials"
        assert grants in ini.read_text()
        ini.write_text(ini.read_text().replace(grants, f"{grants} {grant}"))
    with (directory / "clients.ini").open("a") as clients:
        clients.write("\n" + client)
    # Every refusal of a race counts for the throttle: keep it out of the way of ten races.
    with ini.open("a") as extra:
        extra.write("throttle_max_failures = 1000\n" + settings)
    with serve_gunicorn(ini) as base:
        yield base


def race_until_split(
    base: str,
    access_log: pathlib.Path,
    request: Callable[[], tuple[dict[str, str], dict[str, str]]],
    refusal: tuple[int, str],
) -> None:
    """Race fresh requests (form, headers) until one race was split between the two workers.

    One sync worker may drain a whole burst by itself, so up to ten races are run;
    each must have exactly one winner and ``THREADS - 1`` refusals ``(status, error)``.
    """
    status, error = refusal
    for _ in range(10):
        before = len(access_entries(access_log))
        data, headers = request()
        results = race(f"{base}/oauth/token", data, THREADS, headers=headers)
        statuses = sorted(response.status_code for response in results)
        assert statuses == sorted([200] + [status] * (THREADS - 1)), [r.text[:200] for r in results]
        assert {r.json()["error"] for r in results if r.status_code == status} == {error}
        entries = wait_for_entries(access_log, before + THREADS)[before:]
        if len({pid for pid, path, _ in entries if path == "/oauth/token"}) > 1:
            return
    pytest.fail("no race was split between worker processes")


def test_one_assertion_raced_across_two_workers_is_accepted_once(store_url, tmp_path):
    client = f"[client:{CLIENT}]\ngrants = client_credentials\njwks = {json.dumps({'keys': [JWK]})}\n"
    with two_workers(tmp_path, store_url, client) as base:
        race_until_split(
            base,
            tmp_path / "access.log",
            lambda: (form(assertion(aud=AUDIENCE)), {}),
            (401, "invalid_client"),
        )


def test_one_client_secret_jwt_assertion_raced_across_two_workers_is_accepted_once(store_url, tmp_path):
    sealed = SecretSealer(SECRET_KEY).seal(HMAC_CLIENT, HMAC_SECRET)
    client = f"[client:{HMAC_CLIENT}]\ngrants = client_credentials\nscopes = read\nsecret_sealed = {sealed}\n"
    with two_workers(tmp_path, store_url, client, f"client_secret_key = {SECRET_KEY}\n") as base:
        race_until_split(
            base,
            tmp_path / "access.log",
            lambda: (form(hmac_assertion(aud=AUDIENCE)), {}),
            (401, "invalid_client"),
        )


def test_one_jwt_bearer_assertion_raced_across_two_workers_is_accepted_once(store_url, tmp_path):
    client = (
        f"[client:{GRANT_CLIENT}]\nsecret_hash = {digest(GRANT_SECRET)}\n"
        f"grants = {JWT_BEARER}\nscopes = read\n"
    )
    settings = f"trusted_issuers_file = {issuer_file(tmp_path)}\n"
    headers = {"Authorization": basic(GRANT_CLIENT, GRANT_SECRET)}
    with two_workers(tmp_path, store_url, client, settings, grant=JWT_BEARER) as base:
        race_until_split(
            base,
            tmp_path / "access.log",
            lambda: ({"grant_type": JWT_BEARER, "assertion": peer_jwt(aud=AUDIENCE)}, headers),
            (400, "invalid_grant"),
        )
