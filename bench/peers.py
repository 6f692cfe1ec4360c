"""Every figure the performance targets name, in one run: the guard, issuance, real servers.

Run from the repository root (the peers are bench-only dependencies:
``pip install -e '.[bench]'`` or ``tox -e bench``)::

    python bench/peers.py            # everything, a few minutes; ends with the targets table
    python bench/peers.py --quick    # a smoke test: short runs, fewer served rounds
    python bench/peers.py --json     # the same, machine-readable
    python bench/peers.py --only Authlib --profile   # cProfile some in-process rows

Three parts, then the targets with the ratio this run measured and PASS or MISS:

1. **The guard in-process.** Every row wraps the same app (the demo's
   ``/api/me``) and is measured as :mod:`guard` (this directory's
   ``guard.py``) measures: in one process, repetitions interleaved across
   rows, the median reported; a row's overhead is the median of its
   repetitions' differences from the bare app's. Our rows are those of :data:`guard.BUILDERS`
   (opaque tokens on each store, JWTs). The others are

   - the **floor**: a hand-written middleware that splits the header, looks
     the token up in a dict, checks expiry and scope and injects it; no guard
     can do less;
   - the **JWT floor**: the same with ``jwt.decode`` (PyJWT, ES256, audience
     and issuer checked) behind ``functools.lru_cache``, called with our ES256
     token: the least a cached JWT guard does;
   - **Authlib**'s ``ResourceProtector`` with a ``BearerTokenValidator`` whose
     ``authenticate_token`` is a dict look-up, as its Flask and Django
     integrations use it (``validate_request(scopes, JsonRequest(...))``);
   - **oauthlib**'s ``ResourceEndpoint`` with ``BearerToken`` and a
     ``RequestValidator`` whose ``validate_bearer_token`` does the same
     look-up, called through ``verify_request(uri, method, body, headers, scopes)``.

   Fairness: every row checks that the token is known, unexpired and carries
   ``read`` (our rows by the demo's scope rule ``GET /api/* read``), and puts
   the same four keys in the environ for the app. The peer adapters hand
   their library only what it reads (the method, a URI made by string
   formatting and the ``Authorization`` header), the least a WSGI integration
   can do. Our rows do more than the peers: they hash the token before the
   look-up (the store never holds it in clear), match public paths and scope
   rules, and add ``Vary: Authorization`` to the response.
2. **Client-credentials issuance**, the cases of :mod:`issuance`: ours and
   oauthlib's, each on ``memory://`` (dicts for oauthlib) and on SQLite,
   beside ``private_key_jwt`` and ``client_secret_jwt``.
3. **Served**, the servers of :mod:`wrk`: gunicorn (two sync workers) and
   two keep-alive servers (bjoern, two processes; waitress), each serving
   the bare app, opaque tokens on SQLite and cached JWTs to ``wrk``.

Ratios, not absolute times, are what carry from one machine to another.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import guard
import issuance
import jwt
import wrk
from cryptography.hazmat.primitives.serialization import load_pem_private_key
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
JWT_FLOOR = "floor: PyJWT ES256 + lru_cache"
#: Our row compared with the JWT floor (guard.jwt_tokens).
JWT_OURS = "jwt ES256, cached"
#: Our rows compared with Authlib (guard.opaque_memory, guard.opaque_sqlite).
OPAQUE_MEMORY, OPAQUE_SQLITE = "opaque, memory://", "opaque, sqlite://"
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


class JWTFloorGuard:
    """The least a guard of cached JWTs does: PyJWT's ``jwt.decode`` behind ``functools.lru_cache``.

    The cache maps a token string to its record (or None), so expiry is
    checked on every request, as in :class:`FloorGuard`.

    :param app: the protected app.
    :param key: the public key of the signer.
    :param audience: the ``aud`` required.
    :param issuer: the ``iss`` required.
    :param scope: the scope every request needs.
    """

    def __init__(self, app: WSGIApplication, key: Any, audience: str, issuer: str, scope: str) -> None:
        self.app = app
        self.scope = scope

        @functools.lru_cache(maxsize=1024)
        def verify(token: str) -> PeerToken | None:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=["ES256"],
                    audience=audience,
                    issuer=issuer,
                    options={"require": ["exp", "iat", "client_id"]},
                )
            except jwt.InvalidTokenError:
                return None
            return PeerToken(claims["client_id"], tuple(claims.get("scope", "").split()), claims["exp"])

        self.verify: Callable[[str], PeerToken | None] = verify

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        scheme, _, value = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        token = self.verify(value) if scheme.lower() == "bearer" else None
        if token is None or token.expires_at <= time.time() or self.scope not in token.scopes:
            return _unauthorized(start_response, 'Bearer error="invalid_token"')
        inject(environ, token)
        return self.app(environ, start_response)


def jwt_floor_case(ours: guard.Case) -> guard.Case:
    """The JWT floor called with the token and the key of our ``jwt ES256`` row."""
    settings = ours.app.settings  # type: ignore[attr-defined]
    with open(settings.jwt_signing_key, "rb") as pem:
        key = load_pem_private_key(pem.read(), password=None).public_key()
    app = JWTFloorGuard(DemoApp(), key, settings.audience[0], settings.issuer, SCOPE)
    return guard.Case(JWT_FLOOR, app, [dict(ours.environs[0])])


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


# -- the rows -----------------------------------------------------------------


def build_rows(stack: contextlib.ExitStack, only: Sequence[str] = ()) -> list[guard.Case]:
    """Our rows from :data:`guard.BUILDERS`, then the peers with the same tokens.

    :param only: keep rows whose name contains one of these words (the
        baseline, the rows the targets compare and the DPoP row are always kept).
    """
    cases: list[guard.Case] = []
    for builder in guard.BUILDERS:
        built = builder(stack)
        for case in [built] if isinstance(built, guard.Case) else built:
            stack.callback(case.close)
            cases.append(case)
    by_name = {case.name: case for case in cases}
    missing = {OPAQUE_MEMORY, OPAQUE_SQLITE, JWT_OURS} - by_name.keys()
    if missing:
        raise RuntimeError(f"bench/guard.py no longer has the rows {sorted(missing)}")
    ours = by_name[OPAQUE_MEMORY]
    token = ours.environs[0]["HTTP_AUTHORIZATION"].partition(" ")[2]
    tokens = {token: PeerToken(guard.CLIENT_ID, (SCOPE,), int(time.time()) + 3600)}
    same_environ = [dict(ours.environs[0])]
    for name, app in (
        (FLOOR, FloorGuard(DemoApp(), tokens, SCOPE)),
        (AUTHLIB, authlib_guard(DemoApp(), tokens)),
        (OAUTHLIB, oauthlib_guard(DemoApp(), tokens)),
    ):
        cases.append(guard.Case(name, app, same_environ))
    cases.append(jwt_floor_case(by_name[JWT_OURS]))
    cases.append(dpop_case(stack))
    keep = {OPAQUE_MEMORY, OPAQUE_SQLITE, JWT_OURS, FLOOR, JWT_FLOOR, AUTHLIB, DPOP}
    cases = [c for c in cases if c.baseline or c.name in keep or not only or any(w in c.name for w in only)]
    for case in cases:
        guard.check(case)
        if not case.baseline:
            check_refuses(case)
    return cases


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
    """

    results: list[guard.Result]
    base: guard.Result
    floor: guard.Result

    def result(self, name: str) -> guard.Result:
        """The result of the row called ``name``."""
        return next(r for r in self.results if r.name == name)

    def overhead_us(self, name: str, *, fastest: bool = False) -> float:
        """What the row adds to the bare app, in µs per request.

        The median of each repetition's difference: a repetition of the row
        and one of the bare app run back to back, so a neighbour's load swing
        between repetitions cancels out (a difference of two medians does not,
        and a floor's sub-µs overhead drowns in it). ``fastest``: the fastest
        repetition's difference instead.
        """
        row = self.result(name)
        if fastest:
            return row.min_us - self.base.min_us
        pairs = zip(row.per_call_ns, self.base.per_call_ns, strict=True)
        return statistics.median(mine - bare for mine, bare in pairs) / 1000

    def overhead_ratio(self, name: str, other: str, *, fastest: bool = False) -> float:
        """The overhead of row ``name`` over that of row ``other``.

        :param fastest: compare the fastest repetitions instead of the
            medians: on a busy machine the least disturbed ones.
        """
        return self.overhead_us(name, fastest=fastest) / self.overhead_us(other, fastest=fastest)

    def table(self) -> str:
        """The rows as plain text: µs per request, spread, and the two ratios."""
        width = max(len("case"), *(len(r.name) for r in self.results))
        lines = [
            f"{'case':<{width}}  {'µs/req':>8}  {'IQR':>5}  {'+µs':>7}  {'x bare':>7}  {'x floor':>7}",
            f"{'-' * width}  {'-' * 8}  {'-' * 5}  {'-' * 7}  {'-' * 7}  {'-' * 7}",
        ]
        for r in self.results:
            lines.append(
                f"{r.name:<{width}}  {r.median_us:>8.2f}  {r.spread:>5.0%}  "
                f"{self.overhead_us(r.name):>7.2f}  {r.median_us / self.base.median_us:>7.2f}  "
                f"{r.median_us / self.floor.median_us:>7.2f}"
            )
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
                    "overhead_us": round(self.overhead_us(r.name), 3),
                    "ratio_to_bare": round(r.median_us / self.base.median_us, 3),
                    "ratio_to_floor": round(r.median_us / self.floor.median_us, 3),
                    "per_call_ns": [round(v, 1) for v in r.per_call_ns],
                }
                for r in self.results
            ],
        }


def run(plan: guard.Plan, only: Sequence[str] = ()) -> Report:
    """Build the in-process rows, measure them, and return the report."""
    with contextlib.ExitStack() as stack:
        cases = build_rows(stack, only)
        results = guard.measure(cases, plan)
    base = next(r for r, c in zip(results, cases, strict=True) if c.baseline)
    floor = next(r for r in results if r.name == FLOOR)
    return Report(results, base, floor)


# -- the targets --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    """One of the targets and what this run measured.

    :param name: what is compared.
    :param measured: the ratio measured; it decides PASS or MISS.
    :param goal: the bound.
    :param at_least: True for ``measured >= goal``, False for ``<=``.
    :param check: the same ratio measured another way, less disturbed by
        a busy machine (fastest repetitions; server CPU per request).
    :param check_how: how ``check`` was measured.
    """

    name: str
    measured: float
    goal: float
    at_least: bool
    check: float
    check_how: str

    @property
    def measurable(self) -> bool:
        """False when the ratio is not positive: a floor measured at or below the bare app
        (noise around a sub-µs overhead) leaves nothing to compare with."""
        return self.measured > 0

    @property
    def met(self) -> bool:
        """Whether the measured ratio is within the goal (never when it is not measurable)."""
        if not self.measurable:
            return False
        return self.measured >= self.goal if self.at_least else self.measured <= self.goal

    def row(self, width: int) -> str:
        """The target as one line of the table."""
        bound = f"{'>=' if self.at_least else '<='} {self.goal:.2f}"
        result = ("PASS" if self.met else "MISS") if self.measurable else "n/a"
        return f"{self.name:<{width}}  {self.measured:>8.2f}  {bound:>8}  {result:<6}  {self.check:.2f} ({self.check_how})"


def in_process_targets(report: Report) -> list[Target]:
    """Guard overhead: opaque on memory and SQLite against Authlib's, a cached JWT against the JWT floor."""
    found = []
    for label, name, other, goal in (
        ("guard overhead, opaque memory:// / Authlib", OPAQUE_MEMORY, AUTHLIB, 1 / 3),
        ("guard overhead, opaque sqlite:// / Authlib", OPAQUE_SQLITE, AUTHLIB, 1 / 2),
        ("guard overhead, JWT ES256 cached / PyJWT+LRU floor", JWT_OURS, JWT_FLOOR, 2.0),
    ):
        found.append(
            Target(
                label,
                report.overhead_ratio(name, other),
                goal,
                at_least=False,
                check=report.overhead_ratio(name, other, fastest=True),
                check_how="fastest repetitions",
            )
        )
    return found


def issuance_targets(report: issuance.Report) -> list[Target]:
    """Client-credentials tokens/s: ours over oauthlib's, on memory and on SQLite."""
    return [
        Target(
            label,
            report.ratio(ours, peer),
            goal,
            at_least=True,
            check=report.ratio(ours, peer, fastest=True),
            check_how="fastest repetitions",
        )
        for label, ours, peer, goal in (
            (
                "client_credentials tokens/s, memory:// / oauthlib (dicts)",
                issuance.OURS,
                issuance.OAUTHLIB,
                3.0,
            ),
            (
                "client_credentials tokens/s, sqlite:// / oauthlib (SQLite)",
                issuance.OURS_SQLITE,
                issuance.OAUTHLIB_SQLITE,
                1.5,
            ),
        )
    ]


def served_targets(report: wrk.Report) -> list[Target]:
    """Requests per second over the bare app's on the same server, for each guarded app."""
    found = []
    for server in report.servers:
        if server.app == wrk.BARE:
            continue
        found.append(
            Target(
                f"served req/s, {server.name} / bare",
                report.ratio(server.name),
                wrk.GOALS[server.server],
                at_least=True,
                check=report.cpu_ratio(server.name),
                check_how="server CPU per request",
            )
        )
    return found


def machine() -> dict[str, Any]:
    """Where and when the run happened: date, CPUs, CPU model, Python."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.date.today().isoformat(),
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def parse_arguments(argv: Sequence[str] | None) -> tuple[argparse.Namespace, guard.Plan]:
    """This bench's options and the in-process timing plan they ask for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--repeats", type=int, help="in-process repetitions per row (default 21, quick 5)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="WORD",
        help="only in-process rows whose name contains WORD",
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=20_000,
        metavar="CALLS",
        help="cProfile the in-process rows instead",
    )
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 5, quick 1)")
    parser.add_argument("--rounds", type=int, help="wrk runs per server, interleaved (default 3, quick 1)")
    parser.add_argument(
        "--servers",
        default=",".join(wrk.SERVERS),
        help=f"the servers to serve with, comma-separated (default {','.join(wrk.SERVERS)}; none: skip)",
    )
    args = parser.parse_args(argv)
    plan = guard.QUICK if args.quick else guard.Plan()
    if args.repeats:
        plan = guard.Plan(args.repeats, plan.target_s, plan.warmup_s)
    return args, plan


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the three parts and print their tables and the targets (or JSON)."""
    args, plan = parse_arguments(argv)
    if args.profile:
        with contextlib.ExitStack() as stack:
            guard.profile(build_rows(stack, args.only), args.profile)
        return 0
    where = machine()
    print(f"{where['date']}, {where['cpus']} CPUs ({where['cpu']}), {where['python']}", file=sys.stderr)
    print("in-process: the guard beside its peers ...", file=sys.stderr)
    in_process = run(plan, args.only)
    print("client-credentials issuance ...", file=sys.stderr)
    issued = issuance.run(plan)
    servers = [name for name in args.servers.split(",") if name and name != "none"]
    print(f"served: {', '.join(servers) or 'none'} + wrk ...", file=sys.stderr)
    served = wrk.run(
        servers,
        args.duration or (1 if args.quick else 5),
        args.rounds or (1 if args.quick else 3),
        warm_up=not args.quick,
    )
    found = [*in_process_targets(in_process), *issuance_targets(issued), *served_targets(served)]
    if args.json:
        document = {
            "machine": where,
            "in_process": in_process.as_dict(),
            "issuance": issued.as_dict(),
            "served": served.as_dict(),
            "targets": [{**dataclasses.asdict(t), "met": t.met} for t in found],
        }
        print(json.dumps(document, indent=2))
        return 0
    print(f"{where['date']}, {where['cpus']} CPUs ({where['cpu']}), {where['python']}")
    print(f"\n## in-process guard, µs per request (median of {plan.repeats} interleaved repetitions)\n")
    print(in_process.table())
    print("\n## client-credentials issuance, in-process\n")
    print(issued.table())
    print(f"\n## served, 127.0.0.1, {served.command}\n")
    print(served.table())
    width = max(len(t.name) for t in found)
    print("\n## targets\n")
    print(f"{'target':<{width}}  {'measured':>8}  {'goal':>8}  result  cross-check")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 8}  ------  {'-' * 11}")
    for target in found:
        print(target.row(width))
    return 0


if __name__ == "__main__":
    # Run as a script, this directory is on sys.path: ``guard`` is bench/guard.py.
    sys.exit(main())
