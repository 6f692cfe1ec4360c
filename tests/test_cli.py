"""The oauth-middleware command: client add/list/remove/hash, and clients_file."""

from __future__ import annotations

import argparse
import pathlib
import re

import pytest
import webtest
from conftest import basic

from oauth_middleware.cli import build_parser, main
from oauth_middleware.demo import DemoApp
from oauth_middleware.errors import ConfigError
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.models import digest


@pytest.fixture
def config(tmp_path: pathlib.Path) -> str:
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        "store = sqlite:///%(here)s/oauth.db\nscopes = read write\n"
    )
    return str(ini)


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _app(config: str) -> webtest.TestApp:
    store_url = f"sqlite:///{pathlib.Path(config).parent}/oauth.db"
    return webtest.TestApp(
        OAuth2Middleware(
            DemoApp(), issuer="http://localhost", store=store_url, scopes="read write", require_https="false"
        )
    )


def test_add_generates_secret_once_and_stores_only_its_hash(capsys, config):
    status, out, _ = run(
        capsys,
        "client",
        "add",
        config,
        "--client-id",
        "svc",
        "--grant",
        "client_credentials",
        "--scope",
        "read",
    )
    assert status == 0
    secret = re.search(r"client_secret: (\S+)", out).group(1)
    assert len(secret) >= 43
    # The secret works at the token endpoint of an app on the same store...
    response = _app(config).post(
        "/oauth/token", {"grant_type": "client_credentials"}, headers={"Authorization": basic("svc", secret)}
    )
    assert response.json["scope"] == "read"
    # ...is never shown again, and is not in the database file.
    status, out, _ = run(capsys, "client", "list", config)
    assert status == 0
    assert "svc\tconfidential\tgrants=client_credentials\tscopes=read" in out
    assert secret not in out
    # WAL mode: recent writes may still sit in the -wal file.
    db = b"".join(p.read_bytes() for p in pathlib.Path(config).parent.glob("oauth.db*"))
    assert secret.encode() not in db
    assert digest(secret).encode() in db


def test_add_with_given_secret_does_not_print_it(capsys, config):
    status, out, _ = run(
        capsys,
        "client",
        "add",
        config,
        "--client-id",
        "svc",
        "--secret",
        "given-secret-123",
        "--grant",
        "client_credentials",
    )
    assert status == 0
    assert "given-secret-123" not in out
    _app(config).post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic("svc", "given-secret-123")},
    )
    # Regression: a chosen secret is stored as a salted slow hash, not as its SHA-256.
    db = b"".join(p.read_bytes() for p in pathlib.Path(config).parent.glob("oauth.db*"))
    assert digest("given-secret-123").encode() not in db
    assert SLOW_HASH.search(db.decode("latin-1"))


def test_add_says_what_it_registered(capsys, config):
    status, out, _ = run(
        capsys,
        "client", "add", config, "--client-id", "app", "--public", "--redirect-uri", "http://127.0.0.1:9000/cb",
        "--grant", "authorization_code", "--grant", "refresh_token", "--scope", "read", "--scope", "write",
    )  # fmt: skip
    assert status == 0
    assert out.splitlines() == [
        "client_id: app",
        "type: public (no secret)",
        "token_endpoint_auth_method: none",
        "grants: authorization_code refresh_token",
        "response_types: code",
        "redirect_uris: http://127.0.0.1:9000/cb",
        "scopes: read write",
    ]


@pytest.mark.parametrize(
    ("default_scope", "meaning"),
    [
        pytest.param(
            "read", "scopes: (none: it may only have the server's default_scope, read)", id="default"
        ),
        pytest.param(
            "", "scopes: (none: it may have no scope, as the server has no default_scope)", id="none"
        ),
    ],
)
def test_add_without_scopes_says_what_that_means(capsys, tmp_path, default_scope, meaning):
    """Regression: ``client add`` without ``--scope`` registered a client that could get any scope,
    and said nothing about it."""
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nstore = sqlite:///%(here)s/oauth.db\n"
        f"scopes = read write\ndefault_scope = {default_scope}\n"
    )
    status, out, _ = run(
        capsys, "client", "add", str(ini), "--client-id", "svc", "--grant", "client_credentials"
    )
    assert status == 0
    assert meaning in out.splitlines()
    assert "type: confidential" in out


def test_add_refuses_a_scope_the_server_does_not_offer(capsys, config):
    status, _, err = run(
        capsys,
        "client",
        "add",
        config,
        "--client-id",
        "svc",
        "--grant",
        "client_credentials",
        "--scope",
        "admin",
    )
    assert status == 2
    assert err == "oauth-middleware: error: scope admin is not in the server's scopes (read write)\n"


def test_add_public_client(capsys, config):
    status, out, _ = run(
        capsys,
        "client", "add", config, "--client-id", "app", "--public",
        "--redirect-uri", "http://127.0.0.1:9000/cb", "--grant", "authorization_code", "--scope", "read",
    )  # fmt: skip
    assert status == 0
    assert "client_secret" not in out
    _, out, _ = run(capsys, "client", "list", config)
    assert "app\tpublic\tgrants=authorization_code" in out
    assert "redirect_uris=http://127.0.0.1:9000/cb" in out


def test_add_with_an_auth_method_stores_and_lists_it(capsys, config):
    status, out, _ = run(
        capsys, "client", "add", config, "--client-id", "svc", "--secret", "svc-secret-0123",
        "--grant", "client_credentials", "--auth-method", "client_secret_post",
    )  # fmt: skip
    assert status == 0
    assert "token_endpoint_auth_method: client_secret_post" in out.splitlines()
    run(capsys, "client", "add", config, "--client-id", "dflt", "--grant", "client_credentials")
    _, out, _ = run(capsys, "client", "list", config)
    lines = {line.split("\t")[0]: line for line in out.splitlines()}
    assert lines["svc"].endswith("\ttoken_endpoint_auth_method=client_secret_post")
    assert lines["dflt"].endswith("\ttoken_endpoint_auth_method=client_secret_basic")
    # Enforced over HTTP: the secret in the body, never by Basic.
    app = _app(config)
    body = {"grant_type": "client_credentials", "client_id": "svc", "client_secret": "svc-secret-0123"}
    app.post("/oauth/token", body)
    headers = {"Authorization": basic("svc", "svc-secret-0123")}
    response = app.post("/oauth/token", {"grant_type": "client_credentials"}, headers=headers, status=401)
    assert response.json["error"] == "invalid_client"


def test_add_help_lists_the_registered_auth_methods(capsys):
    with pytest.raises(SystemExit):
        main(["client", "add", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "client_secret_basic, client_secret_post, none, private_key_jwt, client_secret_jwt, test_header"
        in help_text
    )


def test_list_shows_what_a_client_stored_before_0_2_may_use(capsys, config):
    from oauth_middleware.cli import _client_repository
    from oauth_middleware.models import Client

    _client_repository(config).save_client(Client("old", digest("old-secret-0123")))
    _, out, _ = run(capsys, "client", "list", config)
    assert out.rstrip("\n").endswith("\ttoken_endpoint_auth_method=client_secret_basic,client_secret_post")


def test_add_existing_client_needs_replace(capsys, config):
    run(capsys, "client", "add", config, "--client-id", "svc", "--grant", "client_credentials")
    status, _, err = run(
        capsys, "client", "add", config, "--client-id", "svc", "--grant", "client_credentials"
    )
    assert status == 2
    assert "exists" in err
    status, _, _ = run(
        capsys, "client", "add", config, "--client-id", "svc", "--grant", "client_credentials", "--replace"
    )
    assert status == 0


def test_remove(capsys, config):
    run(capsys, "client", "add", config, "--client-id", "svc", "--grant", "client_credentials")
    assert run(capsys, "client", "remove", config, "--client-id", "svc")[0] == 0
    assert "svc" not in run(capsys, "client", "list", config)[1]
    status, _, err = run(capsys, "client", "remove", config, "--client-id", "svc")
    assert status == 2
    assert err.strip() == "oauth-middleware: error: no client 'svc'"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--grant", "teleport"], "unknown grant 'teleport'", id="unknown-grant"),
        pytest.param(
            ["--grant", "authorization_code", "--redirect-uri", "http://example.com/cb"],
            "only allowed for loopback",
            id="http-redirect",
        ),
        pytest.param(
            ["--grant", "authorization_code", "--redirect-uri", "https://example.com/cb#frag"],
            "without a fragment",
            id="fragment",
        ),
        pytest.param(
            ["--grant", "authorization_code", "--redirect-uri", "/relative"],
            "absolute",
            id="relative-redirect",
        ),
        pytest.param(
            ["--public", "--grant", "client_credentials"],
            "public client cannot use the client_credentials",
            id="public-cc",
        ),
        pytest.param(["--scope", 'a"b'], "invalid scope", id="bad-scope"),
        pytest.param(["--response-type", "id_token"], "unknown response type", id="bad-response-type"),
        pytest.param(
            ["--auth-method", "client_secret_jwt_typo"],
            "unknown client authentication method 'client_secret_jwt_typo' (known: client_secret_basic, ",
            id="unknown-auth-method",
        ),
        pytest.param(
            ["--public", "--auth-method", "client_secret_post"],
            "a public client (no secret) cannot use the client authentication method client_secret_post",
            id="public-with-secret-method",
        ),
        pytest.param(
            ["--auth-method", "none"],
            "a client with a secret cannot use the client authentication method none",
            id="confidential-none",
        ),
    ],
)
def test_add_rejects_bad_arguments_with_one_line(capsys, config, args, message):
    status, _, err = run(capsys, "client", "add", config, "--client-id", "c", *args)
    assert status == 2
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_config_file(capsys, tmp_path):
    status, _, err = run(capsys, "client", "list", str(tmp_path / "nope.ini"))
    assert status == 2
    assert "no such config file" in err


def test_config_without_our_filter(capsys, tmp_path):
    ini = tmp_path / "other.ini"
    ini.write_text("[app:main]\nuse = egg:something#main\n")
    status, _, err = run(capsys, "client", "list", str(ini))
    assert status == 2
    assert "no [filter:...] section" in err


def test_bad_setting_in_config_is_one_line(capsys, tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text(
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\nstore = memory://\naccess_token_ttl = soon\n"
    )
    status, _, err = run(capsys, "client", "list", str(ini))
    assert status == 2
    assert err.startswith("oauth-middleware: error: access_token_ttl: expected a whole number")


SLOW_HASH = re.compile(r"pbkdf2_sha256\$600000\$[0-9a-f]{32}\$[0-9a-f]{64}")


def test_hash_given_secret_is_salted_and_slow(capsys, tmp_path):
    """Regression: an operator-chosen secret was stored as its unsalted SHA-256 (was:
    ``secret_hash: <sha256>``), which gives a weak secret back offline in milliseconds."""
    status, out, _ = run(capsys, "client", "hash", "--secret", "s3cret")
    assert status == 0
    stored = out.strip().removeprefix("secret_hash: ")
    assert SLOW_HASH.fullmatch(stored), out
    assert digest("s3cret") not in out
    assert run(capsys, "client", "hash", "--secret", "s3cret")[1].strip() != out.strip()  # salted
    # The hash works in a clients_file, next to a 0.1 SHA-256 one.
    path = _clients_file(
        tmp_path,
        f"[client:slow]\nsecret_hash = {stored}\ngrants = client_credentials\n"
        f"[client:fast]\nsecret_hash = {digest('fast-secret')}\ngrants = client_credentials\n",
    )
    app = webtest.TestApp(
        OAuth2Middleware(
            DemoApp(), issuer="http://localhost", store="memory://", clients_file=path, require_https="false"
        )
    )
    for client_id, secret in (("slow", "s3cret"), ("fast", "fast-secret")):
        headers = {"Authorization": basic(client_id, secret)}
        app.post("/oauth/token", {"grant_type": "client_credentials"}, headers=headers)
        headers = {"Authorization": basic(client_id, secret + "x")}
        app.post("/oauth/token", {"grant_type": "client_credentials"}, headers=headers, status=401)
    # The stored hash itself is not the secret.
    headers = {"Authorization": basic("slow", stored)}
    app.post("/oauth/token", {"grant_type": "client_credentials"}, headers=headers, status=401)


def test_hash_generates_secret(capsys):
    _, out, _ = run(capsys, "client", "hash")
    secret = re.search(r"client_secret: (\S+)", out).group(1)
    assert f"secret_hash: {digest(secret)}" in out


# -- clients_file -------------------------------------------------------------


def _clients_file(tmp_path, text):
    path = tmp_path / "clients.ini"
    path.write_text(text)
    return str(path)


def test_clients_file_loads_clients_into_memory_store(tmp_path):
    path = _clients_file(
        tmp_path,
        f"[client:svc]\nsecret_hash = {digest('svc-secret')}\ngrants = client_credentials\nscopes = read\n"
        "[client:web]\npublic = true\ngrants = authorization_code\nredirect_uris = https://web.example/cb\n",
    )
    middleware = OAuth2Middleware(
        DemoApp(), issuer="http://localhost", store="memory://", clients_file=path, require_https="false"
    )
    assert [c.client_id for c in middleware.server.repository.list_clients()] == ["svc", "web"]
    assert middleware.server.repository.get_client("web").is_public
    app = webtest.TestApp(middleware)
    token = app.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic("svc", "svc-secret")},
    ).json["access_token"]
    app.get("/api/me", headers={"Authorization": f"Bearer {token}"})


def test_clients_file_names_the_auth_method(tmp_path):
    path = _clients_file(
        tmp_path,
        f"[client:svc]\nsecret_hash = {digest('svc-secret')}\ngrants = client_credentials\n"
        "token_endpoint_auth_method = client_secret_post\n"
        f"[client:dflt]\nsecret_hash = {digest('svc-secret')}\n"
        "[client:web]\npublic = true\n",
    )
    middleware = OAuth2Middleware(
        DemoApp(), issuer="http://localhost", store="memory://", clients_file=path, require_https="false"
    )
    methods = {c.client_id: c.token_endpoint_auth_method for c in middleware.server.repository.list_clients()}
    assert methods == {"svc": "client_secret_post", "dflt": "client_secret_basic", "web": "none"}
    app = webtest.TestApp(middleware)
    body = {"grant_type": "client_credentials", "client_id": "svc", "client_secret": "svc-secret"}
    app.post("/oauth/token", body)
    headers = {"Authorization": basic("svc", "svc-secret")}
    response = app.post("/oauth/token", {"grant_type": "client_credentials"}, headers=headers, status=401)
    assert response.json["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "[client:a]\ngrants = client_credentials\n", "needs secret_hash or public = true", id="no-secret"
        ),
        pytest.param(
            "[client:a]\nsecret_hash = plain-secret\n",
            "secret hash must be what 'oauth-middleware client hash' prints",
            id="raw-secret",
        ),
        pytest.param("[svc]\npublic = true\n", "should be [client:ID]", id="bad-section"),
        pytest.param("[client:a]\npublic = true\ncolour = red\n", "unknown key 'colour'", id="unknown-key"),
        pytest.param("[client:a]\npublic = true\ngrants = teleport\n", "unknown grant", id="bad-grant"),
        pytest.param("not an ini", "cannot read", id="not-ini"),
        pytest.param(
            "[client:a]\npublic = true\ntoken_endpoint_auth_method = basic\n",
            "[client:a] unknown client authentication method 'basic'",
            id="unknown-auth-method",
        ),
        pytest.param(
            "[client:a]\npublic = true\ntoken_endpoint_auth_method = client_secret_basic\n",
            "[client:a] a public client (no secret) cannot use the client authentication method",
            id="public-with-secret-method",
        ),
        pytest.param(
            "[client:a]\npublic = ture\ngrants = authorization_code\n",
            "[client:a] public: expected true or false, got 'ture'",
            id="public-typo",
        ),
        pytest.param(
            "[client:a]\npublic = true\nscopes = read admin\n",
            "[client:a] scope admin is not in the server's scopes (read write)",
            id="scope-outside-server-list",
        ),
    ],
)
def test_clients_file_errors_name_the_setting(tmp_path, text, message):
    path = _clients_file(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        OAuth2Middleware(
            DemoApp(), issuer="http://localhost", store="memory://", scopes="read write", clients_file=path
        )
    assert str(info.value).startswith("clients_file:")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_clients_file(tmp_path):
    with pytest.raises(ConfigError, match="clients_file: cannot read"):
        OAuth2Middleware(
            DemoApp(),
            issuer="http://localhost",
            store="memory://",
            clients_file=str(tmp_path / "missing.ini"),
        )


# -- client_store ---------------------------------------------------------------


def test_client_commands_use_only_the_client_store(capsys, tmp_path):
    # The token store is unreachable: the client commands never open it.
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        "store = memcache://127.0.0.1:1\nclient_store = sqlite:///%(here)s/clients.db\n"
    )
    status, _, err = run(
        capsys, "client", "add", str(ini), "--client-id", "svc", "--secret", "svc-secret-0123456789",
        "--grant", "client_credentials", "--scope", "read",
    )  # fmt: skip
    assert status == 0, err
    assert run(capsys, "client", "list", str(ini))[1].startswith("svc\tconfidential")

    # An app with tokens elsewhere finds the client in the client store, and only there.
    middleware = OAuth2Middleware(
        DemoApp(),
        issuer="http://localhost",
        store="memory://",
        client_store=f"sqlite:///{tmp_path}/clients.db",
        require_https="false",
    )
    app = webtest.TestApp(middleware)
    app.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic("svc", "svc-secret-0123456789")},
    )
    assert middleware.server.store.get("client:svc") is None
    assert middleware.server.repository.client_store.get("client:svc") is not None

    assert run(capsys, "client", "remove", str(ini), "--client-id", "svc")[0] == 0
    assert middleware.server.repository.get_client("svc") is None


def test_clients_file_goes_to_the_client_store(tmp_path):
    path = _clients_file(tmp_path, "[client:web]\npublic = true\ngrants = authorization_code\n")
    middleware = OAuth2Middleware(
        DemoApp(),
        issuer="http://localhost",
        store="memory://",
        client_store=f"sqlite:///{tmp_path}/clients.db",
        clients_file=path,
    )
    assert middleware.server.store.get("client:web") is None
    assert [c.client_id for c in middleware.server.repository.list_clients()] == ["web"]


def test_unreachable_client_store_is_one_line_naming_it(capsys, tmp_path):
    with pytest.raises(ConfigError, match=r"^client_store: cannot open redis://127\.0\.0\.1:1/0: "):
        OAuth2Middleware(
            DemoApp(), issuer="http://localhost", store="memory://", client_store="redis://127.0.0.1:1/0"
        )
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        "store = memory://\nclient_store = redis://127.0.0.1:1/0\n"
    )
    status, _, err = run(capsys, "client", "list", str(ini))
    assert status == 2
    assert err.startswith("oauth-middleware: error: client_store: cannot open") and err.count("\n") == 1


# -- help -----------------------------------------------------------------------


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The command's parser and every sub-command's, depth first."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_parsers(sub))
    return found


def test_every_option_has_help_without_markup():
    # Regression (issue 10, item 18): options without help, and ``RST`` markup in the help.
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            assert action.help, f"{parser.prog}: {action.dest} has no help"
        text = parser.format_help()
        assert "``" not in text, text
        assert ":param" not in text, text


def test_help_of_each_command_is_printed(capsys):
    for argv in (
        ["--help"],
        ["serve", "--help"],
        ["client", "add", "--help"],
        ["keys", "generate", "--help"],
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        assert capsys.readouterr().out.startswith("usage: oauth-middleware")


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_demo_hash_password_help_is_help(capsys, flag):
    # Regression (issue 10, item 18): it printed the hash of the word "--help".
    from oauth_middleware.demo import main as demo_main

    with pytest.raises(SystemExit) as info:
        demo_main(["hash-password", flag])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m oauth_middleware.demo hash-password")
    assert "pbkdf2_sha256" not in out


# -- check: is the app guarded? --------------------------------------------------

_FILTER = "use = egg:oauth-middleware#oauth2\nissuer = http://127.0.0.1:8080\nstore = memory://\n"
_DEMO = "use = egg:oauth-middleware#demo\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            f"[app:main]\n{_DEMO}",
            "no filter uses egg:oauth-middleware#oauth2 or egg:oauth-middleware#guard",
            id="no-filter",
        ),
        pytest.param(
            f"[app:main]\n{_DEMO}\n[filter:oauth2]\n{_FILTER}",
            "[filter:oauth2] is not in the pipeline of the main app",
            id="filter-unused",
        ),
        pytest.param(
            f"[pipeline:main]\npipeline = demo\n\n[app:demo]\n{_DEMO}\n[filter:oauth2]\n{_FILTER}",
            "[filter:oauth2] is not in the pipeline of the main app",
            id="pipeline-without-it",
        ),
    ],
)
def test_check_refuses_an_unguarded_app(capsys, tmp_path, text, message):
    ini = tmp_path / "app.ini"
    ini.write_text(text)
    status, out, err = run(capsys, "check", str(ini))
    assert (status, out) == (2, "")
    assert err.startswith(f"oauth-middleware: error: {ini}: {message}")
    assert err.count("\n") == 1
    assert "the app would run unguarded" in err


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            f"[app:main]\n{_DEMO}filter-with = oauth2\n\n[filter:oauth2]\n{_FILTER}", id="filter-with"
        ),
        pytest.param(
            f"[pipeline:main]\npipeline = oauth2 demo\n\n[app:demo]\n{_DEMO}\n[filter:oauth2]\n{_FILTER}",
            id="pipeline",
        ),
        pytest.param(f"[filter-app:main]\n{_FILTER}next = demo\n\n[app:demo]\n{_DEMO}", id="filter-app"),
        # A composite builds its parts out of sight: given the benefit of the doubt.
        pytest.param(
            f"[composite:main]\nuse = call:test_cli:one_app\napp = demo\n\n[app:demo]\n{_DEMO}",
            id="composite",
        ),
    ],
)
def test_check_accepts_a_guarded_app(capsys, tmp_path, text):
    ini = tmp_path / "app.ini"
    ini.write_text(text)
    assert run(capsys, "check", str(ini)) == (0, f"{ini}: ok\n", "")


def one_app(loader, global_conf, **local_conf):
    """A composite app factory (``paste.composite_factory``) with one part."""
    return loader.get_app(local_conf["app"], global_conf=global_conf)
