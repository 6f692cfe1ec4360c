"""The generic registry behind every extension point."""

from __future__ import annotations

import importlib.metadata

import pytest

from oauth_middleware.errors import ConfigError
from oauth_middleware.registry import Registry


def test_register_get_names_in_order():
    registry: Registry[int] = Registry("number", "oauth_middleware.tests-none")
    registry.register("one", 1)
    registry.register("two", 2)
    assert registry.get("one") == 1
    assert registry.get("three") is None
    assert registry.names() == ("one", "two")
    assert "two" in registry and "three" not in registry
    assert list(registry) == ["one", "two"]


def test_a_name_is_taken_once_unless_replaced():
    registry: Registry[int] = Registry("number", "oauth_middleware.tests-none")
    registry.register("one", 1)
    registry.register("one", 1)  # the same entry again is harmless
    with pytest.raises(ConfigError, match="number 'one' is already registered"):
        registry.register("one", 2)
    registry.register("one", 2, replace=True)
    assert registry.get("one") == 2
    registry.unregister("one")
    assert registry.get("one") is None


def _points(group: str, *values: tuple[str, str]) -> list[importlib.metadata.EntryPoint]:
    return [importlib.metadata.EntryPoint(name, value, group) for name, value in values]


def test_entry_points_of_the_group_are_loaded_once(monkeypatch):
    calls = []

    def fake(*, group):
        calls.append(group)
        return _points(group, ("path-join", "os.path:join"))

    monkeypatch.setattr("oauth_middleware.registry.entry_points", fake)
    registry: Registry[object] = Registry("helper", "oauth_middleware.helpers")
    import os.path

    assert registry.get("path-join") is os.path.join
    assert registry.names() == ("path-join",)
    assert calls == ["oauth_middleware.helpers"]


def test_a_broken_entry_point_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(
        "oauth_middleware.registry.entry_points",
        lambda *, group: _points(group, ("bad", "no_such_module_anywhere:thing")),
    )
    registry: Registry[object] = Registry("store scheme", "oauth_middleware.stores")
    with pytest.raises(ConfigError) as info:
        registry.names()
    message = str(info.value)
    assert message.startswith("store scheme 'bad': cannot load entry point 'no_such_module_anywhere:thing'")
    assert "\n" not in message
