"""Concomitant medications: recording one, correcting it with a reason, stopping it (a taper's end), and the
investigator's override that lets a dosing session go ahead despite a prohibited medication.

Never deleted: a medication entered in error is corrected with a reason (the audit keeps every earlier value). The
booking check (``dosing_booking_check``) is registered with ``scheduling.hooks``: scheduling never imports safety.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_participant_record, diff
from participants.access import Actor, acting_person, acting_user, has_role, require_role
from participants.models import Participant
from safety import medication_classes
from safety.models import ConcomitantMedication, MedicationOverride
from safety.services._rules import RECORDERS
from scheduling import selectors as scheduling_selectors
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
_TEXT = ("name", "dose_unit", "dose_text", "frequency", "route", "indication", "taper_note")
_LIMITS = {"name": 200, "dose_unit": 20, "dose_text": 100, "frequency": 100, "indication": 300}


def require_medication_recorder(by: Actor, participant: Participant) -> None:
    # The staff who record adverse events record medications too: they hear of them in clinic and in session.
    require_role(by, participant.site_id, RECORDERS, "record concomitant medications")


def site_today(participant: Participant) -> dt.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(participant.site.time_zone)).date()


def check_values(participant: Participant, values: dict[str, Any]) -> dict[str, list[str]]:
    """Field errors of a full set of medication values (after a correction is applied, the whole row is checked)."""
    errors: dict[str, list[str]] = {}
    if not str(values.get("name") or "").strip():
        errors["name"] = ["required"]
    for name, limit in _LIMITS.items():
        if len(str(values.get(name) or "")) > limit:
            errors.setdefault(name, []).append(f"at most {limit} characters")
    if values.get("medication_class") not in medication_classes.medication_classes().codes:
        errors["medication_class"] = ["not a medication class of the class list"]
    amount, unit, text = values.get("dose_amount"), values.get("dose_unit"), values.get("dose_text")
    if amount is not None and (not isinstance(amount, Decimal | int) or amount <= 0):
        errors["dose_amount"] = ["a positive amount"]
    elif amount is not None and not unit:
        errors["dose_unit"] = ["a dose amount needs its unit"]
    elif amount is None and unit:
        errors["dose_amount"] = ["a unit needs its dose amount"]
    elif amount is None and not text:
        errors["dose_amount"] = ["give the dose as an amount with its unit, or as text"]
    if values.get("route") not in {"", *ConcomitantMedication.Route.values}:
        errors["route"] = ["not one of the allowed values"]
    start, stop = values.get("start_date"), values.get("stop_date")
    if not isinstance(start, dt.date):
        errors["start_date"] = ["required"]
    elif start > site_today(participant):
        errors["start_date"] = ["cannot be in the future"]
    # A stop date may lie ahead: a taper is planned to end on it.
    if isinstance(start, dt.date) and isinstance(stop, dt.date) and stop < start:
        errors["stop_date"] = ["cannot be before the start date"]
    return errors


def _validate(participant: Participant, values: dict[str, Any]) -> None:
    errors = check_values(participant, values)
    if errors:
        raise ServiceError("the medication is not valid", field_errors=errors)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: (str(value).strip() if name in _TEXT and value is not None else value) for name, value in values.items()
    }


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
        ConcomitantMedication.objects.select_for_update()
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


# --- the booking check, registered with scheduling.hooks.on_dosing_booking ----------------------------------------


def washout_end(medication: ConcomitantMedication, washout_days: int) -> dt.date | None:
    """The last day of the washout: ``washout_days`` after the stop date. None while the medication is ongoing."""
    if medication.stop_date is None:
        return None
    return medication.stop_date + dt.timedelta(days=washout_days)


def blocking_medications(participant: Participant, day: dt.date) -> list[tuple[ConcomitantMedication, int]]:
    """The participant's medications of a class their protocol prohibits that are taken on ``day`` or whose washout
    has not ended by it, each with its washout in days. One query for the protocol, one for the medications."""
    washouts = {m.medication_class: m.washout_days for m in scheduling_selectors.prohibited_medications_of(participant)}
    if not washouts:
        return []
    candidates = ConcomitantMedication.objects.filter(
        participant_id=participant.pk, medication_class__in=sorted(washouts), start_date__lte=day
    ).order_by("start_date", "id")
    return [
        (m, washouts[m.medication_class])
        for m in candidates
        if m.stop_date is None or day <= m.stop_date + dt.timedelta(days=washouts[m.medication_class])
    ]


def describe_block(medication: ConcomitantMedication, washout_days: int) -> str:
    label = medication_classes.medication_classes().label(medication.medication_class)
    end = washout_end(medication, washout_days)
    if end is None:
        return f"{medication.name} ({label}) is being taken; its washout ends {washout_days} days after it stops"
    return f"{medication.name} ({label}) stopped on {medication.stop_date}; its washout ends on {end.isoformat()}"


def dosing_booking_check(*, visit: Visit, start: dt.datetime, by: Actor) -> list[tuple[str, Any, Any]]:
    """Refuse (409) a dosing session on a day a prohibited medication is taken or inside its washout, naming each
    medication and its washout end, unless an investigator recorded an override for this visit: then the booking
    goes ahead and its audit event names the override."""
    participant = visit.participant
    day = start.astimezone(zoneinfo.ZoneInfo(participant.site.time_zone)).date()
    blocking = blocking_medications(participant, day)
    if not blocking:
        return []
    override = (
        MedicationOverride.objects.filter(visit_id=visit.pk)
        .select_related("recorded_by")
        .order_by("-recorded_at", "-id")
        .first()
    )
    messages = [describe_block(m, days) for m, days in blocking]
    if override is None:
        raise Conflict(
            f"{visit.code} cannot be booked on {day.isoformat()}: {'; '.join(messages)}. "
            "An investigator may record an override with a reason.",
            field_errors={"medications": messages},
            code="prohibited_medication",
        )
    return [
        (
            "medication_override",
            None,
            f"override {override.pk} by {override.recorded_by.username}: {override.reason} ({'; '.join(messages)})",
        )
    ]
