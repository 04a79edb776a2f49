"""Domain errors and their mapping to HTTP answers.

Services raise these; the API maps them to a 400/404/409 with a message, so bad input never becomes a 500."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ServiceError(Exception):
    """A request the domain refuses. ``field_errors`` maps a field to its messages."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, field_errors: dict[str, list[str]] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field_errors = field_errors or {}
        if code:
            self.code = code


class InvalidTransition(ServiceError):
    code = "invalid_transition"


class Conflict(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class PermissionDeniedError(ServiceError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"


class TooManyRequests(ServiceError):
    """A per-user limit reached (e.g. data freezes per day): 429, and nothing done."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "throttled"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        body.update(exc.field_errors)
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return drf_exception_handler(exc, context)


# --- answers Django gives before or outside a view: JSON under /api/, the usual pages elsewhere -------------------


def _api_error(request: HttpRequest, status_code: int, detail: str, code: str) -> HttpResponse | None:
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": detail, "code": code}, status=status_code)
    return None


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _api_error(request, 400, "Bad request.", "bad_request") or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _api_error(request, 403, "You do not have permission to perform this action.", "permission_denied") or (
        defaults.permission_denied(request, exception)
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An API path that names nothing (an unknown path, an id that is not a number) answers the API's JSON 404, as a
    view's own 404 does, not the HTML page."""
    return _api_error(request, 404, "Not found.", "not_found") or defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    return _api_error(request, 500, "Server error.", "server_error") or defaults.server_error(request)
