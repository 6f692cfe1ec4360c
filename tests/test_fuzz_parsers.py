"""Property tests (Hypothesis) for every pure parser: whatever comes in, the answer
is a value that keeps the parser's promise or the parser's own error, never a crash.

Parsers: the bearer header, form and query tokens, Basic credentials, scope
strings and repeated parameters (``parsing.py``), the JOSE header of a JWT
(nested structures included), the challenges of ``responses.py``, the
redirect URI comparison of the
authorization endpoint (``authorization.py``), PKCE challenges and
verifiers (``pkce.py``), and every string converter of ``settings.py``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
import string
from urllib.parse import parse_qsl, quote_plus, urlsplit

import pytest
from fuzz_support import examples
from hypothesis import example, given
from hypothesis import strategies as st

from oauth_middleware import forms, pkce, settings
from oauth_middleware.authorization import redirect_uri_matches
from oauth_middleware.clients import check_redirect_uri, is_loopback_host
from oauth_middleware.errors import (
    ConfigError,
    InvalidBearerRequest,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    OAuthError,
)
from oauth_middleware.models import Client
from oauth_middleware.parsing import (
    MAX_FORM_FIELDS,
    access_tokens,
    authorization_scheme,
    basic_credentials,
    bearer_token,
    scope_list,
    scope_string,
    single_params,
)
from oauth_middleware.responses import challenge
from oauth_middleware.tokens.jwt import unverified_header

B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
VSCHAR = re.compile(r"[\x20-\x7e]*")
#: RFC 6749 §5.2: what an error_description may hold.
DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")

#: Any text, biased towards the characters these parsers split on.
noisy_text = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(' \t\r\n:=+/%"\\,.-_~#?@[]')), max_size=80
)
#: What arrives in a WSGI header: bytes seen as latin-1.
header_text = st.binary(max_size=80).map(lambda raw: raw.decode("latin-1"))
B64_ALPHABET = string.ascii_letters + string.digits + "-._~+/"
# Built from alphabets rather than st.from_regex, which is ten times slower.
b64tokens = st.builds(
    lambda body, pad: body + "=" * pad, st.text(B64_ALPHABET, min_size=1, max_size=60), st.integers(0, 2)
)
SCOPE_ALPHABET = "".join(chr(c) for c in [0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)])
scope_tokens = st.text(SCOPE_ALPHABET, min_size=1, max_size=20)
vschar_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


def assert_rfc_description(error: OAuthError) -> None:
    assert DESCRIPTION.fullmatch(error.description), error.description


# -- the bearer header (RFC 6750 §2.1) ----------------------------------------------


def bearer_from_header(value: str) -> str | None:
    """What the guard does with one header value: the Bearer token, None for another scheme."""
    scheme, credentials = authorization_scheme(value)
    return bearer_token(credentials) if scheme == "bearer" else None


@examples(150)
@given(value=st.one_of(noisy_text, header_text, st.builds(lambda t: "Bearer " + t, noisy_text)))
@example(value="Bearer \x00")
@example(value="bearer  a==b")
def test_bearer_header_any_input(value):
    try:
        token = bearer_from_header(value)
    except InvalidBearerRequest as error:
        assert error.status_code == 400
        assert_rfc_description(error)
        assert value.strip().partition(" ")[0].lower() == "bearer"  # only a Bearer header is malformed
        return
    if token is not None:
        assert B64TOKEN.fullmatch(token)
        assert token in value
        assert value.strip()[:6].lower() == "bearer"


@examples(100)
@given(
    token=b64tokens,
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]),
    before=st.sampled_from(["", " ", "  "]),
    gap=st.sampled_from([" ", "  ", " \t"]),
    after=st.sampled_from(["", " ", "\t"]),
)
def test_bearer_header_round_trip(token, scheme, before, gap, after):
    assert bearer_from_header(f"{before}{scheme}{gap}{token}{after}") == token


# -- form and query tokens (RFC 6750 §2.2, §2.3) ---------------------------------------

#: A form as WSGI gives it (bytes read as Latin-1), biased towards access_token fields.
form_fields = st.one_of(
    noisy_text,
    header_text,
    st.builds(lambda v: "access_token=" + v, st.one_of(b64tokens, noisy_text, header_text)),
    st.sampled_from(["access%5Ftoken=abc", "access_token", "access+token=x", "=", "&", ""]),
)


@examples(150)
@given(fields=st.lists(form_fields, max_size=8))
@example(fields=["access_token=%ff"])
@example(fields=["access_token=a+b"])
@example(fields=["name=Jos\xe9", "access_token=abc"])
def test_access_tokens_any_form(fields):
    form = "&".join(fields)
    try:
        tokens = access_tokens(form)
    except InvalidBearerRequest as error:
        assert error.status_code == 400
        assert_rfc_description(error)
        assert "access" in form
        return
    for token in tokens:
        assert token and token.isascii() and token.isprintable() and " " not in token


@examples(50)
@given(token=b64tokens, before=st.integers(0, MAX_FORM_FIELDS - 1), extra=st.integers(1, 50))
def test_access_tokens_searches_a_bounded_number_of_fields(token, before, extra):
    fields = ["x=1"] * before + [f"access_token={quote_plus(token)}"]
    assert access_tokens("&".join(fields)) == [token]
    fields += ["x=1"] * (MAX_FORM_FIELDS - before - 1 + extra)
    assert access_tokens("&".join(fields)) == []  # too many fields: not searched


# -- the JOSE header of a JWT, nested structures included (RFC 7515 §4) ----------------------

#: JSON values nested up to thousands of levels: what a hostile header segment holds.
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
nested_json = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
).map(lambda value: json.dumps(value).encode())
deep_json = st.builds(
    lambda opener, depth, tail: opener * depth + tail,
    st.sampled_from([b"[", b'{"a":', b'[{"":', b"[1,"]),
    st.integers(1, 3000),
    st.sampled_from([b"", b"1", b"]", b"}" * 3, b"]" * 3000]),
)
header_segments = st.one_of(nested_json, deep_json, st.binary(max_size=200)).map(
    lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
)


@examples(150)
@given(head=header_segments, rest=st.sampled_from([".e30.c2ln", ".", "", ".x"]))
@example(head=base64.urlsafe_b64encode(b"[" * 3000).decode(), rest=".e30.c2ln")
def test_unverified_header_any_nesting(head, rest):
    try:
        header = unverified_header(head + rest)
    except InvalidToken as error:
        assert error.status_code == 401
        assert_rfc_description(error)
        return
    assert isinstance(header, dict)


# -- challenges (RFC 9110 §11.2, §5.6.4) -------------------------------------------------------


@examples(150)
@given(values=st.lists(st.one_of(noisy_text, header_text, vschar_text), min_size=1, max_size=3))
def test_challenge_any_values(values):
    params = [(f"p{index}", value) for index, value in enumerate(values)]
    try:
        value = challenge("Bearer", params)
    except ValueError:
        assert any(re.search(r"[^\t\x20-\x7e]", v) for v in values)
        return
    assert "\r" not in value and "\n" not in value
    # Every value comes back out of its quoted-string unchanged: nothing was forged.
    parsed = re.findall(r'(p\d+)="((?:[^"\\]|\\.)*)"(?:, |$)', value.removeprefix("Bearer "))
    assert [(name, re.sub(r"\\(.)", r"\1", quoted)) for name, quoted in parsed] == params


# -- Basic credentials (RFC 6749 §2.3.1) ---------------------------------------------


def basic_header(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@examples(150)
@given(
    value=st.one_of(
        noisy_text,
        header_text,
        st.binary(max_size=60).map(lambda raw: "Basic " + base64.b64encode(raw).decode("ascii")),
        st.builds(lambda t: "Basic " + t, noisy_text),
    )
)
@example(value="Basic " + base64.b64encode(b"a:%ff").decode())  # percent-decodes to a bad byte
@example(value="Basic " + base64.b64encode(b"%0a:x").decode())  # a control character after decoding
def test_basic_credentials_any_input(value):
    try:
        credentials = basic_credentials(value)
    except InvalidClient as error:
        assert_rfc_description(error)
        return
    if credentials is not None:
        client_id, secret = credentials
        assert client_id and VSCHAR.fullmatch(client_id) and VSCHAR.fullmatch(secret)


@examples(150)
@given(client_id=vschar_text.filter(bool), secret=vschar_text)
def test_basic_credentials_round_trip(client_id, secret):
    assert basic_credentials(basic_header(client_id, secret)) == (client_id, secret)


# -- scopes (RFC 6749 §3.3) ----------------------------------------------------------


@examples(150)
@given(value=st.one_of(noisy_text, st.lists(scope_tokens, max_size=6).map(" ".join)))
def test_scope_list_any_input(value):
    try:
        scopes = scope_list(value)
    except InvalidScope as error:
        assert_rfc_description(error)
        return
    assert len(set(scopes)) == len(scopes)
    assert all(SCOPE_TOKEN.fullmatch(scope) for scope in scopes)
    assert scope_list(scope_string(scopes)) == scopes  # idempotent


@examples(100)
@given(
    tokens=st.lists(scope_tokens, max_size=8),
    gaps=st.lists(st.sampled_from([" ", "  "]), min_size=8, max_size=8),
)
def test_scope_list_round_trip(tokens, gaps):
    value = "".join(token + gap for token, gap in zip(tokens, gaps, strict=False))
    assert scope_list(value) == tuple(dict.fromkeys(tokens))


# -- single-valued parameters (RFC 6749 §3.1, §3.2) ------------------------------------


@examples(150)
@given(
    items=st.lists(
        st.tuples(st.one_of(st.sampled_from(["a", "b", "scope"]), noisy_text), noisy_text), max_size=8
    )
)
@example(items=[("a", ""), ("a", "x")])  # regression: an empty first occurrence hid the repeat
def test_single_params_any_input(items):
    names = [name for name, _ in items]
    try:
        params = single_params(items)
    except InvalidRequest as error:
        assert len(set(names)) < len(names)
        assert_rfc_description(error)  # the repeated name was made safe to echo
        return
    assert len(set(names)) == len(names)
    assert params == {name: value for name, value in items if value != ""}


# -- a token endpoint's form body -------------------------------------------------------------


@examples(300)
@given(
    text=st.one_of(
        noisy_text,
        st.text(alphabet=st.sampled_from("ab=&%+2F "), max_size=30),  # the splitting characters, dense
    )
)
@example(text="grant_type=client_credentials&scope=read")
@example(text="&&a&=b&c=d=e&")
def test_endpoint_form_parsing_is_parse_qsl_whatever_the_body(text):
    # The fast path for bodies without escapes gives what parse_qsl gives, or fails as it fails.
    try:
        expected = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError) as error:
        with pytest.raises(type(error)):
            forms._parse_form(text)
        return
    assert forms._parse_form(text) == expected


# -- redirect URI comparison (RFC 9700 §4.1.3, RFC 8252 §7.3) ------------------------------

PUBLIC = Client("native", None)
CONFIDENTIAL = Client("web", "0" * 64)

loopback_hosts = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "127.0.0.2", "LOCALHOST"])
other_hosts = st.sampled_from(
    ["example.com", "evil.example", "127.0.0.1.evil.example", "localhost.evil", "0.0.0.0"]
)
ports = st.one_of(
    st.just(""), st.integers(0, 70000).map(lambda port: f":{port}"), st.sampled_from([":", ":x", ":-1"])
)
paths = st.sampled_from(["", "/", "/cb", "/cb/", "/CB", "/cb/x", "/%63b", "/cb;x", "//cb"])
queries = st.sampled_from(["", "?", "?x=1", "?x=2", "?x=1&y=2"])
tails = st.sampled_from(["", "#", "#frag", "?#", "@evil.example", "\\@evil.example", " "])
userinfos = st.sampled_from(["", "user@", "user:pw@", "127.0.0.1@", "@"])


@st.composite
def uris(draw: st.DrawFn) -> str:
    """URIs built from parts, most of them loopback, many nearly alike."""
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "com.example.app"]))
    host = draw(st.one_of(loopback_hosts, other_hosts))
    return f"{scheme}://{draw(userinfos)}{host}{draw(ports)}{draw(paths)}{draw(queries)}{draw(tails)}"


def registrable(uri: str) -> bool:
    try:
        check_redirect_uri(uri)
    except ValueError:
        return False
    return True


def without_port(uri: str) -> tuple[object, ...]:
    parts = urlsplit(uri)
    return (parts.scheme, parts.hostname, parts.username, parts.password, parts.path, parts.query)


@examples(150)
@given(registered=st.one_of(uris(), noisy_text), requested=st.one_of(uris(), noisy_text))
@example(registered="http://127.0.0.1/cb", requested="http://127.0.0.1:5000/cb")
@example(registered="http://127.0.0.1/cb", requested="http://127.0.0.1:5000/cb#x")
@example(registered="http://127.0.0.1/cb", requested="http://127.0.0.1:99999/cb")
def test_redirect_uri_matching_any_input(registered, requested):
    # Never raises, equal strings always match, and a confidential client needs the exact string.
    assert redirect_uri_matches(registered, registered, PUBLIC)
    assert redirect_uri_matches(registered, requested, CONFIDENTIAL) == (registered == requested)
    if not redirect_uri_matches(registered, requested, PUBLIC) or registered == requested:
        return
    # A public client's other match is the same http loopback URI on another port, nothing else.
    want, got = urlsplit(registered), urlsplit(requested)
    assert want.scheme == got.scheme == "http"
    assert is_loopback_host(want.hostname)
    assert without_port(registered)[1:] == without_port(requested)[1:]
    assert got.username is None and got.password is None
    assert not got.fragment and "#" not in requested
    assert got.port is None or 0 <= got.port < 65536


@examples(150)
@given(registered=uris().filter(registrable), requested=uris())
@example(registered="http://user@127.0.0.1/cb", requested="http://127.0.0.1:5000/cb")  # regression
def test_registered_uris_match_only_themselves_or_a_loopback_port(registered, requested):
    if not redirect_uri_matches(registered, requested, PUBLIC):
        return
    if requested != registered:
        # The only freedom: the port of an http loopback URI (RFC 8252 §7.3).
        reg, req = urlsplit(registered), urlsplit(requested)
        assert reg.scheme == "http" and is_loopback_host(reg.hostname)
        assert without_port(registered) == without_port(requested)
        assert not req.fragment and "#" not in requested


# -- PKCE (RFC 7636) -------------------------------------------------------------------

verifiers = st.text(string.ascii_letters + string.digits + "-._~", min_size=43, max_size=128)


@examples(100)
@given(
    challenge=st.one_of(noisy_text, verifiers),
    method=st.one_of(st.none(), st.sampled_from(["S256", "plain", "s256", ""]), noisy_text),
    allow_plain=st.booleans(),
)
def test_pkce_challenge_any_input(challenge, method, allow_plain):
    try:
        chosen = pkce.check_challenge(challenge, method, allow_plain=allow_plain)
    except InvalidRequest as error:
        assert_rfc_description(error)
        return
    assert chosen == "S256" or (chosen == "plain" and allow_plain)
    assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", challenge)


@examples(100)
@given(verifier=verifiers, presented=st.one_of(st.none(), noisy_text, verifiers))
def test_pkce_verify_accepts_only_the_verifier(verifier, presented):
    pkce.verify(verifier, pkce.s256(verifier), "S256")
    try:
        pkce.verify(presented, pkce.s256(verifier), "S256")
    except InvalidGrant as error:
        assert_rfc_description(error)
        assert presented != verifier
        return
    assert presented == verifier  # (a SHA-256 collision would fail here)


# -- settings converters ------------------------------------------------------------------

SETTING_TEXT = st.one_of(
    noisy_text,
    st.sampled_from(
        ["true", "False", " on ", "0", "1", "3600", "-1", "1e9", "nan", "inf", "/a", "/a*", "http://x/"]
    ),
    st.integers(-5, 10**12).map(str),
)


def ascii_words(value: str) -> bool:
    return all(ch not in string.whitespace and ch != "," for ch in value)


CONVERTER_PROPERTIES = {
    "asbool": (settings.asbool, lambda v, text: v is (text.strip().lower() in {"true", "yes", "on", "1"})),
    "seconds": (settings.seconds, lambda v, text: isinstance(v, int) and v > 0),
    "positive_float": (settings.positive_float, lambda v, text: v > 0 and math.isfinite(v)),
    "aslist": (settings.aslist, lambda v, text: all(word and ascii_words(word) for word in v)),
    "text": (settings.text, lambda v, text: v == text.strip()),
    "header_text": (
        settings.header_text,
        lambda v, text: re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]*", v) and v == text.strip(),
    ),
    "scope_tokens": (settings.scope_tokens, lambda v, text: all(SCOPE_TOKEN.fullmatch(s) for s in v)),
    "url_path": (settings.url_path, lambda v, text: v.startswith("/") and not any(c.isspace() for c in v)),
    "http_url": (settings.http_url, lambda v, text: v == "" or (re.match(r"https?://", v) and "?" not in v)),
    "choice": (settings.choice("opaque", "jwt"), lambda v, text: v in ("opaque", "jwt")),
    "whole_number": (settings.whole_number(0, 300), lambda v, text: isinstance(v, int) and 0 <= v <= 300),
    "claim_name": (
        settings.claim_name,
        lambda v, text: v not in settings.RESERVED_CLAIMS and 0 < len(v) <= 200,
    ),
    "login_location": (settings.login_location, lambda v, text: v == "" or v.startswith(("/", "http"))),
    "key_text": (settings.key_text, lambda v, text: v == "" or len(v) >= 32),
    "cookie_name": (settings.cookie_name, lambda v, text: re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v)),
    # response_types and refresh_token_grants are checked against the grant registry at start-up
    # (tests/test_authorize.py::test_bad_settings_name_the_key), no longer by a converter.
    "endpoint_list": (
        settings.endpoint_list,
        lambda v, text: all(w and not w.startswith("=") and ("=" not in w or "=/" in w) for w in v),
    ),
    "path_patterns": (
        settings.path_patterns,
        lambda v, text: all(p.startswith("/") for p in v.exact | set(v.prefixes)),
    ),
    "parse_scope_rules": (settings.parse_scope_rules, lambda v, text: all(rule.scopes for rule in v)),
}


@pytest.mark.parametrize("name", CONVERTER_PROPERTIES)
def test_setting_converter_any_input(name):
    convert, holds = CONVERTER_PROPERTIES[name]

    @examples(50)
    @given(text=SETTING_TEXT)
    def check(text):
        try:
            value = convert(text)
        except ValueError as error:
            assert "\n" not in str(error)  # one line, value shown with repr()
            return
        assert holds(value, text), value

    check()


@examples(100)
@given(
    path=noisy_text,
    rules=st.lists(
        st.tuples(
            st.sampled_from(["GET", "*", "POST,PUT"]),
            st.sampled_from(["/api/*", "/x", "/"]),
            st.sampled_from(["read", "write admin"]),
        ),
        max_size=3,
    ),
)
def test_scope_rules_match_any_path(path, rules):
    text = "\n".join(" ".join(rule) for rule in rules)
    parsed = settings.parse_scope_rules(text)
    assert len(parsed) == len(rules)
    from oauth_middleware.guard import required_scopes

    needed = required_scopes(parsed, "GET", path)
    assert needed is None or any(needed == rule.scopes for rule in parsed)
    assert required_scopes(parsed, "HEAD", path) == needed  # a rule for GET covers HEAD


#: Settings whose converters import code or read files: not fed random text.
_NOT_FUZZED = {
    "authenticate_user",
    "verify_password",
    "normalize_username",
    "token_claims",
    "token_exchange_policy",
    "registration_policy",
    "consent_template",
    "login_template",
    "device_template",
}
#: Keys as an ini file can spell them: one line of printable characters.
ini_keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30)
FUZZED_KEYS = sorted(f.name for f in dataclasses.fields(settings.Settings) if f.name not in _NOT_FUZZED)


@examples(150)
@given(config=st.dictionaries(st.one_of(st.sampled_from(FUZZED_KEYS), ini_keys), SETTING_TEXT, max_size=4))
def test_settings_from_any_config(config):
    try:
        converted = settings.Settings.from_config(config)
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message and "Traceback" not in message
        # The key at fault, or for a contradiction one of the settings involved.
        assert any(message.startswith(f"{key}: ") for key in [*config, *FUZZED_KEYS]), message
        return
    for key in config:
        assert key in FUZZED_KEYS
        assert getattr(converted, key) is not None
