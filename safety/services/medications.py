"""Concomitant medications: recording one, correcting it with a reason, stopping it (a taper's end), and the
investigator's override that lets a dosing session go ahead despite a prohibited medication.

Never deleted: a medication entered in error is corrected with a reason (the audit keeps every earlier value). The
booking check (``safety.services._booking_check``) is registered with ``scheduling.hooks``: scheduling never imports safety.
"""

from __future__ import annotations

import datetime as dt
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_participant_record, diff
from participants.access import Actor, acting_person, acting_user, has_role
from participants.models import Participant
from safety.models import ConcomitantMedication, MedicationOverride
from safety.services._medication_rules import check_values, require_medication_recorder
from scheduling.models import Visit
from scheduling.protocol import VisitKind
from trialsite.errors import Conflict, PermissionDeniedError, ServiceError
from trialsite.roles import Role

ENTITY = "concomitant_medication"
OVERRIDE_ENTITY = "medication_override"
# What a correction may change. The participant never changes (a medication entered for the wrong participant is
# corrected to say so and entered again for the right one).
CORRECTABLE = (
    "name",
    "medication_class",
    "dose_amount",
    "dose_unit",
    "dose_text",
    "frequency",
    "route",
    "indication",
    "start_date",
    "stop_date",
    "taper_note",
)
_THOUSANDTHS = Decimal("0.001")
_TEXT = ("name", "dose_unit", "dose_text", "frequency", "route", "indication", "taper_note")


def _validate(participant: Participant, values: dict[str, Any]) -> None:
    errors = check_values(participant, values)
    if errors:
        raise ServiceError("the medication is not valid", field_errors=errors)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Text stripped; an amount at the column's three decimals, so that 30 and 30.000 are one value to the audit trail
    and to a correction's comparison."""
    out = {
        name: (str(value).strip() if name in _TEXT and value is not None else value) for name, value in values.items()
    }
    amount = out.get("dose_amount")
    if isinstance(amount, int | Decimal) and not isinstance(amount, bool):
        try:
            out["dose_amount"] = Decimal(amount).quantize(
                _THOUSANDTHS, context=Context(prec=28, traps=[InvalidOperation])
            )
        except InvalidOperation:
            raise ServiceError(
                "the medication is not valid", field_errors={"dose_amount": ["at most 7 digits before the point"]}
            ) from None
        if Decimal(out["dose_amount"]) >= Decimal("10000000"):
            raise ServiceError(
                "the medication is not valid", field_errors={"dose_amount": ["at most 7 digits before the point"]}
            )
    return out


@transaction.atomic
def medication_record(
    *,
    participant: Participant,
    name: str,
    medication_class: str,
    start_date: dt.date,
    by: Actor,
    dose_amount: Decimal | None = None,
    dose_unit: str = "",
    dose_text: str = "",
    frequency: str = "",
    route: str = "",
    indication: str = "",
    stop_date: dt.date | None = None,
    taper_note: str = "",
) -> ConcomitantMedication:
    """Record a medication the participant takes (or took: a stop date may be given at once)."""
    require_medication_recorder(by, participant)
    values = _clean(
        {
            "name": name,
            "medication_class": medication_class,
            "dose_amount": dose_amount,
            "dose_unit": dose_unit,
            "dose_text": dose_text,
            "frequency": frequency,
            "route": route,
            "indication": indication,
            "start_date": start_date,
            "stop_date": stop_date,
            "taper_note": taper_note,
        }
    )
    _validate(participant, values)
    medication = ConcomitantMedication.objects.create(
        participant=participant, recorded_at=timezone.now(), recorded_by=acting_user(by), **values
    )
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type=ENTITY,
        entity_id=medication.pk,
        changes=[(name, None, value) for name, value in values.items() if value not in (None, "")],
    )
    return medication


def _locked(medication: ConcomitantMedication) -> ConcomitantMedication:
    return (
        ConcomitantMedication.objects.select_for_update(of=("self",))
        .select_related("participant__site", "participant__study")
        .get(pk=medication.pk)
    )


@transaction.atomic
def medication_correct(
    *, medication: ConcomitantMedication, reason: str, by: Actor, **changes: Any
) -> ConcomitantMedication:
    """Correct fields of a recorded medication, with a reason. The audit trail keeps each old value beside the new."""
    medication = _locked(medication)
    participant = medication.participant
    require_medication_recorder(by, participant)
    refused = sorted(set(changes) - set(CORRECTABLE))
    if refused:
        raise ServiceError(
            "these fields cannot be corrected", field_errors={name: ["not correctable"] for name in refused}
        )
    if not (reason and reason.strip()):
        raise ServiceError("a correction needs a reason", field_errors={"reason": ["required"]})
    changes = _clean(changes)
    values = {name: getattr(medication, name) for name in CORRECTABLE} | changes
    _validate(participant, values)
    found = diff(medication, changes)
    if not found:
        raise ServiceError("nothing to correct: every value is already as given", code="unchanged")
    for name, _old, new in found:
        setattr(medication, name, new)
    medication.save(update_fields=sorted(name for name, _o, _n in found))
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type=ENTITY,
        entity_id=medication.pk,
        changes=found,
        reason=reason.strip(),
    )
    return medication


@transaction.atomic
def medication_stop(
    *, medication: ConcomitantMedication, stop_date: dt.date, by: Actor, taper_note: str = ""
) -> ConcomitantMedication:
    """Stop a medication on ``stop_date`` (the last day taken, or the planned end of a taper), with an optional note
    on the taper. A medication already stopped is a 409: its stop date changes only by a correction with a reason."""
    medication = _locked(medication)
    participant = medication.participant
    require_medication_recorder(by, participant)
    if medication.stop_date is not None:
        raise Conflict(
            f"{medication.name} was already stopped on {medication.stop_date.isoformat()}; correct the stop date "
            "with a reason instead",
            field_errors={"stop_date": ["already stopped"]},
        )
    updates = _clean({"stop_date": stop_date, "taper_note": taper_note or medication.taper_note})
    values = {name: getattr(medication, name) for name in CORRECTABLE} | updates
    _validate(participant, values)
    found = diff(medication, updates)
    for name, _old, new in found:
        setattr(medication, name, new)
    medication.save(update_fields=sorted(name for name, _o, _n in found))
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type=ENTITY,
        entity_id=medication.pk,
        changes=found,
        reason="stopped",
    )
    return medication


@transaction.atomic
def medication_override_record(*, visit: Visit, reason: str, by: Actor) -> MedicationOverride:
    """An investigator at the participant's site lets this dosing session be booked despite a prohibited medication
    or an unfinished washout. Only an investigator (the decision names the clinician responsible); a reason is
    required."""
    participant = visit.participant
    if not has_role(by, participant.site_id, {Role.INVESTIGATOR}):
        raise PermissionDeniedError("only an investigator at this site can override a prohibited medication")
    if visit.kind != VisitKind.DOSING:
        raise ServiceError("not a dosing session", field_errors={"visit": ["only a dosing session is checked"]})
    if visit.status not in (Visit.Status.PLANNED, Visit.Status.SCHEDULED):
        raise Conflict(
            f"{visit.code} is {visit.status}: there is no booking left to override",
            field_errors={"visit": [f"visit is {visit.status}"]},
        )
    if not (reason and reason.strip()):
        raise ServiceError("an override needs a reason", field_errors={"reason": ["required"]})
    override = MedicationOverride.objects.create(
        participant=participant,
        visit=visit,
        reason=reason.strip(),
        recorded_at=timezone.now(),
        recorded_by=acting_person(by, "an override"),
    )
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type=OVERRIDE_ENTITY,
        entity_id=override.pk,
        changes=[("visit", None, visit.pk), ("visit_code", None, visit.code), ("reason", None, override.reason)],
    )
    return override
