"""A staff member's request to send a participant the link to a visit's questionnaires now, by e-mail or SMS.

The request becomes an outbox row like any reminder (architecture decision 4): the dispatcher claims it and a worker
sends it, with its retries, backoff and once-only guarantees. The link itself is issued at send time by the delivery
step, exactly as for a questionnaire reminder, so the outbox never holds a token. The dispatch is kicked after
commit, so a running worker sends the message within seconds instead of at the next beat tick.

The planner never touches these rows (their key starts with ``link:``): it plans reminders from state, and a staff
request is not state. A withdrawal cancels them like any pending message.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assessments import selectors as assessment_selectors
from audit.models import AuditEvent
from audit.services import audit_participant_record
from notifications.models import Notification
from notifications.selectors import ACTIVE_PARTICIPANT, LINK_KEY_PREFIX
from notifications.services.planning import notifications_reconcile
from participants import selectors as participant_selectors
from participants.access import Actor, can_manage
from scheduling.models import Visit
from trialsite.errors import PermissionDeniedError, ServiceError
from trialsite.followups import send_task_on_commit

QUESTIONNAIRE_LINK = "questionnaire_link"
CHANNELS = (Notification.Channel.EMAIL, Notification.Channel.SMS)


@transaction.atomic
def questionnaire_link_send(*, visit: Visit, channel: str, by: Actor) -> Notification:
    """Queue the link to ``visit``'s self-report questionnaires for the participant, due now, on ``channel`` (email or
    sms), in the participant's language. Refused, with nothing written, when the channel has no address, the
    participant no longer takes messages, or nothing of the visit can be answered now."""
    participant = participant_selectors.participant_with_study_and_contact(visit.participant_id)
    if not can_manage(by, participant.site_id):
        raise PermissionDeniedError("your role at this site cannot send links to participants")
    if channel not in CHANNELS:
        raise ServiceError("choose e-mail or SMS", field_errors={"channel": ["must be email or sms"]})
    if participant.status not in ACTIVE_PARTICIPANT or participant.withdrawal_level:
        raise ServiceError(
            f"participant {participant.participant_id} is {participant.status} and gets no messages", code="inactive"
        )
    contact = getattr(participant, "contact", None)
    address = (contact.email if channel == Notification.Channel.EMAIL else contact.phone) if contact else ""
    if not address:
        what = "no e-mail address" if channel == Notification.Channel.EMAIL else "no phone number"
        raise ServiceError(f"participant {participant.participant_id} has {what} on file", code="no_address")
    now = timezone.now()
    if not assessment_selectors.visit_has_answerable_self_report(visit.pk, now=now):
        raise ServiceError(
            f"visit {visit.code} has no self-report questionnaire that can be answered now", code="no_self_report"
        )
    row = Notification.objects.create(
        key=f"{LINK_KEY_PREFIX}{visit.pk}:{uuid.uuid4()}",
        participant=participant,
        recipient_kind=Notification.RecipientKind.PARTICIPANT,
        channel=channel,
        template=QUESTIONNAIRE_LINK,
        language=(contact.language if contact else "") or settings.LANGUAGE_CODE,
        context={"visit_id": visit.pk, "visit_code": visit.code},
        # Asked for by a person, now: quiet hours are the planner's rule for unattended reminders, not for this.
        nominal_at=now,
        due_at=now,
    )
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="notification",
        entity_id=row.pk,
        changes=[("template", None, QUESTIONNAIRE_LINK), ("channel", None, channel), ("visit", None, visit.code)],
        reason="link sent on request",
    )
    # The reminders this link stands for (the questionnaire's "it is open" message, if not sent yet) are re-planned
    # away in the same transaction, before the dispatch below can send them alongside it.
    notifications_reconcile(participant_id=participant.pk, now=now)
    # Dispatch now rather than at the next beat tick; if the broker is down the row simply waits for the beat.
    send_task_on_commit("notifications.dispatch_due", [])
    return row
