"""The user-code page of the device grant (RFC 8628 §3.3): the ``verification_uri``.

Without a ``user_code`` it shows the entry form (a GET form, so that
``verification_uri_complete`` is the same page filled in). A code is
matched case-insensitively, dashes and spaces ignored. Every lookup is
counted by the throttle before the store is asked (RFC 8628 §5.1): wrong
codes per address (``throttle_max_failures``, ``throttle_address_max_failures``)
and from everyone together (``device_user_code_max_failures``), within
``throttle_window``; a right code is given back. A known code's request is
parked as a :class:`~oauth_middleware.interaction.PendingRequest` and goes
through the same login and consent as the authorization endpoint's (their
CSRF tokens bound to the device code); the decision takes the user code,
so a code decides one device once.
"""

from __future__ import annotations

import dataclasses
import html
import string
from importlib import resources
from typing import Protocol

from webob import Request, Response

from ..clock import Clock
from ..errors import AccessDenied, FatalClientError, OAuthError, TooManyRequests
from ..forms import form_items
from ..grants.device_code import normalize_user_code, user_code_id
from ..interaction import Interaction, PendingRequest
from ..records import DeviceCodeRecord
from ..repository import Repository
from ..responses import html_document, html_page
from ..settings import Settings
from ..throttle import Counter, Throttle
from ..users import Identity
from .base import Endpoint, with_webob
from .device_authorization import device_grant_enabled


class DevicePageAuthorize(Protocol):
    """The part of the authorization endpoint's context the page shares: the interaction."""

    @property
    def interaction(self) -> Interaction:
        """Login and consent."""


class DevicePageContext(Protocol):
    """What the page uses of the server."""

    @property
    def settings(self) -> Settings:
        """``device_template``, ``device_code_ttl``, ``device_user_code_max_failures``."""

    @property
    def clock(self) -> Clock:
        """The time device codes expire by."""

    @property
    def repository(self) -> Repository:
        """Device codes and clients."""

    @property
    def throttle(self) -> Throttle:
        """Counts wrong user codes."""

    @property
    def authorize_context(self) -> DevicePageAuthorize:
        """Where the shared interaction lives."""


def device_page(context: DevicePageContext, request: Request) -> Response:
    """The entry form, or the login, consent or decision about the device a user code names."""
    items = _items(request)
    entered = dict(items).get("user_code")
    if entered is None:
        return _entry_page(context, request)
    try:
        found = _find(context, request, entered)
    except TooManyRequests as error:
        page = _entry_page(context, request, "Too many wrong codes. Please try again later.", entered, 429)
        page.headers["Retry-After"] = str(error.retry_after)
        return page
    if found is None:
        return _entry_page(context, request, "This code is wrong or has expired.", entered, 400)
    device_id, record, user_code = found
    client = context.repository.get_client(record.client_id)
    if client is None:
        raise FatalClientError("the device's client is no longer registered")
    ttl = max(1, record.expires_at + context.settings.device_code_ttl - int(context.clock.time()))

    def decide(decided: DeviceCodeRecord, title: str, text: str) -> Response:
        if not context.repository.decide_device_code(device_id, decided, ttl):
            return html_page("Code already used", "<p>This code was already used.</p>", 400)
        return html_page(title, f"<p>{text}</p>")

    def approve(user: Identity) -> Response:
        approved = dataclasses.replace(record, status="approved", user_id=user.user_id, extra=user.data)
        return decide(approved, "Device connected", "You may go back to your device.")

    def deny(error: OAuthError) -> Response:
        if not isinstance(error, AccessDenied):  # a malformed form decides nothing
            raise FatalClientError(error.description or error.error)
        return decide(
            dataclasses.replace(record, status="denied"), "Device refused", "The device was refused."
        )

    pending = PendingRequest(
        id=f"device:{device_id}",
        client=client,
        scopes=record.scopes,
        destination="",
        fields={"user_code": user_code},
        approve=approve,
        deny=deny,
    )
    interaction = context.authorize_context.interaction
    if request.method == "GET":
        return interaction.start(request, pending)
    return interaction.resume(request, pending, items)


def _items(request: Request) -> list[tuple[str, str]]:
    """The query of a GET, the form of a POST (form-encoded UTF-8, or an error page)."""
    if request.method == "POST":
        if request.content_type.lower() != "application/x-www-form-urlencoded":
            raise FatalClientError("the body must be application/x-www-form-urlencoded")
        return form_items(request, FatalClientError)
    try:
        return list(request.GET.items())
    except UnicodeDecodeError:
        raise FatalClientError("the query string is not valid UTF-8") from None


def _find(
    context: DevicePageContext, request: Request, entered: str
) -> tuple[str, DeviceCodeRecord, str] | None:
    """The pending device authorization ``entered`` names, counted by the throttle.

    :raises TooManyRequests: this address, or everyone, guessed too often: the code is not looked up.
    """
    throttle = context.throttle
    counters = throttle.counters(throttle.origin(request), "user-code")
    if throttle.enabled:
        counters = (*counters, Counter("user-code", context.settings.device_user_code_max_failures))
    attempt = throttle.attempt(counters)
    user_code = normalize_user_code(entered)
    device_id = None if user_code is None else context.repository.find_user_code(user_code_id(user_code))
    record = None if device_id is None else context.repository.find_device_code(device_id)
    if (
        user_code is None
        or device_id is None
        or record is None
        or record.status != "pending"
        or record.expired(context.clock.time())
    ):
        attempt.failed()
        return None
    attempt.succeeded()
    return device_id, record, user_code


def _entry_page(
    context: DevicePageContext, request: Request, error: str = "", entered: str = "", status: int = 200
) -> Response:
    template = context.settings.device_template or (
        resources.files("oauth_middleware").joinpath("templates/device.html").read_text(encoding="utf-8")
    )
    values = {
        "action_url": html.escape(request.path),
        "error": f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
        "user_code": html.escape(entered[:20]),
    }
    return html_document(string.Template(template).safe_substitute(values), status)


#: RFC 8628 §3.3; served with the device grant.
ENDPOINT = Endpoint(
    "device",
    with_webob(device_page),
    ("GET", "POST"),
    path_setting="device_verification_path",
    credentials=True,
    active=device_grant_enabled,
)
