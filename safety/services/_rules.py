"""Shared checks of the adverse-event services: who may write, what a value may be, and the reporting clock."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.conf import settings
from django.utils import timezone

from assessments import services as assessment_services
from participants.access import Actor, require_role
from participants.models import Participant
from participants.plausible import participant_date_errors
from safety import aesi
from safety.models import SERIOUSNESS_CRITERIA, AdverseEvent
from trialsite.followups import send_task_on_commit
from trialsite.roles import MANAGE, Role

# Staff who see the participant in clinic or in session record adverse events: coordinators, investigators,
# administrators and therapists (who are with the participant through a dosing session).
RECORDERS = MANAGE | {Role.THERAPIST}
NOTIFY_TASK = "safety.adverse_event_notify"
ESCALATION_TASK = "safety.adverse_event_escalation_notify"
# Safety mail goes ahead of anything else waiting on the safety queue.
SAFETY_PRIORITY = 9


def reporting_window() -> dt.timedelta:
    return dt.timedelta(hours=settings.SAFETY_AE_REPORTING_HOURS)


def require_recorder(by: Actor, participant: Participant) -> None:
    require_role(by, participant.site_id, RECORDERS, "record adverse events")


def require_role_to_record_dosing(by: Actor, participant: Participant) -> None:
    """The staff who record adverse events record dosing sessions and their vital signs too (RECORDERS)."""
    require_role(by, participant.site_id, RECORDERS, "record dosing sessions")


def aware(value: dt.datetime | None, participant: Participant) -> dt.datetime | None:
    """Staff enter times as the site's clock shows them: a naive value is read in the site's zone, then kept in
    UTC. An aware value (an API client that sends an offset) is taken as it is."""
    if value is None:
        return None
    if timezone.is_naive(value):
        value = value.replace(tzinfo=zoneinfo.ZoneInfo(participant.site.time_zone))
    return value.astimezone(dt.UTC)


def check_values(participant: Participant, values: dict[str, Any], *, now: dt.datetime) -> dict[str, list[str]]:
    """Field errors of a full set of event values (after a correction is applied, the whole row is checked)."""
    errors: dict[str, list[str]] = {}
    if not str(values.get("verbatim_term") or "").strip():
        errors["verbatim_term"] = ["required"]
    grade = values.get("severity_grade")
    if not isinstance(grade, int) or isinstance(grade, bool) or not 1 <= grade <= 5:
        errors["severity_grade"] = ["a CTCAE grade from 1 to 5"]
    onset, resolved = values.get("onset_at"), values.get("resolved_at")
    errors.update(participant_date_errors(participant, {"onset_at": onset, "resolved_at": resolved}, now=now))
    if resolved is not None and onset is not None and resolved < onset:
        errors.setdefault("resolved_at", []).append("cannot be before the onset")
    if values.get("outcome") == AdverseEvent.Outcome.FATAL and not values.get("serious_death"):
        errors["serious_death"] = ["a fatal outcome makes the event serious (death)"]
    if values.get("serious_death") and values.get("outcome") not in (None, AdverseEvent.Outcome.FATAL):
        errors["outcome"] = ["an event that resulted in death has the outcome 'fatal'"]
    categories = values.get("aesi_categories") or []
    known = aesi.aesi_list_for(participant.study.code).codes
    unknown = sorted({str(c) for c in categories} - known)
    if unknown:
        errors["aesi_categories"] = [f"not an AESI category of this study: {', '.join(unknown)}"]
    elif len(set(categories)) != len(categories):
        errors["aesi_categories"] = ["a category is listed twice"]
    choices = {
        "relatedness_drug": AdverseEvent._meta.get_field("relatedness_drug").choices,
        "relatedness_therapy": AdverseEvent._meta.get_field("relatedness_therapy").choices,
        "expectedness": AdverseEvent.Expectedness.choices,
        "action_taken": AdverseEvent.ActionTaken.choices,
        "outcome": AdverseEvent.Outcome.choices,
    }
    for name, options in choices.items():
        if values.get(name) not in {value for value, _label in options or []}:
            errors.setdefault(name, []).append("not one of the allowed values")
    return errors


def serious_of(values: dict[str, Any]) -> bool:
    return any(bool(values.get(name)) for name in SERIOUSNESS_CRITERIA)


def start_clock_if_needed(event: AdverseEvent, *, now: dt.datetime) -> list[tuple[str, Any, Any]]:
    """A serious event or an AESI starts the reporting clock once, and its alert goes to the site's investigators
    after commit (a worker must never look for an event a rollback removed). If the broker is down the entry still
    succeeds; the escalation beat, reading the row, is the fallback. Returns the audit changes."""
    if not event.needs_alert or event.alert_started_at is not None:
        return []
    event.alert_started_at, event.reporting_due_at = now, now + reporting_window()
    send_task_on_commit(NOTIFY_TASK, [event.pk], priority=SAFETY_PRIORITY)
    # The event joins the open safety alerts' list, to be acknowledged there. Its mail and its escalation are the
    # event's own (above, and the 24-hour clock): the alert is raised as self-escalating, so nobody is told twice.
    assessment_services.safety_alert_raise_for(
        participant=event.participant,
        source="adverse_event",
        source_id=event.pk,
        rule_code="SERIOUS_AE" if event.serious else "AESI",
        severity="high",
        # Grade and kind only: no verbatim term, which may hold anything.
        message=f"{'Serious adverse event' if event.serious else 'Adverse event of special interest'} "
        f"(grade {event.severity_grade})",
        details={"adverse_event": event.pk, "serious": event.serious, "aesi": list(event.aesi_categories)},
        now=now,
    )
    return [("alert_started_at", None, now), ("reporting_due_at", None, event.reporting_due_at)]
