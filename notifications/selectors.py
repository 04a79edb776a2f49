"""Outbox reads: the staff views, scoped to the sites where the user manages participants (coordinators,
investigators, admins), and the periodic sweep's list of participants to re-plan."""

from __future__ import annotations

import datetime as dt

from django.db.models import IntegerField, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404

from notifications.models import Notification
from participants import selectors as participant_selectors
from participants.access import Actor, managed_site_ids
from participants.models import Participant
from scheduling.blinded_view import Lens

# Participants who still get reminders: once withdrawn, completed, lost or screen-failed they get none.
ACTIVE_PARTICIPANT: frozenset[str] = frozenset(
    {
        Participant.Status.SCREENING,
        Participant.Status.ELIGIBLE,
        Participant.Status.CONSENTED,
        Participant.Status.ENROLLED,
        Participant.Status.RANDOMIZED,
        Participant.Status.IN_TREATMENT,
    }
)
# Rows not yet on their way: re-planning may cancel or replace them, and a withdrawal cancels them.
REPLACEABLE = (Notification.Status.PENDING, Notification.Status.CLAIMED)
# The key of a message a staff member asked for (notifications.services.links): the planner never plans these.
LINK_KEY_PREFIX = "link:"


def notifications_for(user: Actor) -> QuerySet[Notification]:
    """The outbox rows of the user's sites, newest first. A blinded viewer gets no row about a visit the blinded view
    of the schedule does not list with dates (``scheduling.blinded_view``): its key, template and times would tell
    the visit and when it is. One query per page: the participant, its site and the staff recipient come in the same
    SELECT."""
    rows = Notification.objects.filter(participant__site_id__in=managed_site_ids(user))
    lens = Lens(user)
    if lens.any_blinded():
        unlisted = lens.unlisted_ids()
        rows = rows.alias(about_visit=Cast(KeyTextTransform("visit_id", "context"), IntegerField())).exclude(
            Q(about_visit__isnull=False) & Q(about_visit__in=unlisted)  # a row about no visit stays
        )
    return rows.select_related("participant__site", "recipient_user").order_by("-due_at", "-id")


def notification_get(user: Actor, notification_id: int) -> Notification:
    """One row, or Http404 when it does not exist or lies outside the user's sites (the two look the same)."""
    return get_object_or_404(notifications_for(user), pk=notification_id)


def participant_ids_to_reconcile() -> list[int]:
    """Participants the periodic sweep looks at: the active ones, and any with messages still to go."""
    active = participant_selectors.participant_pks_with_status(ACTIVE_PARTICIPANT)
    waiting = set(Notification.objects.filter(status__in=REPLACEABLE).values_list("participant_id", flat=True))
    return sorted(active | waiting)


# --- reads for dashboard ---


def notifications_failed(user: Actor) -> QuerySet[Notification]:
    """Messages that gave up after their last attempt, at the sites where the user manages participants, newest
    first: the ones a coordinator may send again (``services.notification_retry``)."""
    return notifications_for(user).filter(status=Notification.Status.FAILED)


def links_requested_at(participant_pk: int) -> dict[int, dt.datetime]:
    """When a staff member last asked for each visit's questionnaire link to be sent to the participant (a request
    cancelled with the participant's messages does not count), by visit id. One query."""
    out: dict[int, dt.datetime] = {}
    rows = (
        Notification.objects.filter(participant_id=participant_pk, key__startswith=LINK_KEY_PREFIX)
        .exclude(status=Notification.Status.CANCELLED)
        .order_by()
        .values_list("context", "nominal_at")
    )
    for context, nominal in rows:
        visit_id = context.get("visit_id") if isinstance(context, dict) else None
        if isinstance(visit_id, int) and (visit_id not in out or nominal > out[visit_id]):
            out[visit_id] = nominal
    return out
