"""Device authorization grant (RFC 8628): the device polls the token endpoint with its device code.

The device code is 256 random bits, stored only as its hash. Its user code
is 8 letters of :data:`USER_CODE_ALPHABET` (20 consonants: no vowels, so no
words, and none of the look-alikes 0/O, 1/I/L... as digits are absent),
shown as ``XXXX-XXXX``: 20**8 (about 2**34.6) codes. Guesses are throttled
per address and globally (``device_user_code_max_failures`` per
``throttle_window``), so over a code's ``device_code_ttl`` an attacker gets at
most a few thousand guesses against billions of codes (SECURITY.rst, RFC
8628 §5.1). Each poll is one atomic ``add`` (the interval), an approved code
is redeemed once (one atomic ``add``), as an authorization code is.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from ..errors import (
    AuthorizationPending,
    DeviceAccessDenied,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    SlowDown,
)
from ..models import digest
from ..records import DeviceCodeRecord
from .base import GrantBase, GrantContext, TokenRequest, TokenResponse, issue_with_refresh

if TYPE_CHECKING:
    from ..models import Client

#: The user code's characters: consonants only (no vowels: no words; no digits: no 0/O, 1/I).
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
#: Characters of a user code (shown as two groups of four).
USER_CODE_LENGTH = 8


def new_user_code() -> str:
    """A fresh user code, ``XXXX-XXXX``."""
    code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(entered: str) -> str | None:
    """The user code as typed (any case, dashes and spaces anywhere), as issued; None if it cannot be one."""
    letters = "".join(entered.split()).replace("-", "").upper()
    if len(letters) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in letters):
        return None
    return f"{letters[:4]}-{letters[4:]}"


def user_code_id(user_code: str) -> str:
    """The store's name of a normalised user code (its SHA-256, never the code in clear)."""
    return hashlib.sha256(user_code.encode("ascii")).hexdigest()


def start_device_authorization(
    context: GrantContext, client: Client, scopes: tuple[str, ...], resources: tuple[str, ...] = ()
) -> tuple[str, str]:
    """Create and store a device authorization; return its device code and user code.

    :param resources: the resources (RFC 8707) its tokens may be for.
    """
    device_code = secrets.token_urlsafe(32)
    user_code = new_user_code()
    ttl = context.settings.device_code_ttl
    record = DeviceCodeRecord(
        client_id=client.client_id,
        scopes=scopes,
        user_code_id=user_code_id(user_code),
        expires_at=int(context.clock.time()) + ttl,
        audience=resources,
    )
    context.repository.save_device_code(digest(device_code), record, ttl)
    return device_code, user_code


class DeviceCodeGrant(GrantBase):
    """Exchange an approved device code for tokens (RFC 8628 §3.4, §3.5)."""

    grant_type = "urn:ietf:params:oauth:grant-type:device_code"
    refresh_tokens = True
    #: Devices are public clients as a rule (RFC 8628 §5.6).
    allows_public_clients = True
    # Its metadata member, device_authorization_endpoint, is its endpoint's to declare.

    def __init__(self, context: GrantContext) -> None:
        super().__init__(context)
        self.repository = context.repository

    def token_response(self, request: TokenRequest) -> TokenResponse:
        """Answer a poll: pending, slow down, denied, expired, or the tokens (once)."""
        device_code = request.params.get("device_code")
        if device_code is None:
            raise InvalidRequest("device_code is required")
        device_id = digest(device_code)
        record = self.repository.find_device_code(device_id)
        if record is None or record.client_id != request.client.client_id:
            if record is None and self.repository.device_code_redeemed(device_id):
                raise InvalidGrant("the device code was already used")
            raise InvalidGrant("the device code is invalid")
        if record.expired(self.context.clock.time()):
            raise ExpiredToken("the device code has expired")
        if record.status == "denied":
            raise DeviceAccessDenied("the user denied the request")
        ttl = self.context.settings.device_code_ttl
        if record.status != "approved":
            raised = self.repository.poll_device_code(
                device_id, self.context.settings.device_poll_interval, ttl
            )
            if raised is not None:
                raise SlowDown(f"polled too fast: wait {raised} seconds between polls")
            raise AuthorizationPending("the user has not decided yet")
        client_resources = request.client.resources
        audience = self.context.resource_policy.narrow(request.resources, record.audience, client_resources)
        if not self.repository.claim_device_code(device_id, 2 * ttl):
            raise InvalidGrant("the device code was already used")
        # The settings or the registration may have dropped a scope since the user approved.
        self.context.scope_policy.check(record.scopes, request.client)
        return issue_with_refresh(
            self.context,
            request,
            self.grant_type,
            user_id=record.user_id,
            scopes=record.scopes,
            family=device_id,
            data=record.extra,
            audience=audience,
            grant_audience=record.audience,
        )
