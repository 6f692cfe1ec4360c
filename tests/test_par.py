"""Pushed authorization requests (RFC 9126): the endpoint, the request_uri at the authorization endpoint,
``require_pushed_authorization_requests``, the metadata and the one-time use raced on every store."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import requests
import webtest
from conftest import allow_body_secret, basic, register
from oauth_flows import (
    AUTHORIZE,
    NATIVE_ID,
    NATIVE_REDIRECT,
    TOKEN,
    VERIFIER,
    WEB_ID,
    WEB_REDIRECT,
    WEB_SECRET,
    SlowReads,
    code_request,
    flow_middleware,
    location_params,
    login,
    redeem,
    serve,
)
from store_fixtures import backend, store  # noqa: F401

from oauth_middleware.authorization import REQUEST_URI_PREFIX
from oauth_middleware.models import digest

PAR = "/oauth/par"
METADATA = "/.well-known/oauth-authorization-server"
ISSUER = "http://localhost"
WEB_AUTH = {"Authorization": basic(WEB_ID, WEB_SECRET)}
THREADS = 20


@pytest.fixture
def middleware(make_middleware, clock):
    return flow_middleware(make_middleware, clock=clock)


@pytest.fixture
def app(middleware):
    return webtest.TestApp(middleware)


def web_request(**overrides):
    """The confidential web client's code request, as it pushes it."""
    return code_request(**{"client_id": WEB_ID, "redirect_uri": WEB_REDIRECT, **overrides})


def push(app, params=None, headers=None, status=201):
    """POST ``params`` (the web client's request by default) to the PAR endpoint as the web client."""
    return app.post(
        PAR,
        web_request() if params is None else params,
        headers=WEB_AUTH if headers is None else headers,
        status=status,
    )


def pushed_uri(app, params=None, headers=None):
    return push(app, params, headers).json["request_uri"]


def approve_pushed(app, client_id, request_uri, decision="approve"):
    consent = login(app, {"client_id": client_id, "request_uri": request_uri})
    answer = consent.forms[0].submit("decision", value=decision)
    assert answer.status_int == 303
    return str(answer.headers["Location"])


# -- the endpoint (RFC 9126 §2) --------------------------------------------------------


def test_push_answers_201_with_a_one_time_request_uri(app):
    response = push(app)
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert set(response.json) == {"request_uri", "expires_in"}
    assert response.json["expires_in"] == 60
    request_uri = response.json["request_uri"]
    assert request_uri.startswith(REQUEST_URI_PREFIX)
    assert len(request_uri) - len(REQUEST_URI_PREFIX) >= 43  # 256 random bits
    assert pushed_uri(app) != request_uri


def test_request_uri_is_stored_only_as_a_hash(app, middleware):
    request_uri = pushed_uri(app)
    random_part = request_uri[len(REQUEST_URI_PREFIX) :]
    kept = middleware.server.store
    assert kept.get(f"par:{random_part}") is None
    assert kept.get(f"par:{digest(random_part)}")["c"] == WEB_ID


def test_only_the_request_parameters_are_stored(app, middleware):
    allow_body_secret(middleware, WEB_ID)
    form = {**web_request(), "client_secret": WEB_SECRET, "nonce": "n-1"}
    request_uri = app.post(PAR, form, status=201).json["request_uri"]
    kept = middleware.server.store.get(f"par:{digest(request_uri[len(REQUEST_URI_PREFIX) :])}")
    assert kept["p"] == web_request()  # no client_secret, nothing this server does not read


def test_par_ttl_sets_expires_in(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, par_ttl="300"))
    assert push(app).json["expires_in"] == 300


def test_public_client_pushes_with_its_client_id(app):
    response = app.post(PAR, code_request(), status=201)
    assert response.json["request_uri"].startswith(REQUEST_URI_PREFIX)


def test_client_id_is_added_when_only_authenticated(app):
    params = web_request()
    del params["client_id"]
    location = approve_pushed(app, WEB_ID, pushed_uri(app, params))
    assert "code" in location_params(location)


@pytest.mark.parametrize(
    ("params", "headers", "status", "error"),
    [
        pytest.param(web_request(), {}, 401, "invalid_client", id="no-client-authentication"),
        pytest.param(
            web_request(), {"Authorization": basic(WEB_ID, "wrong")}, 401, "invalid_client", id="wrong-secret"
        ),
        pytest.param(
            {**web_request(), "client_secret": WEB_SECRET},
            {},
            401,
            "invalid_client",
            id="wrong-auth-method",  # registered for client_secret_basic
        ),
        pytest.param(
            {**web_request(), "request_uri": REQUEST_URI_PREFIX + "x"},
            WEB_AUTH,
            400,
            "invalid_request",
            id="request-uri-pushed",
        ),
        pytest.param(
            web_request(client_id=NATIVE_ID), WEB_AUTH, 400, "invalid_request", id="other-client-id"
        ),
        pytest.param(
            web_request(redirect_uri="https://evil.example/cb"),
            WEB_AUTH,
            400,
            "invalid_request",
            id="bad-redirect-uri",
        ),
        pytest.param(web_request(scope="nope"), WEB_AUTH, 400, "invalid_scope", id="unknown-scope"),
        pytest.param(
            web_request(response_type="token"),
            WEB_AUTH,
            400,
            "unsupported_response_type",
            id="unsupported-type",
        ),
        pytest.param(
            web_request(response_type=None), WEB_AUTH, 400, "invalid_request", id="no-response-type"
        ),
        pytest.param(web_request(code_challenge=None), WEB_AUTH, 400, "invalid_request", id="no-pkce"),
        pytest.param(web_request(state="x" * 5000), WEB_AUTH, 400, "invalid_request", id="over-long-state"),
    ],
)
def test_push_errors_are_json_to_the_client(app, params, headers, status, error):
    response = app.post(PAR, params, headers=headers, status=status)
    assert response.content_type == "application/json"
    assert response.json["error"] == error
    assert "Location" not in response.headers
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_push_of_a_client_not_allowed_the_response_type_is_unauthorized_client(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, response_types="code token"))
    response = app.post(PAR, code_request(response_type="token", code_challenge=None), status=400)
    assert response.json["error"] == "unauthorized_client"


def test_push_of_a_repeated_parameter_is_invalid_request(app):
    body = "&".join(f"{k}={v}" for k, v in web_request().items()) + "&scope=write"
    response = app.post(
        PAR, body, headers={**WEB_AUTH, "Content-Type": "application/x-www-form-urlencoded"}, status=400
    )
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("method", "status"),
    [pytest.param("get", 405, id="GET"), pytest.param("put", 405, id="PUT")],
)
def test_push_is_post_only(app, method, status):
    response = getattr(app, method)(PAR, status=status)
    assert response.headers["Allow"] == "POST"


def test_push_must_be_a_form(app):
    response = app.post(PAR, '{"a": 1}', headers={**WEB_AUTH, "Content-Type": "application/json"}, status=400)
    assert response.json["error"] == "invalid_request"


def test_push_over_plain_http_is_refused_under_require_https(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, require_https="true"))
    response = push(app, status=400)
    assert response.json["error"] == "invalid_request"


def test_failed_push_authentication_is_throttled(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, throttle_max_failures="2"))
    statuses = [
        push(app, headers={"Authorization": basic(WEB_ID, "wrong")}, status="*").status_int for _ in range(4)
    ]
    assert statuses[-1] == 429


# -- the request_uri at the authorization endpoint (RFC 9126 §4) ----------------------------


def test_pushed_request_gets_a_code_that_redeems(app):
    location = approve_pushed(app, WEB_ID, pushed_uri(app))
    assert location.startswith(WEB_REDIRECT + "?")
    params = location_params(location)
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "st-123"
    assert params["iss"] == ISSUER
    form = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": WEB_REDIRECT,
        "code_verifier": VERIFIER,
    }
    assert app.post(TOKEN, form, headers=WEB_AUTH).json["token_type"] == "Bearer"


def test_public_client_pushed_request_redeems(app):
    request_uri = app.post(PAR, code_request(), status=201).json["request_uri"]
    code = location_params(approve_pushed(app, NATIVE_ID, request_uri))["code"]
    assert redeem(app, code)["token_type"] == "Bearer"


def test_parameters_next_to_request_uri_are_ignored(app):
    request_uri = pushed_uri(app)
    consent = login(
        app, {"client_id": WEB_ID, "request_uri": request_uri, "scope": "write", "state": "other"}
    )
    assert "<code>write</code>" not in consent.text
    params = location_params(consent.forms[0].submit("decision", value="approve").headers["Location"])
    assert params["state"] == "st-123"


def test_the_forms_carry_only_client_id_and_request_uri(app):
    request_uri = pushed_uri(app)
    page = app.get(AUTHORIZE, {"client_id": WEB_ID, "request_uri": request_uri})
    fields = {name for name, _ in page.forms[0].submit_fields()}
    assert fields == {"client_id", "request_uri", "step", "csrf_token", "username", "password"}


def _error_page(response, error):
    assert response.status_int == 400
    assert "Location" not in response.headers
    assert response.content_type == "text/html"
    assert f"<code>{error}</code>" in response.text


@pytest.mark.parametrize(
    ("query", "error"),
    [
        pytest.param(
            lambda uri: {"client_id": WEB_ID, "request_uri": REQUEST_URI_PREFIX + "unknown"},
            "invalid_request_uri",
            id="unknown",
        ),
        pytest.param(
            lambda uri: {"client_id": WEB_ID, "request_uri": uri[len(REQUEST_URI_PREFIX) :]},
            "invalid_request_uri",
            id="no-urn-prefix",
        ),
        pytest.param(
            lambda uri: {"client_id": NATIVE_ID, "request_uri": uri}, "invalid_request_uri", id="other-client"
        ),
        pytest.param(lambda uri: {"request_uri": uri}, "invalid_request", id="no-client-id"),
        pytest.param(lambda uri: {"client_id": WEB_ID, "request_uri": ""}, "invalid_request_uri", id="empty"),
    ],
)
def test_bad_request_uri_is_an_error_page(app, query, error):
    response = app.get(AUTHORIZE, query(pushed_uri(app)), status=400)
    _error_page(response, error)


def test_repeated_request_uri_is_an_error_page(app):
    uri = pushed_uri(app)
    response = app.get(f"{AUTHORIZE}?client_id={WEB_ID}&request_uri={uri}&request_uri={uri}", status=400)
    _error_page(response, "invalid_request")


def test_expired_request_uri_is_an_error_page(app, clock):
    uri = pushed_uri(app)
    clock.advance(61)
    _error_page(
        app.get(AUTHORIZE, {"client_id": WEB_ID, "request_uri": uri}, status=400), "invalid_request_uri"
    )


def test_request_uri_expiring_before_the_decision_gives_no_code(app, clock):
    uri = pushed_uri(app)
    consent = login(app, {"client_id": WEB_ID, "request_uri": uri})
    clock.advance(61)
    _error_page(consent.forms[0].submit("decision", value="approve", status=400), "invalid_request_uri")


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_replayed_request_uri_is_an_error_page(app, decision):
    uri = pushed_uri(app)
    approve_pushed(app, WEB_ID, uri, decision=decision)
    _error_page(
        app.get(AUTHORIZE, {"client_id": WEB_ID, "request_uri": uri}, status=400), "invalid_request_uri"
    )


def test_second_decision_on_one_request_uri_gets_no_code(app):
    uri = pushed_uri(app)
    consent = login(app, {"client_id": WEB_ID, "request_uri": uri})
    assert consent.forms[0].submit("decision", value="approve").status_int == 303
    _error_page(consent.forms[0].submit("decision", value="approve", status=400), "invalid_request_uri")


def test_denied_pushed_request_redirects_access_denied_with_iss(app):
    params = location_params(approve_pushed(app, WEB_ID, pushed_uri(app), decision="deny"))
    assert params == {
        "error": "access_denied",
        "error_description": "the user denied the request",
        "state": "st-123",
        "iss": ISSUER,
    }


def test_remembered_consent_uses_the_request_uri_on_the_first_get(make_middleware, clock):
    app = webtest.TestApp(flow_middleware(make_middleware, remember_consent="true", clock=clock))
    approve_pushed(app, WEB_ID, pushed_uri(app))
    uri = pushed_uri(app)
    answer = app.get(AUTHORIZE, {"client_id": WEB_ID, "request_uri": uri}, status=302)
    assert "code" in location_params(answer.headers["Location"])
    _error_page(
        app.get(AUTHORIZE, {"client_id": WEB_ID, "request_uri": uri}, status=400), "invalid_request_uri"
    )


def test_client_changed_after_the_push_is_checked_again(app, middleware):
    uri = pushed_uri(app)
    client = middleware.server.repository.get_client(WEB_ID)
    middleware.server.repository.save_client(
        dataclasses.replace(client, redirect_uris=("https://web.example/new",))
    )
    _error_page(app.get(AUTHORIZE, {"client_id": WEB_ID, "request_uri": uri}, status=400), "invalid_request")


# -- require_pushed_authorization_requests (RFC 9126 §5, §6) --------------------------


def _par_client(middleware):
    register(
        middleware,
        "par-only",
        None,
        redirect_uris=[NATIVE_REDIRECT],
        grant_types=["authorization_code"],
        scopes=["read"],
    )
    client = middleware.server.repository.get_client("par-only")
    middleware.server.repository.save_client(
        dataclasses.replace(client, require_pushed_authorization_requests=True)
    )


def test_client_required_to_push_is_sent_back_invalid_request(app, middleware):
    _par_client(middleware)
    response = app.get(AUTHORIZE, code_request(client_id="par-only"), status=302)
    params = location_params(response.headers["Location"])
    assert response.headers["Location"].startswith(NATIVE_REDIRECT + "?")
    assert params["error"] == "invalid_request"
    assert params["state"] == "st-123"
    assert params["iss"] == ISSUER
    # Other clients are not affected; the client itself may push.
    assert app.get(AUTHORIZE, code_request(), status=200)
    uri = app.post(PAR, code_request(client_id="par-only"), status=201).json["request_uri"]
    assert "code" in location_params(approve_pushed(app, "par-only", uri))


def test_client_required_to_push_cannot_post_the_plain_request_either(app, middleware):
    _par_client(middleware)
    response = app.post(AUTHORIZE, code_request(client_id="par-only"), status=303)
    assert location_params(response.headers["Location"])["error"] == "invalid_request"


def test_server_wide_requirement(make_middleware):
    app = webtest.TestApp(flow_middleware(make_middleware, require_pushed_authorization_requests="true"))
    response = app.get(AUTHORIZE, code_request(), status=302)
    assert location_params(response.headers["Location"])["error"] == "invalid_request"
    uri = app.post(PAR, code_request(), status=201).json["request_uri"]
    assert "code" in location_params(approve_pushed(app, NATIVE_ID, uri))


# -- metadata (RFC 9126 §5) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "endpoint", "required"),
    [
        pytest.param({}, True, False, id="default"),
        pytest.param({"require_pushed_authorization_requests": "true"}, True, True, id="required"),
        pytest.param({"par_path": "/push"}, True, False, id="moved"),
        pytest.param({"grants": "client_credentials"}, False, False, id="no-authorization-endpoint"),
    ],
)
def test_metadata_advertises_par_exactly_when_enabled(make_middleware, settings, endpoint, required):
    app = webtest.TestApp(make_middleware(**settings))
    document = app.get(METADATA).json
    path = settings.get("par_path", PAR)
    assert ("pushed_authorization_request_endpoint" in document) is endpoint
    if endpoint:
        assert document["pushed_authorization_request_endpoint"] == ISSUER + path
        assert app.post(path, {"client_id": "nobody"}, status=401).json["error"] == "invalid_client"
    else:
        # Not routed: the demo app's guard answers, not the endpoint.
        response = app.post(PAR, {"client_id": "nobody"}, status=401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert ("require_pushed_authorization_requests" in document) is required
    if required:
        assert document["require_pushed_authorization_requests"] is True


# -- clients: CLI and clients_file --------------------------------------------------------


def test_cli_client_add_require_pushed_authorization_requests(tmp_path, capsys):
    from oauth_middleware.cli import main
    from oauth_middleware.repository import Repository
    from oauth_middleware.stores import StoreConfig, open_store

    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        "store = sqlite:///%(here)s/oauth.db\nscopes = read write\n"
    )
    common = ["--redirect-uri", NATIVE_REDIRECT, "--grant", "authorization_code", "--public"]
    assert (
        main(
            [
                "client",
                "add",
                str(ini),
                "--client-id",
                "p",
                *common,
                "--require-pushed-authorization-requests",
            ]
        )
        == 0
    )
    assert "require_pushed_authorization_requests: true" in capsys.readouterr().out
    assert main(["client", "add", str(ini), "--client-id", "q", *common]) == 0
    clients = open_store(StoreConfig(f"sqlite:///{tmp_path}/oauth.db"))
    try:
        repository = Repository(clients)
        assert repository.get_client("p").require_pushed_authorization_requests is True
        assert repository.get_client("q").require_pushed_authorization_requests is False
    finally:
        clients.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("true", True, id="true"),
        pytest.param("false", False, id="false"),
        pytest.param("ture", None, id="typo"),
    ],
)
def test_clients_file_key(tmp_path, value, expected):
    from oauth_middleware.clients import load_clients_file
    from oauth_middleware.errors import ConfigError

    path = tmp_path / "clients.ini"
    path.write_text(
        f"[client:c]\npublic = true\nredirect_uris = {NATIVE_REDIRECT}\ngrants = authorization_code\n"
        f"require_pushed_authorization_requests = {value}\n"
    )
    if expected is None:
        with pytest.raises(ConfigError, match="require_pushed_authorization_requests"):
            load_clients_file(str(path))
    else:
        assert load_clients_file(str(path))[0].require_pushed_authorization_requests is expected


# -- one-time use, raced (RFC 9126 §7.3 via §2.2; "exactly one wins") ---------------------


def test_decision_on_one_request_uri_raced_by_20_threads_has_one_winner(make_middleware, store):  # noqa: F811
    # Every racer reads the pushed request before any takes it: the worst case.
    middleware = flow_middleware(make_middleware, store_backend=SlowReads(store, ("par:",), readers=THREADS))
    app = webtest.TestApp(middleware)
    uri = app.post(PAR, code_request(), status=201).json["request_uri"]
    consent = login(app, {"client_id": NATIVE_ID, "request_uri": uri})
    form = consent.forms[0]
    data = {**{name: value for name, value in form.submit_fields()}, "decision": "approve"}
    cookie = "; ".join(f"{name}={value}" for name, value in app.cookies.items())
    barrier = threading.Barrier(THREADS)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def post(base):
        with requests.Session() as session:
            barrier.wait()
            response = session.post(
                base + AUTHORIZE, data=data, headers={"Cookie": cookie}, allow_redirects=False, timeout=30
            )
        with lock:
            results.append(response)

    with serve(middleware, threads=THREADS) as base:
        workers = [threading.Thread(target=post, args=(base,)) for _ in range(THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert sorted(response.status_code for response in results) == [303] + [400] * (THREADS - 1)
    winner = next(response for response in results if response.status_code == 303)
    code = location_params(winner.headers["Location"])["code"]
    assert all("invalid_request_uri" in response.text for response in results if response.status_code == 400)
    assert redeem(app, code)["token_type"] == "Bearer"
    _error_page(
        app.get(AUTHORIZE, {"client_id": NATIVE_ID, "request_uri": uri}, status=400), "invalid_request_uri"
    )
