"""A small Django application protected by oauth-middleware (see ``app.ini``).

Settings, views and URLs in one module: no project scaffold. ``GET /`` is
public; ``GET /whoami`` shows the token the guard validated; ``GET /reports``
needs ``read`` (a ``scope_rules`` line in the ini, enforced by the guard);
``POST /notes`` needs ``write`` (checked here, in the view).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.http import require_POST, require_safe

from oauth_middleware import current_token, scope_denial

#: Notes kept in memory, per process (an example, not a database).
NOTES: list[dict[str, Any]] = []


def home(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"framework": "django", "public": True})


@require_safe
def whoami(request: HttpRequest) -> HttpResponse:
    # request.META is the WSGI environ: the guard put the token there.
    token = request.META["oauth2.token"]
    return JsonResponse(
        {
            "framework": "django",
            "client_id": token.client_id,
            "user": request.META["oauth2.user"],
            "scopes": list(request.META["oauth2.scopes"]),
            "expires_at": token.expires_at,
        }
    )


@require_safe
def reports(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"framework": "django", "reports": ["daily", "weekly"]})


@require_POST
def add_note(request: HttpRequest) -> HttpResponse:
    denied = scope_denial(request.META, "write", realm=settings.OAUTH2_REALM)
    if denied is not None:
        # The same status, challenge and JSON the guard would send.
        return HttpResponse(denied.body, status=denied.status_code, headers=dict(denied.headerlist))
    token = current_token(request.META)
    assert token is not None  # scope_denial answered 401 otherwise
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        return JsonResponse({"error": "a JSON body with a non-empty 'text' is required"}, status=400)
    note = {"id": len(NOTES) + 1, "text": body["text"], "client_id": token.client_id}
    NOTES.append(note)
    return JsonResponse({"framework": "django", "note": note}, status=201)


urlpatterns = [
    path("", home),
    path("whoami", whoami),
    path("reports", reports),
    path("notes", add_note),
]


def make_app(global_conf: dict[str, Any], **app_conf: str) -> WSGIHandler:
    """PasteDeploy app factory (``use = call:examples.django_app.app:make_app``).

    Django settings belong to the process and can be configured only once:
    a second call must ask for the same settings.

    :param global_conf: the ini's ``[DEFAULT]`` values; ``oauth2_realm`` is
        the filter's realm too, so the views' challenges match the guard's.
    :param app_conf: ``allowed_hosts``, Django's ``ALLOWED_HOSTS``.
    """
    ours = {
        "ROOT_URLCONF": __name__,
        "ALLOWED_HOSTS": app_conf.get("allowed_hosts", "127.0.0.1 localhost").split(),
        "OAUTH2_REALM": global_conf.get("oauth2_realm"),
    }
    if settings.configured:
        differing = sorted(name for name, value in ours.items() if getattr(settings, name, None) != value)
        if differing:
            raise RuntimeError(
                f"Django is already configured in this process with other {', '.join(differing)}"
            )
    else:
        settings.configure(
            DEBUG=False,
            # Nothing here signs data (no sessions, no CSRF): a throwaway key will do.
            SECRET_KEY=secrets.token_urlsafe(32),
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
            DATABASES={},
            USE_TZ=True,
            **ours,
        )
    return get_wsgi_application()
