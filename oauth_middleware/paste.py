"""PasteDeploy factories: one line each over the Python API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from _typeshed.wsgi import WSGIApplication


def oauth2_filter_factory(
    global_conf: dict[str, Any], **local_conf: str
) -> Callable[[WSGIApplication], WSGIApplication]:
    """``egg:oauth-middleware#oauth2``: authorization server and guard."""
    from .middleware import OAuth2Middleware
    from .settings import Settings

    settings = Settings.from_config(local_conf)
    return lambda app: OAuth2Middleware(app, settings)


def guard_filter_factory(
    global_conf: dict[str, Any], **local_conf: str
) -> Callable[[WSGIApplication], WSGIApplication]:
    """``egg:oauth-middleware#guard``: the guard alone, for resource servers."""
    from .resource import guard_from_settings
    from .settings import Settings

    settings = Settings.from_config(local_conf)
    return lambda app: guard_from_settings(app, settings)


def demo_app_factory(global_conf: dict[str, Any], **local_conf: str) -> WSGIApplication:
    """``egg:oauth-middleware#demo``: the small protected demo application."""
    from .demo import DemoApp

    return DemoApp.from_config(local_conf)
