"""Settings: strict converters, one-line errors naming the key, the README reference."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import pathlib
from typing import Any

import pytest
import webtest
from conftest import free_port
from paste.deploy import loadfilter

from oauth_middleware import guard_from_settings
from oauth_middleware.errors import ConfigError
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.proxies import TrustedProxies
from oauth_middleware.settings import ScopeRule, Settings, asbool, parse_scope_rules, path_patterns, reference

README = pathlib.Path(__file__).resolve().parent.parent / "README.rst"


def test_defaults():
    settings = Settings.from_config({})
    assert settings.store == "sqlite:///oauth.db"
    assert settings.token_format == "opaque"
    assert settings.access_token_ttl == 3600
    assert settings.token_from_header and settings.token_from_body
    assert not settings.token_from_query  # RFC 9700: off unless asked for
    assert settings.token_path == "/oauth/token"


def test_settings_are_frozen():
    settings = Settings.from_config({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.access_token_ttl = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("word", "value"),
    [pytest.param(w, True, id=w) for w in ("true", "True", "yes", "on", "1")]
    + [pytest.param(w, False, id=w) for w in ("false", "FALSE", "no", "off", "0")],
)
def test_asbool_known_words(word, value):
    assert asbool(word) is value


@pytest.mark.parametrize("word", ["ture", "", "y", "enabled", "2", "nope"])
def test_asbool_rejects_typos(word):
    with pytest.raises(ValueError, match="expected true or false"):
        asbool(word)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param(
            {"access_token_ttl": "soon"},
            "access_token_ttl: expected a whole number of seconds",
            id="ttl-word",
        ),
        pytest.param({"access_token_ttl": "0"}, "access_token_ttl: expected a whole number", id="ttl-zero"),
        pytest.param(
            {"access_token_ttl": "-5"}, "access_token_ttl: expected a whole number", id="ttl-negative"
        ),
        pytest.param(
            {"token_from_query": "ture"}, "token_from_query: expected true or false", id="bool-typo"
        ),
        pytest.param(
            {"token_format": "paseto"}, "token_format: expected one of opaque, jwt", id="bad-choice"
        ),
        pytest.param(
            {"token_path": "oauth/token"}, "token_path: expected a path starting with '/'", id="relative-path"
        ),
        pytest.param({"issuer": "ftp://x"}, "issuer: expected an http(s) URL", id="bad-issuer"),
        pytest.param({"issuer": "https://x/?q=1"}, "issuer: expected an http(s) URL", id="issuer-query"),
        pytest.param({"scopes": 'read "write'}, "scopes: not a valid scope list", id="bad-scope"),
        pytest.param({"store_timeout": "fast"}, "store_timeout: expected a number", id="bad-timeout"),
        pytest.param({"login_url": "/login\x01x"}, "login_url: expected a path", id="login-url-control-char"),
        pytest.param({"store_timeout": "inf"}, "store_timeout: expected a number above 0", id="inf-timeout"),
        pytest.param(
            {"scope_rules": "GET /api"}, "scope_rules: expected 'METHODS PATH SCOPE...'", id="short-rule"
        ),
        pytest.param({"public_paths": "health"}, "public_paths: expected a path", id="bad-public-path"),
        pytest.param(
            {"acess_token_ttl": "60"},
            "acess_token_ttl: unknown setting (did you mean 'access_token_ttl'?)",
            id="typo-key",
        ),
        pytest.param({"colour": "blue"}, "colour: unknown setting", id="unknown-key"),
        pytest.param(
            {"scopes": "read", "default_scope": "write"},
            "default_scope: write not listed in scopes",
            id="default-not-in-scopes",
        ),
        pytest.param(
            {"token_path": "/same", "revoke_path": "/same"}, "endpoint paths must all differ", id="same-paths"
        ),
        pytest.param(
            {"token_from_header": "false", "token_from_body": "false"},
            "at least one token source",
            id="no-token-source",
        ),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_key(config, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_config(config)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_python_values_are_accepted():
    settings = Settings.from_config(
        {"access_token_ttl": 60, "token_from_query": True, "scopes": ["read", "write"]}
    )
    assert settings.access_token_ttl == 60
    assert settings.token_from_query is True
    assert settings.scopes == ("read", "write")


def _verify(username, password):
    return None


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param("verify_password", _verify, _verify, id="callable"),
        pytest.param("authenticate_user", None, None, id="none-callable"),
        pytest.param("access_token_ttl", 600, 600, id="int"),
        pytest.param("store_timeout", 0.5, 0.5, id="float"),
        pytest.param("require_pkce", False, False, id="bool"),
        pytest.param("grants", ("client_credentials",), ("client_credentials",), id="tuple"),
        pytest.param("scopes", frozenset({"read"}), ("read",), id="set"),
        pytest.param(
            "trusted_proxies",
            [ipaddress.ip_network("10.0.0.0/8"), "::1"],
            TrustedProxies((ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))),
            id="networks",
        ),
        pytest.param(
            "trusted_proxies",
            TrustedProxies((ipaddress.ip_network("10.0.0.0/8"),), unix=True),
            TrustedProxies((ipaddress.ip_network("10.0.0.0/8"),), unix=True),
            id="trusted-proxies",
        ),
        pytest.param(
            "public_paths", path_patterns("/ /static/*"), path_patterns("/ /static/*"), id="path-matcher"
        ),
        pytest.param(
            "scope_rules",
            parse_scope_rules("GET,HEAD /api/* read\n* /admin write admin"),
            parse_scope_rules("GET,HEAD /api/* read\n* /admin write admin"),
            id="scope-rules",
        ),
        pytest.param(
            "scope_rules",
            ["GET /api/* read", "POST /api/* write"],
            parse_scope_rules("GET /api/* read\nPOST /api/* write"),
            id="scope-rule-lines",
        ),
        pytest.param(
            "scope_rules",
            [ScopeRule(frozenset({"GET"}), path_patterns("/a /b/*"), ("read",))],
            parse_scope_rules("GET /a read\nGET /b/* read"),
            id="scope-rule-of-two-paths",
        ),
    ],
)
def test_values_that_already_have_the_converted_type_are_accepted(key, value, expected):
    """Regression: the Python API wrote every value as ini text first, so a callable
    (``verify_password=my_function``), a ScopeRule or a PathMatcher was refused."""
    assert getattr(Settings.from_config({key: value}), key) == expected


def test_the_python_api_takes_a_callable(make_middleware):
    middleware = make_middleware(verify_password=_verify, grants="password client_credentials")
    assert middleware.settings.verify_password is _verify


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        pytest.param(
            "access_token_ttl", 0, "access_token_ttl: expected a whole number of seconds", id="int-range"
        ),
        pytest.param(
            "access_token_ttl", True, "access_token_ttl: expected a whole number", id="bool-for-int"
        ),
        pytest.param("require_pkce", 1.5, "require_pkce: expected true or false", id="float-for-bool"),
        pytest.param(
            "verify_password", 42, "verify_password: expected package.module:function", id="not-callable"
        ),
        pytest.param("scopes", ['bad"scope'], "scopes: not a valid scope list", id="bad-scope"),
    ],
)
def test_typed_values_are_checked_like_ini_values(key, value, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_config({key: value})
    assert str(info.value).startswith(message)


def test_unknown_grant_fails_at_load():
    with pytest.raises(ConfigError, match="grants: unknown grant type 'telepathy'"):
        OAuth2Middleware(
            lambda e, s: [],
            issuer="http://localhost",
            store="memory://",
            grants="client_credentials telepathy",
        )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("nosql://x", "store: unknown store scheme 'nosql'", id="unknown-scheme"),
        pytest.param("sqlite:////nonexistent/dir/oauth.db", "store: cannot open", id="bad-sqlite-path"),
    ],
)
def test_store_that_cannot_be_opened_fails_at_load(url, message):
    with pytest.raises(ConfigError) as info:
        OAuth2Middleware(lambda e, s: [], issuer="http://localhost", store=url)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# -- combinations of settings, checked at load ----------------------------------------

#: A store that cannot be opened: a check running after the store is opened would fail on it instead.
UNOPENABLE_STORE = "sqlite:////nonexistent/dir/oauth.db"
JWT = {"token_format": "jwt", "issuer": "https://auth.example.com", "audience": "https://api.example.com"}
JWKS_URL = "https://auth.example.com/oauth/jwks"
BOTH = ("oauth2", "guard")

#: (the filters that refuse it, the settings, the start of the one-line error).
CROSS_FIELD_ERRORS = [
    (
        BOTH,
        "default-scope-outside-scopes",
        {"scopes": "read", "default_scope": "write"},
        "default_scope: write not listed in scopes",
    ),
    (
        BOTH,
        "same-endpoint-paths",
        {"token_path": "/same", "revoke_path": "/same"},
        # The key that repeats a path, and the one that had it first (it used to say authorize_path).
        "revoke_path: endpoint paths must all differ (token_path has /same)",
    ),
    (
        BOTH,
        "no-token-source",
        {"token_from_header": "false", "token_from_body": "false"},
        "token_from_header: at least one token source must be enabled",
    ),
    (BOTH, "jwt-without-issuer", {**JWT, "issuer": ""}, "issuer: required with token_format = jwt"),
    (BOTH, "jwt-without-audience", {**JWT, "audience": ""}, "audience: required with token_format = jwt"),
    (
        BOTH,
        "jwks-url-with-opaque-tokens",
        {"jwks_url": JWKS_URL},
        "jwks_url: only used with token_format = jwt",
    ),
    (("oauth2",), "server-without-issuer", {"issuer": ""}, "issuer: required: this server's URL"),
    (
        ("oauth2",),
        "server-with-jwks-url",
        {**JWT, "jwks_url": JWKS_URL},
        "jwks_url: only for a guard-only resource server (egg:oauth-middleware#guard)",
    ),
    (
        ("oauth2",),
        "password-grant-without-verify-password",
        {"grants": "password", "verify_password": ""},
        "verify_password: required by the password grant",
    ),
]


def _cross_field_cases() -> list[Any]:
    return [
        pytest.param(
            role, {"issuer": JWT["issuer"], "store": UNOPENABLE_STORE, **config}, message, id=f"{role}-{name}"
        )
        for roles, name, config, message in CROSS_FIELD_ERRORS
        for role in roles
    ]


def _build_from_python(role: str, config: dict[str, Any]) -> Any:
    """The filter ``role`` built through the Python API, as an application would."""
    if role == "oauth2":
        return OAuth2Middleware(lambda environ, start_response: [], **config)
    return guard_from_settings(lambda environ, start_response: [], Settings.from_config(config))


def _build_from_ini(role: str, config: dict[str, str], directory: pathlib.Path) -> Any:
    """The filter ``role`` loaded by PasteDeploy from an ini section, as ``oauth-middleware serve`` would."""
    lines = [f"[filter:{role}]", f"use = egg:oauth-middleware#{role}"]
    lines += [f"{key} = {value}" for key, value in config.items()]
    ini = directory / f"{role}.ini"
    ini.write_text("\n".join(lines) + "\n")
    return loadfilter(f"config:{ini}", name=role)(lambda environ, start_response: [])


@pytest.mark.parametrize(("role", "config", "message"), _cross_field_cases())
def test_a_bad_combination_is_one_line_naming_the_key_from_python(role, config, message):
    """Every check of a combination runs at load, before the store is opened (it cannot be here)."""
    with pytest.raises(ConfigError) as info:
        _build_from_python(role, config)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("role", "config", "message"), _cross_field_cases())
def test_a_bad_combination_is_one_line_naming_the_key_from_an_ini(tmp_path, role, config, message):
    with pytest.raises(ConfigError) as info:
        _build_from_ini(role, config, tmp_path)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("build", [_build_from_python, _build_from_ini], ids=["python", "ini"])
def test_the_guard_alone_needs_nothing_only_the_server_needs(tmp_path, build):
    """No ``issuer`` with opaque tokens, the password grant without ``verify_password``:
    a shared ini may say so, the guard-only filter never issues tokens."""
    config = {"store": "memory://", "issuer": "", "grants": "password", "verify_password": ""}
    args = (tmp_path,) if build is _build_from_ini else ()
    guard = build("guard", config, *args)
    response = webtest.TestApp(guard).get("/api", status=401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_check_role_warns_of_memcached_clients_for_the_server_only(caplog):
    settings = Settings.from_config({"store": "memcache://cache.invalid", "issuer": JWT["issuer"]})
    with caplog.at_level(logging.WARNING, logger="oauth_middleware"):
        settings.check_role("guard")
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="oauth_middleware"):
        settings.check_role("oauth2")
    assert "keep them in a durable client_store" in caplog.text


def test_the_memcached_warning_comes_before_the_store_is_opened(caplog):
    with caplog.at_level(logging.WARNING, logger="oauth_middleware"), pytest.raises(ConfigError) as info:
        OAuth2Middleware(
            lambda environ, start_response: [],
            issuer=JWT["issuer"],
            store=f"memcache://127.0.0.1:{free_port()}",
            store_timeout="0.5",
        )
    assert str(info.value).startswith("store: cannot open memcache://")
    assert "keep them in a durable client_store" in caplog.text


def test_readme_reference_matches_settings():
    """The configuration reference in README.rst is the generated one, so no setting is undocumented."""
    readme = README.read_text(encoding="utf-8")
    start, end = ".. settings-reference-start\n", ".. settings-reference-end\n"
    assert start in readme and end in readme, "README.rst lacks the settings reference markers"
    block = readme.split(start, 1)[1].split(end, 1)[0]
    assert block.strip() == reference().strip(), (
        "run: python -m oauth_middleware.settings --update README.rst"
    )


def test_every_setting_has_a_doc():
    for spec in dataclasses.fields(Settings):
        assert len(spec.metadata["doc"]) > 10, spec.name
