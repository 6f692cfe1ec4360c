"""Settings: strict converters, one-line errors naming the key, the README reference."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from oauth_middleware.errors import ConfigError
from oauth_middleware.middleware import OAuth2Middleware
from oauth_middleware.settings import Settings, asbool, reference

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
