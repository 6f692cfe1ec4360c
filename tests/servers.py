"""Throwaway ``redis-server`` and ``memcached`` processes for the store tests.

Each server listens on a free loopback port, keeps nothing on disk and can
be stopped and started again on the same port (to test what a store does
while its server is down and after it comes back). A test module gets the
session-scoped fixtures with::

    from servers import redis_server  # noqa: F401

(pytest's default ``prepend`` import mode puts ``tests/`` on ``sys.path``).
Code that cannot request fixtures (a backend registry) calls
:func:`shared_redis` / :func:`shared_memcached` with its ``request``
instead; both ways give the same process.
A missing binary fails the tests with the command that installs it: these
backends are part of the product, so their tests never skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

#: Seconds to wait for a server to answer after starting it.
START_TIMEOUT = 10.0
#: Seconds to wait for a server to exit after SIGTERM before killing it.
STOP_TIMEOUT = 5.0
#: Seconds between two checks that a starting server answers.
POLL_STEP = 0.01


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str, package: str) -> str:
    """The path of ``name``, or fail the test run saying how to install it."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if path is None:
        pytest.fail(f"{name} not found: install it with `apt-get install -y {package}`")
    return path


class Server:
    """One server process on a fixed loopback port.

    :param name: what to call it in messages (``redis-server``).
    :param argv: the command line; the port is already in it.
    :param port: the port it listens on.
    :param probe: bytes sent to check it answers, and ``expect``: the start
        of the reply that proves it does (or a tuple of them).
    :param log: file receiving the server's output (shown when it fails).
    """

    #: How :meth:`stop` asks the process to end.
    stop_signal = signal.SIGTERM

    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        probe: bytes,
        expect: bytes | tuple[bytes, ...],
        log: Path,
    ) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.probe = probe
        self.expect = expect
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the server (if stopped) and wait until it answers."""
        if self.running:
            return
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}: {self._log_tail()}")
            if self.answers():
                return
            time.sleep(POLL_STEP)
        self.stop()
        pytest.fail(
            f"{self.name} did not answer on port {self.port} within {START_TIMEOUT}s: {self._log_tail()}"
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it to exit."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(self.stop_signal)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> None:
        """Stop and start again on the same port (all data is lost)."""
        self.stop()
        self.start()

    def answers(self) -> bool:
        """True if the port accepts a connection and replies to the probe."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                if not self.probe:
                    return True  # e.g. a TLS port: accepting the connection is all we can check
                sock.sendall(self.probe)
                return sock.recv(64).startswith(self.expect)
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


class RedisServer(Server):
    """A ``redis-server`` without persistence; ``url`` points at database 0.

    :param extra: more command-line options, e.g. ``["--requirepass", "pw"]``.
    """

    def __init__(self, directory: Path, port: int | None = None, extra: list[str] | None = None) -> None:
        port = port or free_port()
        binary = find_binary("redis-server", "redis-server")
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(directory), *(extra or [])]
        # With --requirepass, PING answers NOAUTH: that still proves it is up.
        expect = (b"+PONG", b"-NOAUTH")
        super().__init__("redis-server", argv, port, b"PING\r\n", expect, directory / "redis.log")
        self.url = f"redis://127.0.0.1:{port}/0"


class MemcachedServer(Server):
    """A ``memcached`` on TCP only; ``url`` is its ``memcache://`` URL."""

    #: memcached takes 0.7 s to exit on SIGTERM and has nothing to save: a
    #: stop is a crash, which the outage tests simulate anyway.
    stop_signal = signal.SIGKILL

    def __init__(self, directory: Path, port: int | None = None) -> None:
        port = port or free_port()
        binary = find_binary("memcached", "memcached")
        argv = [binary, "-p", str(port), "-l", "127.0.0.1", "-U", "0"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached refuses to run as root without naming a user
        super().__init__("memcached", argv, port, b"version\r\n", b"VERSION", directory / "memcached.log")
        self.url = f"memcache://127.0.0.1:{port}"


#: One server of each kind per test process, shared by the fixtures below and
#: by the contract suite's backend registry (which cannot request fixtures
#: the contract module does not import).
_shared: dict[str, Server] = {}


def shared_redis(request: pytest.FixtureRequest) -> RedisServer:
    """The test run's ``redis-server``, started on first use and running again if a test stopped it."""
    server = _shared_server(request, "redis", RedisServer)
    assert isinstance(server, RedisServer)
    return server


def shared_memcached(request: pytest.FixtureRequest) -> MemcachedServer:
    """The test run's ``memcached``, started on first use and running again if a test stopped it."""
    server = _shared_server(request, "memcached", MemcachedServer)
    assert isinstance(server, MemcachedServer)
    return server


def _shared_server(request: pytest.FixtureRequest, kind: str, make: Callable[[Path], Server]) -> Server:
    server = _shared.get(kind)
    if server is None:
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        server = _shared[kind] = make(factory.mktemp(kind))
        # Stopped when pytest unconfigures, after every session fixture is done.
        request.config.add_cleanup(server.stop)
    server.start()  # no-op when running; heals a test that stopped it and failed
    return server


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> RedisServer:
    """A running ``redis-server`` for the session (restart it if you stop it)."""
    return shared_redis(request)


@pytest.fixture(scope="session")
def memcached_server(request: pytest.FixtureRequest) -> MemcachedServer:
    """A running ``memcached`` for the session (restart it if you stop it)."""
    return shared_memcached(request)
