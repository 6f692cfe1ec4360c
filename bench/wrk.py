"""Requests per second through real servers and ``wrk``: gunicorn, bjoern and waitress.

Run from the repository root::

    python bench/wrk.py                  # each server: wrk -t2 -c16 -d5s, three rounds
    python bench/wrk.py --quick          # -d1s, one round, no warm-up
    python bench/wrk.py --servers gunicorn --rounds 5

Each server kind of :data:`SERVERS` serves three apps on free loopback ports
(:mod:`wrk_app`), the demo's ``/api/me``: the bare app, and the app behind
``OAuth2Middleware`` with an opaque token on SQLite (a file every worker
opens; ``memory://`` would give each worker its own store) and with an HS256
JWT, which each worker verifies once and then finds in its cache. The
servers are gunicorn with two sync workers (a connection per request),
bjoern in two processes sharing the port (``SO_REUSEPORT``; keep-alive) and
waitress (one process, four threads; keep-alive). The tokens are issued
before the servers start, and every server gets the same request with them.
Rounds run the servers in turn (each round starting with the next one), and
the ratio to the bare app on the same server kind is the median of the
rounds' ratios, so a noisy neighbour's swings between rounds cancel out.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import guard

from oauth_middleware.clients import build_client
from oauth_middleware.demo import DemoApp
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import digest
from oauth_middleware.settings import Settings

HERE = Path(__file__).resolve().parent
#: The HS256 key of the JWT server (32 characters or more).
JWT_SECRET = "bench-wrk-hs256-secret-0123456789abcdef"
BARE = "bare app"
SQLITE = "opaque, sqlite://"
JWT = "jwt HS256, cached"
#: The server kinds, and the least ratio to the bare app each guarded app should reach on them:
#: gunicorn's sync workers pay a connection per request, which the guard's cost is small beside.
GOALS = {"gunicorn": 0.95, "bjoern": 0.80, "waitress": 0.80}
SERVERS = tuple(GOALS)


class Unavailable(Exception):
    """A server cannot be run on this machine; the message says why."""


@dataclass
class Server:
    """One server process (and its workers) serving one app.

    :param server: the server kind, one of :data:`SERVERS`.
    :param app: the app's label: :data:`BARE`, :data:`SQLITE` or :data:`JWT`.
    :param kind: ``bare`` or ``guarded`` (:func:`wrk_app.make_app`).
    :param settings: the guarded app's settings over the demo's.
    :param token: the bearer token every request carries.
    """

    server: str
    app: str
    kind: str
    settings: Mapping[str, str]
    token: str
    port: int = 0
    pid: int = 0
    #: Requests per second, one per round.
    rates: list[float] = field(default_factory=list)
    #: CPU time the server's processes spent per request, in µs, one per round.
    cpu_us: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The row's label: the server kind and the app."""
        return f"{self.server}: {self.app}"

    @property
    def url(self) -> str:
        """The protected endpoint on this server."""
        return f"http://127.0.0.1:{self.port}{guard.PATH}"


def issued_token(settings: Mapping[str, str]) -> str:
    """A client-credentials token from a middleware with ``settings``, the bench client registered.

    For SQLite the client and the token land in the file the workers open;
    for JWT the token is signed with the key the workers verify with.
    """
    middleware = OAuth2Middleware(DemoApp(), Settings.from_config({**guard.DEMO_SETTINGS, **settings}))
    try:
        middleware.server.repository.save_client(
            build_client(
                guard.CLIENT_ID,
                secret_hash=digest(guard.CLIENT_SECRET),
                grant_types=["client_credentials"],
                scopes=["read", "write"],
            )
        )
        return guard.issue_token(middleware)
    finally:
        middleware.server.store.close()


def servers(directory: str, kinds: Sequence[str]) -> list[Server]:
    """Three apps on each server kind of ``kinds``, with their settings and tokens (issued now)."""
    sqlite = {"store": f"sqlite:///{directory}/oauth.db"}
    jwt = {
        "store": "memory://",
        "token_format": "jwt",
        "audience": "http://127.0.0.1:8080/api",
        "jwt_algorithm": "HS256",
        "jwt_secret": JWT_SECRET,
    }
    sqlite_token, jwt_token = issued_token(sqlite), issued_token(jwt)
    return [
        server
        for kind in kinds
        for server in (
            Server(kind, BARE, "bare", {}, sqlite_token),
            Server(kind, SQLITE, "guarded", sqlite, sqlite_token),
            Server(kind, JWT, "guarded", jwt, jwt_token),
        )
    ]


def command(server: Server) -> list[str]:
    """The command line that serves ``server``'s app on its port.

    :raises Unavailable: the server kind is not installed.
    """
    if importlib.util.find_spec(server.server) is None:
        hint = " (apt-get install libev-dev first)" if server.server == "bjoern" else ""
        raise Unavailable(f"{server.server} is not installed: pip install {server.server}{hint}")
    if server.server == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--chdir",
            str(HERE),
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{server.port}",
            "--log-level",
            "warning",
            f"wrk_app:make_app({server.kind!r})",
        ]
    return [sys.executable, str(HERE / "wrk_app.py"), server.server, server.kind, str(server.port)]


def start(server: Server, stack: contextlib.ExitStack, log: Path) -> subprocess.Popen[bytes]:
    """Start ``server`` on a free port (:func:`wait_ready` waits for it).

    :raises Unavailable: the server kind is not installed.
    """
    server.port = guard.free_port()
    env = {**os.environ, "BENCH_SETTINGS": json.dumps(server.settings)}
    argv = command(server)
    handle = stack.enter_context(open(log, "ab"))  # noqa: SIM115 - closed by the stack
    process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT)
    server.pid = process.pid
    stack.callback(_stop, process)
    return process


def wait_ready(server: Server, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``server`` answers 200.

    A guarded server must also answer 401 to an unknown token: a guard that
    lets everything through would make a fine-looking, worthless row.
    """
    deadline = time.monotonic() + 30
    while status(server.url, server.token) != 200:
        if process.poll() is not None:
            raise RuntimeError(f"{server.name}: the server exited ({process.returncode}); see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: no 200 from {server.url} within 30 s; see {log}")
        time.sleep(0.1)
    if server.kind == "guarded" and status(server.url, "A" * 43) != 401:
        raise RuntimeError(f"{server.name}: an unknown token was not refused with 401")


def status(url: str, token: str) -> int | None:
    """The status of a GET of ``url`` with the bearer ``token``; None when nothing answers."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:  # not listening yet, refused, or still loading its app (a timeout)
        return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_COUNT = re.compile(r"(\d+) requests in ")
_BAD = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` and its children (gunicorn's workers), from /proc."""
    total = 0.0
    for process in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            with open(f"/proc/{process}/stat", encoding="ascii") as stat:
                # Fields after the parenthesised command: utime and stime are the 12th and 13th.
                fields = stat.read().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def wrk(binary: str, server: Server, duration: float, threads: int, connections: int) -> tuple[float, float]:
    """One ``wrk`` run: requests per second, and the server's CPU µs per request.

    Any non-2xx response or socket error fails the run: a benchmark of
    errors would be fast and worthless.
    """
    argv = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        "-H",
        f"Authorization: Bearer {server.token}",
        server.url,
    ]
    cpu_before = cpu_seconds(server.pid)
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(server.pid) - cpu_before
    bad = _BAD.search(output)
    if bad:
        raise RuntimeError(f"{server.name}: {bad.group(0)}\n{output}")
    rate, count = _RATE.search(output), _COUNT.search(output)
    if rate is None or count is None:
        raise RuntimeError(f"{server.name}: no request count in wrk's output:\n{output}")
    return float(rate.group(1)), cpu / int(count.group(1)) * 1e6


@dataclass
class Report:
    """Requests per second and server CPU per request of each server.

    :param servers: the servers with their measurements, each kind's bare app first.
    :param command: the wrk command line (without the URL).
    :param missing: server kind -> why it could not be run.
    """

    servers: list[Server]
    command: str
    missing: dict[str, str] = field(default_factory=dict)

    def server(self, name: str) -> Server:
        """The server called ``name``."""
        return next(s for s in self.servers if s.name == name)

    def bare(self, name: str) -> Server:
        """The bare app on the same server kind as the server called ``name``."""
        kind = self.server(name).server
        return next(s for s in self.servers if s.server == kind and s.app == BARE)

    def rate(self, name: str) -> float:
        """The median requests per second of the server called ``name``."""
        return statistics.median(self.server(name).rates)

    def ratio(self, name: str) -> float:
        """Requests per second relative to the bare app on the same server kind.

        The median of each round's ratio: a round's runs are close in time,
        so a neighbour's load swing between rounds cancels out.
        """
        pairs = zip(self.server(name).rates, self.bare(name).rates, strict=True)
        return statistics.median(rate / bare for rate, bare in pairs)

    def cpu_ratio(self, name: str) -> float:
        """The bare app's server CPU per request over this server's (medians), on the same server kind.

        What the throughput ratio would be if the server's CPU were the only
        limit; much less disturbed by a busy machine than requests per second.
        """
        return statistics.median(self.bare(name).cpu_us) / statistics.median(self.server(name).cpu_us)

    def table(self) -> str:
        """The servers as plain text: req/s and its ratio, CPU per request and its ratio, each round."""
        width = max([len("case"), *(len(s.name) for s in self.servers), *(len(k) for k in self.missing)])
        lines = [
            f"{'case':<{width}}  {'req/s':>7}  {'x bare':>6}  {'CPU µs/req':>10}  {'x bare':>6}  rounds (req/s)",
            f"{'-' * width}  {'-' * 7}  {'-' * 6}  {'-' * 10}  {'-' * 6}  {'-' * 14}",
        ]
        for s in self.servers:
            rounds = " ".join(f"{r:.0f}" for r in s.rates)
            lines.append(
                f"{s.name:<{width}}  {self.rate(s.name):>7.0f}  {self.ratio(s.name):>6.2f}  "
                f"{statistics.median(s.cpu_us):>10.0f}  {self.cpu_ratio(s.name):>6.2f}  {rounds}"
            )
        for kind, reason in self.missing.items():
            lines.append(f"{kind:<{width}}  missing: {reason}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready results."""
        return {
            "command": self.command,
            "results": [
                {
                    "case": s.name,
                    "requests_per_second": round(self.rate(s.name), 1),
                    "ratio_to_bare": round(self.ratio(s.name), 3),
                    "server_cpu_us_per_request": round(statistics.median(s.cpu_us), 1),
                    "cpu_ratio_to_bare": round(self.cpu_ratio(s.name), 3),
                    "rounds": s.rates,
                    "rounds_cpu_us": [round(c, 1) for c in s.cpu_us],
                }
                for s in self.servers
            ],
            "missing": self.missing,
        }


def find_wrk() -> str:
    """The ``wrk`` binary.

    :raises Unavailable: not installed.
    """
    binary = shutil.which("wrk") or ("/usr/bin/wrk" if os.path.exists("/usr/bin/wrk") else None)
    if binary is None:
        raise Unavailable("no wrk binary (apt-get install wrk)")
    return binary


def run(
    kinds: Sequence[str] = SERVERS,
    duration: float = 5,
    rounds: int = 3,
    threads: int = 2,
    connections: int = 16,
    warm_up: bool = True,
) -> Report:
    """Start the servers, run ``wrk`` against each in turn ``rounds`` times, stop them.

    A server kind that cannot run here (not installed, no ``wrk``) is left
    out, and the report says why.

    :param warm_up: run ``wrk`` for a second against each server first, untimed.
    """
    command = f"wrk -t{threads} -c{connections} -d{duration:g}s"
    try:
        binary = find_wrk()
    except Unavailable as reason:
        return Report([], command, {kind: str(reason) for kind in kinds})
    missing: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-wrk-"))
        log = Path(directory) / "server.log"
        started: list[tuple[Server, subprocess.Popen[bytes]]] = []
        for server in servers(directory, kinds):
            if server.server in missing:
                continue
            try:
                started.append((server, start(server, stack, log)))
            except Unavailable as reason:
                missing[server.server] = str(reason)
        # All started before any is waited for: their imports and loading overlap.
        for server, process in started:
            wait_ready(server, process, log)
        running = [server for server, _ in started]
        for server in running if warm_up else ():
            # Imports, caches, SQLite pages; a smoke test (--quick) goes without.
            wrk(binary, server, 1, threads, connections)
        for round_number in range(rounds):
            # Each round starts with the next server, so none is always first after a pause.
            shift = round_number % max(1, len(running))
            for server in running[shift:] + running[:shift]:
                rate, cpu_us = wrk(binary, server, duration, threads, connections)
                server.rates.append(rate)
                server.cpu_us.append(cpu_us)
    return Report(running, command, missing)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the servers and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="-d1s and one round")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 5, quick 1)")
    parser.add_argument("--rounds", type=int, help="runs per server, interleaved (default 3, quick 1)")
    parser.add_argument("--servers", default=",".join(SERVERS), help="server kinds, comma-separated")
    args = parser.parse_args(argv)
    report = run(
        args.servers.split(","),
        args.duration or (1 if args.quick else 5),
        args.rounds or (1 if args.quick else 3),
        warm_up=not args.quick,
    )
    print(json.dumps(report.as_dict(), indent=2) if args.json else f"{report.command}\n{report.table()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
