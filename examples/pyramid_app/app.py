"""A small Pyramid application protected by oauth-middleware (see ``app.ini``).

``GET /`` is public; ``GET /whoami`` shows the token the guard validated;
``GET /reports`` needs ``read`` (a ``scope_rules`` line in the ini, enforced
by the guard); ``POST /notes`` needs ``write`` (checked here, in the view).
"""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.router import Router

from oauth_middleware import current_token, scope_denial


def home(request: Request) -> dict[str, Any]:
    return {"framework": "pyramid", "public": True}


def whoami(request: Request) -> dict[str, Any]:
    # The guard ran first: every path but "/" reaches us with a valid token.
    token = request.environ["oauth2.token"]
    return {
        "framework": "pyramid",
        "client_id": token.client_id,
        "user": request.environ["oauth2.user"],
        "scopes": list(request.environ["oauth2.scopes"]),
        "expires_at": token.expires_at,
    }


def reports(request: Request) -> dict[str, Any]:
    return {"framework": "pyramid", "reports": ["daily", "weekly"]}


def add_note(request: Request) -> Any:
    denied = scope_denial(request.environ, "write", realm=request.registry.settings["oauth2_realm"])
    if denied is not None:
        # Pyramid views may return a webob response as it is.
        return denied
    token = current_token(request.environ)
    assert token is not None  # scope_denial answered 401 otherwise
    try:
        body = request.json_body
    except ValueError:
        body = {}
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        request.response.status_code = 400
        return {"error": "a JSON body with a non-empty 'text' is required"}
    notes = request.registry.notes
    note = {"id": len(notes) + 1, "text": body["text"], "client_id": token.client_id}
    notes.append(note)
    request.response.status_code = 201
    return {"framework": "pyramid", "note": note}


def make_app(global_conf: dict[str, Any], **app_conf: str) -> Router:
    """PasteDeploy app factory (``use = call:examples.pyramid_app.app:make_app``).

    :param global_conf: the ini's ``[DEFAULT]`` values; ``oauth2_realm`` is
        the filter's realm too, so the views' challenges match the guard's
        (absent: the default realm of both).
    """
    settings = {**app_conf, "oauth2_realm": global_conf.get("oauth2_realm")}
    with Configurator(settings=settings) as config:
        config.registry.notes = []  # kept in memory, per process
        config.add_route("home", "/")
        config.add_route("whoami", "/whoami")
        config.add_route("reports", "/reports")
        config.add_route("notes", "/notes")
        config.add_view(home, route_name="home", renderer="json")
        config.add_view(whoami, route_name="whoami", request_method=("GET", "HEAD"), renderer="json")
        config.add_view(reports, route_name="reports", request_method=("GET", "HEAD"), renderer="json")
        config.add_view(add_note, route_name="notes", request_method="POST", renderer="json")
    return config.make_wsgi_app()
