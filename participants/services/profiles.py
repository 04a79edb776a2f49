"""A member of staff's own settings (StaffProfile): the language of the staff pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_record
from participants import access
from participants.access import Actor
from participants.models import StaffProfile
from trialsite.errors import PermissionDeniedError, ServiceError

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@transaction.atomic
def staff_language_set(*, user: User, language: str, by: Actor) -> StaffProfile:
    """Set the language ``user`` reads the staff pages in. A user changes their own; a superuser (or the system)
    anyone's. Setting the language already set changes nothing and records nothing."""
    if by is not None and not access.is_superuser(by) and getattr(by, "pk", None) != user.pk:
        raise PermissionDeniedError("you can change only your own language")
    accepted = [code for code, _ in settings.LANGUAGES]
    if language not in accepted:
        raise ServiceError("unknown language", field_errors={"language": [f"one of {', '.join(accepted)}"]})
    profile = StaffProfile.objects.select_for_update().filter(user=user).first()
    old = profile.language if profile is not None else None
    if profile is None:
        profile = StaffProfile.objects.create(user=user, language=language)
    elif profile.language != language:
        profile.language = language
        profile.save(update_fields=["language", "updated_at"])
    if old != language:
        audit_record(
            by=by,
            action=AuditEvent.Action.CREATE if old is None else AuditEvent.Action.UPDATE,
            entity_type="staff_profile",
            entity_id=user.pk,
            changes=[("language", old, language)],
        )
    return profile
