"""A study's configuration: creating and changing a study, and its arms. Unblinding is ``unblinding.py``'s."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_record, diff
from participants import access
from participants.access import Actor
from participants.models import AllocationSlot, Arm, Study
from participants.services._validation import _full_clean
from participants.services.status import _has_reason
from trialsite.errors import Conflict, ServiceError

# Once a participant is randomized these define what the allocation means: they no longer change.
FIXED_AFTER_RANDOMIZATION = ("blinded", "protocol_code")


def _has_randomized(study: Study) -> bool:
    return AllocationSlot.objects.filter(allocation_list__study=study, participant__isnull=False).exists()


@transaction.atomic
def study_create(
    *,
    code: str,
    title: str,
    by: Actor,
    protocol_reference: str = "",
    protocol_code: str = "",
    target_enrollment: int = 0,
    blinded: bool = False,
    start_date: dt.date | None = None,
) -> Study:
    """Create a study (administrators). Sites join it through ``site_create`` / ``site_update``."""
    access.require_configure(by, "create a study")
    if Study.objects.filter(code=code).exists():
        raise ServiceError(f"study {code} already exists", field_errors={"code": [f"study {code} already exists"]})
    values: dict[str, Any] = {
        "code": code,
        "title": title,
        "protocol_reference": protocol_reference,
        "protocol_code": protocol_code,
        "target_enrollment": target_enrollment,
        "blinded": blinded,
        "start_date": start_date,
    }
    study = Study(**values)
    _full_clean(study, "study")
    study.save()
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="study",
        entity_id=study.pk,
        changes=[(name, None, value) for name, value in values.items()],
    )
    return study


@transaction.atomic
def study_update(
    *,
    study: Study,
    by: Actor,
    reason: str | None = None,
    title: str | None = None,
    protocol_reference: str | None = None,
    protocol_code: str | None = None,
    target_enrollment: int | None = None,
    blinded: bool | None = None,
    medical_monitor_name: str | None = None,
    medical_monitor_email: str | None = None,
    safety_hidden_from_raters: bool | None = None,
    start_date: dt.date | None = None,
) -> Study:
    """Change a study's settings (administrators), with a reason. The code never changes (participant ids carry
    it) and the unblinded flag is ``study_unblind``'s alone. Blinding and protocol are fixed once a participant is
    randomized, and blinding once the study has been unblinded."""
    access.require_configure(by, "change a study")
    study = Study.objects.select_for_update().get(pk=study.pk)
    wanted = {
        "title": title,
        "protocol_reference": protocol_reference,
        "protocol_code": protocol_code,
        "target_enrollment": target_enrollment,
        "blinded": blinded,
        "medical_monitor_name": medical_monitor_name,
        "medical_monitor_email": medical_monitor_email,
        # Only ever set here (None means "leave as it is"): a study returns to "follow the blinding" by a migration
        # or a new study, never silently.
        "safety_hidden_from_raters": safety_hidden_from_raters,
        # The first day a clinical date may fall on (participants.plausible); records already kept stay as they are.
        "start_date": start_date,
    }
    changes = diff(study, {name: value for name, value in wanted.items() if value is not None})
    if not changes:
        return study
    if not _has_reason(reason):
        raise ServiceError("a reason is required to change a study", field_errors={"reason": ["required"]})
    changed = {name for name, _, _ in changes}
    if "blinded" in changed and study.unblinded:
        raise Conflict(
            f"study {study.code} has been unblinded: its blinding can no longer change",
            field_errors={"blinded": ["the study has been unblinded"]},
        )
    fixed = sorted(changed & set(FIXED_AFTER_RANDOMIZATION))
    if fixed and _has_randomized(study):
        raise Conflict(
            f"study {study.code} has randomized participants: {' and '.join(fixed)} can no longer change",
            field_errors={name: ["fixed once a participant is randomized"] for name in fixed},
        )
    for name, _, new in changes:
        setattr(study, name, new)
    _full_clean(study, "study")
    study.save(update_fields=sorted(changed))
    audit_record(
        by=by, action=AuditEvent.Action.UPDATE, entity_type="study", entity_id=study.pk, changes=changes, reason=reason
    )
    return study


@transaction.atomic
def arm_create(*, study: Study, code: str, label: str, by: Actor) -> Arm:
    """Add a treatment arm (administrators), before any participant is randomized: the allocation list is built
    from the arms, and a list in use cannot be replaced."""
    access.require_configure(by, "add arms to a study")
    if Arm.objects.filter(study=study, code=code).exists():
        raise ServiceError(
            f"arm {code} already exists in study {study.code}",
            field_errors={"code": [f"arm {code} already exists in study {study.code}"]},
        )
    if _has_randomized(study):
        raise Conflict(
            f"study {study.code} has randomized participants: its arms can no longer change",
            field_errors={"code": ["arms are fixed once a participant is randomized"]},
        )
    arm = Arm(study=study, code=code, label=label)
    _full_clean(arm, "arm", exclude=["study"])
    arm.save()
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="arm",
        entity_id=arm.pk,
        changes=[("study", None, study.code), ("code", None, code), ("label", None, label)],
    )
    return arm
