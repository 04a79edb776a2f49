"""Safety alerts: raised by a response's safety rules, mailed to investigators, escalated when left unacknowledged,
acknowledged with a note.

Mail goes out from Celery tasks (``assessments.tasks``), which this module never imports: it asks for them by name,
after commit, through ``trialsite.followups``.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from assessments.definitions import Instrument
from assessments.models import Response, SafetyAlert, Score
from assessments.scoring import ScoreResult
from assessments.selectors import escalate_after
from assessments.services._actors import account_of
from audit.models import AuditEvent
from audit.services import audit_participant_record, audit_participant_records
from participants import selectors as participant_selectors
from participants.access import Actor, can_acknowledge_alert
from participants.models import Participant
from scheduling.protocol import VisitKind
from trialsite.errors import Conflict, PermissionDeniedError, ServiceError
from trialsite.followups import send_task_on_commit
from trialsite.roles import Role
from trialsite.staff_mail import send_in_each_language

NOTIFY_TASK = "assessments.safety_alert_notify"
ESCALATION_TASK = "assessments.safety_alert_escalation_notify"
# Safety mail goes ahead of anything else waiting on the safety queue.
SAFETY_PRIORITY = 9

logger = logging.getLogger(__name__)


def _baseline_value(response: Response, scale: str) -> float | None:
    """The participant's baseline for an instrument's scale: the BASELINE visit's response if there is one, else the
    first completed response before this one."""
    earlier = Response.objects.filter(
        participant_id=response.participant_id, instrument_code=response.instrument_code
    ).exclude(pk=response.pk)
    baseline = earlier.filter(visit__kind=VisitKind.BASELINE).order_by("submitted_at", "id").first()
    if baseline is None:
        baseline = earlier.filter(submitted_at__lte=response.submitted_at).order_by("submitted_at", "id").first()
    if baseline is None:
        return None
    row = Score.objects.filter(response=baseline, kind=Score.Kind.SCALE, code=scale).first()
    return None if row is None else row.value


def safety_alerts_raise(
    *, response: Response, instrument: Instrument, result: ScoreResult, participant: Participant, now: dt.datetime
) -> list[SafetyAlert]:
    """Apply the instrument's safety rules to a stored response; create (and audit) each alert a rule raises, once per
    response and rule. High alerts are mailed once the entry commits. Runs inside the response's transaction."""
    alerts = []
    for rule in instrument.safety_rules:
        message = details = None
        if rule["type"] == "flag_equals":
            if result.flags.get(rule["flag"]) == rule["equals"]:
                message = f"{instrument.code} {rule['flag']} = {rule['equals']}"
                details = {"flag": rule["flag"], "value": rule["equals"]}
        elif rule["type"] == "rise_from_baseline":
            current = result.scales[rule["scale"]].value
            baseline = _baseline_value(response, rule["scale"])
            if current is not None and baseline is not None and current - baseline >= rule["gte"]:
                message = f"{instrument.code} {rule['scale']} rose {current - baseline:g} from baseline {baseline:g}"
                details = {"scale": rule["scale"], "baseline": baseline, "current": current, "gte": rule["gte"]}
        if message is None:
            continue
        alert, created = SafetyAlert.objects.get_or_create(
            source=SafetyAlert.Source.QUESTIONNAIRE,
            source_id=response.pk,
            rule_code=rule["code"],
            defaults={
                "response": response,
                "participant": participant,
                "severity": rule["severity"],
                "message": message[:300],
                "details": details,
                "created_at": now,
            },
        )
        if not created:
            continue
        if alert.severity == SafetyAlert.Severity.HIGH:
            # After commit only: a worker must never look for an alert that a rollback removed. Routed to the
            # ``safety`` queue by name (trialsite.beat.TASK_ROUTES); if the broker is down the entry still succeeds
            # and the escalation beat, reading the alert row, is the fallback.
            send_task_on_commit(NOTIFY_TASK, [alert.pk], priority=SAFETY_PRIORITY)
        alerts.append(alert)
    # The alerts one response raised: their audit rows in one INSERT.
    audit_participant_records(
        participant,
        by=None,
        action=AuditEvent.Action.CREATE,
        entity_type="safety_alert",
        entries=[(a.pk, [("rule_code", None, a.rule_code), ("severity", None, a.severity)]) for a in alerts],
    )
    return alerts


# Sources whose alert the safety app raises on behalf of a record that carries its own mail and escalation (an adverse
# event's investigator mail and the medical monitor's 24-hour escalation, in safety.services.alerting): such an alert
# joins the list and is acknowledged like any other, but is never mailed or escalated here, so that nobody is told
# twice about one event.
SELF_ESCALATING_SOURCES = frozenset({SafetyAlert.Source.ADVERSE_EVENT})


def safety_alert_raise_for(
    *,
    participant: Participant,
    source: str,
    source_id: int,
    rule_code: str,
    severity: str,
    message: str,
    details: dict[str, object] | None = None,
    by: Actor = None,
    now: dt.datetime | None = None,
) -> SafetyAlert | None:
    """Raise an alert for a record another app keeps (a vital sign, an adverse event), once per source row and rule;
    None when that alert exists already. Audited in the caller's transaction; a high alert is mailed to the site's
    investigators after commit and, left unacknowledged, escalated by the beat, exactly as a questionnaire alert
    is, unless its source mails and escalates on its own (``SELF_ESCALATING_SOURCES``)."""
    if source == SafetyAlert.Source.QUESTIONNAIRE or source not in SafetyAlert.Source.values:
        raise ValueError(f"not a source another app raises alerts for: {source!r}")
    if severity not in SafetyAlert.Severity.values:
        raise ValueError(f"unknown severity {severity!r}")
    alert, created = SafetyAlert.objects.get_or_create(
        source=source,
        source_id=source_id,
        rule_code=rule_code,
        defaults={
            "participant": participant,
            "severity": severity,
            "message": message[:300],
            "details": details or {},
            "created_at": now or timezone.now(),
        },
    )
    if not created:
        return None
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="safety_alert",
        entity_id=alert.pk,
        changes=[
            ("source", None, alert.source),
            ("source_id", None, alert.source_id),
            ("rule_code", None, alert.rule_code),
            ("severity", None, alert.severity),
        ],
    )
    if alert.severity == SafetyAlert.Severity.HIGH and source not in SELF_ESCALATING_SOURCES:
        send_task_on_commit(NOTIFY_TASK, [alert.pk], priority=SAFETY_PRIORITY)
    return alert


def _alert_mail(alert: SafetyAlert, *, escalation: bool, no_investigator: bool = False) -> tuple[str, str]:
    """The subject and body of an alert's mail, in the active language (the reader's: see ``trialsite.staff_mail``)."""
    participant = alert.participant
    head = _("ESCALATED safety alert") if escalation else _("Safety alert")
    # Pseudonymous id only: e-mail leaves our systems, so no name, contact detail or answer text goes in it.
    subject = _("[trialsite] %(head)s (%(severity)s) for participant %(participant)s") % {
        "head": head,
        "severity": alert.severity,
        "participant": participant.participant_id,
    }
    body = _(
        "%(head)s: %(message)s\n"
        "Participant: %(participant)s at site %(site)s\n"
        "Raised at: %(raised)s\n\n"
        "Review and acknowledge it: %(url)s\n"
    ) % {
        "head": head,
        "message": alert.message,
        "participant": participant.participant_id,
        "site": participant.site.code,
        "raised": alert.created_at.isoformat(),
        "url": f"{settings.SITE_URL}/api/v1/safety-alerts/{alert.pk}/",
    }
    if no_investigator:
        body += "\n" + _(
            "No investigator at this site has an e-mail address, so this alert comes to the site's coordinators. "
            "Please make sure an investigator reviews it."
        )
    return subject, body


def safety_alert_notify(*, alert_id: int) -> bool:
    """E-mail the site's investigators about a new alert, once. The row is claimed with a conditional UPDATE before
    sending (two deliveries of the task, or the task and the sweep, cannot both send) and released if sending fails,
    so a retry sends.

    A site with no investigator to mail escalates at once to its coordinators; with nobody to mail, nothing is sent.
    Either way ``notified_to`` says so: the dashboard's alert list shows it and /readyz counts it.

    Not audited, by design: ``notified_at`` and ``notified_to`` are a delivery claim and its outcome, not trial data;
    the alert itself was audited when it was raised."""
    now = timezone.now()
    if not SafetyAlert.objects.filter(pk=alert_id, notified_at__isnull=True).update(notified_at=now):
        return False
    alert = SafetyAlert.objects.select_related("participant__site").get(pk=alert_id)
    site_id = alert.participant.site_id
    reached = SafetyAlert.NotifiedTo.INVESTIGATORS
    recipients = participant_selectors.staff_emails_by_language_at(site_id, {Role.INVESTIGATOR})
    if not recipients:
        recipients = participant_selectors.staff_emails_by_language_at(site_id, {Role.COORDINATOR})
        reached = SafetyAlert.NotifiedTo.COORDINATORS if recipients else SafetyAlert.NotifiedTo.NOBODY
    try:
        if recipients:
            no_investigator = reached == SafetyAlert.NotifiedTo.COORDINATORS
            send_in_each_language(
                lambda: _alert_mail(alert, escalation=False, no_investigator=no_investigator), recipients
            )
    except Exception:
        SafetyAlert.objects.filter(pk=alert_id, notified_at=now).update(notified_at=None)
        raise
    SafetyAlert.objects.filter(pk=alert_id, notified_at=now).update(notified_to=reached)
    if reached != SafetyAlert.NotifiedTo.INVESTIGATORS:
        logger.error(
            "safety alert %s: no investigator at site %s has an e-mail address; notified: %s",
            alert_id,
            alert.participant.site.code,
            reached,
        )
    return bool(recipients)


def safety_alerts_notify_pending(*, limit: int = 100) -> list[int]:
    """The sweep: mail every high alert whose mail has not gone out yet (its task was never published, say because
    the broker was down when the entry committed, or was lost with Redis). Exactly once, whoever runs first: each
    alert is claimed by ``safety_alert_notify``. Alerts already escalated or acknowledged are left alone (the
    escalation mail, or the investigator, has dealt with them). The ids mailed are returned; one alert's failure is
    logged and left for the next sweep."""
    pending = list(
        SafetyAlert.objects.filter(
            severity=SafetyAlert.Severity.HIGH,
            notified_at__isnull=True,
            acknowledged_at__isnull=True,
            escalated_at__isnull=True,
        )
        .exclude(source__in=SELF_ESCALATING_SOURCES)
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    sent = []
    for alert_id in pending:
        try:
            if safety_alert_notify(alert_id=alert_id):
                sent.append(alert_id)
        except Exception:
            logger.exception("safety alert %s: mail failed; the next sweep tries again", alert_id)
    return sent


def safety_alert_escalation_notify(*, alert_id: int) -> bool:
    """E-mail an escalated alert to the site's investigators, coordinators and administrators, unless it was
    acknowledged meanwhile. Sends mail only: the escalation was audited by ``safety_alerts_escalate_due``."""
    alert = SafetyAlert.objects.select_related("participant__site").get(pk=alert_id)
    if alert.acknowledged_at is not None:
        return False
    recipients = participant_selectors.staff_emails_by_language_at(
        alert.participant.site_id, {Role.INVESTIGATOR, Role.COORDINATOR, Role.ADMIN}
    )
    if recipients:
        send_in_each_language(lambda: _alert_mail(alert, escalation=True), recipients)
    return bool(recipients)


def safety_alerts_escalate_due(now: dt.datetime | None = None, *, by: Actor = None) -> list[int]:
    """Escalate alerts left unacknowledged longer than SAFETY_ALERT_ESCALATE_AFTER_MINUTES. Each alert is claimed with
    a conditional UPDATE, so two beats (or an overlapping run) escalate it once."""
    now = now or timezone.now()
    due = list(
        SafetyAlert.objects.filter(
            acknowledged_at__isnull=True, escalated_at__isnull=True, created_at__lte=now - escalate_after()
        )
        .exclude(source__in=SELF_ESCALATING_SOURCES)
        .order_by("created_at")
        .values_list("id", flat=True)
    )
    escalated = []
    for alert_id in due:
        with transaction.atomic():
            claimed = SafetyAlert.objects.filter(
                pk=alert_id, acknowledged_at__isnull=True, escalated_at__isnull=True
            ).update(escalated_at=now)
            if not claimed:
                continue
            alert = SafetyAlert.objects.select_related("participant__site").get(pk=alert_id)
            audit_participant_record(
                alert.participant,
                by=by,
                action=AuditEvent.Action.UPDATE,
                entity_type="safety_alert",
                entity_id=alert_id,
                changes=[("escalated_at", None, now)],
                reason=f"unacknowledged after {escalate_after()}",
            )
            send_task_on_commit(ESCALATION_TASK, [alert_id], priority=SAFETY_PRIORITY)
        escalated.append(alert_id)
    return escalated


@transaction.atomic
def safety_alert_acknowledge(*, alert: SafetyAlert, note: str, by: Actor) -> SafetyAlert:
    if not (note and note.strip()):
        raise ServiceError("an acknowledgement needs a note", field_errors={"note": ["required"]})
    alert = SafetyAlert.objects.select_for_update(of=("self",)).select_related("participant__site").get(pk=alert.pk)
    if not can_acknowledge_alert(by, alert.participant.site_id):
        raise PermissionDeniedError("only an investigator at this site can acknowledge a safety alert")
    if alert.acknowledged_at is not None:
        raise Conflict("this alert was already acknowledged")
    now = timezone.now()
    alert.acknowledged_at, alert.acknowledged_by, alert.acknowledgement_note = now, account_of(by), note.strip()
    alert.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledgement_note"])
    audit_participant_record(
        alert.participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="safety_alert",
        entity_id=alert.pk,
        changes=[("acknowledged_at", None, now), ("acknowledgement_note", "", alert.acknowledgement_note)],
        reason=alert.acknowledgement_note,
    )
    return alert
