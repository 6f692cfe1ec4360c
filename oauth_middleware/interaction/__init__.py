"""The interaction: login and consent for any pending request (see :mod:`.flow`).

The authorization endpoint is one user of it: it validates an authorization
request, parks it as a :class:`PendingRequest` and hands it over. Another
flow (a device's user code) parks its own request the same way.
"""

from __future__ import annotations

from .flow import FORM_FIELDS, Interaction, InteractionContext, with_cookie
from .pages import Pages, csrf_token
from .pending import PendingRequest

__all__ = [
    "FORM_FIELDS",
    "Interaction",
    "InteractionContext",
    "Pages",
    "PendingRequest",
    "csrf_token",
    "with_cookie",
]
