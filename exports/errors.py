"""Errors of the exports app that the shared ones (trialsite.errors) do not cover."""

from __future__ import annotations

from rest_framework import status

from trialsite.errors import ServiceError


class NotFound(ServiceError):
    # The base class's attribute is inferred as the literal 400, so any other status reads as a type change.
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
