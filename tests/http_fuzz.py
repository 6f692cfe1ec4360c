"""Random, malformed HTTP requests for every endpoint and the guard, and what every answer must be.

Shared by ``tests/test_fuzz_http.py`` (a few hundred cases per target in CI)
and ``bench/fuzz.py`` (10,000+ per target on demand). A *target* is one
endpoint (or the guard) with the parameter names and plausible values that
make its requests interesting; a *case* is one request built by Hypothesis
from them: any method, a path near the target's, a query string and a body
of random, oversized, non-UTF-8, repeated and missing parameters, any
``Content-Type``, and ``Authorization``, cookie and forwarding headers that
are valid, nearly valid or garbage.

Each case is sent straight into the WSGI middleware (no socket) and
:meth:`Harness.problems` lists what is wrong with the answer: a 5xx, an
exception escaping the middleware, a traceback in the body, a header with
a line break, a JSON answer that does not parse or lacks ``error``, a
redirect other than 303 after a POST to the authorization endpoint, or the
protected app called without a valid token for the path.
"""

from __future__ import annotations

import base64
import io
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_from_bytes, quote_plus

from hypothesis import strategies as st
from webob import Request

from oauth_middleware import pkce
from oauth_middleware.authorization import validate_request
from oauth_middleware.clients import build_client
from oauth_middleware.grants.authorization_code import issue_code
from oauth_middleware.guard import required_scopes
from oauth_middleware.interaction import csrf_token
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import digest
from oauth_middleware.users import Session

USERS = {"alice": "alice-password", "bob": "bob-password"}
SERVICE = ("service", "service-secret-0123456789")
WEB = ("web", "web-secret-0123456789")
NATIVE_ID, NATIVE_REDIRECT = "native", "http://127.0.0.1/callback"
WEB_REDIRECT = "https://web.example/cb"
SPA_ID, SPA_REDIRECT = "spa", "https://spa.example/cb"
VERIFIER = "v" * 20 + "-._~" + "0123456789" * 3
CHALLENGE = pkce.s256(VERIFIER)
SESSION_SECRET = "fuzz-session-secret-0123456789abcdef"
ISSUER, AUDIENCE = "https://auth.example.com", "https://api.example.com"
SCOPE_RULES = "POST,PUT,DELETE /api/* write\n* /admin admin"
#: A valid authorization request of the public native client.
CODE_REQUEST = {
    "response_type": "code",
    "client_id": NATIVE_ID,
    "redirect_uri": NATIVE_REDIRECT,
    "scope": "read",
    "state": "st-1",
    "code_challenge": CHALLENGE,
    "code_challenge_method": "S256",
}


def verify_password(username: str, password: str) -> str | None:
    """The fuzz servers' ``verify_password`` (``http_fuzz:verify_password``)."""
    return username if USERS.get(username) == password else None


class RecordingApp:
    """The protected app: counts its calls and keeps the environ of the last one."""

    def __init__(self) -> None:
        self.calls = 0
        self.environ: dict[str, Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls += 1
        self.environ = environ
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app"]


@dataclass
class Server:
    """One middleware under fuzz, the app behind it and the tokens known to be valid."""

    middleware: OAuth2Middleware
    app: RecordingApp
    tokens: list[str] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    session_cookie: str = ""
    #: A consent form alice could post (CSRF token included) for :data:`CODE_REQUEST`.
    consent_form: dict[str, str] = field(default_factory=dict)
    #: The client information of dynamically registered clients (RFC 7591 §3.2.1): the first
    #: is read and updated, the others are there to be deleted.
    registrations: list[dict[str, Any]] = field(default_factory=list)


def _register(middleware: OAuth2Middleware, client_id: str, secret: str | None, **fields: Any) -> None:
    client = build_client(client_id, secret_hash=None if secret is None else digest(secret), **fields)
    middleware.server.repository.save_client(client)


def make_server(token_format: str = "opaque", key_dir: Path | None = None) -> Server:
    """A server with every grant, both response types, users, three clients and live tokens."""
    app = RecordingApp()
    config: dict[str, Any] = {
        "store": "memory://",
        "issuer": "http://localhost",
        "scopes": "read write admin",
        "grants": "authorization_code refresh_token client_credentials password",
        "response_types": "code token",
        "verify_password": "http_fuzz:verify_password",
        "introspection_clients": SERVICE[0],
        "token_from_query": "true",
        "public_paths": "/health /static/*",
        "scope_rules": SCOPE_RULES,
        "session_secret": SESSION_SECRET,
        # Throttling (tested on its own in test_throttling.py) would turn a
        # quarter of the token-side cases into 429s that never reach the code.
        "throttle": "false",
        # Plain-HTTP cases reach the endpoints too (the HTTPS check is tested in test_proxies.py).
        "require_https": "false",
        # Dynamic registration (RFC 7591, 7592), limited per address far above what a run sends.
        "registration": "open",
        "registration_max_per_address": "1000000",
    }
    if token_format == "jwt":
        config.update(token_format="jwt", issuer=ISSUER, audience=AUDIENCE, jwt_check_revocation="true")
        config["jwt_signing_key"] = _rsa_key(key_dir or Path(tempfile.mkdtemp(prefix="oauth-fuzz-")))
    middleware = OAuth2Middleware(app, **config)
    _register(middleware, *SERVICE, grant_types=["client_credentials"], scopes=["read", "write"])
    _register(
        middleware,
        *WEB,
        redirect_uris=[WEB_REDIRECT, "https://web.example/other?x=1"],
        grant_types=["authorization_code", "refresh_token"],
        scopes=["read", "write"],
    )
    _register(
        middleware,
        NATIVE_ID,
        None,
        redirect_uris=[NATIVE_REDIRECT, "com.example.app:/cb"],
        grant_types=["authorization_code", "refresh_token", "password"],
        scopes=["read", "write"],
    )
    _register(
        middleware, SPA_ID, None, redirect_uris=[SPA_REDIRECT], grant_types=["implicit"], scopes=["read"]
    )
    server = Server(middleware, app)
    issuer = middleware.server.issuer
    service = middleware.server.repository.get_client(SERVICE[0])
    native = middleware.server.repository.get_client(NATIVE_ID)
    assert service is not None and native is not None
    for scopes in (("read",), ("read", "write"), ("read", "write")):
        body = issuer.issue(client=service, user_id=None, scopes=scopes, grant_type="client_credentials")
        server.tokens.append(body["access_token"])
    body = middleware.server.issuer.issue(
        client=native, user_id="alice", scopes=("read", "write"), grant_type="password", family="fuzz-family"
    )
    server.tokens.append(body["access_token"])
    for _ in range(3):
        server.refresh_tokens.append(
            middleware.server.refresh_tokens.issue(
                client_id=NATIVE_ID, user_id="alice", scopes=("read", "write"), family="fuzz-family"
            )
        )
    session = Session("fuzz-sid", "alice", int(time.time()) + 86400)
    server.session_cookie = middleware.server.users.sessions.encode(session)
    request = validate_request(middleware.server, CODE_REQUEST.items())
    server.codes = [issue_code(middleware.server, request, "alice") for _ in range(3)]
    csrf = csrf_token(middleware.server.pages.csrf_key, "consent", session, "alice", request.pending_id)
    server.consent_form = {**CODE_REQUEST, "step": "consent", "csrf_token": csrf, "decision": "approve"}
    for _ in range(20):
        register = Request.blank("/oauth/register", method="POST", content_type="application/json")
        register.body = json.dumps(REGISTRATIONS[0]).encode()
        registered = register.get_response(middleware)
        assert registered.status_int == 201, registered.text
        server.registrations.append(registered.json)
    return server


def _rsa_key(directory: Path) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "fuzz-rsa.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(path)


# -- what a case is ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One HTTP request, as the WSGI server would hand it over (strings are latin-1 views of bytes)."""

    method: str
    path: str
    query: str
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    environ: tuple[tuple[str, str], ...]

    def wsgi_environ(self) -> dict[str, Any]:
        """The WSGI environ of this request (always a fresh input stream)."""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": self.path,
            "QUERY_STRING": self.query,
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "localhost",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(self.body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.body:
            environ["CONTENT_LENGTH"] = str(len(self.body))
        if self.content_type is not None:
            environ["CONTENT_TYPE"] = self.content_type
        environ.update(self.headers)
        environ.update(self.environ)
        return environ


# -- building blocks -------------------------------------------------------------------------

T = TypeVar("T")


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """Draw from one of ``choices``, picked with the given weights (``st.one_of`` cannot weight)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


latin1 = st.binary(max_size=60).map(lambda raw: raw.decode("latin-1"))
#: Longer than any sane value; now and then longer than any sane body.
oversized = weighted((3, st.integers(1_000, 20_000)), (1, st.integers(20_000, 2_000_000))).map(
    lambda n: "A" * n
)


def values(plausible: Iterable[str]) -> st.SearchStrategy[bytes]:
    """A parameter value: plausible (most often), random text, random bytes (not UTF-8), empty or huge."""
    known = st.sampled_from(sorted(set(plausible))).map(str.encode)
    return weighted(
        (6, known),
        (2, st.text(max_size=40).map(str.encode)),
        (1, st.binary(max_size=40)),
        (1, st.just(b"")),
        (1, oversized.map(str.encode)),
    )


Items = list[tuple[bytes, bytes]]


def params(
    names: Iterable[str], plausible: Iterable[str], baselines: list[dict[str, str]]
) -> st.SearchStrategy[Items]:
    """Parameters: a good request with a few changes (to get deep into the code), or random ones.

    Random ones use known names (so often repeated), random names and random values.
    """
    known = st.sampled_from(sorted(set(names))).map(str.encode)
    name = weighted((6, known), (1, st.text(max_size=12).map(str.encode)), (1, st.binary(max_size=8)))
    value = values(plausible)
    pair = st.tuples(name, value)
    changed = st.builds(
        _changed,
        st.sampled_from(baselines),
        st.sets(st.sampled_from(sorted(set(names))), max_size=2),
        st.lists(st.tuples(known, value), max_size=2),
        st.lists(pair, max_size=2),
    )
    return weighted(
        (4, changed),
        (2, st.lists(pair, max_size=8, unique_by=lambda item: item[0])),
        (1, st.lists(pair, max_size=8)),
    )


def _changed(baseline: dict[str, str], dropped: set[str], replaced: Items, added: Items) -> Items:
    """``baseline`` without ``dropped``, with ``replaced`` values, then ``added`` (maybe repeats)."""
    items = {name.encode(): value.encode() for name, value in baseline.items() if name not in dropped}
    items.update(replaced)
    return [*items.items(), *added]


def encode(items: list[tuple[bytes, bytes]], style: str, tail: bytes) -> bytes:
    """Parameters form-encoded properly (``quoted``, ``plus``) or ``raw`` (unescaped bytes), plus a tail."""
    if style == "raw":
        pairs = [name + b"=" + value for name, value in items]
    elif style == "plus":
        pairs = [quote_plus(name).encode() + b"=" + quote_plus(value).encode() for name, value in items]
    else:
        pairs = [
            quote_from_bytes(name, safe="").encode() + b"=" + quote_from_bytes(value, safe="").encode()
            for name, value in items
        ]
    return b"&".join(pairs) + tail


def encoded(items: st.SearchStrategy[list[tuple[bytes, bytes]]]) -> st.SearchStrategy[bytes]:
    """Encoded parameters, sometimes with a stray separator or a broken escape at the end."""
    styles = st.sampled_from(["quoted", "quoted", "raw", "plus"])
    tails = st.sampled_from([b"", b"", b"", b"&", b"=", b"&&x", b"%", b"%zz", b"\x00", b";a=b"])
    return st.builds(encode, items, styles, tails)


FORM = "application/x-www-form-urlencoded"
content_types = weighted(
    (
        8,
        st.sampled_from(
            [
                *[FORM] * 12,
                f"{FORM}; charset=utf-8",
                f"{FORM}; charset=UTF8",
                f"{FORM}; charset=latin-1",
                f"{FORM}; charset=bogus",
                f"{FORM};charset",
                f"{FORM.upper()}",
                "multipart/form-data; boundary=xyz",
                "multipart/form-data",
                "application/json",
                "text/plain",
                "",
            ]
        ),
    ),
    (1, st.none()),
    (1, latin1),
)


def basic(client_id: str, secret: str) -> str:
    """An ``Authorization: Basic`` value, both parts form-encoded first (RFC 6749 §2.3.1)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def authorization(server: Server) -> st.SearchStrategy[str | None]:
    """An ``Authorization`` value: none, real credentials or tokens, or garbage in their shape."""
    good_basic = [basic(*SERVICE), basic(*WEB), basic(SERVICE[0], WEB[1]), basic(NATIVE_ID, "")]
    return weighted(
        (4, st.none()),
        (4, st.sampled_from(good_basic)),
        (1, st.builds(basic, st.text(max_size=20), st.text(max_size=20))),
        (1, st.binary(max_size=40).map(lambda raw: "Basic " + base64.b64encode(raw).decode("ascii"))),
        (4, st.sampled_from(server.tokens).map(lambda token: f"Bearer {token}")),
        (1, st.sampled_from(server.tokens).map(lambda token: f"bearer  {token[:-1]}")),
        (1, latin1.map(lambda text: "Bearer " + text)),
        (1, latin1.map(lambda text: "Basic " + text)),
        (1, latin1),
    )


FORWARDING = ["HTTP_ORIGIN", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST"]
FORWARDING += ["HTTP_FORWARDED", "HTTP_HOST", "HTTP_ACCESS_CONTROL_REQUEST_METHOD"]
FORWARDED_VALUES = ["https", "evil.example", "10.0.0.1, 127.0.0.1", "for=1.2.3.4;proto=https", "POST"]


def _headers(
    auth: str | None, cookie: str | None, forwarded: list[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    headers = [] if auth is None else [("HTTP_AUTHORIZATION", auth)]
    if cookie is not None:
        headers.append(("HTTP_COOKIE", cookie))
    return (*headers, *forwarded)


def _environ(remote_user: str | None, https: bool) -> tuple[tuple[str, str], ...]:
    environ = [] if remote_user is None else [("REMOTE_USER", remote_user)]
    return (*environ, ("wsgi.url_scheme", "https")) if https else tuple(environ)


def requests(
    server: Server,
    *,
    paths: st.SearchStrategy[str],
    methods: list[str],
    names: Iterable[str],
    plausible: Iterable[str],
    baselines: list[dict[str, str]] | None = None,
) -> st.SearchStrategy[Case]:
    """Requests to one target, its query and body drawn from the same names and values.

    Every part is a strategy built once here: Hypothesis then only draws.
    """
    method = weighted(
        (12, st.sampled_from(methods)),
        (3, st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "get"])),
        (1, latin1),
    )
    items = params(names, plausible, baselines or [{}])
    query = weighted((6, encoded(items)), (1, latin1.map(str.encode))).map(lambda raw: raw.decode("latin-1"))
    body = weighted((12, encoded(items)), (2, st.binary(max_size=80)), (1, oversized.map(str.encode)))
    cookie = weighted(
        (4, st.none()),
        (2, st.just(f"oauth2_session={server.session_cookie}")),
        (1, latin1.map(lambda value: f"oauth2_session={value}")),
    )
    forwarded = st.lists(
        st.tuples(st.sampled_from(FORWARDING), weighted((2, st.sampled_from(FORWARDED_VALUES)), (1, latin1))),
        max_size=2,
        unique_by=lambda pair: pair[0],
    )
    remote_user = weighted((10, st.none()), (1, st.just("carol")), (1, latin1))
    return st.builds(
        Case,
        method=method,
        path=paths,
        query=query,
        body=body,
        content_type=content_types,
        headers=st.builds(_headers, authorization(server), cookie, forwarded),
        environ=st.builds(_environ, remote_user, st.booleans()),
    )


# -- the targets -------------------------------------------------------------------------------

CLIENT_IDS = [SERVICE[0], WEB[0], NATIVE_ID, SPA_ID, "nobody"]
SECRETS = [SERVICE[1], WEB[1], digest(SERVICE[1])]
REDIRECTS = [
    NATIVE_REDIRECT,
    WEB_REDIRECT,
    SPA_REDIRECT,
    "http://127.0.0.1:5000/callback",
    "https://evil.example/cb",
    "com.example.app:/cb",
]
SCOPES = ["read", "write", "read write", "admin", "read read", 'a"b']
AUTHORIZE_NAMES = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
]
FORM_NAMES = ["step", "csrf_token", "username", "password", "decision"]


def near(path: str) -> st.SearchStrategy[str]:
    """The target's path, mostly, or one that only looks like it."""
    return weighted(
        (16, st.just(path)),
        (2, st.sampled_from([path + "/", path.upper(), path + "%00", "/" + path])),
        (1, latin1),
    )


@dataclass(frozen=True)
class Target:
    """One endpoint (or the guard) under fuzz.

    :param kind: the server it runs on, ``opaque`` or ``jwt`` (each target gets its own).
    :param cases: given that server, the strategy of its requests.
    """

    kind: str
    cases: Callable[[Server], st.SearchStrategy[Case]]


USERNAMES = ["alice", "bob", "", "a" * 300]
TOKEN_NAMES = ["grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret"]
TOKEN_NAMES += ["refresh_token", "scope", "username", "password"]
GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials", "password", "implicit"]


def _token_cases(s: Server) -> st.SearchStrategy[Case]:
    plausible = [*GRANT_TYPES, VERIFIER, *CLIENT_IDS, *SECRETS, *REDIRECTS, *SCOPES, *USERNAMES]
    plausible += [*USERS.values(), *s.refresh_tokens, *s.codes]
    baselines = [
        {"grant_type": "client_credentials", "scope": "read"},
        {"grant_type": "client_credentials", "client_id": SERVICE[0], "client_secret": SERVICE[1]},
        {"grant_type": "password", "username": "alice", "password": USERS["alice"], "client_id": NATIVE_ID},
        *(
            {"grant_type": "refresh_token", "refresh_token": rt, "client_id": NATIVE_ID}
            for rt in s.refresh_tokens
        ),
        *(
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": NATIVE_ID,
                "redirect_uri": NATIVE_REDIRECT,
                "code_verifier": VERIFIER,
            }
            for code in s.codes
        ),
    ]
    path = near("/oauth/token")
    return requests(
        s, paths=path, methods=["POST"], names=TOKEN_NAMES, plausible=plausible, baselines=baselines
    )


def _authorize_cases(method: str) -> Callable[[Server], st.SearchStrategy[Case]]:
    def cases(s: Server) -> st.SearchStrategy[Case]:
        plausible = ["code", "token", "code token", CHALLENGE, "S256", "plain", "st-1"]
        plausible += [*CLIENT_IDS, *REDIRECTS, *SCOPES]
        names = AUTHORIZE_NAMES
        implicit = {"response_type": "token", "client_id": SPA_ID, "redirect_uri": SPA_REDIRECT, "state": "s"}
        baselines = [
            CODE_REQUEST,
            implicit,
            {**CODE_REQUEST, "client_id": WEB[0], "redirect_uri": WEB_REDIRECT},
        ]
        if method == "POST":
            names = AUTHORIZE_NAMES + FORM_NAMES
            plausible += ["login", "consent", "approve", "deny", "0" * 64, *USERNAMES, *USERS.values()]
            login = {**CODE_REQUEST, "step": "login", "username": "alice", "password": USERS["alice"]}
            baselines += [s.consent_form, s.consent_form, login]
        path = near("/oauth/authorize")
        return requests(
            s, paths=path, methods=[method], names=names, plausible=plausible, baselines=baselines
        )

    return cases


def _token_management_cases(path: str) -> Callable[[Server], st.SearchStrategy[Case]]:
    def cases(s: Server) -> st.SearchStrategy[Case]:
        plausible = ["access_token", "refresh_token", "other", "x" * 43, *s.tokens, *s.refresh_tokens]
        plausible += [*CLIENT_IDS, *SECRETS]
        names = ["token", "token_type_hint", "client_id", "client_secret"]
        service = {"client_id": SERVICE[0], "client_secret": SERVICE[1]}
        baselines = [{"token": token, **service} for token in s.tokens]
        baselines += [{"token": token, "token_type_hint": "refresh_token"} for token in s.refresh_tokens]
        return requests(
            s, paths=near(path), methods=["POST"], names=names, plausible=plausible, baselines=baselines
        )

    return cases


def _document_cases(path: str) -> Callable[[Server], st.SearchStrategy[Case]]:
    def cases(s: Server) -> st.SearchStrategy[Case]:
        return requests(s, paths=near(path), methods=["GET", "HEAD"], names=["x"], plausible=["1"])

    return cases


def _guard_cases(s: Server) -> st.SearchStrategy[Case]:
    # Valid tokens, the same with their last characters changed, and an unsigned JWT.
    plausible = [*s.tokens, *(token[:-2] + "xx" for token in s.tokens), "x" * 43]
    plausible.append(".".join(["eyJhbGciOiJub25lIn0"] * 3))
    methods = ["GET", "POST", "PUT", "DELETE"]
    baselines = [{"access_token": token} for token in s.tokens] + [{"x": "1"}]
    return requests(
        s,
        paths=GUARD_PATHS,
        methods=methods,
        names=["access_token", "x"],
        plausible=plausible,
        baselines=baselines,
    )


#: Client metadata a registration may send (RFC 7591 §2), good ones first.
REGISTRATIONS: list[dict[str, Any]] = [
    {"redirect_uris": [NATIVE_REDIRECT], "token_endpoint_auth_method": "none", "scope": "read"},
    {"redirect_uris": [WEB_REDIRECT], "grant_types": ["authorization_code", "refresh_token"]},
    {"grant_types": ["client_credentials"], "scope": "read write", "client_name": "Reports"},
    {"grant_types": ["client_credentials"], "jwks_uri": "https://keys.example/jwks"},
]
METADATA_NAMES = ["redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method", "scope"]
METADATA_NAMES += [
    "client_name",
    "client_uri",
    "logo_uri",
    "contacts",
    "jwks",
    "jwks_uri",
    "software_statement",
]
METADATA_NAMES += [
    "client_id",
    "client_secret",
    "dpop_bound_access_tokens",
    "token_endpoint_auth_signing_alg",
]
#: Any JSON value, nested a little.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


def _registration_cases(s: Server) -> st.SearchStrategy[Case]:
    """Registrations (RFC 7591) and the management of one (RFC 7592): JSON bodies, good and broken."""
    registration = s.registrations[0]
    plausible = st.sampled_from(
        [*REDIRECTS, *SCOPES, *GRANT_TYPES, "none", "client_secret_basic", "private_key_jwt", "code", "token"]
    )
    member_value = weighted(
        (3, plausible), (2, plausible.map(lambda value: [value])), (2, json_values), (1, oversized)
    )
    own = {**REGISTRATIONS[1], "client_id": registration["client_id"]}
    metadata = st.builds(
        lambda base, dropped, added: {**{k: v for k, v in base.items() if k not in dropped}, **added},
        st.sampled_from([*REGISTRATIONS, own]),
        st.sets(st.sampled_from(METADATA_NAMES), max_size=2),
        st.dictionaries(st.sampled_from(METADATA_NAMES), member_value, max_size=3),
    )
    body = weighted(
        (10, metadata.map(lambda value: json.dumps(value).encode())),
        (2, json_values.map(lambda value: json.dumps(value).encode())),
        (1, st.binary(max_size=80)),
        (1, oversized.map(str.encode)),
    )
    token = registration["registration_access_token"]
    auth = weighted(
        (1, st.none()),
        (8, st.just(f"Bearer {token}")),
        (1, st.sampled_from(s.tokens).map(lambda value: f"Bearer {value}")),
        (1, latin1.map(lambda text: "Bearer " + text)),
        (1, st.just(basic(*SERVICE))),
    )
    query = weighted(
        (6, st.just(f"client_id={quote_plus(registration['client_id'])}")),
        (1, st.sampled_from(["", "client_id=nobody", "client_id=a&client_id=b"])),
        (1, latin1),
    )
    content_type = weighted((8, st.just("application/json")), (1, content_types))
    other_method = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "get"]) | latin1
    registering = st.builds(
        Case,
        method=weighted((8, st.just("POST")), (1, other_method)),
        path=near("/oauth/register"),
        query=weighted((6, st.just("")), (1, query)),
        body=body,
        content_type=content_type,
        headers=st.builds(_headers, weighted((6, st.none()), (1, auth)), st.none(), st.just([])),
        environ=st.builds(_environ, st.none(), st.booleans()),
    )
    managed = st.builds(
        Case,
        # No DELETE with the token of the first registration: it stays for the other cases.
        method=weighted(
            (8, st.sampled_from(["GET", "PUT"])), (1, st.sampled_from(["POST", "HEAD"]) | latin1)
        ),
        path=near("/oauth/register/client"),
        query=query,
        body=body,
        content_type=content_type,
        headers=st.builds(_headers, auth, st.none(), st.just([])),
        environ=st.builds(_environ, st.none(), st.booleans()),
    )
    # A deletion with its own token: the registrations kept for it go one by one, the first stays.
    deleted = st.sampled_from(s.registrations[1:]).map(
        lambda other: Case(
            "DELETE",
            "/oauth/register/client",
            f"client_id={quote_plus(other['client_id'])}",
            b"",
            None,
            (("HTTP_AUTHORIZATION", f"Bearer {other['registration_access_token']}"),),
            (),
        )
    )
    return weighted((6, registering), (6, managed), (1, deleted))


#: Every target: each endpoint, the authorization endpoint by both methods, and the guard on both token formats.
TARGETS: dict[str, Target] = {
    "registration": Target("opaque", _registration_cases),
    "token": Target("opaque", _token_cases),
    "authorize-get": Target("opaque", _authorize_cases("GET")),
    "authorize-post": Target("opaque", _authorize_cases("POST")),
    "revoke": Target("opaque", _token_management_cases("/oauth/revoke")),
    "introspect": Target("opaque", _token_management_cases("/oauth/introspect")),
    "metadata": Target("opaque", _document_cases("/.well-known/oauth-authorization-server")),
    "jwks": Target("jwt", _document_cases("/oauth/jwks")),
    "guard": Target("opaque", _guard_cases),
    "guard-jwt": Target("jwt", _guard_cases),
}


GUARD_PATHS = weighted(
    (
        8,
        st.sampled_from(
            [
                "/api/me",
                "/api/items",
                "/admin",
                "/x",
                "/health",
                "/health/",
                "/static/a.css",
                "/staticx",
                "",
                "/oauth",
                "/oauth/token/x",
            ]
        ),
    ),
    (1, latin1),
)


# -- running a case and judging the answer -----------------------------------------------------------


@dataclass
class Answer:
    """What came back: status code, headers and the body, or the exception that escaped."""

    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    error: BaseException | None = None


def send(server: Server, case: Case) -> tuple[Answer, dict[str, Any]]:
    """Run ``case`` through the middleware; the environ is returned for the checks."""
    answer = Answer()
    environ = case.wsgi_environ()

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        answer.status = int(status.split(" ", 1)[0])
        answer.headers = list(headers)
        return lambda data: None

    try:
        app_iter = server.middleware(environ, start_response)
        try:
            answer.body = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
    except Exception as exc:  # what the WSGI server would turn into a 500
        answer.error = exc
    return answer, environ


def problems(target: str, server: Server, case: Case) -> tuple[Answer, list[str]]:
    """Send ``case`` and list everything wrong with the answer (empty: all good)."""
    calls_before = server.app.calls
    answer, environ = send(server, case)
    found: list[str] = []
    if answer.error is not None:
        return answer, [f"exception escaped the middleware: {type(answer.error).__name__}: {answer.error}"]
    if answer.status >= 500:
        found.append(f"status {answer.status}")
    if b"Traceback" in answer.body or b'File "' in answer.body:
        found.append("traceback in the body")
    for name, value in answer.headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            found.append(f"line break in header {name}")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            found.append(f"header {name} is not latin-1")
    headers = {k.lower(): v for k, v in answer.headers}
    content_type = headers.get("content-type", "")
    challenge = headers.get("www-authenticate", "")
    if answer.status == 401 and not challenge:
        found.append("401 without a challenge")  # RFC 9110 §15.5.2
    if content_type.startswith("application/json") and case.method != "HEAD":
        try:
            document = json.loads(answer.body)
        except ValueError:
            found.append("JSON answer does not parse")
        else:
            # RFC 6750 §3.1: a request without credentials gets a bare challenge and no error code.
            bare = (
                answer.status == 401 and document == {} and re.fullmatch(r'Bearer realm="[^"]*"', challenge)
            )
            if (
                answer.status >= 400
                and not bare
                and not (isinstance(document, dict) and document.get("error"))
            ):
                found.append("error answer without error")
    authorize_path = server.middleware.settings.authorize_path
    if (
        case.method == "POST"
        and case.path == authorize_path
        and 300 <= answer.status < 400
        and answer.status != 303
    ):
        found.append(
            f"a POST to the authorization endpoint answered {answer.status}, not 303"
        )  # RFC 9700 §4.12
    if server.app.calls != calls_before:
        found.extend(_app_call_problems(target, server, case, environ))
    return answer, found


def _app_call_problems(target: str, server: Server, case: Case, environ: dict[str, Any]) -> list[str]:
    """The protected app ran: never on an endpoint's path, elsewhere only on a public path or with a valid token."""
    if case.path in server.middleware.routes:
        return [f"the protected app answered a request to the {target} endpoint"]
    settings = server.middleware.settings
    if settings.public_paths.matches(case.path):
        return []
    token = server.app.environ.get("oauth2.token")
    if token is None:
        return ["the protected app ran without a token"]
    if token.token not in server.tokens:
        return ["the protected app ran with a token that was never issued"]
    if server.middleware.server.tokens.introspect(token.token) is None:
        return ["the protected app ran with an inactive token"]
    needed = required_scopes(settings.scope_rules, case.method, case.path) or ()
    if not set(needed) <= set(token.scopes):
        return [f"the protected app ran without scope {needed}"]
    if environ is not server.app.environ:
        return ["the protected app saw another environ"]
    return []
