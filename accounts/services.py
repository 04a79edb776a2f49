"""Writes to staff accounts' credentials: API tokens, calendar-feed secrets and the TOTP second factor. Each write
records its audit event in the same transaction; no secret (token, feed URL, TOTP key or code) reaches the audit
trail."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

from accounts import keys
from accounts.models import ApiToken, CalendarFeed
from audit.services import audit_record
from trialsite.errors import ServiceError

MAX_TOKEN_DAYS = 366


# --- API tokens ---------------------------------------------------------------------------------------------------


@transaction.atomic
def token_issue(*, user: Any, days: int, by: Any, actor_username: str | None = None) -> tuple[ApiToken, str]:
    """A new API token for ``user`` valid ``days`` days. Returns the row and the token, which is shown once: only its
    hash is stored."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        message = f"A token lasts 1 to {MAX_TOKEN_DAYS} days."
        raise ServiceError(message, field_errors={"days": [message]})
    secret = keys.new_secret()
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        prefix=keys.prefix(secret),
        digest=keys.digest(secret),
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    audit_record(
        by=by,
        action="create",
        entity_type="api_token",
        entity_id=token.pk,
        changes=[("owner", None, user.get_username()), ("expires_at", None, token.expires_at.isoformat())],
        actor_username=actor_username,
    )
    return token, secret


@transaction.atomic
def token_revoke(*, token: ApiToken, by: Any, actor_username: str | None = None) -> ApiToken:
    """Revoke a token (kept, marked). Revoking a revoked token changes nothing."""
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        _mark_revoked(token, entity_type="api_token", by=by, actor_username=actor_username)
    return token


# --- Calendar feeds -----------------------------------------------------------------------------------------------


@transaction.atomic
def feed_create(*, user: Any) -> tuple[CalendarFeed, str]:
    """A new personal calendar-feed secret for ``user``; any earlier feed of theirs stops working. Returns the row and
    the secret, shown once."""
    _feed_revoke_active(user)
    secret = keys.new_secret()
    feed = CalendarFeed.objects.create(
        user=user, prefix=keys.prefix(secret), digest=keys.digest(secret), created_at=timezone.now()
    )
    audit_record(by=user, action="create", entity_type="calendar_feed", entity_id=feed.pk)
    return feed, secret


@transaction.atomic
def feed_revoke(*, user: Any) -> CalendarFeed | None:
    """Revoke the user's active feed; None when there was none."""
    return _feed_revoke_active(user)


def _feed_revoke_active(user: Any) -> CalendarFeed | None:
    feed = CalendarFeed.objects.select_for_update().filter(user=user, revoked_at__isnull=True).first()
    if feed is not None:
        _mark_revoked(feed, entity_type="calendar_feed", by=user)
    return feed


def _mark_revoked(
    row: ApiToken | CalendarFeed, *, entity_type: str, by: Any, actor_username: str | None = None
) -> None:
    """Revoke a secret's row (kept, marked), audited in the caller's transaction."""
    row.revoked_at = timezone.now()
    row.save(update_fields=["revoked_at"])
    audit_record(
        by=by,
        action="update",
        entity_type=entity_type,
        entity_id=row.pk,
        changes=[("revoked_at", None, row.revoked_at.isoformat())],
        actor_username=actor_username,
    )


# --- The TOTP second factor ---------------------------------------------------------------------------------------


def totp_new_key() -> str:
    """A fresh TOTP key (hex) for enrolment. It is kept in the enrolling session, not the database, until a code
    confirms it (totp_confirm), so opening the enrolment page writes nothing."""
    return str(default_key())


def totp_device_for_key(user: Any, key: str) -> TOTPDevice:
    """An unsaved device with this key: its configuration URL is what the authenticator app scans."""
    return TOTPDevice(user=user, key=key, name="Authenticator app", confirmed=False)


@transaction.atomic
def totp_confirm(*, user: Any, key: str, code: str) -> TOTPDevice | None:
    """Save the enrolling key as the user's device once a code from the app proves the app holds it; the new device
    replaces any earlier one. None (and a failed attempt audited) when the code is wrong."""
    device = TOTPDevice(user=user, key=key, name="Authenticator app", confirmed=True)
    device.full_clean(exclude=["user"])
    check = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    check.time = time.time()
    cleaned = _clean(code)
    if not (cleaned.isdigit() and check.verify(int(cleaned), device.tolerance)):
        _audit_wrong_code(user, "enrolment")
        return None
    device.last_t = check.t()  # the confirming code cannot be used again to sign in
    TOTPDevice.objects.filter(user=user).delete()  # a credential, not a trial record
    device.save()
    audit_record(
        by=user,
        action="create",
        entity_type="second_factor",
        entity_id=device.pk,
        changes=[("totp", None, "confirmed")],
    )
    return device


def totp_verify(*, user: Any, code: str) -> TOTPDevice | None:
    """The user's confirmed device when ``code`` is right for it (each code works once); None, audited, otherwise.
    The device's own throttle slows repeated wrong codes down."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None and device.verify_token(_clean(code)):
        return device
    with transaction.atomic():
        _audit_wrong_code(user, "sign-in")
    return None


@transaction.atomic
def totp_reset(*, user: Any, by: Any, actor_username: str | None = None, reason: str) -> int:
    """Remove the user's TOTP devices (a lost phone): they enrol again at their next sign-in."""
    removed: int = TOTPDevice.objects.filter(user=user).delete()[0]
    audit_record(
        by=by,
        action="delete",
        entity_type="second_factor",
        entity_id=user.pk,
        changes=[("totp", "enrolled", None)],
        reason=reason,
        actor_username=actor_username,
    )
    return removed


def _clean(code: str) -> str:
    return "".join(code.split())[:12]


def _audit_wrong_code(user: Any, step: str) -> None:
    audit_record(
        by=user,
        action="login_failed",
        entity_type="second_factor",
        entity_id=user.pk,
        changes=[("step", None, step)],
    )
