"""Data on tokens: what the user hooks and the ``token_claims`` hook attach to a grant.

The user hooks (``authenticate_user``, ``verify_password``, an upstream
component setting ``REMOTE_USER`` with ``environ['oauth2.user_data']``) may
return data with the user id; the ``token_claims`` hook may add data for a
client, user, grant type and scopes when a grant is made. The data travels
with the grant: code -> access token -> refresh token -> every access token
refreshed from it, and reaches the app as ``environ['oauth2.token'].extra``,
introspection and JWTs in one claim (``jwt_extra_claim``, never a claim the
token or introspection sets itself).

Data is checked here, once, where a hook hands it over: a JSON object with
string keys, at most ``token_data_max_bytes`` of compact JSON. Anything else
is dropped with a warning naming the hook and why; the login or grant goes on
without it (never an error answer to the client, which cannot fix a hook).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .models import Client

log = logging.getLogger("oauth_middleware.token_data")

#: Where an upstream component that sets ``REMOTE_USER`` puts the user's data.
UPSTREAM_DATA_KEY = "oauth2.user_data"


def checked(data: object, *, source: str, limit: int) -> dict[str, Any]:
    """``data`` as a plain JSON object of at most ``limit`` bytes, or ``{}`` (logged) when it is not one.

    :param data: what a hook returned.
    :param source: the hook, named in the log line.
    :param limit: ``token_data_max_bytes``.
    """
    if data is None or (isinstance(data, Mapping) and not data):
        return {}
    if not isinstance(data, Mapping) or not all(isinstance(key, str) for key in data):
        reason = f"not a JSON object with string keys but {type(data).__name__}"
    else:
        try:
            text = json.dumps(dict(data), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            reason = f"not JSON ({exc})"
        else:
            size = len(text.encode("utf-8"))
            if size <= limit:
                # A copy in JSON's own types, as the store and a JWT give it back
                # (tuples become lists), detached from the hook's objects.
                plain: dict[str, Any] = json.loads(text)
                return plain
            reason = f"{size} bytes, over token_data_max_bytes = {limit}"
    log.warning("token data from %s dropped: %s", source, reason)
    return {}


def split_user(result: object, *, source: str, limit: int) -> tuple[object, dict[str, Any]]:
    """A user hook's answer as (user id answer, data): a ``(user_id, data)`` pair, or the answer alone.

    :param result: what ``authenticate_user`` or ``verify_password`` returned.
    :param source: the hook, for the log line of dropped data.
    :param limit: ``token_data_max_bytes``.
    """
    if isinstance(result, tuple) and len(result) == 2:
        answer, data = result
        return answer, checked(data, source=source, limit=limit) if answer else {}
    return result, {}


class TokenData:
    """The data a new grant's tokens carry: the user's, and what ``token_claims`` adds.

    :param hook: the ``token_claims`` callable, or None.
    :param limit: ``token_data_max_bytes``.
    """

    def __init__(self, hook: Callable[..., Any] | None, limit: int) -> None:
        self.hook = hook
        self.limit = limit

    def for_grant(
        self,
        client: Client,
        user_id: str | None,
        grant_type: str,
        scopes: tuple[str, ...],
        data: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The data of a new grant: ``data`` (the user hooks', already checked) and the hook's over it.

        When both together are over the limit the hook's part is dropped (logged)
        and the user's kept.
        """
        if self.hook is None:
            return dict(data)
        added = self.hook(client, user_id, grant_type, scopes, MappingProxyType(dict(data)))
        extra = checked(added, source="token_claims", limit=self.limit)
        if not extra:
            return dict(data)
        combined = checked({**data, **extra}, source="token_claims with the user's data", limit=self.limit)
        return combined or dict(data)
