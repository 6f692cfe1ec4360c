"""The apps :mod:`wrk` serves under gunicorn: the demo bare, and behind ``OAuth2Middleware``.

gunicorn loads them with the application factory syntax, from this
directory (``--chdir bench``)::

    python -m gunicorn --chdir bench -w 2 'wrk_app:make_app("bare")'
    BENCH_SETTINGS='{"store": "sqlite:////tmp/x/oauth.db"}' \\
        python -m gunicorn --chdir bench -w 2 'wrk_app:make_app("guarded")'

``BENCH_SETTINGS`` holds the ini-style settings of the guarded app as a
JSON object, over the demo's (:data:`guard.DEMO_SETTINGS`); the benchmark
writes it, with a store every worker shares (SQLite) or JWT keys every
worker has, so a token issued before the server starts is valid in each
worker.

Run as a script, it serves an app with one of the keep-alive servers of
:mod:`wrk`: bjoern in two processes sharing the port (``SO_REUSEPORT``), or
waitress (one process, four threads)::

    python bench/wrk_app.py bjoern guarded 8080
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from guard import CLIENT_ID, DEMO_SETTINGS

from oauth_middleware.demo import DemoApp
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import AccessToken
from oauth_middleware.settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class Injected:
    """The bare app's stand-in for the guard: the same environ keys, a fixed token, no check.

    :param app: the demo app.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.token = AccessToken(
            token="x" * 43,
            client_id=CLIENT_ID,
            user_id=None,
            scopes=("read",),
            expires_at=int(time.time()) + 86400,
            token_id="0" * 64,
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["oauth2.token"] = self.token
        environ["oauth2.user"] = None
        environ["oauth2.client_id"] = CLIENT_ID
        environ["oauth2.scopes"] = self.token.scopes
        return self.app(environ, start_response)


def make_app(kind: str) -> WSGIApplication:
    """``bare``: the demo app with the guard's keys set; ``guarded``: behind the middleware.

    :param kind: ``bare`` or ``guarded``.
    """
    if kind == "bare":
        return Injected(DemoApp())
    if kind == "guarded":
        settings = {**DEMO_SETTINGS, **json.loads(os.environ.get("BENCH_SETTINGS", "{}"))}
        return OAuth2Middleware(DemoApp(), Settings.from_config(settings))
    raise ValueError(f"unknown app {kind!r}: bare or guarded")


#: Processes bjoern serves in, each with its own listening socket on the shared port.
BJOERN_PROCESSES = 2


def serve_bjoern(kind: str, port: int) -> None:
    """Serve ``kind`` with bjoern in :data:`BJOERN_PROCESSES` processes until SIGTERM.

    Each process builds its own app after the fork, as a gunicorn worker does.
    """
    import bjoern

    children = []
    for _ in range(BJOERN_PROCESSES):
        pid = os.fork()
        if pid == 0:
            bjoern.run(make_app(kind), "127.0.0.1", port, reuse_port=True)
            os._exit(0)
        children.append(pid)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        os.waitpid(child, 0)


def main(argv: list[str]) -> None:
    """``wrk_app.py SERVER KIND PORT``: serve ``make_app(KIND)`` on 127.0.0.1 with bjoern or waitress."""
    server, kind, port = argv[0], argv[1], int(argv[2])
    if server == "bjoern":
        serve_bjoern(kind, port)
    elif server == "waitress":
        import waitress

        waitress.serve(make_app(kind), host="127.0.0.1", port=port, threads=4, _quiet=True)
    else:
        raise SystemExit(f"unknown server {server!r}: bjoern or waitress")


if __name__ == "__main__":
    main(sys.argv[1:])
