"""A user's grants listed and ended (issue 18 item 2): ``list_grants``, ``revoke_grants`` and
``oauth-middleware grants list|revoke``, on every store, for opaque and JWT tokens."""

from __future__ import annotations

import pathlib

import pytest
import webtest
from conftest import SERVICE_ID, SERVICE_SECRET, basic, register
from oauth_flows import (
    NATIVE_ID,
    TOKEN,
    USERS,
    VERIFIER,
    WEB_ID,
    WEB_REDIRECT,
    WEB_SECRET,
    api_status,
    approve,
    code_request,
    flow_middleware,
    get_code,
    location_params,
    redeem,
)
from peer_issuer import ACCESS_TOKEN_TYPE, JWT_BEARER, TOKEN_EXCHANGE, issuer_file, peer_jwt
from store_fixtures import backend, store  # noqa: F401

from oauth_middleware.cli import filter_settings, main
from oauth_middleware.demo import DemoApp
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import digest
from oauth_middleware.stores.memory import MemoryStore

OTHER_ID = "other"
JWT = {
    "token_format": "jwt",
    "jwt_algorithm": "HS256",
    "jwt_secret": "s" * 32,
    "audience": "https://api.example",
    "jwt_check_revocation": "true",
}


def grants_middleware(make_middleware, token_format="opaque", **settings):
    """The flow clients, and ``other``: a second public client with the password grant."""
    settings.setdefault("grants", "authorization_code refresh_token password client_credentials")
    middleware = flow_middleware(
        make_middleware,
        introspection_clients=SERVICE_ID,
        **(JWT if token_format == "jwt" else {}),
        **settings,
    )
    register(middleware, OTHER_ID, None, grant_types=["password", "refresh_token"], scopes=["read", "write"])
    return middleware


def password_tokens(app, user, client_id=NATIVE_ID, scope="read"):
    form = {"grant_type": "password", "username": user, "password": USERS[user], "client_id": client_id}
    return app.post(TOKEN, {**form, "scope": scope}).json


def refresh_status(app, client_id, refresh_token):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    answer = app.post(TOKEN, form, expect_errors=True)
    return answer.status_int, answer.json.get("error")


def active(app, token):
    auth = {"Authorization": basic(SERVICE_ID, SERVICE_SECRET)}
    return app.post("/oauth/introspect", {"token": token}, headers=auth).json["active"]


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_revoke_one_clients_grants_then_all(make_middleware, store, token_format):  # noqa: F811
    middleware = grants_middleware(make_middleware, token_format, store_backend=store)
    app = webtest.TestApp(middleware)
    by_code = redeem(app, get_code(app))  # alice -> native, a code grant
    by_password = password_tokens(app, "alice", scope="read write")  # alice -> native again
    other = password_tokens(app, "alice", OTHER_ID)
    bob = password_tokens(app, "bob")
    refreshed = app.post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": by_code["refresh_token"], "client_id": NATIVE_ID},
    ).json

    listed = middleware.list_grants("alice")
    assert [grant.client_id for grant in listed] == [NATIVE_ID, OTHER_ID]
    assert listed[0].scopes == ("read", "write") and listed[0].tokens and not listed[0].consent
    assert listed[0].since <= listed[1].since <= listed[0].until

    ended = middleware.revoke_grants("alice", NATIVE_ID)
    assert [grant.client_id for grant in ended] == [NATIVE_ID]
    for body in (by_code, by_password, refreshed):
        assert api_status(app, body["access_token"]) == 401
        assert not active(app, body["access_token"])
    assert refresh_status(app, NATIVE_ID, refreshed["refresh_token"]) == (400, "invalid_grant")
    assert refresh_status(app, NATIVE_ID, by_password["refresh_token"]) == (400, "invalid_grant")
    # Other clients' and other users' tokens are untouched.
    assert api_status(app, other["access_token"]) == 200
    assert api_status(app, bob["access_token"]) == 200
    assert [grant.client_id for grant in middleware.list_grants("alice")] == [OTHER_ID]

    assert [grant.client_id for grant in middleware.revoke_grants("alice")] == [OTHER_ID]
    assert api_status(app, other["access_token"]) == 401
    assert refresh_status(app, OTHER_ID, other["refresh_token"]) == (400, "invalid_grant")
    assert middleware.list_grants("alice") == []
    assert api_status(app, bob["access_token"]) == 200
    assert refresh_status(app, NATIVE_ID, bob["refresh_token"])[0] == 200


def test_a_code_not_yet_redeemed_is_revoked(make_middleware):
    middleware = grants_middleware(make_middleware)
    app = webtest.TestApp(middleware)
    code = get_code(app)
    assert middleware.list_grants("alice")[0].client_id == NATIVE_ID
    middleware.revoke_grants("alice")
    assert redeem(app, code, status=400)["error"] == "invalid_grant"


def test_an_implicit_token_is_revoked(make_middleware):
    middleware = grants_middleware(make_middleware, response_types="code token")
    app = webtest.TestApp(middleware)
    request = {"response_type": "token", "client_id": "spa", "redirect_uri": "https://spa.example/cb"}
    fragment = location_params(approve(app, {**request, "scope": "read", "state": "s1"}), fragment=True)
    assert api_status(app, fragment["access_token"]) == 200
    assert [grant.client_id for grant in middleware.revoke_grants("alice")] == ["spa"]
    assert api_status(app, fragment["access_token"]) == 401


def test_remembered_consent_is_listed_and_forgotten(make_middleware):
    middleware = grants_middleware(make_middleware, remember_consent="true")
    app = webtest.TestApp(middleware)
    request = code_request(client_id=WEB_ID, redirect_uri=WEB_REDIRECT)
    approve(app, request)
    again = app.get("/oauth/authorize", request, status=302)  # remembered: straight back
    assert "code" in location_params(again.headers["Location"])
    [grant] = middleware.list_grants("alice")
    assert (grant.client_id, grant.consent) == (WEB_ID, True)
    middleware.revoke_grants("alice", WEB_ID)
    assert app.get("/oauth/authorize", request, status=200).forms[0]["step"].value == "consent"
    # The codes issued meanwhile were revoked with the consent.
    code = location_params(again.headers["Location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": WEB_REDIRECT,
        "code_verifier": VERIFIER,
    }
    answer = app.post(TOKEN, form, headers={"Authorization": basic(WEB_ID, WEB_SECRET)}, expect_errors=True)
    assert answer.json["error"] == "invalid_grant"


EXCHANGER, EXCHANGER_SECRET = "exchanger", "exchanger-secret-0123456789"
RELYING, RELYING_SECRET = "relying", "relying-secret-0123456789"


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_jwt_grant_and_exchanged_tokens_are_listed_and_revoked(make_middleware, tmp_path, token_format):
    """Tokens of the JWT bearer grant and token exchange are grants of their own to the client
    that got them, under their user; they have no refresh token, so the grant ends with the token."""
    middleware = grants_middleware(
        make_middleware,
        token_format,
        grants=f"password refresh_token client_credentials {JWT_BEARER} {TOKEN_EXCHANGE}",
        trusted_issuers_file=issuer_file(tmp_path),
        token_exchange_policy="test_token_exchange:allow_every_exchange",
    )
    register(middleware, EXCHANGER, EXCHANGER_SECRET, grant_types=[TOKEN_EXCHANGE], scopes=["read"])
    register(middleware, RELYING, RELYING_SECRET, grant_types=[JWT_BEARER], scopes=["read"])
    app = webtest.TestApp(middleware)

    def token(client_id, secret, form):
        return app.post(TOKEN, form, headers={"Authorization": basic(client_id, secret)}).json["access_token"]

    subject = password_tokens(app, "alice", scope="read write")["access_token"]  # alice -> native
    exchange = {"grant_type": TOKEN_EXCHANGE, "subject_token_type": ACCESS_TOKEN_TYPE, "scope": "read"}
    by_exchange = token(EXCHANGER, EXCHANGER_SECRET, {**exchange, "subject_token": subject})
    by_assertion = token(RELYING, RELYING_SECRET, {"grant_type": JWT_BEARER, "assertion": peer_jwt()})
    bobs = token(RELYING, RELYING_SECRET, {"grant_type": JWT_BEARER, "assertion": peer_jwt(sub="bob")})

    listed = {grant.client_id: grant for grant in middleware.list_grants("alice")}
    assert sorted(listed) == sorted([NATIVE_ID, EXCHANGER, RELYING])
    assert listed[EXCHANGER].scopes == ("read",) and listed[EXCHANGER].tokens

    assert [grant.client_id for grant in middleware.revoke_grants("alice", RELYING)] == [RELYING]
    assert api_status(app, by_assertion) == 401 and not active(app, by_assertion)
    assert api_status(app, bobs) == 200 and api_status(app, by_exchange) == 200
    # The exchanged token is the exchanging client's grant: revoking it leaves the subject token.
    middleware.revoke_grants("alice", EXCHANGER)
    assert api_status(app, by_exchange) == 401 and not active(app, by_exchange)
    assert api_status(app, subject) == 200
    middleware.revoke_grants("alice")
    assert api_status(app, subject) == 401
    assert middleware.list_grants("alice") == []
    assert api_status(app, bobs) == 200


def revoking_claims(client, user_id, grant_type, scopes, data):
    """A ``token_claims`` hook that ends the user's grants while their tokens are being issued."""
    REVOKER["middleware"].revoke_grants(user_id)
    return {}


REVOKER: dict = {}


class RecordingStore(MemoryStore):
    """A memory store that remembers every key written and every index member added."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def put(self, key, value, ttl):
        self.written.append(key)
        super().put(key, value, ttl)

    def index_add(self, key, member, ttl):
        self.written.append(member)
        super().index_add(key, member, ttl)


@pytest.mark.parametrize("token_format", ["opaque", "jwt"])
def test_a_grant_revoked_while_its_tokens_are_issued_leaves_none_alive(make_middleware, token_format):
    recording = RecordingStore()
    middleware = grants_middleware(
        make_middleware,
        token_format,
        store_backend=recording,
        token_claims="test_user_grants:revoking_claims",
    )
    REVOKER["middleware"] = middleware
    app = webtest.TestApp(middleware)
    form = {"grant_type": "password", "username": "alice", "password": USERS["alice"], "client_id": NATIVE_ID}
    assert app.post(TOKEN, form, status=400).json["error"] == "invalid_grant"
    stored = [key for key in recording.written if key.startswith(("at:", "rt:"))]
    denied = [member.split(":")[1] for member in recording.written if member.startswith("jwt:")]
    assert stored or denied  # tokens were issued after the revocation...
    assert all(recording.get(key) is None for key in stored)  # ...and revoked
    assert all(recording.get(f"deny:{jti}") is not None for jti in denied)
    assert middleware.list_grants("alice") == []


def test_revoking_nothing_returns_nothing(make_middleware):
    middleware = grants_middleware(make_middleware)
    assert middleware.list_grants("nobody") == []
    assert middleware.revoke_grants("nobody") == []


# -- the command line ----------------------------------------------------------------


@pytest.fixture
def config(tmp_path: pathlib.Path) -> str:
    (tmp_path / "clients.ini").write_text(
        f"[client:{NATIVE_ID}]\npublic = true\ngrants = password refresh_token\nscopes = read write\n"
        f"[client:{OTHER_ID}]\npublic = true\ngrants = password refresh_token\nscopes = read write\n"
        f"[client:{SERVICE_ID}]\nsecret_hash = {digest(SERVICE_SECRET)}\ngrants = client_credentials\n"
    )
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nstore = sqlite:///%(here)s/oauth.db\n"
        "issuer = http://localhost\nrequire_https = false\nscopes = read write\n"
        "grants = password refresh_token client_credentials\nverify_password = oauth_flows:verify_password\n"
        "clients_file = %(here)s/clients.ini\n"
    )
    return str(ini)


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_grants_list_and_revoke_commands(capsys, config):
    app = webtest.TestApp(OAuth2Middleware(DemoApp(), filter_settings(config)))
    native = password_tokens(app, "alice")
    other = password_tokens(app, "alice", OTHER_ID, "read write")
    status, out, _ = run(capsys, "grants", "list", config, "--user", "alice")
    assert status == 0
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [NATIVE_ID, OTHER_ID]
    assert "\tscopes=read write\tholds=tokens" in lines[1]
    assert lines[0].split("\t")[1].startswith("since=20")

    status, out, _ = run(capsys, "grants", "revoke", config, "--user", "alice", "--client", NATIVE_ID)
    assert status == 0 and out.startswith(f"{NATIVE_ID}\t")
    assert api_status(app, native["access_token"]) == 401
    assert api_status(app, other["access_token"]) == 200
    status, out, _ = run(capsys, "grants", "revoke", config, "--user", "alice")
    assert status == 0
    assert api_status(app, other["access_token"]) == 401


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["list", "--user", "nobody"], "user 'nobody' has no grants", id="list-unknown-user"),
        pytest.param(["revoke", "--user", "nobody"], "user 'nobody' has no grants", id="revoke-unknown-user"),
        pytest.param(
            ["revoke", "--user", "alice", "--client", "ghost"],
            "no client 'ghost'",
            id="revoke-unknown-client",
        ),
        pytest.param(
            ["revoke", "--user", "alice", "--client", SERVICE_ID],
            f"user 'alice' has no grants with client '{SERVICE_ID}'",
            id="revoke-client-without-grants",
        ),
    ],
)
def test_grants_commands_errors_are_one_line(capsys, config, argv, message):
    OAuth2Middleware(DemoApp(), filter_settings(config))  # loads the clients
    action, *rest = argv
    status, out, err = run(capsys, "grants", action, config, *rest)
    assert (status, out) == (2, "")
    assert err == f"oauth-middleware: error: {message}\n"
