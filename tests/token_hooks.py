"""Hooks of the token-data tests, named in settings by dotted name (``token_hooks:...``)."""

from __future__ import annotations

from typing import Any

from oauth_flows import USERS

from oauth_middleware.models import Client

#: What the next call of a bad hook answers (set by a test).
BAD: dict[str, Any] = {"data": None}


def verify_password(username: str, password: str) -> Any:
    """The test users, with their roles as token data."""
    if USERS.get(username) != password:
        return None
    return username, {"roles": [f"{username}-role"], "via": "verify_password"}


def verify_password_bad(username: str, password: str) -> Any:
    """The test users, with whatever :data:`BAD` holds as their data."""
    return (username, BAD["data"]) if USERS.get(username) == password else None


def authenticate_user(request: Any) -> Any:
    """The user named by the ``X-Test-User`` header, with data."""
    user = request.headers.get("X-Test-User")
    return (user, {"via": "authenticate_user"}) if user else None


def token_claims(
    client: Client, user_id: str | None, grant_type: str, scopes: tuple[str, ...], data: Any
) -> dict[str, Any]:
    """Adds what it is told, so a test sees each argument arrive."""
    return {
        "tenant": client.meta.get("tenant", "-"),
        "grant": grant_type,
        "for": user_id,
        "scopes": list(scopes),
        "saw": sorted(data),
    }


def token_claims_registered(
    client: Client, user_id: str | None, grant_type: str, scopes: tuple[str, ...], data: Any
) -> dict[str, Any]:
    """Tries to override registered claims."""
    return {"sub": "mallory", "scope": "admin", "exp": 1, "active": False, "client_id": "other"}


def token_claims_bad(
    client: Client, user_id: str | None, grant_type: str, scopes: tuple[str, ...], data: Any
) -> Any:
    """Answers whatever :data:`BAD` holds."""
    return BAD["data"]
