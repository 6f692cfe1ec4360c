"""The guard on its own, for resource servers in other processes or hosts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .guard import Guard
from .repository import Repository
from .server import store_from_settings, token_format_from_settings
from .settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def guard_from_settings(app: WSGIApplication, settings: Settings) -> Guard:
    """Wrap ``app`` in a guard that checks tokens in the configured store or by signature.

    :param app: the WSGI application to protect.
    :param settings: the same settings the authorization server uses.
    """
    # A JWT guard without revocation checks validates locally: no store to open.
    # The guard never reads clients, so ``client_store`` is not opened here: an
    # ini shared with the authorization server may name it without this host
    # needing to reach it.
    needs_store = settings.token_format == "opaque" or settings.jwt_check_revocation
    repository = Repository(store_from_settings(settings)) if needs_store else None
    return Guard(app, settings, token_format_from_settings(settings, repository, issuing=False))
