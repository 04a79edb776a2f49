"""API fields shared by every app."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from rest_framework import serializers

NO_OFFSET = "give a time zone offset, e.g. 2026-03-01T09:00:00-08:00"


class OffsetDateTimeField(serializers.DateTimeField):
    """An instant: a date-time with its UTC offset ("2026-03-01T09:00:00-08:00" or "...Z"). A value without an
    offset is refused (400 naming the field), never guessed: the server's zone is UTC, not the site's."""

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        if timezone.is_naive(value):
            raise serializers.ValidationError(NO_OFFSET, code="no_offset")
        return super().enforce_timezone(value)
