"""Liveness and readiness. /healthz: the process answers. /readyz: the database and the broker answer; it also
reports the details the URL configuration names (the count of open safety alerts that reached no investigator), which
never fail readiness: taking the web tier out of a load balancer would hide those alerts' dashboard too.

/readyz is public (load balancers and orchestrators call it without credentials), so it names which part is failing
and nothing more: the error itself (a host name, a driver message) goes to the log, where operators read it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


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


def _details(details: Mapping[str, Callable[[], object]]) -> dict[str, object]:
    """What the URL configuration asks /readyz to report besides readiness (open safety alerts that reached no
    investigator). Reported, never judged: a detail never makes the service unready, and one that cannot be read is
    left out (and logged), never shown as an error."""
    out: dict[str, object] = {}
    for name, read in details.items():
        try:
            out[name] = read()
        except Exception as exc:
            logger.error("readiness: detail %s unavailable: %s: %s", name, type(exc).__name__, exc)
    return out


@never_cache
@require_GET
def readyz(request: HttpRequest, details: Mapping[str, Callable[[], object]] | None = None) -> JsonResponse:
    problems: dict[str, str] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        error = check()
        if error:
            problems[name] = error
            logger.error("readiness: %s unavailable: %s", name, error)
    extra = _details(details or {}) if "database" not in problems else {}
    if problems:
        body = {"status": "unavailable", "failing": sorted(problems)}
        return JsonResponse(body | {name: "unavailable" for name in problems} | extra, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "broker": "ok"} | extra)
