"""Domain errors and their mapping to HTTP answers.

Services raise these; the API maps them to a 400/404/409 with a message, so bad input never becomes a 500."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
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
