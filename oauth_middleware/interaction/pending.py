"""What a flow parks while the user logs in and decides: a :class:`PendingRequest`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from webob import Response

from ..errors import OAuthError
from ..models import Client
from ..users import Identity


@dataclass(frozen=True)
class PendingRequest:
    """A request waiting for a user's login and decision, from any flow.

    The interaction knows nothing else of the flow: the authorization
    endpoint parks a validated authorization request here, a device flow
    would park the request its user code names.

    :param id: the request's identity. The forms' CSRF tokens are bound to it
        (and to the browser session and the user), so it must differ between
        any two requests a user could be asked about, and never be chosen
        by whoever sends the form.
    :param client: the client asking.
    :param scopes: the scopes the user is asked for.
    :param destination: where the answer goes, as the consent page shows it
        (the redirect URI's host); empty when nothing is sent anywhere.
    :param fields: the fields that bring this request back: hidden fields of
        the login and consent forms, and the query of the page after login
        (name-value pairs where a name repeats, as ``resource`` may).
    :param approve: the answer once the user approved; called with the user (their id and
        the data their tokens are to carry).
    :param deny: the answer when the request is refused with this error: the
        user denied it (``access_denied``) or the form was malformed
        (``invalid_request``).

    Example::

        pending = PendingRequest(
            id="device:" + record_id, client=client, scopes=("read",), destination="",
            fields={"user_code": code}, approve=grant_device, deny=refuse_device,
        )
        return interaction.start(request, pending)
    """

    id: str
    client: Client
    scopes: tuple[str, ...]
    destination: str
    fields: Mapping[str, str] | Sequence[tuple[str, str]]
    approve: Callable[[Identity], Response]
    deny: Callable[[OAuthError], Response]
