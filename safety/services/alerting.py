"""The alert of a serious adverse event or an AESI to the site's investigators, and its escalation to the study's
medical monitor when no investigator reviewed it within the reporting clock (SAFETY_AE_REPORTING_HOURS, 24 h).

Mail goes out from Celery tasks on the ``safety`` queue (``safety.tasks``), asked for by name after commit. Each
step claims its row with a conditional UPDATE before sending, so a redelivered task or a second beat never mails
twice; a failed send releases the claim so that the retry sends.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditEvent
from audit.services import audit_participant_record
from participants import selectors as participant_selectors
from participants.access import Actor
from safety.aesi import aesi_list_for
from safety.models import SERIOUSNESS_CRITERIA, AdverseEvent
from safety.services._rules import ESCALATION_TASK, SAFETY_PRIORITY, reporting_window
from trialsite.followups import send_task_on_commit
from trialsite.roles import Role
from trialsite.staff_mail import send_in_each_language

logger = logging.getLogger(__name__)


def _event(event_id: int) -> AdverseEvent:
    return AdverseEvent.objects.select_related("participant__site", "participant__study").get(pk=event_id)


def _mail(event: AdverseEvent, *, escalation: bool) -> tuple[str, str]:
    """Subject and body in the active language. Pseudonymous id, grade and categories only: e-mail leaves our
    systems, so no name, contact detail or free text (the verbatim term may hold any of them) goes in it, and never
    an arm (the event carries none)."""
    participant = event.participant
    kind = _("Serious adverse event") if event.serious else _("Adverse event of special interest")
    head = _("ESCALATED, not reviewed in time: %(kind)s") % {"kind": kind} if escalation else kind
    labels = {c.code: c.label for c in aesi_list_for(participant.study.code).categories}
    criteria = [
        name.removeprefix("serious_").replace("_", " ") for name in SERIOUSNESS_CRITERIA if getattr(event, name)
    ]
    subject = _("[trialsite] %(head)s for participant %(participant)s") % {
        "head": head,
        "participant": participant.participant_id,
    }
    body = _(
        "%(head)s\n"
        "Participant: %(participant)s at site %(site)s (study %(study)s)\n"
        "Grade: %(grade)s\n"
        "Seriousness criteria: %(criteria)s\n"
        "Special interest: %(aesi)s\n"
        "Recorded at: %(recorded)s\n"
        "Review due by: %(due)s\n\n"
        "Review it: %(url)s\n"
    ) % {
        "head": head,
        "participant": participant.participant_id,
        "site": participant.site.code,
        "study": participant.study.code,
        "grade": event.severity_grade,
        "criteria": ", ".join(criteria) or "-",
        "aesi": ", ".join(labels.get(code, code) for code in event.aesi_categories) or "-",
        "recorded": event.recorded_at.isoformat(),
        "due": event.reporting_due_at.isoformat() if event.reporting_due_at else "-",
        "url": f"{settings.SITE_URL}/api/v1/adverse-events/{event.pk}/",
    }
    return subject, body


def adverse_event_notify(*, event_id: int) -> bool:
    """E-mail the site's investigators about a serious event or an AESI, once (claimed on ``notified_at``).

    Not audited, by design: ``notified_at`` is a delivery claim, not trial data; the clock's start was audited with
    the entry."""
    now = timezone.now()
    if not AdverseEvent.objects.filter(pk=event_id, notified_at__isnull=True).update(notified_at=now):
        return False
    event = _event(event_id)
    recipients = participant_selectors.staff_emails_by_language_at(event.participant.site_id, {Role.INVESTIGATOR})
    try:
        if recipients:
            send_in_each_language(lambda: _mail(event, escalation=False), recipients)
        else:
            logger.warning(
                "adverse event %s: no investigator with an e-mail address at site %s",
                event_id,
                event.participant.site.code,
            )
    except Exception:
        AdverseEvent.objects.filter(pk=event_id, notified_at=now).update(notified_at=None)
        raise
    return bool(recipients)


def _monitor_recipients(event: AdverseEvent) -> dict[str, list[str]]:
    """The study's medical monitor; a study that names none escalates to its site's investigators and
    administrators instead, so an escalation is never silently dropped (docs/operations.md says how to set one)."""
    email = event.participant.study.medical_monitor_email
    if email:
        return {settings.LANGUAGE_CODE: [email]}
    logger.warning(
        "study %s has no medical monitor: escalating adverse event %s to the site", event.participant.study, event.pk
    )
    return participant_selectors.staff_emails_by_language_at(event.participant.site_id, {Role.INVESTIGATOR, Role.ADMIN})


def adverse_event_escalation_notify(*, event_id: int) -> bool:
    """E-mail an escalated event to the medical monitor once (claimed on ``escalation_notified_at``), unless an
    investigator reviewed it meanwhile. Mail only: the escalation was audited by ``adverse_events_escalate_due``."""
    now = timezone.now()
    claimed = AdverseEvent.objects.filter(
        pk=event_id, reviewed_at__isnull=True, escalated_at__isnull=False, escalation_notified_at__isnull=True
    ).update(escalation_notified_at=now)
    if not claimed:
        return False
    event = _event(event_id)
    recipients = _monitor_recipients(event)
    try:
        if recipients:
            send_in_each_language(lambda: _mail(event, escalation=True), recipients)
    except Exception:
        AdverseEvent.objects.filter(pk=event_id, escalation_notified_at=now).update(escalation_notified_at=None)
        raise
    return bool(recipients)


def adverse_events_notify_pending(*, limit: int = 100) -> list[int]:
    """The sweep: mail each serious event or AESI whose investigators' mail has not gone out (its task never reached
    the broker). Exactly once, whoever runs first: ``adverse_event_notify`` claims the row. Reviewed or escalated
    events are left alone. One event's failure is logged and left for the next sweep."""
    pending = list(
        AdverseEvent.objects.filter(
            alert_started_at__isnull=False,
            notified_at__isnull=True,
            reviewed_at__isnull=True,
            escalated_at__isnull=True,
        )
        .order_by("alert_started_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    sent = []
    for event_id in pending:
        try:
            if adverse_event_notify(event_id=event_id):
                sent.append(event_id)
        except Exception:
            logger.exception("adverse event %s: mail failed; the next sweep tries again", event_id)
    return sent


def adverse_events_escalate_due(now: dt.datetime | None = None, *, by: Actor = None) -> list[int]:
    """Escalate every event whose reporting clock ran out unreviewed. Each is claimed with a conditional UPDATE, so
    two beats (or an overlapping run) escalate it once, and its mail is asked for after that claim commits."""
    now = now or timezone.now()
    due = list(
        AdverseEvent.objects.filter(reviewed_at__isnull=True, escalated_at__isnull=True, reporting_due_at__lte=now)
        .order_by("reporting_due_at")
        .values_list("id", flat=True)
    )
    escalated = []
    for event_id in due:
        with transaction.atomic():
            claimed = AdverseEvent.objects.filter(
                pk=event_id, reviewed_at__isnull=True, escalated_at__isnull=True
            ).update(escalated_at=now)
            if not claimed:
                continue
            event = _event(event_id)
            audit_participant_record(
                event.participant,
                by=by,
                action=AuditEvent.Action.UPDATE,
                entity_type="adverse_event",
                entity_id=event_id,
                changes=[("escalated_at", None, now)],
                reason=f"not reviewed within {reporting_window()}",
            )
            send_task_on_commit(ESCALATION_TASK, [event_id], priority=SAFETY_PRIORITY)
        escalated.append(event_id)
    return escalated
