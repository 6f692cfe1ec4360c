"""Client-credentials tokens per second: our token endpoint beside oauthlib's.

Run from the repository root::

    python bench/issuance.py [--quick] [--json]

Both sides are WSGI apps called in-process with the same POST (HTTP Basic
client authentication, ``grant_type=client_credentials&scope=read``), from an
environ built once and copied, with a fresh body stream per call:

- **ours**: ``OAuth2Middleware`` on the ``memory://`` store, the demo's
  settings, the bench client registered with its secret's SHA-256;
- **oauthlib**: ``BackendApplicationServer`` with a ``RequestValidator``
  that parses the Basic header, checks the secret's SHA-256 against a dict
  in constant time, and whose ``save_bearer_token`` puts the token in a dict;
  its ``(headers, body, status)`` answer becomes the WSGI response.

Each issues a new token per call with its library's default generator and
keeps it where a guard would find it. A third row is ours again with a DPoP
proof on every request (RFC 9449: one signature check and one store write of
its ``jti`` more; the token is ``token_type: DPoP``), signed beforehand. A
fourth row is ours with ``private_key_jwt`` instead of Basic (RFC 7523: an
ES256 client assertion per request, signed beforehand; one signature check
and one store write of its ``jti`` instead of the secret's hash); a fifth
with ``client_secret_jwt`` (an HS256 assertion keyed with the client's
secret, which the server keeps sealed and opens with AES-GCM on each request).
Then oauthlib again, over a SQLite file (its validator reads the client and
inserts the token's hash: one ``SELECT`` and one ``INSERT``), and last ours
on the shared stores, SQLite, Redis, PostgreSQL and MySQL (servers as in :mod:`guard`: throwaway ones on loopback, or
``BENCH_POSTGRESQL_URL`` / ``BENCH_MYSQL_URL``). Timed like :mod:`guard`:
repetitions interleaved, median reported.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import io
import json
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlencode

import guard
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from webob import Request

from oauth_middleware.client_auth import JWT_BEARER
from oauth_middleware.clients import build_client
from oauth_middleware.demo import DemoApp
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import digest
from oauth_middleware.sealed_secrets import SecretSealer
from oauth_middleware.settings import Settings

try:
    from oauthlib.oauth2 import BackendApplicationServer, RequestValidator
except ImportError:
    # A bench-only dependency, never the middleware's.
    sys.exit("bench: oauthlib is not installed: pip install -e '.[bench]' (or tox -e bench)")

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

BODY = b"grant_type=client_credentials&scope=read"
OURS = "ours: OAuth2Middleware token endpoint, memory://"
OAUTHLIB = "oauthlib BackendApplicationServer (dicts)"
OURS_SQLITE = "ours, sqlite://"
OAUTHLIB_SQLITE = "oauthlib BackendApplicationServer, SQLite"
DPOP = "ours, DPoP-bound (ES256 proof per request)"
#: Proofs signed beforehand for the DPoP row, one per request (a proof is single-use).
DPOP_PROOFS = 20_000
PKJWT = "ours, private_key_jwt (ES256 assertion per request)"
#: The private_key_jwt client (no secret: its public key is registered).
ASSERTION_CLIENT = "bench-signed"
CSJWT = "ours, client_secret_jwt (HS256 assertion per request)"
#: The client_secret_jwt client, its secret (64 bytes: enough for any HMAC), and the key sealing it.
HMAC_CLIENT, HMAC_SECRET = "bench-hmac", "bench-client-secret-jwt-" + "0123456789" * 4
CLIENT_SECRET_KEY = "bench-client-secret-key-0123456789abcdef"
#: Where a request's body is kept when it differs per request (the assertion rows).
BODY_KEY = "bench.body"


class PostCase(guard.Case):
    """A :class:`guard.Case` whose calls each get a fresh request body."""

    def call(self, number: int) -> None:
        """Make ``number`` token requests, consuming each body (the timed loop)."""
        app, environs = self.app, self._next
        for _ in range(number):
            environ = next(environs).copy()
            environ["wsgi.input"] = io.BytesIO(environ.get(BODY_KEY, BODY))
            for _chunk in app(environ, guard._start_response):
                pass


def token_environ() -> dict[str, Any]:
    """The token request's environ: POST /oauth/token, Basic credentials, the form."""
    credentials = base64.b64encode(f"{guard.CLIENT_ID}:{guard.CLIENT_SECRET}".encode()).decode()
    return guard.environ(
        "/oauth/token",
        authorization=f"Basic {credentials}",
        extra={
            "REQUEST_METHOD": "POST",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(BODY)),
        },
    )


# -- ours ---------------------------------------------------------------------


def ours(name: str = OURS, **settings: str) -> tuple[PostCase, OAuth2Middleware]:
    """Our token endpoint on the memory store, with the bench client registered.

    :param settings: more settings (``token_types`` for the DPoP row).
    """
    middleware = OAuth2Middleware(
        DemoApp(), Settings.from_config({**guard.DEMO_SETTINGS, "store": "memory://", **settings})
    )
    middleware.server.repository.save_client(
        build_client(
            guard.CLIENT_ID,
            secret_hash=digest(guard.CLIENT_SECRET),
            grant_types=["client_credentials"],
            scopes=["read", "write"],
        )
    )
    return PostCase(name, middleware, [token_environ()], close=middleware.server.store.close), middleware


def ours_dpop() -> PostCase:
    """Our token endpoint with ``token_types = Bearer DPoP`` and a fresh proof on every request."""
    case, _ = ours(DPOP, token_types="Bearer DPoP")
    signer = guard.ProofSigner()
    url = f"http://{token_environ()['HTTP_HOST']}/oauth/token"
    environs = [{**token_environ(), "HTTP_DPOP": signer.proof("POST", url)} for _ in range(DPOP_PROOFS)]
    return PostCase(DPOP, case.app, environs, close=case.close)


def ours_private_key_jwt() -> PostCase:
    """Our token endpoint with a client authenticating by a fresh ES256 assertion on every request."""
    case, middleware = ours(PKJWT)
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": "bench"}
    middleware.server.repository.save_client(
        build_client(
            ASSERTION_CLIENT,
            secret_hash=None,
            grant_types=["client_credentials"],
            scopes=["read", "write"],
            jwks=[jwk],
        )
    )
    # Checked with an assertion of its own: one the timed loop sends again would be a replay (401).
    issue_once(PostCase(PKJWT, case.app, [assertion_environ(key)]))
    environs = [assertion_environ(key) for _ in range(DPOP_PROOFS)]
    return PostCase(PKJWT, case.app, environs, close=case.close)


def ours_client_secret_jwt() -> PostCase:
    """Our token endpoint with a client authenticating by a fresh HS256 assertion on every request."""
    case, middleware = ours(CSJWT, client_secret_key=CLIENT_SECRET_KEY)
    middleware.server.repository.save_client(
        build_client(
            HMAC_CLIENT,
            secret_hash=None,
            grant_types=["client_credentials"],
            scopes=["read", "write"],
            secret_sealed=SecretSealer(CLIENT_SECRET_KEY).seal(HMAC_CLIENT, HMAC_SECRET),
        )
    )
    secret = HMAC_SECRET.encode()
    issue_once(PostCase(CSJWT, case.app, [assertion_environ(secret, HMAC_CLIENT, "HS256")]))
    environs = [assertion_environ(secret, HMAC_CLIENT, "HS256") for _ in range(DPOP_PROOFS)]
    return PostCase(CSJWT, case.app, environs, close=case.close)


def assertion_environ(key: Any, client: str = ASSERTION_CLIENT, alg: str = "ES256") -> dict[str, Any]:
    """A token request authenticated by a new single-use assertion (RFC 7523 §2.2), no Basic header."""
    now = int(time.time())
    claims = {"iss": client, "sub": client, "aud": guard.DEMO_SETTINGS["issuer"]}
    signed = jwt.encode(
        {**claims, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex},
        key,
        algorithm=alg,
        headers={"kid": "bench"},
    )
    body = BODY + b"&" + urlencode({"client_assertion_type": JWT_BEARER, "client_assertion": signed}).encode()
    environ = token_environ()
    del environ["HTTP_AUTHORIZATION"]
    return {**environ, "CONTENT_LENGTH": str(len(body)), BODY_KEY: body}


# -- oauthlib -----------------------------------------------------------------


@dataclass(frozen=True)
class PeerClient:
    """A registered client as the oauthlib validator keeps it."""

    client_id: str
    secret_hash: str
    grant_types: frozenset[str]
    scopes: frozenset[str]


class ClientCredentialsValidator(RequestValidator):  # type: ignore[misc]
    """The ``RequestValidator`` methods the client credentials grant calls, over dicts.

    :param clients: client id -> client.
    :param tokens: where issued tokens go, by token string.
    """

    def __init__(self, clients: dict[str, PeerClient], tokens: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.clients = clients
        self.tokens = tokens

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        """HTTP Basic (RFC 6749 §2.3.1): form-decoded id and secret, SHA-256 compared in constant time."""
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return False
        client = self.find_client(unquote_plus(client_id))
        if not sep or client is None:
            return False
        if not hmac.compare_digest(digest(unquote_plus(secret)), client.secret_hash):
            return False
        request.client = client
        return True

    def find_client(self, client_id: str) -> PeerClient | None:
        """The registered client, or None."""
        return self.clients.get(client_id)

    def validate_grant_type(self, client_id: str, grant_type: str, client: PeerClient, request: Any) -> bool:
        """The client is registered for the grant."""
        return grant_type in client.grant_types

    def get_default_scopes(self, client_id: str, request: Any) -> list[str]:
        """``read``, the demo's ``default_scope``."""
        return ["read"]

    def validate_scopes(self, client_id: str, scopes: list[str], client: PeerClient, request: Any) -> bool:
        """Every scope asked for is registered for the client."""
        return client.scopes.issuperset(scopes)

    def save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> None:
        """Keep the token where a resource server's look-up finds it."""
        self.tokens[token["access_token"]] = {
            "client_id": request.client.client_id,
            "scopes": tuple(request.scopes),
            "expires_at": int(time.time()) + token["expires_in"],
        }


class SQLiteClientCredentialsValidator(ClientCredentialsValidator):
    """The same validator over a SQLite file: the client read, the token's hash written.

    What a careful integration does with least effort: one connection in
    autocommit and WAL mode (``synchronous = NORMAL``, as our store), one
    ``SELECT`` by primary key and one ``INSERT``, the token kept by its
    SHA-256 as our store keeps it.

    :param path: the database file (created with its two tables).
    """

    def __init__(self, path: str) -> None:
        super().__init__({}, {})
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL").fetchall()
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute(
            "CREATE TABLE clients (client_id TEXT PRIMARY KEY, secret_hash TEXT, grant_types TEXT, scopes TEXT)"
        )
        self.db.execute(
            "CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, client_id TEXT, scopes TEXT, expires_at INTEGER)"
        )

    def register(self, client: PeerClient) -> None:
        """Save ``client`` in the file."""
        self.db.execute(
            "INSERT INTO clients VALUES (?, ?, ?, ?)",
            (client.client_id, client.secret_hash, " ".join(client.grant_types), " ".join(client.scopes)),
        )

    def find_client(self, client_id: str) -> PeerClient | None:
        """The client's row, or None."""
        row = self.db.execute(
            "SELECT secret_hash, grant_types, scopes FROM clients WHERE client_id = ?", (client_id,)
        ).fetchone()
        if row is None:
            return None
        return PeerClient(client_id, row[0], frozenset(row[1].split()), frozenset(row[2].split()))

    def save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> None:
        """Insert the token's hash, client, scopes and expiry."""
        self.db.execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?)",
            (
                digest(token["access_token"]),
                request.client.client_id,
                " ".join(request.scopes),
                int(time.time()) + token["expires_in"],
            ),
        )


class OauthlibTokenApp:
    """oauthlib's token endpoint as a WSGI app.

    :param server: the ``BackendApplicationServer``.
    """

    def __init__(self, server: BackendApplicationServer) -> None:
        self.server = server

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode()
        headers = {"Content-Type": environ.get("CONTENT_TYPE", "")}
        if "HTTP_AUTHORIZATION" in environ:
            headers["Authorization"] = environ["HTTP_AUTHORIZATION"]
        uri = f"{environ['wsgi.url_scheme']}://{environ['HTTP_HOST']}{environ['PATH_INFO']}"
        out_headers, out_body, status = self.server.create_token_response(
            uri, environ["REQUEST_METHOD"], body, headers
        )
        data = out_body.encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [*out_headers.items(), ("Content-Length", str(len(data)))],
        )
        return [data]


#: The bench client as the oauthlib validators keep it.
PEER_CLIENT = PeerClient(
    guard.CLIENT_ID,
    digest(guard.CLIENT_SECRET),
    frozenset({"client_credentials"}),
    frozenset({"read", "write"}),
)


def oauthlib_server() -> tuple[PostCase, dict[str, dict[str, Any]]]:
    """oauthlib's client credentials server with the bench client; also the token dict."""
    tokens: dict[str, dict[str, Any]] = {}
    server = BackendApplicationServer(
        ClientCredentialsValidator({PEER_CLIENT.client_id: PEER_CLIENT}, tokens), token_expires_in=3600
    )
    return PostCase(OAUTHLIB, OauthlibTokenApp(server), [token_environ()]), tokens


def oauthlib_sqlite(directory: str) -> PostCase:
    """oauthlib's client credentials server over a SQLite file in ``directory``, checked once."""
    validator = SQLiteClientCredentialsValidator(os.path.join(directory, "oauthlib.db"))
    validator.register(PEER_CLIENT)
    server = BackendApplicationServer(validator, token_expires_in=3600)
    case = PostCase(OAUTHLIB_SQLITE, OauthlibTokenApp(server), [token_environ()], close=validator.db.close)
    token = issue_once(case)["access_token"]
    if validator.db.execute("SELECT 1 FROM tokens WHERE token_hash = ?", (digest(token),)).fetchone() is None:
        raise RuntimeError(f"{case.name}: the issued token was not saved")
    _check_refuses_wrong_secret(case)
    return case


# -- checks -------------------------------------------------------------------


def issue_once(case: PostCase) -> dict[str, Any]:
    """One token request through the case's app; insist on a 200 with a bearer token."""
    environ = case.environs[0].copy()
    environ["wsgi.input"] = io.BytesIO(environ.get(BODY_KEY, BODY))
    response = Request(environ).get_response(case.app)
    if response.status_code != 200:
        raise RuntimeError(f"{case.name}: expected 200, got {response.status}: {response.text}")
    body: dict[str, Any] = response.json
    token_type = "DPoP" if case.name == DPOP else "Bearer"
    if body.get("token_type") != token_type or body.get("scope") != "read" or "access_token" not in body:
        raise RuntimeError(f"{case.name}: unexpected token response {body}")
    return body


def check_ours(case: PostCase, middleware: OAuth2Middleware) -> None:
    """A token our endpoint issued opens ``/api/me``; a wrong secret is refused."""
    token = issue_once(case)["access_token"]
    api = Request(guard.environ(authorization=f"Bearer {token}")).get_response(middleware)
    if api.status_code != 200:
        raise RuntimeError(f"{case.name}: the issued token was refused: {api.status}")
    _check_refuses_wrong_secret(case)


def check_oauthlib(case: PostCase, tokens: dict[str, dict[str, Any]]) -> None:
    """A token oauthlib issued is in the dict; a wrong secret is refused."""
    token = issue_once(case)["access_token"]
    if token not in tokens:
        raise RuntimeError(f"{case.name}: the issued token was not saved")
    _check_refuses_wrong_secret(case)


def _check_refuses_wrong_secret(case: PostCase) -> None:
    environ = case.environs[0].copy()
    environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{guard.CLIENT_ID}:wrong".encode()).decode()
    environ["wsgi.input"] = io.BytesIO(BODY)
    logging.disable(logging.WARNING)  # the failure is expected: no log line for it
    try:
        response = Request(environ).get_response(case.app)
    finally:
        logging.disable(logging.NOTSET)
    if response.status_code != 401:
        raise RuntimeError(f"{case.name}: a wrong secret got {response.status}, not 401")


# -- running and reporting ---------------------------------------------------


@dataclass
class Report:
    """Tokens per second of every row.

    :param results: one per row, in table order (ours on ``memory://`` and
        oauthlib's first).
    """

    results: list[guard.Result]

    def result(self, name: str) -> guard.Result:
        """The result of the row called ``name``."""
        return next(r for r in self.results if r.name == name)

    @staticmethod
    def per_second(result: guard.Result) -> float:
        """Tokens per second from the median time per request."""
        return 1e6 / result.median_us

    def ratio(self, ours: str = OURS, peer: str = OAUTHLIB, *, fastest: bool = False) -> float:
        """Tokens per second of row ``ours`` over those of row ``peer``.

        :param fastest: from the fastest repetitions instead of the medians.
        """
        mine, theirs = self.result(ours), self.result(peer)
        if fastest:
            return theirs.min_us / mine.min_us
        # The median of each repetition's ratio: the two rows' repetitions run back to back,
        # so a neighbour's load swing between repetitions cancels out.
        return statistics.median(t / m for t, m in zip(theirs.per_call_ns, mine.per_call_ns, strict=True))

    def table(self) -> str:
        """Every row as plain text."""
        width = max(len(r.name) for r in self.results)
        oauthlib = self.result(OAUTHLIB)
        lines = [
            f"{'case':<{width}}  {'µs/token':>8}  {'IQR':>5}  {'tokens/s':>9}  {'x oauthlib':>10}",
            f"{'-' * width}  {'-' * 8}  {'-' * 5}  {'-' * 9}  {'-' * 10}",
        ]
        for r in self.results:
            lines.append(
                f"{r.name:<{width}}  {r.median_us:>8.2f}  {r.spread:>5.0%}  {self.per_second(r):>9,.0f}  "
                f"{oauthlib.median_us / r.median_us:>10.2f}"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        """The ratios to oauthlib, and the assertion rows' cost beside Basic."""
        basic = self.result(OURS).median_us
        return "\n".join(
            [
                f"ours / oauthlib tokens per second, memory: {self.ratio():.2f}"
                f" (fastest repetitions: {self.ratio(fastest=True):.2f}; target >= 3)",
                f"ours / oauthlib tokens per second, SQLite: {self.ratio(OURS_SQLITE, OAUTHLIB_SQLITE):.2f}"
                f" (fastest repetitions: {self.ratio(OURS_SQLITE, OAUTHLIB_SQLITE, fastest=True):.2f};"
                " target >= 1.5)",
                *(
                    f"{name.partition(', ')[2].partition(' (')[0]} / client_secret_basic issuance time:"
                    f" {self.result(name).median_us / basic:.2f}"
                    for name in (DPOP, PKJWT, CSJWT)
                ),
            ]
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready results."""
        return {
            "results": [
                {
                    "case": r.name,
                    "median_us": round(r.median_us, 3),
                    "iqr_ratio": round(r.spread, 4),
                    "tokens_per_second": round(self.per_second(r)),
                    "per_call_ns": [round(v, 1) for v in r.per_call_ns],
                }
                for r in self.results
            ],
            "ours_over_oauthlib": round(self.ratio(), 3),
            "ours_over_oauthlib_fastest": round(self.ratio(fastest=True), 3),
            "sqlite_ours_over_oauthlib": round(self.ratio(OURS_SQLITE, OAUTHLIB_SQLITE), 3),
            **{
                f"{key}_over_basic_time": round(self.result(name).median_us / self.result(OURS).median_us, 3)
                for key, name in (("dpop", DPOP), ("private_key_jwt", PKJWT), ("client_secret_jwt", CSJWT))
            },
        }


def build_cases(stack: contextlib.ExitStack) -> list[PostCase]:
    """Every token endpoint, each checked to issue working tokens and refuse a wrong secret."""
    our_case, middleware = ours()
    stack.callback(our_case.close)
    check_ours(our_case, middleware)
    peer_case, tokens = oauthlib_server()
    check_oauthlib(peer_case, tokens)
    dpop_case = ours_dpop()
    stack.callback(dpop_case.close)
    issue_once(dpop_case)
    signed_case = ours_private_key_jwt()
    stack.callback(signed_case.close)
    hmac_case = ours_client_secret_jwt()
    stack.callback(hmac_case.close)
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-issuance-"))
    peer_sqlite = oauthlib_sqlite(directory)
    stack.callback(peer_sqlite.close)
    return [
        our_case,
        peer_case,
        dpop_case,
        signed_case,
        hmac_case,
        peer_sqlite,
        *store_cases(stack, directory),
    ]


def store_cases(stack: contextlib.ExitStack, directory: str) -> list[PostCase]:
    """Our token endpoint on SQLite (a file in ``directory``), Redis, PostgreSQL and MySQL (those that can be had)."""
    urls = {"sqlite": f"sqlite:///{directory}/oauth.db"}
    redis = guard.redis_url(stack)
    if redis is not None:
        urls["redis"] = redis
    urls.update(guard.database_urls(stack))
    cases = []
    for name, url in urls.items():
        case, middleware = ours(
            f"ours, {name}://", store=url, store_table_prefix=f"bench_{uuid.uuid4().hex[:12]}_"
        )
        stack.callback(case.close)
        check_ours(case, middleware)
        cases.append(case)
    return cases


def run(plan: guard.Plan) -> Report:
    """Measure every token endpoint."""
    with contextlib.ExitStack() as stack:
        return Report(guard.measure(build_cases(stack), plan))


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--profile", type=int, nargs="?", const=20_000, metavar="CALLS", help="cProfile every row instead"
    )
    args = parser.parse_args(argv)
    if args.profile:
        with contextlib.ExitStack() as stack:
            guard.profile(build_cases(stack), args.profile)
        return 0
    report = run(guard.QUICK if args.quick else guard.Plan())
    print(json.dumps(report.as_dict(), indent=2) if args.json else f"{report.table()}\n\n{report.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
