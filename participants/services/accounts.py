"""Staff accounts: the account flags (superuser, staff, active) and the account's own details, audited.

The Django admin shows these flags and a user's groups read-only (groups mirror the roles, which change through
``memberships``); the flags change only here, through ``manage.py staff_account``, with a reason. An account made or
renamed in the admin is saved here too, so that it is audited as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_record
from participants import access
from participants.access import Actor
from participants.services.status import _has_reason
from trialsite.errors import PermissionDeniedError, ServiceError

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The flags that grant or take away access; each change is audited with its old and new value.
ACCOUNT_FLAGS = ("is_superuser", "is_staff", "is_active")
# The account's own details an administrator may edit in the admin.
ACCOUNT_DETAILS = ("username", "first_name", "last_name", "email")


def _require_superuser_or_system(by: Actor, what: str) -> None:
    if by is not None and not access.is_superuser(by):
        raise PermissionDeniedError(f"only a superuser may {what}")


@transaction.atomic
def staff_account_flags_set(
    *,
    user: User,
    by: Actor,
    reason: str,
    is_superuser: bool | None = None,
    is_staff: bool | None = None,
    is_active: bool | None = None,
) -> User:
    """Set an account's superuser, staff or active flag (None: unchanged), with a reason; one audit row per flag
    changed (old and new value). Only a superuser, or the system (a management command run on the server)."""
    _require_superuser_or_system(by, "change an account's superuser, staff or active flag")
    if not _has_reason(reason):
        raise ServiceError("changing an account's flags needs a reason", field_errors={"reason": ["required"]})
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    wanted = {"is_superuser": is_superuser, "is_staff": is_staff, "is_active": is_active}
    changes = [
        (flag, getattr(user, flag), value)
        for flag, value in wanted.items()
        if value is not None and getattr(user, flag) != value
    ]
    if not changes:
        return user
    for flag, _old, new in changes:
        setattr(user, flag, new)
    user.save(update_fields=[flag for flag, _old, _new in changes])
    audit_record(
        by=by,
        action=AuditEvent.Action.ROLE_CHANGE,
        entity_type="user",
        entity_id=user.pk,
        changes=changes,
        reason=reason,
    )
    return user


@transaction.atomic
def staff_account_save(*, user: User, by: Actor) -> User:
    """Save an account made or edited in the admin, auditing its details (the flags are never taken from there: a
    new account starts with none, and an existing one keeps what it had)."""
    _require_superuser_or_system(by, "create or edit staff accounts")
    model = get_user_model()
    if user.pk is None:
        user.is_superuser = user.is_staff = False
        user.is_active = True
        user.save()
        audit_record(
            by=by,
            action=AuditEvent.Action.CREATE,
            entity_type="user",
            entity_id=user.pk,
            changes=[(field, None, getattr(user, field)) for field in (*ACCOUNT_DETAILS, *ACCOUNT_FLAGS)],
        )
        return user
    stored = model.objects.select_for_update().get(pk=user.pk)
    for flag in ACCOUNT_FLAGS:
        setattr(user, flag, getattr(stored, flag))
    changes = [
        (field, getattr(stored, field), getattr(user, field))
        for field in ACCOUNT_DETAILS
        if getattr(stored, field) != getattr(user, field)
    ]
    if changes:
        user.save(update_fields=[field for field, _old, _new in changes])
        audit_record(by=by, action=AuditEvent.Action.UPDATE, entity_type="user", entity_id=user.pk, changes=changes)
    return user
