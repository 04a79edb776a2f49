"""How long a failed message waits before its next attempt: exponential, capped. Pure."""

from __future__ import annotations

import datetime as dt

from django.conf import settings


def retry_delay(attempts: int) -> dt.timedelta:
    """NOTIFICATIONS_RETRY_BACKOFF_SECONDS after the first failed attempt, doubling with each further one, never more
    than NOTIFICATIONS_RETRY_BACKOFF_MAX_SECONDS."""
    seconds = settings.NOTIFICATIONS_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, settings.NOTIFICATIONS_RETRY_BACKOFF_MAX_SECONDS))
