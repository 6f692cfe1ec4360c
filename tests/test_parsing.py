"""Pure parsers: bearer header, Basic credentials, scopes, single-valued parameters."""

from __future__ import annotations

import base64

import pytest

from oauth_middleware.errors import InvalidBearerRequest, InvalidClient, InvalidRequest, InvalidScope
from oauth_middleware.parsing import (
    authorization_scheme,
    basic_credentials,
    bearer_token,
    scope_list,
    single_params,
)


def bearer_from_header(value: str) -> str | None:
    """What the guard does with one header value: the Bearer token, None for another scheme."""
    scheme, credentials = authorization_scheme(value)
    return bearer_token(credentials) if scheme == "bearer" else None


@pytest.mark.parametrize(
    ("header", "token"),
    [
        pytest.param("Bearer abc", "abc", id="plain"),
        pytest.param("bearer abc", "abc", id="lowercase-scheme"),
        pytest.param("Bearer a.b-c_d~e+f/g==", "a.b-c_d~e+f/g==", id="all-b64token-chars"),
        pytest.param("  Bearer abc  ", "abc", id="surrounding-space"),
        pytest.param("Basic abc", None, id="other-scheme"),
        pytest.param("Bearerabc", None, id="no-space"),
        pytest.param("", None, id="empty"),
    ],
)
def test_bearer_from_header(header, token):
    assert bearer_from_header(header) == token


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Bearer a b", "Bearer =abc", "Bearer a\tb", "Bearer ä"]
)
def test_bearer_from_header_malformed(header):
    with pytest.raises(InvalidBearerRequest):
        bearer_from_header(header)


def _basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(_basic(b"id:secret"), ("id", "secret"), id="plain"),
        pytest.param(_basic(b"id:se:cret"), ("id", "se:cret"), id="colon-in-secret"),
        pytest.param(_basic(b"my+id:p%40ss"), ("my id", "p@ss"), id="form-encoded"),
        pytest.param(_basic(b"id:"), ("id", ""), id="empty-secret"),
        pytest.param("Bearer x", None, id="other-scheme"),
    ],
)
def test_basic_credentials(header, expected):
    assert basic_credentials(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic ***", id="not-base64"),
        pytest.param(_basic(b"nocolon"), id="no-colon"),
        pytest.param(_basic(b":secret"), id="empty-id"),
        pytest.param(_basic(b"\xff:x"), id="not-utf8"),
        pytest.param(_basic(b"id:\x01"), id="control-char"),
    ],
)
def test_basic_credentials_malformed(header):
    with pytest.raises(InvalidClient):
        basic_credentials(header)


@pytest.mark.parametrize(
    ("value", "scopes"),
    [
        pytest.param("read write", ("read", "write"), id="two"),
        pytest.param("read  write ", ("read", "write"), id="extra-spaces"),
        pytest.param("read read", ("read",), id="duplicate"),
        pytest.param("", (), id="empty"),
        pytest.param("urn:x:y!#$", ("urn:x:y!#$",), id="punctuation"),
    ],
)
def test_scope_list(value, scopes):
    assert scope_list(value) == scopes


@pytest.mark.parametrize("value", ['a"b', "a\\b", "é", "a\tb"])
def test_scope_list_rejects_forbidden_characters(value):
    with pytest.raises(InvalidScope):
        scope_list(value)


def test_single_params_drops_empty_and_refuses_repeats():
    assert single_params([("a", "1"), ("b", "")]) == {"a": "1"}
    with pytest.raises(InvalidRequest, match="parameter a is repeated"):
        single_params([("a", "1"), ("a", "2")])


def test_single_params_error_description_is_rfc_safe():
    with pytest.raises(InvalidRequest) as info:
        single_params([('x"é\n', "1"), ('x"é\n', "2")])
    assert '"' not in info.value.description
