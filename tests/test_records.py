"""Typed store records (issue 11 item 3): their store format, and who may know it.

The records keep the short keys of 0.1 and 0.2, so that a store written by
those versions keeps working; only :mod:`oauth_middleware.records` knows the
keys and only :mod:`oauth_middleware.repository` the store key layout, which
:func:`layout_leaks` checks over the whole package.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re
import textwrap

import pytest
import webtest
from oauth_flows import NATIVE_ID, TOKEN, api_status, flow_middleware, get_code, redeem

from oauth_middleware.models import digest
from oauth_middleware.records import (
    AccessTokenRecord,
    BlockRecord,
    CodeRecord,
    CodeUsedMarker,
    ConsentRecord,
    DenyEntry,
    RefreshTokenRecord,
    RotationMarker,
    UniqueTokenRecord,
    UsedJtiRecord,
)

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "oauth_middleware"

REFRESH = RefreshTokenRecord("native", "alice", ("read", "write"), 2_000_000_100, "fam", 2_000_009_000)
RECORDS = [
    pytest.param(AccessTokenRecord("c", None, ("read",), 2_000_000_000, {"k": [1]}, "fam"), id="access"),
    pytest.param(AccessTokenRecord("c", "u", (), 2_000_000_000), id="access-no-family"),
    pytest.param(REFRESH, id="refresh"),
    pytest.param(RotationMarker(REFRESH, rotated_at=2_000_000_050), id="rotation"),
    pytest.param(RotationMarker(REFRESH, rotated_at=2_000_000_050, reused=True), id="rotation-reused"),
    pytest.param(
        CodeRecord("c", "https://a/cb", True, ("read",), "u", "x" * 43, "S256", 2_000_000_000), id="code"
    ),
    pytest.param(
        CodeRecord("c", "https://a/cb", False, (), "u", None, None, 2_000_000_000), id="code-no-pkce"
    ),
    pytest.param(CodeUsedMarker("fam"), id="code-used"),
    pytest.param(CodeUsedMarker("fam", replayed=True), id="code-replayed"),
    pytest.param(DenyEntry(2_000_000_000), id="deny"),
    pytest.param(BlockRecord(2_000_000_000.5), id="block"),
    pytest.param(UniqueTokenRecord(b"\x00nonce\xffsealed"), id="unique"),
    pytest.param(
        AccessTokenRecord("c", None, ("read",), 2_000_000_000, {}, "fam", "jkt-thumbprint"), id="access-dpop"
    ),
    pytest.param(
        RefreshTokenRecord("n", "u", ("read",), 2_000_000_100, "fam", 2_000_009_000, "jkt"), id="refresh-dpop"
    ),
    pytest.param(
        CodeRecord("c", "https://a/cb", True, ("read",), "u", "x" * 43, "S256", 2_000_000_000, "jkt"),
        id="code-dpop-jkt",
    ),
    pytest.param(UsedJtiRecord(2_000_000_000), id="used-jti"),
]


@pytest.mark.parametrize("record", RECORDS)
def test_a_record_comes_back_from_its_store_value(record):
    value = record.to_value()
    assert type(record).from_value(value) == record
    # What a store keeps is JSON: tuples come back as lists, bytes never reach it.
    assert type(record).from_value(json.loads(json.dumps(value))) == record


@pytest.mark.parametrize(
    ("record_type", "stored", "expected"),
    [
        pytest.param(
            AccessTokenRecord,
            {"c": "c", "u": "u", "s": ["read"], "e": 2_000_000_000, "x": {"a": 1}, "f": None},
            AccessTokenRecord("c", "u", ("read",), 2_000_000_000, {"a": 1}, None),
            id="access",
        ),
        pytest.param(
            RefreshTokenRecord,  # 0.1 wrote no chain end: the token's own expiry is it
            {"c": "c", "u": "u", "s": ["read"], "e": 2_000_000_000, "x": {}, "f": "fam"},
            RefreshTokenRecord("c", "u", ("read",), 2_000_000_000, "fam", 2_000_000_000),
            id="refresh-0.1",
        ),
        pytest.param(
            RefreshTokenRecord,
            {"c": "c", "u": None, "s": [], "e": 2_000_000_000, "x": {}, "f": "fam", "ce": 2_000_000_900},
            RefreshTokenRecord("c", None, (), 2_000_000_000, "fam", 2_000_000_900),
            id="refresh-0.2",
        ),
        pytest.param(
            RotationMarker,
            {"c": "c", "u": "u", "s": ["read"], "e": 5, "f": "fam", "ce": 9, "t": 3, "r": True},
            RotationMarker(RefreshTokenRecord("c", "u", ("read",), 5, "fam", 9), 3, reused=True),
            id="rotation-reused",
        ),
        pytest.param(
            CodeRecord,
            {
                "c": "c",
                "r": "https://a/cb",
                "rg": False,
                "s": ["read"],
                "u": "u",
                "cc": None,
                "cm": None,
                "e": 7,
            },
            CodeRecord("c", "https://a/cb", False, ("read",), "u", None, None, 7),
            id="code",
        ),
        pytest.param(CodeUsedMarker, {"f": "fam", "r": True}, CodeUsedMarker("fam", True), id="code-used"),
        pytest.param(BlockRecord, {"u": 12.5}, BlockRecord(12.5), id="block"),
        pytest.param(DenyEntry, {"u": 12}, DenyEntry(12), id="deny"),
        pytest.param(UniqueTokenRecord, {"t": "AAEC"}, UniqueTokenRecord(b"\x00\x01\x02"), id="unique"),
    ],
)
def test_values_written_by_earlier_versions_load(record_type, stored, expected):
    assert record_type.from_value(stored) == expected


def test_the_guards_short_path_reads_an_access_token_as_the_record_does():
    record = AccessTokenRecord("c", "u", ("read", "write"), 2_000_000_000, {"k": 1}, "fam")
    value = json.loads(json.dumps(record.to_value()))
    fast = AccessTokenRecord.access_token_from_value(value, "tok", "tok-hash")
    assert fast == AccessTokenRecord.from_value(value).access_token("tok", "tok-hash")
    assert (fast.client_id, fast.user_id, fast.scopes, dict(fast.extra)) == (
        "c",
        "u",
        ("read", "write"),
        {"k": 1},
    )


def test_a_garbled_unique_token_entry_is_a_value_error():
    with pytest.raises(ValueError):
        UniqueTokenRecord.from_value({"x": "no t"})


def test_a_consent_is_whole_only_with_its_last_member():
    assert ConsentRecord.from_members({"read", "write"}) is None  # written in part
    whole = ConsentRecord.from_members(set(ConsentRecord(frozenset({"read"})).to_members()))
    assert whole == ConsentRecord(frozenset({"read"}))
    assert whole.covers(("read",)) and whole.covers(()) and not whole.covers(("write",))


def test_tokens_in_a_store_written_by_0_2_keep_working(make_middleware):
    """Records put in the store in the 0.2 format are read by the grants and the guard."""
    middleware = flow_middleware(make_middleware, grants="authorization_code refresh_token")
    app = webtest.TestApp(middleware)
    store = middleware.server.store
    future = 4_000_000_000
    store.put(
        f"at:{digest('old-access')}",
        {"c": NATIVE_ID, "u": "alice", "s": ["read"], "e": future, "x": {}, "f": "old-fam"},
        60,
    )
    store.put(
        f"rt:{digest('old-refresh')}",
        {"c": NATIVE_ID, "u": "alice", "s": ["read"], "e": future, "x": {}, "f": "old-fam"},
        60,
    )
    assert api_status(app, "old-access") == 200
    params = {"grant_type": "refresh_token", "refresh_token": "old-refresh", "client_id": NATIVE_ID}
    assert app.post(TOKEN, params).json["token_type"] == "Bearer"
    # ...and a fresh code still redeems next to them.
    assert "access_token" in redeem(app, get_code(app))


# -- the layout stays in two modules -----------------------------------------------------

#: Where the record fields and the store keys may be spelled out (``models.Client`` is a record too).
OWNERS = {"records.py", "repository.py", "models.py"}
#: Modules whose short keys are no store record's: each with the reason.
NOT_RECORDS = {
    "stores": "a backend's own envelope of values and counters ({'n': count}, {'v': ..., 'e': ...})",
    "users.py": "the session cookie's signed payload, never stored",
    "keys.py": "JWK members (RFC 7517, 7518: 'k', 'n', 'e', 'x', 'y', 'd')",
}
#: Store key prefixes (``client:`` is left out: it is also a throttle subject's).
KEY_PREFIX = re.compile(r"^(at|rt|code|code-used|used|family|deny|fail|block|consent|unique):")


def layout_leaks(source: str) -> list[str]:
    """Where ``source`` reads or writes a record field by its short key, or spells a store key."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    leaks = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _short_key(node.slice):
            leaks.append(f"line {node.lineno}: [{node.slice.value!r}]")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"get", "pop", "setdefault"}
            and node.args
            and _short_key(node.args[0])
        ):
            leaks.append(f"line {node.lineno}: .{node.func.attr}({node.args[0].value!r})")
        elif isinstance(node, ast.Dict) and any(_short_key(key) for key in node.keys):
            leaks.append(f"line {node.lineno}: a dict with short keys")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and KEY_PREFIX.match(node.value)
        ):
            leaks.append(f"line {node.lineno}: store key {node.value!r}")
    return leaks


def _short_key(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and 0 < len(node.value) <= 2


def checked_modules(package: pathlib.Path) -> list[pathlib.Path]:
    """The package's modules outside the owners of the layout and the modules with other short keys."""
    return [
        path
        for path in sorted(package.rglob("*.py"))
        if path.name not in OWNERS and not {path.name, path.parent.name} & NOT_RECORDS.keys()
    ]


def test_no_module_but_records_and_repository_knows_the_store_layout():
    leaks = {
        str(path.relative_to(PACKAGE)): found
        for path in checked_modules(PACKAGE)
        if (found := layout_leaks(path.read_text()))
    }
    assert leaks == {}


@pytest.mark.parametrize(
    "planted",
    [
        pytest.param('record = repository.find_code(code_id)\nif record["e"] <= now: pass\n', id="subscript"),
        pytest.param('marker = repository.redeemed_code(code_id)\nreplayed = marker.get("r")\n', id="get"),
        pytest.param('repository.save_code(code_id, {"c": client_id, "e": expires_at}, ttl)\n', id="dict"),
        pytest.param('store.put(f"code:{code_id}", value, ttl)\n', id="store-key"),
        pytest.param('store.get("deny:" + jti)\n', id="store-key-concatenated"),
    ],
)
def test_the_layout_check_finds_a_planted_leak(tmp_path, planted):
    package = tmp_path / "oauth_middleware"
    (package / "grants").mkdir(parents=True)
    (package / "grants" / "planted.py").write_text(f'"""fail:<subject> in a docstring is fine."""\n{planted}')
    (package / "repository.py").write_text(planted)  # the owners may
    found = {
        str(path.relative_to(package)): layout_leaks(path.read_text()) for path in checked_modules(package)
    }
    assert list(found) == ["grants/planted.py"]
    assert found["grants/planted.py"], textwrap.dedent(planted)
