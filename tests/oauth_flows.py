"""Helpers for the three-legged flow tests: users, clients, and a user agent for the forms.

The OAuth client side is always done by the tests themselves (WebTest) or
by real client libraries; what is here only plays the person in front of
the browser: it reads the login and consent forms and submits them.
"""

from __future__ import annotations

import html.parser
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import webtest
from conftest import register
from conftest import serve_wsgi as serve  # noqa: F401  (re-exported for the flow tests)

from oauth_middleware import pkce
from oauth_middleware.middleware import OAuth2Middleware

#: The users the tests log in as.
USERS = {"alice": "alice-password", "bob": "bob-password"}
AUTHORIZE = "/oauth/authorize"
TOKEN = "/oauth/token"

WEB_ID, WEB_SECRET, WEB_REDIRECT = "web", "web-secret-0123456789", "https://web.example/cb"
NATIVE_ID, NATIVE_REDIRECT = "native", "http://127.0.0.1/callback"
SPA_ID, SPA_REDIRECT = "spa", "https://spa.example/cb"
VERIFIER = "v" * 20 + "-._~" + "0123456789" * 3  # 54 unreserved characters
CHALLENGE = pkce.s256(VERIFIER)


def verify_password(username: str, password: str) -> str | None:
    """The ``verify_password`` callable of the tests (``oauth_flows:verify_password``)."""
    return username if USERS.get(username) == password else None


def flow_middleware(make_middleware: Any, **settings: Any) -> OAuth2Middleware:
    """The demo app behind the middleware, with users and the three test clients."""
    settings.setdefault("verify_password", "oauth_flows:verify_password")
    middleware = make_middleware(**settings)
    register(
        middleware,
        WEB_ID,
        WEB_SECRET,
        redirect_uris=[WEB_REDIRECT, "https://web.example/other?x=1"],
        grant_types=["authorization_code", "refresh_token"],
        scopes=["read", "write"],
        name="Web <App>",
    )
    register(
        middleware,
        NATIVE_ID,
        None,
        redirect_uris=[NATIVE_REDIRECT, "com.example.app:/cb"],
        grant_types=["authorization_code", "refresh_token", "password"],
        scopes=["read", "write"],
    )
    register(
        middleware,
        SPA_ID,
        None,
        redirect_uris=[SPA_REDIRECT],
        grant_types=["implicit"],
        response_types=["token"],
        scopes=["read"],
    )
    return middleware


def code_request(**overrides: str | None) -> dict[str, str]:
    """An authorization request of the native client with PKCE; None drops a parameter."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": NATIVE_ID,
        "redirect_uri": NATIVE_REDIRECT,
        "scope": "read",
        "state": "st-123",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def location_params(location: str, *, fragment: bool = False) -> dict[str, str]:
    """The single-valued parameters in a redirect's query (or fragment)."""
    parts = urlsplit(location)
    parsed = parse_qs(parts.fragment if fragment else parts.query, keep_blank_values=True)
    assert all(len(values) == 1 for values in parsed.values()), parsed
    return {key: values[0] for key, values in parsed.items()}


def login(app: webtest.TestApp, params: dict[str, str], user: str = "alice") -> webtest.TestResponse:
    """Open the authorization URL and sign in if asked; return the consent page."""
    page = app.get(AUTHORIZE, params)
    form = page.forms[0]
    if form["step"].value == "consent":  # this browser is logged in already
        return page
    form["username"], form["password"] = user, USERS[user]
    answer = form.submit()
    assert answer.status_int == 303
    return answer.follow()


def approve(
    app: webtest.TestApp, params: dict[str, str], user: str = "alice", decision: str = "approve"
) -> str:
    """Log in, decide on the consent page, and return the redirect's Location."""
    consent = login(app, params, user)
    answer = consent.forms[0].submit("decision", value=decision)
    assert answer.status_int == 303
    return str(answer.headers["Location"])


def get_code(app: webtest.TestApp, **overrides: str | None) -> str:
    """An authorization code for :func:`code_request` with ``overrides``."""
    return location_params(approve(app, code_request(**overrides)))["code"]


def redeem(app: webtest.TestApp, code: str, /, *, status: int = 200, **overrides: str | None) -> Any:
    """The token endpoint's JSON for a code of the native client."""
    params: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": NATIVE_ID,
        "redirect_uri": NATIVE_REDIRECT,
        "code_verifier": VERIFIER,
    }
    params.update(overrides)
    body = {key: value for key, value in params.items() if value is not None}
    return app.post(TOKEN, body, status=status).json


def api_status(app: webtest.TestApp, access_token: str) -> int:
    """Status of ``GET /api/me`` with ``access_token``."""
    return int(
        app.get("/api/me", headers={"Authorization": f"Bearer {access_token}"}, expect_errors=True).status_int
    )


class _FormParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None:
            self.action = attributes.get("action", "")
        elif tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes["name"]] = attributes.get("value", "")


def page_form(page: requests.Response) -> tuple[str, dict[str, str]]:
    """The URL the page's first form posts to, and its hidden fields."""
    parser = _FormParser()
    parser.feed(page.text)
    assert parser.action is not None, "the page has no form"
    return requests.compat.urljoin(page.url, parser.action), parser.fields


def submit_form(session: requests.Session, page: requests.Response, **fields: str) -> requests.Response:
    """Post the page's form with its hidden fields plus ``fields``, as a browser would."""
    target, hidden = page_form(page)
    return session.post(target, data={**hidden, **fields}, allow_redirects=False)


def browser_approve(session: requests.Session, authorization_url: str, user: str = "alice") -> str:
    """Sign in and approve over real HTTP; return the Location sent back to the client."""
    login_page = session.get(authorization_url, allow_redirects=False)
    assert login_page.status_code == 200, login_page.text
    after_login = submit_form(session, login_page, username=user, password=USERS[user])
    assert after_login.status_code == 303
    consent_page = session.get(after_login.headers["Location"], allow_redirects=False)
    assert consent_page.status_code == 200
    decision = submit_form(session, consent_page, decision="approve")
    assert decision.status_code == 303
    return str(decision.headers["Location"])


def race(
    url: str,
    data: dict[str, str],
    threads: int = 20,
    *,
    headers: dict[str, str] | None = None,
    allow_redirects: bool = True,
) -> list[requests.Response]:
    """POST ``data`` (with ``headers``) to ``url`` from ``threads`` threads released at the same moment."""
    barrier = threading.Barrier(threads)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with requests.Session() as session:
            barrier.wait()
            response = session.post(
                url, data=data, headers=headers, allow_redirects=allow_redirects, timeout=30
            )
        with lock:
            results.append(response)

    workers = [threading.Thread(target=post) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


class SlowReads:
    """A store wrapper whose reads of some keys wait for the other racers, so that
    concurrent requests all read before any of them writes: the worst case for a race.

    A read of a key starting with one of ``prefixes`` is held until ``readers``
    such reads were made (every racing request has read: those still held are
    released at once, each holding what may be a stale value), and for at most
    ``delay`` seconds (a read outside the race, or a racer more than that after
    the first, goes on alone). Without ``readers`` every such read takes ``delay``.
    """

    def __init__(
        self, store: Any, prefixes: tuple[str, ...], delay: float = 0.05, readers: int | None = None
    ) -> None:
        self.store, self.prefixes, self.delay, self.readers = store, prefixes, delay, readers
        self._arrived = threading.Condition()
        self._read = 0  # reads of the current round
        self._round = 0  # rounds released so far
        self._began = 0.0  # when the current round's first read was made

    def get(self, key: str) -> Any:
        value = self.store.get(key)
        if key.startswith(self.prefixes):
            self._hold()  # the value read may be stale by the time it is used
        return value

    def _hold(self) -> None:
        if self.readers is None:
            time.sleep(self.delay)
            return
        with self._arrived:
            now = time.monotonic()
            if self._read and now - self._began > self.delay:  # that round's reads went on alone
                self._read, self._round = 0, self._round + 1
            if not self._read:
                self._began = now
            this_round = self._round
            self._read += 1
            if self._read >= self.readers:  # the last racer has read: release them all
                self._read, self._round = 0, self._round + 1
                self._arrived.notify_all()
            else:
                self._arrived.wait_for(lambda: self._round != this_round, self.delay)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def load_demo(directory: Any) -> OAuth2Middleware:
    """The shipped demo (examples/demo.ini and its clients file), copied to ``directory``
    so that its SQLite file lands there, loaded with PasteDeploy as ``serve`` does."""
    import pathlib
    import shutil

    from paste.deploy import loadapp

    examples = pathlib.Path(__file__).resolve().parent.parent / "examples"
    for name in ("demo.ini", "demo_clients.ini"):
        shutil.copy(examples / name, directory / name)
    app = loadapp(f"config:{directory / 'demo.ini'}")
    assert isinstance(app, OAuth2Middleware)
    return app
