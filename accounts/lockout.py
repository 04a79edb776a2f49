"""The lockout time, read when needed so it follows the settings (LOGIN_LOCKOUT_MINUTES)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest


def cool_off(request: HttpRequest | None = None) -> dt.timedelta:
    return dt.timedelta(minutes=int(settings.LOGIN_LOCKOUT_MINUTES))
