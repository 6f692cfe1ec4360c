"""The guard beside its peers: Authlib, oauthlib and a hand-written floor, in one process.

Run from the repository root::

    python bench/peers.py            # full run, a table
    python bench/peers.py --quick    # a few seconds, for a smoke test
    python bench/peers.py --only Authlib --profile   # cProfile some rows

Every row wraps the same app (the demo's ``/api/me``) and is called with the
same environ and the same opaque token, measured as :mod:`guard` (this
directory's ``guard.py``) measures: in one process, repetitions interleaved
across rows, the median reported. Our rows are those of
:data:`guard.BUILDERS` (opaque tokens on each store, JWTs); should those
have no Redis row, one is added here on a ``redis-server`` started on a free
port, or the table says why it is missing. The other rows are

- the **floor**: a hand-written middleware that splits the header, looks the
  token up in a dict, checks expiry and scope and injects it; no guard can
  do less;
- **Authlib**'s ``ResourceProtector`` with a ``BearerTokenValidator`` whose
  ``authenticate_token`` is a dict look-up, as its Flask and Django
  integrations use it (``validate_request(scopes, JsonRequest(...))``);
- **oauthlib**'s ``ResourceEndpoint`` with ``BearerToken`` and a
  ``RequestValidator`` whose ``validate_bearer_token`` does the same look-up,
  called through ``verify_request(uri, method, body, headers, scopes)``.

Fairness: every row checks that the token is known, unexpired and carries
``read`` (our rows by the demo's scope rule ``GET /api/* read``), and puts
the same four keys in the environ for the app. The peer adapters hand their
library only what it reads (the method, a URI made by string formatting and
the ``Authorization`` header), the least a WSGI integration can do. Our rows
do more than the peers: they hash the token before the look-up (the store
never holds it in clear), match public paths and scope rules, and add
``Vary: Authorization`` to the response.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import guard
from webob import Request
from webob.headers import EnvironHeaders

from oauth_middleware.demo import DemoApp

try:
    from authlib.oauth2 import OAuth2Error, ResourceProtector
    from authlib.oauth2.rfc6749 import JsonRequest, TokenMixin
    from authlib.oauth2.rfc6750 import BearerTokenValidator
    from oauthlib.oauth2 import BearerToken, RequestValidator, ResourceEndpoint
except ImportError as missing:
    # Bench-only dependencies, never the middleware's.
    sys.exit(f"bench: {missing.name} is not installed: pip install -e '.[bench]' (or tox -e bench)")

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: The scope every row requires for ``GET /api/me`` (the demo's scope rule).
SCOPE = "read"
#: Row names the targets and ratios refer to.
FLOOR = "floor: header split + dict look-up"
AUTHLIB = "Authlib ResourceProtector (dict look-up)"
OAUTHLIB = "oauthlib ResourceEndpoint (dict look-up)"
DPOP = "DPoP-bound opaque, memory:// (ES256 proof)"
#: Proofs made for the DPoP row, one per request: a proof is single-use, so none can be cached or
#: sent twice. Enough for a full run (warm-up and 21 repetitions of about 50 ms).
DPOP_PROOFS = 40_000


# -- what the peers look tokens up in ---------------------------------------


class PeerToken(TokenMixin):  # type: ignore[misc]
    """A token record as the peers keep it, with what the demo app reads from ``oauth2.token``.

    :param client_id: the client it was issued to.
    :param scopes: the granted scopes.
    :param expires_at: expiry as a Unix timestamp.
    """

    def __init__(self, client_id: str, scopes: tuple[str, ...], expires_at: int) -> None:
        self.client_id = client_id
        self.user_id: str | None = None
        self.scopes = scopes
        self.scope = " ".join(scopes)
        self.expires_at = expires_at
        self.extra: dict[str, Any] = {}

    # Authlib's TokenMixin, as its SQLAlchemy mixin implements it.
    def get_scope(self) -> str:
        """The space-separated scope string."""
        return self.scope

    def is_expired(self) -> bool:
        """True once ``expires_at`` has passed."""
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        """Never: the dict holds live tokens only."""
        return False


def inject(environ: WSGIEnvironment, token: PeerToken) -> None:
    """Put the token where the demo app reads it (what our guard's ``inject`` does)."""
    environ["oauth2.token"] = token
    environ["oauth2.user"] = token.user_id
    environ["oauth2.client_id"] = token.client_id
    environ["oauth2.scopes"] = token.scopes


def request_uri(environ: WSGIEnvironment) -> str:
    """The request URI by string formatting: the cheapest form the peers accept."""
    query = environ.get("QUERY_STRING")
    uri = f"{environ['wsgi.url_scheme']}://{environ['HTTP_HOST']}{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}"
    return f"{uri}?{query}" if query else uri


def _unauthorized(start_response: StartResponse, challenge: str, body: bytes = b"") -> list[bytes]:
    start_response(
        "401 Unauthorized",
        [
            ("WWW-Authenticate", challenge),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


# -- the floor ----------------------------------------------------------------


class FloorGuard:
    """The least a bearer-token guard does, written by hand.

    :param app: the protected app.
    :param tokens: token string -> record.
    :param scope: the scope every request needs.
    """

    def __init__(self, app: WSGIApplication, tokens: dict[str, PeerToken], scope: str) -> None:
        self.app = app
        self.tokens = tokens
        self.scope = scope

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        token = self.tokens.get(value) if scheme.lower() == "bearer" else None
        if token is None or token.expires_at <= time.time() or self.scope not in token.scopes:
            return _unauthorized(start_response, 'Bearer error="invalid_token"')
        inject(environ, token)
        return self.app(environ, start_response)


# -- Authlib ------------------------------------------------------------------


class DictBearerTokenValidator(BearerTokenValidator):  # type: ignore[misc]
    """Authlib's validator with the documented ``authenticate_token`` over a dict."""

    def __init__(self, tokens: dict[str, PeerToken]) -> None:
        super().__init__()
        self.tokens = tokens

    def authenticate_token(self, token_string: str) -> PeerToken | None:
        """The token's record, or None."""
        return self.tokens.get(token_string)


class AuthlibGuard:
    """Authlib's ``ResourceProtector`` as WSGI middleware.

    Does what ``ResourceProtector.acquire_token`` does in Authlib's Flask and
    Django integrations: a ``JsonRequest`` of the request, ``validate_request``
    with the required scopes, ``OAuth2Error`` rendered as its status, headers
    and JSON body.

    :param app: the protected app.
    :param protector: a protector with a validator registered.
    :param scopes: the scopes every request needs.
    """

    def __init__(self, app: WSGIApplication, protector: ResourceProtector, scopes: list[str]) -> None:
        self.app = app
        self.protector = protector
        self.scopes = scopes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = JsonRequest(environ["REQUEST_METHOD"], request_uri(environ), EnvironHeaders(environ))
        try:
            token = self.protector.validate_request(scopes=self.scopes, request=request)
        except OAuth2Error as error:
            status, body, headers = error()
            data = body.encode() if isinstance(body, str) else json.dumps(dict(body)).encode()
            start_response(f"{status} Error", [*headers, ("Content-Length", str(len(data)))])
            return [data]
        inject(environ, token)
        return self.app(environ, start_response)


def authlib_guard(app: WSGIApplication, tokens: dict[str, PeerToken]) -> AuthlibGuard:
    """The demo app behind Authlib, configured as its documentation shows."""
    protector = ResourceProtector()
    protector.register_token_validator(DictBearerTokenValidator(tokens))
    return AuthlibGuard(app, protector, [SCOPE])


# -- oauthlib -----------------------------------------------------------------


class DictResourceValidator(RequestValidator):  # type: ignore[misc]
    """oauthlib's validator: ``validate_bearer_token`` over a dict, scopes checked as documented."""

    def __init__(self, tokens: dict[str, PeerToken]) -> None:
        super().__init__()
        self.tokens = tokens

    def validate_bearer_token(self, token: str | None, scopes: list[str], request: Any) -> bool:
        """Known, unexpired and granted every scope in ``scopes``; the record goes on ``request``."""
        record = self.tokens.get(token) if token else None
        if record is None or record.expires_at <= time.time():
            return False
        if not all(scope in record.scopes for scope in scopes):
            return False
        request.access_token = record
        request.client_id = record.client_id
        request.user = record.user_id
        return True


class OauthlibGuard:
    """oauthlib's ``ResourceEndpoint`` as WSGI middleware, via ``verify_request``.

    :param app: the protected app.
    :param endpoint: the endpoint with its ``Bearer`` token type.
    :param scopes: the scopes every request needs.
    """

    def __init__(self, app: WSGIApplication, endpoint: ResourceEndpoint, scopes: list[str]) -> None:
        self.app = app
        self.endpoint = endpoint
        self.scopes = scopes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        headers = {}
        if "HTTP_AUTHORIZATION" in environ:
            headers["Authorization"] = environ["HTTP_AUTHORIZATION"]
        valid, request = self.endpoint.verify_request(
            request_uri(environ), environ["REQUEST_METHOD"], None, headers, self.scopes
        )
        if not valid:
            return _unauthorized(start_response, 'Bearer error="invalid_token"')
        inject(environ, request.access_token)
        return self.app(environ, start_response)


def oauthlib_guard(app: WSGIApplication, tokens: dict[str, PeerToken]) -> OauthlibGuard:
    """The demo app behind oauthlib's resource endpoint with ``Bearer`` tokens."""
    validator = DictResourceValidator(tokens)
    endpoint = ResourceEndpoint(default_token="Bearer", token_types={"Bearer": BearerToken(validator)})
    return OauthlibGuard(app, endpoint, [SCOPE])


# -- Redis --------------------------------------------------------------------


class Unavailable(Exception):
    """A row cannot be built on this machine; the message says why."""


def start_redis(stack: contextlib.ExitStack) -> str:
    """Start a throwaway ``redis-server`` on a free loopback port; return its URL.

    :raises Unavailable: no binary, no Python client, or it did not answer.
    """
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if binary is None:
        raise Unavailable("no redis-server binary (apt-get install redis-server)")
    try:
        import redis  # noqa: F401
    except ImportError:
        raise Unavailable("the redis client is not installed (pip install -e '.[redis]')") from None
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stack.callback(_stop, process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"redis-server exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    raise Unavailable("redis-server did not answer PING within 10 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the rows -----------------------------------------------------------------


@dataclass
class Rows:
    """The cases to measure and what could not be built.

    :param cases: every row, the baseline first.
    :param ours: the row of ours compared with Authlib (opaque, memory store).
    :param missing: row name -> why it is missing.
    """

    cases: list[guard.Case]
    ours: str
    missing: dict[str, str]


def build_rows(stack: contextlib.ExitStack, only: Sequence[str] = ()) -> Rows:
    """Our rows from :data:`guard.BUILDERS`, Redis, then the peers with the same token.

    :param only: keep rows whose name contains one of these words (the
        baseline, our memory row and the floor are always kept).
    """
    cases: list[guard.Case] = []
    missing: dict[str, str] = {}
    ours: guard.Case | None = None
    for builder in guard.BUILDERS:
        built = builder(stack)
        for case in [built] if isinstance(built, guard.Case) else built:
            stack.callback(case.close)
            cases.append(case)
            if builder is guard.opaque_memory:
                ours = case
    if ours is None:
        raise RuntimeError("bench/guard.py no longer has the opaque_memory row")
    if not any("redis" in case.name for case in cases):
        try:
            url = start_redis(stack)
        except Unavailable as reason:
            missing["opaque, redis://"] = str(reason)
        else:
            case = guard.guarded_case("opaque, redis://", stack, store=url)
            stack.callback(case.close)
            cases.append(case)
    token = ours.environs[0]["HTTP_AUTHORIZATION"].partition(" ")[2]
    tokens = {token: PeerToken(guard.CLIENT_ID, (SCOPE,), int(time.time()) + 3600)}
    same_environ = [dict(ours.environs[0])]
    for name, app in (
        (FLOOR, FloorGuard(DemoApp(), tokens, SCOPE)),
        (AUTHLIB, authlib_guard(DemoApp(), tokens)),
        (OAUTHLIB, oauthlib_guard(DemoApp(), tokens)),
    ):
        cases.append(guard.Case(name, app, same_environ))
    cases.append(dpop_case(stack))
    keep = {ours.name, FLOOR, AUTHLIB, DPOP}
    cases = [c for c in cases if c.baseline or c.name in keep or not only or any(w in c.name for w in only)]
    for case in cases:
        guard.check(case)
        if not case.baseline:
            check_refuses(case)
    return Rows(cases, ours.name, missing)


def dpop_case(stack: contextlib.ExitStack) -> guard.Case:
    """Our opaque memory row with a DPoP-bound token: one proof verified and one ``jti`` stored per request.

    Each request carries a proof of its own, signed beforehand (signing is the client's cost).
    """
    case = guard.guarded_case(DPOP, stack, store="memory://", token_types="Bearer DPoP")
    signer = guard.ProofSigner()
    request = Request.blank(
        "/oauth/token", method="POST", POST={"grant_type": "client_credentials", "scope": SCOPE}
    )
    request.headers["Authorization"] = "Basic " + guard._basic(guard.CLIENT_ID, guard.CLIENT_SECRET)
    request.headers["DPoP"] = signer.proof("POST", "http://localhost/oauth/token")
    response = request.get_response(case.app)
    if response.json.get("token_type") != "DPoP":
        raise RuntimeError(f"{DPOP}: no DPoP token: {response.text}")
    token = response.json["access_token"]
    url = f"http://{case.environs[0]['HTTP_HOST']}{guard.PATH}"
    environs = [
        guard.environ(authorization=f"DPoP {token}", extra={"HTTP_DPOP": signer.proof("GET", url, token)})
        for _ in range(DPOP_PROOFS)
    ]
    return guard.Case(DPOP, case.app, environs, close=case.close)


def check_refuses(case: guard.Case) -> None:
    """Insist that the row answers 401 to an unknown token: a guard that lets all through is no guard."""
    environ = dict(case.environs[0])
    environ["HTTP_AUTHORIZATION"] = "Bearer " + "A" * 43
    response = Request(environ).get_response(case.app)
    if response.status_code != 401:
        raise RuntimeError(f"{case.name}: expected 401 for an unknown token, got {response.status}")


# -- reporting ----------------------------------------------------------------


@dataclass
class Report:
    """The in-process results, with the ratios the table shows.

    :param results: one per row, in table order.
    :param base: the bare app's result.
    :param floor: the floor's result.
    :param ours: the name of our row compared with Authlib.
    :param missing: row name -> why it is missing.
    """

    results: list[guard.Result]
    base: guard.Result
    floor: guard.Result
    ours: str
    missing: dict[str, str]

    def result(self, name: str) -> guard.Result:
        """The result of the row called ``name``."""
        return next(r for r in self.results if r.name == name)

    def overhead_us(self, name: str, *, fastest: bool = False) -> float:
        """What the row adds to the bare app, in µs per request (medians, or fastest repetitions)."""
        if fastest:
            return self.result(name).min_us - self.base.min_us
        return self.result(name).median_us - self.base.median_us

    def overhead_vs_authlib(self, *, fastest: bool = False) -> float:
        """Our guard's overhead over Authlib's (the target is ≤ 1/3).

        :param fastest: compare the fastest repetitions instead of the
            medians: on a busy machine the least disturbed ones.
        """
        return self.overhead_us(self.ours, fastest=fastest) / self.overhead_us(AUTHLIB, fastest=fastest)

    def table(self) -> str:
        """The rows as plain text: µs per request, spread, and the two ratios."""
        width = max(len("case"), *(len(r.name) for r in self.results), *(len(n) for n in self.missing))
        lines = [
            f"{'case':<{width}}  {'µs/req':>8}  {'IQR':>5}  {'+µs':>7}  {'x bare':>7}  {'x floor':>7}",
            f"{'-' * width}  {'-' * 8}  {'-' * 5}  {'-' * 7}  {'-' * 7}  {'-' * 7}",
        ]
        for r in self.results:
            lines.append(
                f"{r.name:<{width}}  {r.median_us:>8.2f}  {r.spread:>5.0%}  "
                f"{r.median_us - self.base.median_us:>7.2f}  {r.median_us / self.base.median_us:>7.2f}  "
                f"{r.median_us / self.floor.median_us:>7.2f}"
            )
        for name, reason in self.missing.items():
            lines.append(f"{name:<{width}}  missing: {reason}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The results as JSON-ready data."""
        return {
            "baseline": self.base.name,
            "floor": self.floor.name,
            "results": [
                {
                    "case": r.name,
                    "median_us": round(r.median_us, 3),
                    "iqr_ratio": round(r.spread, 4),
                    "overhead_us": round(r.median_us - self.base.median_us, 3),
                    "ratio_to_bare": round(r.median_us / self.base.median_us, 3),
                    "ratio_to_floor": round(r.median_us / self.floor.median_us, 3),
                    "per_call_ns": [round(v, 1) for v in r.per_call_ns],
                }
                for r in self.results
            ],
            "missing": self.missing,
            "overhead_ours_over_authlib": round(self.overhead_vs_authlib(), 3),
            "overhead_ours_over_authlib_fastest": round(self.overhead_vs_authlib(fastest=True), 3),
        }


def run(plan: guard.Plan, only: Sequence[str] = ()) -> Report:
    """Build the rows, measure them, and return the report."""
    with contextlib.ExitStack() as stack:
        rows = build_rows(stack, only)
        results = guard.measure(rows.cases, plan)
    base = next(r for r, c in zip(results, rows.cases, strict=True) if c.baseline)
    floor = next(r for r in results if r.name == FLOOR)
    return Report(results, base, floor, rows.ours, rows.missing)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure our guard beside its peers and print the table (or JSON)."""
    args, plan = guard.parse_arguments(__doc__.splitlines()[0], "rows", argv)
    if args.profile:
        with contextlib.ExitStack() as stack:
            guard.profile(build_rows(stack, args.only).cases, args.profile)
        return 0
    report = run(plan, args.only)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.table())
        print(
            f"\nour overhead / Authlib's overhead: {report.overhead_vs_authlib():.2f} "
            f"(fastest repetitions: {report.overhead_vs_authlib(fastest=True):.2f}; target <= 0.33)"
        )
        if any(r.name == DPOP for r in report.results):
            print(
                f"DPoP-bound / Bearer (our overhead, same store): "
                f"{report.overhead_us(DPOP) / report.overhead_us(report.ours):.1f}"
            )
    return 0


if __name__ == "__main__":
    # Run as a script, this directory is on sys.path and ``guard`` is bench/guard.py.
    sys.exit(main())
