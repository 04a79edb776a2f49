"""Reads of staff accounts' credentials."""

from __future__ import annotations

import datetime as dt
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import keys
from accounts.lockout import cool_off
from accounts.models import ApiToken, CalendarFeed


def tokens_of(user: Any) -> QuerySet[ApiToken]:
    """Every token of the user, newest first: active, expired and revoked."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def token_of(user: Any, token_id: int) -> ApiToken | None:
    return tokens_of(user).filter(pk=token_id).first()


def active_feed_of(user: Any) -> CalendarFeed | None:
    return CalendarFeed.objects.filter(user=user, revoked_at__isnull=True).first()


def feed_owner(secret: str) -> Any | None:
    """The active user whose unrevoked feed has this secret; None otherwise."""
    feed = (
        CalendarFeed.objects.select_related("user")
        .filter(digest=keys.digest(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    return feed.user if feed is not None else None


def has_second_factor(user: Any) -> bool:
    return bool(user.pk) and TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def second_factor_required(user: Any) -> bool:
    """A signed-in user must verify a TOTP code when the deployment requires it for all staff (production), or when
    they enrolled one themselves."""
    return bool(settings.STAFF_REQUIRE_2FA) or has_second_factor(user)


def second_factor_missing(user: Any) -> bool:
    """True for a signed-in user who still owes a second factor in this session."""
    if not user.is_authenticated or not second_factor_required(user):
        return False
    is_verified = getattr(user, "is_verified", None)
    return not (is_verified is not None and is_verified())


def lockout_ends(username: str) -> dt.datetime | None:
    """When the lockout of this user name ends: its last counted failure plus the lockout time (attempts refused
    while locked are not counted, so they do not move it)."""
    last = AccessAttempt.objects.filter(username=username).aggregate(last=Max("attempt_time"))["last"]
    return last + cool_off() if last is not None else None
