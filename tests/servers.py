"""Throwaway ``redis-server``, ``memcached``, PostgreSQL and MariaDB processes for the store tests.

Each server listens on a free loopback port and can be stopped and started
again on the same port (to test what a store does while its server is down
and after it comes back). Redis and memcached keep nothing on disk; the
databases keep their data in a temporary directory made once per run. A test module gets the
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

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    #: More arguments for ``subprocess.Popen`` (e.g. the user to run as).
    popen_options: dict[str, Any] = {}

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
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self.popen_options
            )
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

    def pause(self) -> None:
        """Freeze every process of the server (SIGSTOP): it accepts connections and never answers.

        Its process group and every descendant: PostgreSQL's backends (one per
        connection) each start a session of their own.
        """
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)
        for pid in descendants(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        assert self.process is not None
        for pid in descendants(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        os.killpg(self.process.pid, signal.SIGCONT)

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


#: Where the PostgreSQL server programs are (Debian keeps them out of PATH).
POSTGRES_BINARIES = "/usr/lib/postgresql/*/bin"


def postgres_binary(name: str) -> str:
    """The newest installed PostgreSQL's ``name`` program, or fail saying how to install it."""
    found = sorted(glob.glob(f"{POSTGRES_BINARIES}/{name}"), key=lambda path: int(path.split("/")[-3]))
    if not found:
        pytest.fail(
            f"{name} not found in {POSTGRES_BINARIES}: install it with `apt-get install -y postgresql`"
        )
    return found[-1]


#: The password of the databases' test user: every URL carries one, so every
#: test also checks that no message or log shows it.
DB_PASSWORD = "pw-Zq7-not-in-logs"


class PostgresServer(Server):
    """A PostgreSQL cluster made by ``initdb`` in ``directory``, run by the ``postgres`` user.

    ``url`` logs in as ``postgres`` with :data:`DB_PASSWORD` (checked: SCRAM)
    to the ``postgres`` database. Durability is off (``fsync``), as it should
    be only in tests: it makes the start and every commit fast.
    """

    #: Fast shutdown: SIGTERM would wait for every client to disconnect.
    stop_signal = signal.SIGINT
    #: PostgreSQL refuses to run as root: root runs it as the ``postgres`` user.
    popen_options = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}

    def __init__(self, directory: Path, port: int | None = None) -> None:
        port = port or free_port()
        initdb, postgres = postgres_binary("initdb"), postgres_binary("postgres")
        # Not under pytest's temporary root, which only root may enter.
        cluster = Path(tempfile.mkdtemp(prefix="oauth-middleware-pg-"))
        atexit.register(shutil.rmtree, cluster, ignore_errors=True)
        data = cluster / "data"
        password_file = cluster / "password"
        password_file.write_text(DB_PASSWORD)
        if self.popen_options:
            shutil.chown(cluster, "postgres", "postgres")
            shutil.chown(password_file, "postgres", "postgres")
        subprocess.run(
            [initdb, "-D", str(data), "-U", "postgres", f"--pwfile={password_file}", "--auth=scram-sha-256",
             "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
            check=True, capture_output=True, **self.popen_options,
        )  # fmt: skip
        argv = [
            postgres,
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(cluster),
            "-c",
            "listen_addresses=127.0.0.1",
        ]
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        argv += ["-c", "max_connections=400"]
        super().__init__("postgres", argv, port, b"", b"", directory / "postgres.log")
        self.url = f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:{port}/postgres"

    def answers(self) -> bool:
        """True once a session can log in and run a query (the port opens earlier)."""
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False


class MariaDBServer(Server):
    """A MariaDB server made by ``mariadb-install-db`` in ``directory``.

    ``url`` logs in as ``oauth`` with :data:`DB_PASSWORD` to the database ``oauth``,
    which is all that user may use.
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        port = port or free_port()
        install = find_binary("mariadb-install-db", "mariadb-server")
        server = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        if not os.path.exists(server):
            pytest.fail("mariadbd not found: install it with `apt-get install -y mariadb-server`")
        data = directory / "data"
        self.socket = directory / "mariadb.sock"
        self._fresh = not data.exists()
        if self._fresh:
            subprocess.run(
                [install, "--no-defaults", f"--datadir={data}", "--user=root", "--skip-test-db",
                 "--auth-root-authentication-method=normal"],
                check=True, capture_output=True,
            )  # fmt: skip
        argv = [server, "--no-defaults", f"--datadir={data}", "--user=root", f"--port={port}"]
        argv += ["--bind-address=127.0.0.1", f"--socket={self.socket}", "--skip-name-resolve"]
        argv += ["--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--max-connections=400"]
        argv += ["--innodb-buffer-pool-size=64M", "--skip-log-bin"]
        super().__init__("mariadbd", argv, port, b"", b"", directory / "mariadb.log")
        self.url = f"mysql://oauth:{DB_PASSWORD}@127.0.0.1:{port}/oauth"

    def start(self) -> None:
        """Start it; the first start also sets the password and makes the database."""
        super().start()
        if self._fresh:
            import pymysql

            with pymysql.connect(unix_socket=str(self.socket), user="root") as conn, conn.cursor() as cursor:
                cursor.execute("CREATE DATABASE oauth CHARACTER SET utf8mb4")
                # --skip-name-resolve: TCP clients are 127.0.0.1, not localhost.
                cursor.execute(f"CREATE USER oauth@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'")
                cursor.execute("GRANT ALL ON oauth.* TO oauth@'127.0.0.1'")
            self._fresh = False

    def answers(self) -> bool:
        """True once the server takes connections on its socket."""
        import pymysql

        try:
            pymysql.connect(unix_socket=str(self.socket), user="root", connect_timeout=2).close()
            return True
        except pymysql.MySQLError:
            return False


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


def shared_postgres(request: pytest.FixtureRequest) -> PostgresServer:
    """The test run's PostgreSQL, started on first use and running again if a test stopped it."""
    server = _shared_server(request, "postgres", PostgresServer)
    assert isinstance(server, PostgresServer)
    return server


def shared_mariadb(request: pytest.FixtureRequest) -> MariaDBServer:
    """The test run's MariaDB, started on first use and running again if a test stopped it."""
    server = _shared_server(request, "mariadb", MariaDBServer)
    assert isinstance(server, MariaDBServer)
    return server


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> RedisServer:
    """A running ``redis-server`` for the session (restart it if you stop it)."""
    return shared_redis(request)


@pytest.fixture(scope="session")
def memcached_server(request: pytest.FixtureRequest) -> MemcachedServer:
    """A running ``memcached`` for the session (restart it if you stop it)."""
    return shared_memcached(request)


def descendants(pid: int) -> list[int]:
    """Every process descended from ``pid`` (read from ``/proc``), children before grandchildren."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The parent pid is the second field after the command name, which is in parentheses.
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
            parents.setdefault(parent, []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(0), [])
        found.extend(children)
        queue.extend(children)
    return found
