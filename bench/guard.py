"""What the guard costs: the demo's ``/api/me`` bare and behind ``OAuth2Middleware``.

Run from the repository root::

    python bench/guard.py            # full run, a table
    python bench/guard.py --quick    # a few seconds, for a smoke test
    python bench/guard.py --json     # machine-readable results
    python bench/guard.py --only memory --profile   # cProfile one case's calls

Every case is a WSGI app and a prepared environ; the app is called directly
(no server, no sockets) with a trivial ``start_response`` and its body is
consumed, so the numbers are the Python cost of the request path and nothing
else. All cases run in one process, interleaved repetition by repetition so
that a noisy neighbour slows them all alike; each case reports the median of
its repetitions.

Adding a row is one small function returning a :class:`Case` (or a list of
them), listed in :data:`BUILDERS`; :func:`guarded_case` builds the usual
"middleware with these settings, a client, a valid token" case.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import itertools
import json
import os
import platform
import pstats
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webob import Request

from oauth_middleware.clients import build_client
from oauth_middleware.demo import DemoApp
from oauth_middleware.keys import write_private_key
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import AccessToken, digest
from oauth_middleware.settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: The protected endpoint every case calls.
PATH = "/api/me"
#: The client the guarded cases get their token from.
CLIENT_ID = "bench-service"
CLIENT_SECRET = "bench-service-secret-0123456789"
#: Settings shared by the guarded cases: those of examples/demo.ini, so the
#: guard also matches public paths and scope rules as it does in the demo.
DEMO_SETTINGS: Mapping[str, str] = {
    "issuer": "http://127.0.0.1:8080",
    "require_https": "false",
    "grants": "client_credentials",
    "scopes": "read write",
    "default_scope": "read",
    "access_token_ttl": "3600",
    "public_paths": "/ /health",
    "scope_rules": "GET,HEAD /api/* read\nPOST,PUT,PATCH,DELETE /api/* write",
    # Set, as a deployment would: without it every middleware built warns that it made a random one.
    "session_secret": "bench-session-secret-0123456789abcdef",
}


@dataclass
class Case:
    """One row of the table: an app and the environ(s) it is called with.

    :param name: the row's label (``--only`` matches substrings of it).
    :param app: the WSGI application to call.
    :param environs: prepared environs, used in turn (copied per call); one is
        the usual case, many distinct ones measure first-sight costs (e.g. a
        JWT verify cache), in which case give at least as many as there are
        calls, or the later calls see tokens again.
    :param baseline: the row other rows are compared with (one per run).
    :param close: called once when the run is over (close stores, ...).
    """

    name: str
    app: WSGIApplication
    environs: Sequence[dict[str, Any]]
    baseline: bool = False
    close: Callable[[], None] = lambda: None
    _next: Iterator[dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.environs:
            raise ValueError(f"{self.name}: no environ to call the app with")
        self._next = itertools.cycle(self.environs)

    def call(self, number: int) -> None:
        """Make ``number`` requests, consuming each body (the timed loop)."""
        app, environs = self.app, self._next
        for _ in range(number):
            body = app(next(environs).copy(), _start_response)
            try:
                for _chunk in body:
                    pass
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


@dataclass
class Result:
    """The timings of one case.

    :param name: the case's name.
    :param per_call_ns: nanoseconds per request, one value per repetition.
    :param number: requests per repetition.
    """

    name: str
    per_call_ns: list[float]
    number: int

    @property
    def median_us(self) -> float:
        """Median over repetitions, in microseconds per request."""
        return statistics.median(self.per_call_ns) / 1000

    @property
    def min_us(self) -> float:
        """Fastest repetition, in microseconds per request."""
        return min(self.per_call_ns) / 1000

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median: how noisy the run was."""
        if len(self.per_call_ns) < 4:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.per_call_ns, n=4)
        return (q3 - q1) / statistics.median(self.per_call_ns)


def _start_response(
    status: str, headers: list[tuple[str, str]], exc_info: object = None
) -> Callable[..., Any]:
    return _write


def _write(data: bytes) -> None:
    """The ``write`` callable of :func:`_start_response`: discard."""


def environ(
    path: str = PATH, *, authorization: str | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A minimal GET environ for ``path`` (what a WSGI server would pass).

    :param path: the ``PATH_INFO``.
    :param authorization: the ``Authorization`` header value, if any.
    :param extra: more environ keys (the guard's injections for the bare app).
    """
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        # A GET has no body: one empty stream can be shared by every copy.
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if authorization is not None:
        env["HTTP_AUTHORIZATION"] = authorization
    env.update(extra or {})
    return env


def issue_token(app: WSGIApplication, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
    """A client-credentials access token from ``app``'s own token endpoint."""
    request = Request.blank(
        "/oauth/token",
        method="POST",
        POST={"grant_type": "client_credentials", "scope": "read"},
        # A peer address, as every server gives (else the throttle warns that it counts without one).
        environ={"REMOTE_ADDR": "127.0.0.1"},
    )
    request.authorization = ("Basic", _basic(client_id, secret))
    response = request.get_response(app)
    if response.status_code != 200:
        raise RuntimeError(f"token request failed: {response.status} {response.text}")
    return str(response.json["access_token"])


class ProofSigner:
    """A client's ES256 key that signs DPoP proofs (RFC 9449) for the DPoP rows.

    Proofs are signed before timing: signing is the client's cost, not the server's.
    """

    def __init__(self) -> None:
        import jwt
        from cryptography.hazmat.primitives.asymmetric import ec

        self.key = ec.generate_private_key(ec.SECP256R1())
        self.header = {
            "typ": "dpop+jwt",
            "jwk": json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key())),
        }

    def proof(self, htm: str, htu: str, token: str | None = None) -> str:
        """A fresh proof for ``htm`` ``htu``; with ``token``, its ``ath``."""
        import base64
        import hashlib

        import jwt

        claims: dict[str, Any] = {
            "jti": os.urandom(12).hex(),
            "htm": htm,
            "htu": htu,
            "iat": int(time.time()),
        }
        if token is not None:
            digest = hashlib.sha256(token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return jwt.encode(claims, self.key, algorithm="ES256", headers=self.header)


def _basic(client_id: str, secret: str) -> str:
    import base64

    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def check(case: Case) -> None:
    """Call the case once and insist on a 200 whose JSON names the client.

    A benchmark of 401 responses would be fast and worthless.
    """
    for env in case.environs[:1]:
        request = Request(env.copy())
        response = request.get_response(case.app)
        if response.status_code != 200 or CLIENT_ID not in response.text:
            raise RuntimeError(
                f"{case.name}: expected 200 from {PATH}, got {response.status}: {response.text}"
            )


# -- the rows ----------------------------------------------------------------


def guarded_case(name: str, stack: contextlib.ExitStack, **settings: str) -> Case:
    """The demo app behind ``OAuth2Middleware(**settings)``, called with a valid token.

    Registers the bench client, issues it a token through the token endpoint
    and puts it in the ``Authorization`` header.

    :param name: the row's label.
    :param stack: unused here; builders that make temporary files or servers
        register their clean-up on it.
    :param settings: ini-style settings over :data:`DEMO_SETTINGS`.
    """
    middleware = OAuth2Middleware(DemoApp(), Settings.from_config({**DEMO_SETTINGS, **settings}))
    middleware.server.repository.save_client(
        build_client(
            CLIENT_ID,
            secret_hash=digest(CLIENT_SECRET),
            grant_types=["client_credentials"],
            scopes=["read", "write"],
        )
    )
    token = issue_token(middleware)
    return Case(
        name,
        middleware,
        [environ(authorization=f"Bearer {token}")],
        close=middleware.server.store.close,
    )


def bare(stack: contextlib.ExitStack) -> Case:
    """The demo app alone, with what the guard would have injected already in the environ."""
    token = AccessToken(
        token="x" * 43,
        client_id=CLIENT_ID,
        user_id=None,
        scopes=("read",),
        expires_at=int(time.time()) + 3600,
        token_id="0" * 64,
    )
    injected = {
        "oauth2.token": token,
        "oauth2.user": None,
        "oauth2.client_id": CLIENT_ID,
        "oauth2.scopes": token.scopes,
    }
    return Case("bare app (no middleware)", DemoApp(), [environ(extra=injected)], baseline=True)


def opaque_memory(stack: contextlib.ExitStack) -> Case:
    """Opaque token, ``memory://`` store."""
    return guarded_case("opaque, memory://", stack, store="memory://")


def opaque_sqlite(stack: contextlib.ExitStack) -> Case:
    """Opaque token, SQLite store in a temporary file."""
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-guard-"))
    return guarded_case("opaque, sqlite://", stack, store=f"sqlite:///{directory}/oauth.db")


def _jwt_key_settings(directory: str, alg: str) -> dict[str, str]:
    """Key settings for ``alg``: a fresh key pair on disk, or an HS256 secret."""
    if alg == "HS256":
        return {"jwt_secret": "bench-hs256-secret-0123456789abcdef"}
    path = os.path.join(directory, f"{alg}.pem")
    write_private_key(path, alg)
    return {"jwt_signing_key": path}


def jwt_tokens(stack: contextlib.ExitStack) -> list[Case]:
    """JWT access tokens, HS256 / RS256 / ES256: verified on every request, and from the cache.

    "first sight" turns the verified-token cache off (``jwt_cache_size = 0``),
    so every call pays the full header, signature and claims check, as the
    first request with a new token does; "cached" is every later request.
    The last row adds the per-request deny-list read of
    ``jwt_check_revocation`` (SQLite store).
    """
    directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-jwt-"))
    cases = []
    for alg in ("HS256", "RS256", "ES256"):
        settings = {
            "store": "memory://",
            "token_format": "jwt",
            "audience": "http://127.0.0.1:8080/api",
            "jwt_algorithm": alg,
            **_jwt_key_settings(directory, alg),
        }
        cases.append(guarded_case(f"jwt {alg}, first sight", stack, jwt_cache_size="0", **settings))
        cases.append(guarded_case(f"jwt {alg}, cached", stack, **settings))
    cases.append(
        guarded_case(
            "jwt ES256, cached + revocation check, sqlite://",
            stack,
            store=f"sqlite:///{directory}/oauth.db",
            token_format="jwt",
            audience="http://127.0.0.1:8080/api",
            jwt_algorithm="ES256",
            jwt_signing_key=os.path.join(directory, "ES256.pem"),
            jwt_check_revocation="true",
        )
    )
    return cases


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_server(
    stack: contextlib.ExitStack,
    binary: str,
    argv: Callable[[str, int], list[str]],
    probe: bytes,
    reply: bytes,
) -> int | None:
    """Start a throwaway server on a free loopback port, stopped when the run ends.

    :param binary: the executable, looked up on ``PATH``.
    :param argv: the command line, given the binary's path and the port.
    :param probe: bytes sent until the server answers with ``reply``.
    :returns: the port, or None (with a note on stderr) when ``binary`` is missing.
    """
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if path is None:
        print(f"bench: {binary} not found, its rows are left out", file=sys.stderr)
        return None
    port = free_port()
    process = subprocess.Popen(argv(path, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{binary} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(probe)
            if sock.recv(64).startswith(reply):
                return port
        time.sleep(0.05)
    raise RuntimeError(f"{binary} did not answer on port {port}")


def redis_url(stack: contextlib.ExitStack) -> str | None:
    """The URL of a throwaway ``redis-server`` without persistence, or None when it is not installed."""
    port = local_server(
        stack,
        "redis-server",
        lambda path, port: [
            path,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        b"PING\r\n",
        b"+PONG",
    )
    return None if port is None else f"redis://127.0.0.1:{port}/0"


def opaque_networked(stack: contextlib.ExitStack) -> list[Case]:
    """Opaque token on a local ``redis-server`` and ``memcached``, started by the bench.

    Both listen on loopback. A "miss" row turns the guard's token cache off
    (``guard_cache_size = 0``), so each request pays one real round trip (one
    ``GET``), as a request whose token is not cached does; a "hit" row is
    every request after the first with a warm cache (on by default on Redis,
    with ``guard_cache_staleness = 1`` on memcached). Clients of the memcached
    rows live in a ``memory://`` ``client_store``, as they would in a durable
    one (the guard never reads them).
    """
    cases = []
    url = redis_url(stack)
    if url is not None:
        cases.append(warm(guarded_case("opaque, redis://, cache hit", stack, store=url)))
        cases.append(
            guarded_case("opaque, redis://, cache miss (off)", stack, store=url, guard_cache_size="0")
        )
    root = ["-u", "root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    memcached_port = local_server(
        stack,
        "memcached",
        lambda path, port: [path, "-p", str(port), "-l", "127.0.0.1", "-U", "0", *root],
        b"version\r\n",
        b"VERSION",
    )
    if memcached_port is not None:
        memcached = {"store": f"memcache://127.0.0.1:{memcached_port}", "client_store": "memory://"}
        cases.append(
            warm(
                guarded_case("opaque, memcache://, cache hit", stack, guard_cache_staleness="1", **memcached)
            )
        )
        cases.append(guarded_case("opaque, memcache://, cache miss (off)", stack, **memcached))
    return cases


def warm(case: Case) -> Case:
    """``case`` once its guard's token cache serves (Redis: subscribed) and holds its token."""
    middleware = case.app
    assert isinstance(middleware, OAuth2Middleware)
    cache = middleware.server.repository.cache
    deadline = time.monotonic() + 10
    while cache is not None and not (cache.serving and len(cache)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{case.name}: the token cache did not start")
        case.call(1)
        time.sleep(0.01)
    return case


#: Where a database row finds its server: this variable's URL, else a
#: throwaway server started as the tests start theirs (``tests/servers.py``).
DATABASES = {
    "postgresql": ("BENCH_POSTGRESQL_URL", "PostgresServer"),
    "mysql": ("BENCH_MYSQL_URL", "MariaDBServer"),
}


def database_urls(stack: contextlib.ExitStack) -> dict[str, str]:
    """``postgresql`` and ``mysql`` store URLs (a row is left out, with a note, when neither way works).

    ``BENCH_POSTGRESQL_URL`` / ``BENCH_MYSQL_URL`` name a server of your own
    (the bench makes tables ``bench_<random>_*`` in it, and leaves them);
    without them PostgreSQL and MariaDB are started on free loopback ports
    with durability off (``fsync``), like the tests' servers, and stopped at the end.
    """
    urls = {}
    for name, (variable, server_class) in DATABASES.items():
        url = os.environ.get(variable) or _throwaway_database(stack, server_class)
        if url is not None:
            urls[name] = url
    return urls


def _throwaway_database(stack: contextlib.ExitStack, server_class: str) -> str | None:
    tests = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
    sys.path.insert(0, tests)
    try:
        import servers  # the tests' helpers: needs pytest, which reports a missing binary

        server = getattr(servers, server_class)(Path(stack.enter_context(tempfile.TemporaryDirectory())))
        server.start()
    except BaseException as exc:  # pytest.fail raises a BaseException (a missing binary); or no pytest
        if isinstance(exc, KeyboardInterrupt):
            raise
        print(
            f"bench: no {server_class} ({exc}); set its BENCH_*_URL; its rows are left out", file=sys.stderr
        )
        return None
    finally:
        sys.path.remove(tests)
    stack.callback(server.stop)
    return str(server.url)


def opaque_databases(stack: contextlib.ExitStack) -> list[Case]:
    """Opaque token in PostgreSQL and in MySQL/MariaDB (see :func:`database_urls`): one query per request."""
    return [
        guarded_case(
            f"opaque, {name}://", stack, store=url, store_table_prefix=f"bench_{os.urandom(6).hex()}_"
        )
        for name, url in database_urls(stack).items()
    ]


#: The row builders, in table order. Each takes the run's ExitStack and
#: returns one Case or several.
BUILDERS: list[Callable[[contextlib.ExitStack], Case | Iterable[Case]]] = [
    bare,
    opaque_memory,
    opaque_sqlite,
    opaque_networked,
    opaque_databases,
    jwt_tokens,
]


def build_cases(stack: contextlib.ExitStack, only: Sequence[str] = ()) -> list[Case]:
    """Every case of :data:`BUILDERS`, checked; with ``only``, those whose name matches.

    The baseline is always kept, so ratios stay meaningful.
    """
    cases: list[Case] = []
    for builder in BUILDERS:
        built = builder(stack)
        for case in [built] if isinstance(built, Case) else built:
            stack.callback(case.close)
            if case.baseline or not only or any(word in case.name for word in only):
                check(case)
                cases.append(case)
    return cases


# -- measuring ---------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How long to measure.

    :param repeats: repetitions per case (the median is reported).
    :param target_s: the wall time one repetition aims for.
    :param warmup_s: the time each case runs untimed first.
    """

    repeats: int = 21
    target_s: float = 0.05
    warmup_s: float = 0.2


QUICK = Plan(repeats=5, target_s=0.01, warmup_s=0.02)


def calibrate(case: Case, plan: Plan) -> int:
    """Warm the case up and return how many calls make one repetition."""
    number, elapsed = 1, 0
    deadline = time.perf_counter_ns() + int(plan.warmup_s * 1e9)
    while True:
        start = time.perf_counter_ns()
        case.call(number)
        elapsed = time.perf_counter_ns() - start
        if time.perf_counter_ns() >= deadline and elapsed > 0:
            break
        number = min(number * 2, 1 << 20)
    per_call = elapsed / number
    return max(1, int(plan.target_s * 1e9 / per_call))


def measure(cases: Sequence[Case], plan: Plan) -> list[Result]:
    """Time every case, repetitions interleaved across cases.

    The garbage collector is off while timing (as in :mod:`timeit`), so a
    collection triggered by one case does not land on another.
    """
    numbers = [calibrate(case, plan) for case in cases]
    results = [Result(case.name, [], number) for case, number in zip(cases, numbers, strict=True)]
    gc_was_enabled = gc.isenabled()
    try:
        for _ in range(plan.repeats):
            for case, result in zip(cases, results, strict=True):
                gc.collect()
                gc.disable()
                start = time.perf_counter_ns()
                case.call(result.number)
                elapsed = time.perf_counter_ns() - start
                if gc_was_enabled:
                    gc.enable()
                result.per_call_ns.append(elapsed / result.number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return results


def profile(cases: Sequence[Case], calls: int, limit: int = 30) -> None:
    """Run each non-baseline case ``calls`` times under cProfile and print the top functions."""
    for case in cases:
        if case.baseline:
            continue
        case.call(1000)
        profiler = cProfile.Profile()
        profiler.runcall(case.call, calls)
        print(f"\n== {case.name}: {calls} calls, by own time ==")
        stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
        stats.print_stats(limit)


# -- reporting ---------------------------------------------------------------


def ratio(result: Result, base: Result) -> float:
    """How many times slower than the baseline (medians)."""
    return result.median_us / base.median_us


def table(results: Sequence[Result], base: Result) -> str:
    """The results as a plain-text table."""
    width = max(len("case"), *(len(r.name) for r in results))
    lines = [
        f"{'case':<{width}}  {'µs/req':>8}  {'min':>8}  {'IQR':>5}  {'x bare':>7}",
        f"{'-' * width}  {'-' * 8}  {'-' * 8}  {'-' * 5}  {'-' * 7}",
    ]
    for r in results:
        lines.append(
            f"{r.name:<{width}}  {r.median_us:>8.2f}  {r.min_us:>8.2f}  {r.spread:>5.0%}  {ratio(r, base):>7.2f}"
        )
    return "\n".join(lines)


def as_json(results: Sequence[Result], base: Result, plan: Plan) -> str:
    """The results and the run's conditions as JSON."""
    return json.dumps(
        {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "repeats": plan.repeats,
            "baseline": base.name,
            "results": [
                {
                    "case": r.name,
                    "median_us": round(r.median_us, 3),
                    "min_us": round(r.min_us, 3),
                    "iqr_ratio": round(r.spread, 4),
                    "ratio_to_baseline": round(ratio(r, base), 3),
                    "calls_per_repeat": r.number,
                    "per_call_ns": [round(v, 1) for v in r.per_call_ns],
                }
                for r in results
            ],
        },
        indent=2,
    )


def parse_arguments(
    description: str, what: str, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, Plan]:
    """The options this bench and ``bench/peers.py`` share, and the timing plan they ask for.

    :param what: what the rows are called in the help ("cases", "rows").
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, help=f"repetitions per {what[:-1]} (default 21, quick 5)")
    parser.add_argument(
        "--only", action="append", default=[], metavar="WORD", help=f"only {what} whose name contains WORD"
    )
    parser.add_argument(
        "--profile", type=int, nargs="?", const=20_000, metavar="CALLS", help=f"cProfile the {what} instead"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    if args.repeats:
        plan = Plan(args.repeats, plan.target_s, plan.warmup_s)
    return args, plan


def main(argv: Sequence[str] | None = None) -> int:
    """Build the cases, measure them, print a table (or JSON)."""
    args, plan = parse_arguments(__doc__.splitlines()[0], "cases", argv)
    with contextlib.ExitStack() as stack:
        cases = build_cases(stack, args.only)
        if args.profile:
            profile(cases, args.profile)
            return 0
        results = measure(cases, plan)
    base = next(r for r, c in zip(results, cases, strict=True) if c.baseline)
    print(as_json(results, base, plan) if args.json else table(results, base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
