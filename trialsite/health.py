"""Liveness and readiness. /healthz: the process answers. /readyz: the database and the broker answer."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not ready"; the message says which
        return f"{type(exc).__name__}: {exc}".strip()[:300]
    return None


def _check_broker() -> str | None:
    from django.conf import settings
    from kombu import Connection

    try:
        with Connection(
            settings.CELERY_BROKER_URL, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS, connect_timeout=2
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()[:300]
    return None


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    problems: dict[str, str] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        error = check()
        if error:
            problems[name] = error
    if problems:
        return JsonResponse({"status": "unavailable", "failing": sorted(problems), "errors": problems}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "broker": "ok"})
