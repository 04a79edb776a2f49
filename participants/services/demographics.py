"""Demographics: loading a site's form definition (versioned data) and recording a participant's baseline answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from participants import access
from participants.access import Actor
from participants.demographics import FORM_CODE, DemographicFormError, answer_errors, parse_form
from participants.models import DemographicFormVersion, DemographicRecord, Participant
from participants.selectors import demographic_form_active
from participants.services.status import _audit_participant, _has_reason
from trialsite.errors import Conflict, ServiceError
from trialsite.roles import MANAGE


@transaction.atomic
def demographic_form_load(*, definition: Any, by: Actor, source: str = "") -> tuple[DemographicFormVersion, bool]:
    """Store a checked demographic form definition as a new version; returns it and whether it was new.

    Loading the same version again with the same content changes nothing; the same version with other content is
    refused (answers recorded under a version must keep meaning what they meant: change the version instead). Every
    problem of the file is named by its JSON path."""
    access.require_configure(by, "load a demographic form")
    try:
        form = parse_form(definition)
    except DemographicFormError as exc:
        raise ServiceError("invalid demographic form", field_errors={"definition": exc.errors}) from None
    if form.code != FORM_CODE:
        raise ServiceError(
            "unknown form code", field_errors={"definition": [f"$.code: the demographic form's code is {FORM_CODE}"]}
        )
    existing = DemographicFormVersion.objects.select_for_update().filter(code=form.code, version=form.version).first()
    if existing is not None:
        if existing.definition == definition:
            return existing, False
        raise Conflict(
            f"{form.code} v{form.version} is already loaded with other content",
            field_errors={"definition": [f"$.version: {form.version} exists; give the changed form a new version"]},
        )
    row = DemographicFormVersion.objects.create(
        code=form.code,
        version=form.version,
        definition=definition,
        source=source[:300],
        loaded_by=access.acting_user(by),
    )
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="demographic_form",
        entity_id=row.pk,
        changes=[("version", None, f"{form.code} v{form.version}"), ("fields", None, [f.code for f in form.fields])],
    )
    return row, True


@transaction.atomic
def demographics_record(
    *, participant: Participant, answers: Mapping[str, int | None], by: Actor, reason: str | None = None
) -> DemographicRecord:
    """Record (or correct) a participant's baseline demographics against the active form. Fields left out keep their
    value; None clears one. Changing a value already recorded needs a reason (21 CFR 11.10(e): the earlier value
    stays in the audit trail). Staff who manage participants at the participant's site record them."""
    access.require_role(by, participant.site_id, MANAGE, "record demographics")
    form = demographic_form_active()
    problems = answer_errors(form, answers)
    if problems:
        raise ServiceError("invalid demographics", field_errors={f"answers.{k}": v for k, v in problems.items()})
    record = DemographicRecord.objects.select_for_update().filter(participant=participant).first()
    old: dict[str, Any] = dict(record.answers) if record is not None else {}
    # None clears a field: a cleared field is simply absent, as one never recorded.
    new = {k: v for k, v in {**old, **answers}.items() if v is not None}
    changes = [(code, old.get(code), new.get(code)) for code in sorted({*old, *new}) if old.get(code) != new.get(code)]
    corrected = [code for code, before, _after in changes if before is not None]
    if corrected and not _has_reason(reason):
        raise ServiceError(
            "correcting recorded demographics needs a reason",
            field_errors={"reason": [f"required to change {', '.join(corrected)}"]},
        )
    version_before = f"{record.form_code} v{record.form_version}" if record is not None else None
    version_now = f"{form.code} v{form.version}"
    if version_before != version_now:
        changes.append(("form_version", version_before, version_now))
    if not changes and record is not None:
        return record  # nothing changed, nothing to record
    if record is None:
        record = DemographicRecord(participant=participant, recorded_at=timezone.now())
    created = record.pk is None
    record.form_code, record.form_version = form.code, form.version
    record.answers = new
    record.recorded_by = access.acting_user(by)
    record.save()
    _audit_participant(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE if created else AuditEvent.Action.UPDATE,
        changes=changes,
        reason=reason,
        entity=("demographics", participant.pk),
    )
    return record
