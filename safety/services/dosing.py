"""Recording a dosing session: opening its record, the kit and the doses, the vital signs at the protocol's declared
timepoints, corrections with a reason, and closing it.

Nothing is deleted. A value once recorded changes only with a reason (the audit keeps the earlier value: 21 CFR
11.10(e)); a vital sign over one of the protocol's declared thresholds raises a safety alert that joins the
questionnaire alerts' list, acknowledgement and escalation (``assessments.services.safety_alert_raise_for``).
Closing lists the declared timepoints that have no vital signs and is refused without a reason for them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from assessments import services as assessment_services
from audit.models import AuditEvent
from audit.services import audit_participant_record, diff
from participants.access import Actor, acting_user, roles_at
from participants.models import Participant
from participants.plausible import participant_date_errors
from safety.dosing_grid import missing_timepoints
from safety.models import DOSE_MG_MAX, VITAL_LIMITS, VITAL_MEASURES, DosingSession, VitalSign
from safety.services._rules import aware, require_role_to_record_dosing
from scheduling import selectors as scheduling_selectors
from scheduling.models import Visit
from scheduling.protocol import DosingDeclaration, VisitKind
from trialsite.errors import Conflict, ServiceError

ENTITY = "dosing_session"
VITAL_ENTITY = "vital_sign"
SESSION_FIELDS = ("kit_identifier", "started_at", "ended_at", "present_staff", "present_others")
DOSE_FIELDS = ("initial_dose_mg", "initial_dose_at", "supplemental_dose_mg", "supplemental_dose_at")
VITAL_FIELDS = ("timepoint_code", "measured_at", *VITAL_MEASURES, "note")
_TIMES = ("started_at", "ended_at", "initial_dose_at", "supplemental_dose_at")


def _session(session: DosingSession) -> DosingSession:
    """The session's row, locked: writes to one session (and its vital signs) take turns, so two tablets recording
    at once cannot both pass the one-row-per-timepoint or the "not closed" check."""
    return (
        DosingSession.objects.select_for_update(of=("self",))
        .select_related("participant__site", "participant__study", "visit__study", "visit__protocol_version")
        .get(pk=session.pk)
    )


def _blank(value: Any) -> bool:
    return value in (None, "", [], ())


def _present_others(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list | tuple):
        raise ServiceError("not a list", field_errors={"present_others": ["a list of {name, role}"]})
    out = []
    for entry in value:
        name = str((entry or {}).get("name", "")).strip() if isinstance(entry, dict) else ""
        role = str((entry or {}).get("role", "")).strip() if isinstance(entry, dict) else ""
        if not name or not role:
            raise ServiceError("incomplete", field_errors={"present_others": ["each person needs a name and a role"]})
        out.append({"name": name[:200], "role": role[:100]})
    return out


def _present_staff(participant: Participant, users: Iterable[Any]) -> list[Any]:
    users = list(users)
    strangers = sorted(u.username for u in users if not roles_at(u, participant.site_id))
    if strangers:
        raise ServiceError(
            "not staff at this site",
            field_errors={"present_staff": [f"no role at this site: {', '.join(strangers)}"]},
        )
    return sorted({u.pk: u for u in users}.values(), key=lambda u: u.pk)


def _dose(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        dose = Decimal(str(value))
    except InvalidOperation:
        raise ServiceError("not a number", field_errors={name: ["a number of milligrams"]}) from None
    if not 0 < dose <= DOSE_MG_MAX:
        raise ServiceError("implausible dose", field_errors={name: [f"between 0 and {DOSE_MG_MAX} mg"]})
    return dose.quantize(Decimal("0.01"))


def _session_errors(participant: Participant, values: dict[str, Any], *, now: dt.datetime) -> dict[str, list[str]]:
    errors = participant_date_errors(participant, {name: values.get(name) for name in _TIMES}, now=now)
    started, ended = values.get("started_at"), values.get("ended_at")
    if ended is not None and (started is None or ended <= started):
        errors.setdefault("ended_at", []).append("must be after the session's start")
    initial_at, supplemental_at = values.get("initial_dose_at"), values.get("supplemental_dose_at")
    if values.get("supplemental_dose_mg") is not None and values.get("initial_dose_mg") is None:
        errors.setdefault("supplemental_dose_mg", []).append("record the initial dose first")
    if (values.get("initial_dose_mg") is None) != (initial_at is None):
        errors.setdefault("initial_dose_at", []).append("the initial dose needs both its amount and its time")
    if (values.get("supplemental_dose_mg") is None) != (supplemental_at is None):
        errors.setdefault("supplemental_dose_at", []).append("the supplemental dose needs both its amount and its time")
    if supplemental_at is not None and (initial_at is None or supplemental_at <= initial_at):
        errors.setdefault("supplemental_dose_at", []).append("must be after the initial dose")
    return errors


@transaction.atomic
def dosing_session_open(
    *,
    visit: Visit,
    by: Actor,
    kit_identifier: str = "",
    started_at: dt.datetime | None = None,
    present_staff: Iterable[Any] = (),
    present_others: list[dict[str, str]] | None = None,
) -> DosingSession:
    """Open the record of a dosing visit (one per visit; a second is a 409). Times as the site's clock shows them
    when naive."""
    participant = visit.participant
    require_role_to_record_dosing(by, participant)
    if visit.kind != VisitKind.DOSING:
        raise ServiceError("not a dosing visit", field_errors={"visit": ["not a dosing visit"]})
    if visit.status in (Visit.Status.CANCELLED, Visit.Status.MISSED):
        raise Conflict(f"this visit is {visit.status}: it has no dosing session")
    if DosingSession.objects.filter(visit=visit).exists():
        raise Conflict("this visit's dosing session is already open")
    now = timezone.now()
    staff = _present_staff(participant, present_staff)
    values: dict[str, Any] = {
        "kit_identifier": kit_identifier.strip(),
        "started_at": aware(started_at, participant),
        "present_others": _present_others(present_others or []),
    }
    errors = _session_errors(participant, values, now=now)
    if errors:
        raise ServiceError("the dosing session is not valid", field_errors=errors)
    try:
        with transaction.atomic():
            session = DosingSession.objects.create(
                participant=participant, visit=visit, recorded_at=now, recorded_by=acting_user(by), **values
            )
    except IntegrityError:
        # Another request opened it between the check and the insert (the one-to-one key decides).
        raise Conflict("this visit's dosing session is already open") from None
    session.present_staff.set(staff)
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type=ENTITY,
        entity_id=session.pk,
        changes=[("visit", None, visit.pk)]
        + [(name, None, value) for name, value in values.items() if not _blank(value)]
        + ([("present_staff", None, [u.username for u in staff])] if staff else []),
    )
    return session


def _update(
    session: DosingSession, changes: dict[str, Any], *, allowed: tuple[str, ...], reason: str, by: Actor
) -> DosingSession:
    session = _session(session)
    participant = session.participant
    require_role_to_record_dosing(by, participant)
    refused = sorted(set(changes) - set(allowed))
    if refused:
        raise ServiceError("these fields cannot be changed here", field_errors={n: ["not allowed"] for n in refused})
    for name in _TIMES:
        if name in changes:
            changes[name] = aware(changes[name], participant)
    for name in ("initial_dose_mg", "supplemental_dose_mg"):
        if name in changes:
            changes[name] = _dose(changes[name], name)
    if "kit_identifier" in changes:
        changes["kit_identifier"] = str(changes["kit_identifier"]).strip()
    if "present_others" in changes:
        changes["present_others"] = _present_others(changes["present_others"])
    staff = None
    if "present_staff" in changes:
        staff = _present_staff(participant, changes.pop("present_staff"))
    now = timezone.now()
    values = {name: getattr(session, name) for name in (*SESSION_FIELDS[:-2], "present_others", *DOSE_FIELDS)}
    values |= changes
    errors = _session_errors(participant, values, now=now)
    if session.closed_at is not None and "ended_at" in changes and changes["ended_at"] is None:
        errors.setdefault("ended_at", []).append("a closed session keeps its end")
    if errors:
        raise ServiceError("the dosing session is not valid", field_errors=errors)
    found = diff(session, changes)
    if staff is not None:
        before = sorted(session.present_staff.values_list("username", flat=True))
        after = sorted(u.username for u in staff)
        if before != after:
            found.append(("present_staff", before, after))
    if not found:
        raise ServiceError("nothing to record: every value is already as given", code="unchanged")
    # Filling in a value not recorded yet needs no reason; changing one already recorded (or anything once the
    # session is closed) is a correction and does.
    correcting = session.closed_at is not None or any(not _blank(old) for _name, old, _new in found)
    reason = (reason or "").strip()
    if correcting and not reason:
        raise ServiceError("changing a recorded value needs a reason", field_errors={"reason": ["required"]})
    for name, _old, new in found:
        if name != "present_staff":
            setattr(session, name, new)
    session.save(update_fields=sorted(name for name, _o, _n in found if name != "present_staff"))
    if staff is not None:
        session.present_staff.set(staff)
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type=ENTITY,
        entity_id=session.pk,
        changes=found,
        reason=reason or None,
    )
    return session


@transaction.atomic
def dosing_session_record(*, session: DosingSession, by: Actor, reason: str = "", **changes: Any) -> DosingSession:
    """Record the session's details (kit, start and end, who was present). A value already recorded changes only
    with a reason."""
    return _update(session, changes, allowed=SESSION_FIELDS, reason=reason, by=by)


@transaction.atomic
def dosing_doses_record(*, session: DosingSession, by: Actor, reason: str = "", **changes: Any) -> DosingSession:
    """Record the initial dose and any supplemental dose (milligrams and time given). A dose already recorded
    changes only with a reason."""
    return _update(session, changes, allowed=DOSE_FIELDS, reason=reason, by=by)


def _vital_errors(participant: Participant, values: dict[str, Any], *, now: dt.datetime) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name, (low, high) in VITAL_LIMITS.items():
        value = values.get(name)
        if value is not None and not low <= value <= high:
            errors[name] = [f"between {low} and {high}"]
    if all(values.get(name) is None for name in VITAL_MEASURES):
        errors["systolic_bp"] = ["record at least one measure"]
    sbp, dbp = values.get("systolic_bp"), values.get("diastolic_bp")
    if sbp is not None and dbp is not None and sbp <= dbp:
        errors.setdefault("diastolic_bp", []).append("must be below the systolic pressure")
    if values.get("measured_at") is None:
        errors["measured_at"] = ["required"]
    else:
        errors.update(participant_date_errors(participant, {"measured_at": values["measured_at"]}, now=now))
    return errors


def _temperature(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.1"))
    except InvalidOperation:
        raise ServiceError("not a number", field_errors={"temperature_c": ["a number"]}) from None


def _check_timepoint(code: str, declaration: DosingDeclaration | None) -> None:
    if code and (declaration is None or code not in declaration.timepoint_codes):
        declared = ", ".join(declaration.timepoint_codes) if declaration else "none"
        raise ServiceError(
            "unknown timepoint",
            field_errors={"timepoint_code": [f"not a timepoint of this protocol (declared: {declared})"]},
        )


def _raise_alerts(vital: VitalSign, participant: Participant, declaration: DosingDeclaration | None, by: Actor) -> None:
    """An alert per declared threshold the row crosses, once per row and threshold (a correction that crosses a
    further threshold raises that one; one that no longer crosses leaves the raised alert for acknowledgement)."""
    if declaration is None:
        return
    for rule in declaration.thresholds:
        value = getattr(vital, rule.measure)
        if not rule.crossed_by(value):
            continue
        at = vital.timepoint_code or "unscheduled"
        assessment_services.safety_alert_raise_for(
            participant=participant,
            source="vital_sign",
            source_id=vital.pk,
            rule_code=rule.code,
            severity=rule.severity,
            # Numbers and codes only: the message goes out by e-mail (no note, no name).
            message=f"Vital sign {rule.code}: {rule.measure} {float(value):g} ({rule.describe()}) at {at}",
            details={
                "session": vital.session_id,
                "timepoint": vital.timepoint_code,
                "measure": rule.measure,
                "value": float(value),
                "comparison": rule.comparison,
                "threshold": rule.value,
            },
            by=by,
        )


@transaction.atomic
def vital_sign_record(
    *,
    session: DosingSession,
    measured_at: dt.datetime,
    by: Actor,
    timepoint_code: str = "",
    systolic_bp: int | None = None,
    diastolic_bp: int | None = None,
    heart_rate: int | None = None,
    temperature_c: Any = None,
    note: str = "",
) -> VitalSign:
    """Record one set of vital signs at a declared timepoint (or unscheduled: no code). A declared timepoint holds
    one row (a second is a 409: correct the first). A value over a declared threshold raises a safety alert."""
    session = _session(session)
    participant = session.participant
    require_role_to_record_dosing(by, participant)
    if session.closed_at is not None:
        raise Conflict("this dosing session is closed: correct a recorded vital sign instead")
    declaration = scheduling_selectors.visit_dosing_declaration(session.visit)
    timepoint_code = (timepoint_code or "").strip()
    _check_timepoint(timepoint_code, declaration)
    if timepoint_code and session.vital_signs.filter(timepoint_code=timepoint_code).exists():
        raise Conflict(f"vital signs at {timepoint_code} are recorded already: correct them instead")
    now = timezone.now()
    values: dict[str, Any] = {
        "timepoint_code": timepoint_code,
        "measured_at": aware(measured_at, participant),
        "systolic_bp": systolic_bp,
        "diastolic_bp": diastolic_bp,
        "heart_rate": heart_rate,
        "temperature_c": _temperature(temperature_c),
        "note": (note or "").strip(),
    }
    errors = _vital_errors(participant, values, now=now)
    if errors:
        raise ServiceError("the vital signs are not valid", field_errors=errors)
    vital = VitalSign.objects.create(session=session, recorded_at=now, recorded_by=acting_user(by), **values)
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type=VITAL_ENTITY,
        entity_id=vital.pk,
        changes=[("session", None, session.pk)]
        + [(name, None, value) for name, value in values.items() if not _blank(value)],
    )
    _raise_alerts(vital, participant, declaration, by)
    return vital


@transaction.atomic
def vital_sign_correct(*, vital_sign: VitalSign, reason: str, by: Actor, **changes: Any) -> VitalSign:
    """Correct a recorded vital sign, with a reason; the audit keeps each earlier value. Allowed after the session
    closed (a correction is not a new measurement). A corrected value over a threshold raises its alert."""
    session = _session(vital_sign.session)
    participant = session.participant
    require_role_to_record_dosing(by, participant)
    vital = VitalSign.objects.select_for_update().get(pk=vital_sign.pk, session=session)
    refused = sorted(set(changes) - set(VITAL_FIELDS))
    if refused:
        raise ServiceError("these fields cannot be corrected", field_errors={n: ["not correctable"] for n in refused})
    if not (reason and reason.strip()):
        raise ServiceError("a correction needs a reason", field_errors={"reason": ["required"]})
    declaration = scheduling_selectors.visit_dosing_declaration(session.visit)
    if "timepoint_code" in changes:
        changes["timepoint_code"] = (changes["timepoint_code"] or "").strip()
        _check_timepoint(changes["timepoint_code"], declaration)
        code = changes["timepoint_code"]
        if code and session.vital_signs.filter(timepoint_code=code).exclude(pk=vital.pk).exists():
            raise Conflict(f"vital signs at {code} are recorded already in another row")
    if "measured_at" in changes:
        changes["measured_at"] = aware(changes["measured_at"], participant)
    if "temperature_c" in changes:
        changes["temperature_c"] = _temperature(changes["temperature_c"])
    if "note" in changes:
        changes["note"] = (changes["note"] or "").strip()
    values = {name: getattr(vital, name) for name in VITAL_FIELDS} | changes
    errors = _vital_errors(participant, values, now=timezone.now())
    if errors:
        raise ServiceError("the vital signs are not valid", field_errors=errors)
    found = diff(vital, changes)
    if not found:
        raise ServiceError("nothing to correct: every value is already as given", code="unchanged")
    for name, _old, new in found:
        setattr(vital, name, new)
    vital.save(update_fields=sorted(name for name, _o, _n in found))
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type=VITAL_ENTITY,
        entity_id=vital.pk,
        changes=found,
        reason=reason.strip(),
    )
    _raise_alerts(vital, participant, declaration, by)
    return vital


@transaction.atomic
def dosing_session_close(
    *, session: DosingSession, by: Actor, ended_at: dt.datetime | None = None, missing_timepoints_reason: str = ""
) -> DosingSession:
    """Close the session. The declared timepoints without vital signs are listed; closing with any is refused (400,
    naming them) unless a reason is given, which is kept on the session and in the audit. A closed session takes no
    further vital signs (corrections stay possible)."""
    session = _session(session)
    participant = session.participant
    require_role_to_record_dosing(by, participant)
    if session.closed_at is not None:
        raise Conflict("this dosing session is already closed")
    now = timezone.now()
    ended = aware(ended_at, participant) or session.ended_at or now
    values = {name: getattr(session, name) for name in (*_TIMES, *DOSE_FIELDS)} | {"ended_at": ended}
    errors = _session_errors(participant, values, now=now)
    if session.started_at is None:
        errors = {"started_at": ["record when the session started before closing it"]}
    if errors:
        raise ServiceError("the dosing session cannot be closed", field_errors=errors)
    declaration = scheduling_selectors.visit_dosing_declaration(session.visit)
    missing = missing_timepoints(declaration, session.vital_signs.values_list("timepoint_code", flat=True))
    reason = (missing_timepoints_reason or "").strip()
    if missing and not reason:
        raise ServiceError(
            "declared timepoints have no vital signs",
            field_errors={
                "missing_timepoints_reason": [
                    f"no vital signs at {', '.join(missing)}: record them or give a reason to close without them"
                ]
            },
        )
    changes: list[tuple[str, Any, Any]] = [("closed_at", None, now)]
    if ended != session.ended_at:
        changes.append(("ended_at", session.ended_at, ended))
    if missing:
        changes += [("missing_timepoints", None, list(missing)), ("missing_timepoints_reason", "", reason)]
    session.closed_at, session.closed_by, session.ended_at = now, acting_user(by), ended
    session.missing_timepoints_reason = reason if missing else ""
    session.save(update_fields=["closed_at", "closed_by", "ended_at", "missing_timepoints_reason"])
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type=ENTITY,
        entity_id=session.pk,
        changes=changes,
        reason=reason if missing else None,
    )
    return session
