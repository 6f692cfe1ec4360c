"""A small Bottle application protected by oauth-middleware (see ``app.ini``).

``GET /`` is public; ``GET /whoami`` shows the token the guard validated;
``GET /reports`` needs ``read`` (a ``scope_rules`` line in the ini, enforced
by the guard); ``POST /notes`` needs ``write`` (checked here, in the view).
"""

from __future__ import annotations

from typing import Any

import bottle
from bottle import HTTPResponse, request, response

from oauth_middleware import current_token, scope_denial


def make_app(global_conf: dict[str, Any], **app_conf: str) -> bottle.Bottle:
    """PasteDeploy app factory (``use = call:examples.bottle_app.app:make_app``).

    :param global_conf: the ini's ``[DEFAULT]`` values; ``oauth2_realm`` is
        the filter's realm too, so the views' challenges match the guard's
        (absent: the default realm of both).
    """
    realm = global_conf.get("oauth2_realm")
    app = bottle.Bottle()
    notes: list[dict[str, Any]] = []

    @app.get("/")
    def home() -> dict[str, Any]:
        return {"framework": "bottle", "public": True}

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        # The guard ran first: every path but "/" reaches us with a valid token.
        token = request.environ["oauth2.token"]
        return {
            "framework": "bottle",
            "client_id": token.client_id,
            "user": request.environ["oauth2.user"],
            "scopes": list(request.environ["oauth2.scopes"]),
            "expires_at": token.expires_at,
        }

    @app.get("/reports")
    def reports() -> dict[str, Any]:
        return {"framework": "bottle", "reports": ["daily", "weekly"]}

    @app.post("/notes")
    def add_note() -> Any:
        denied = scope_denial(request.environ, "write", realm=realm)
        if denied is not None:
            # The same status, challenge and JSON the guard would send.
            return HTTPResponse(denied.body, status=denied.status_code, headers=denied.headerlist)
        token = current_token(request.environ)
        assert token is not None  # scope_denial answered 401 otherwise
        try:
            body = request.json
        except HTTPResponse:  # Bottle raises a 400 response for malformed JSON
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            response.status = 400
            return {"error": "a JSON body with a non-empty 'text' is required"}
        note = {"id": len(notes) + 1, "text": body["text"], "client_id": token.client_id}
        notes.append(note)
        response.status = 201
        return {"framework": "bottle", "note": note}

    return app
