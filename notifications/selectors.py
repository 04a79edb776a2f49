"""Outbox reads: the staff views, scoped to the sites where the user manages participants (coordinators,
investigators, admins), and the periodic sweep's list of participants to re-plan."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db.models import IntegerField, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404

from assessments import selectors as assessment_selectors
from notifications.models import Notification, ReminderPlan
from notifications.rules import rules_for
from participants import selectors as participant_selectors
from participants.access import Actor, managed_site_ids
from participants.models import Participant
from scheduling import selectors as scheduling_selectors
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
# Part of every planner-inputs digest: raise it when the planner starts reading something new (or reads it
# differently), so the next sweeps re-plan everyone once.
PLANNER_INPUTS_VERSION = 1


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
    """Participants the periodic sweep looks at: the active ones, and any with messages still to go; those it compared
    longest ago (or never) first, so a run cut short resumes with the ones it did not reach."""
    active = participant_selectors.participant_pks_with_status(ACTIVE_PARTICIPANT)
    waiting = set(Notification.objects.filter(status__in=REPLACEABLE).values_list("participant_id", flat=True))
    wanted = active | waiting
    seen = dict(ReminderPlan.objects.filter(examined_at__isnull=False).values_list("participant_id", "examined_at"))
    never = sorted(pk for pk in wanted if pk not in seen)
    return never + sorted((pk for pk in wanted if pk in seen), key=lambda pk: (seen[pk], pk))


def reminder_plans(participant_pks: list[int]) -> dict[int, ReminderPlan]:
    return ReminderPlan.objects.in_bulk(participant_pks)


def planner_inputs(participant_pks: list[int], *, now: dt.datetime) -> dict[int, str]:
    """A digest of everything the planner reads for each participant at ``now`` (participant, contact, site staff,
    visits, outstanding administrations, the links staff asked for), in six queries for the whole batch. Equal digests
    mean the planner would be given the same state; the instants at which time alone changes its answer are kept
    apart (``ReminderPlan.recheck_at``)."""
    people = participant_selectors.reminder_inputs_by_participant(participant_pks)
    staff = participant_selectors.staff_inputs_by_site({p[1] for p in people.values()})  # type: ignore[misc]
    visits = scheduling_selectors.visit_inputs_by_participant(participant_pks)
    adms = assessment_selectors.administration_inputs_by_participant(participant_pks, now=now)
    links: dict[int, list[tuple[int, str]]] = {}
    for pk, participant_pk, status in (
        Notification.objects.filter(participant_id__in=participant_pks, key__startswith=LINK_KEY_PREFIX)
        .order_by("id")
        .values_list("id", "participant_id", "status")
    ):
        links.setdefault(participant_pk, []).append((pk, status))
    rules: dict[str, str] = {}
    out = {}
    for pk in participant_pks:
        person = people.get(pk)
        protocol = str(person[3]) if person else ""
        if protocol not in rules:
            rules[protocol] = repr(rules_for(protocol))
        state = (
            PLANNER_INPUTS_VERSION,
            person,
            staff.get(person[1]) if person else None,  # type: ignore[call-overload]
            visits.get(pk),
            adms.get(pk),
            links.get(pk),
            rules[protocol],
        )
        out[pk] = hashlib.sha256(repr(state).encode()).hexdigest()
    return out


# --- reads for dashboard ---


def notifications_failed(user: Actor) -> QuerySet[Notification]:
    """Messages that gave up after their last attempt, at the sites where the user manages participants, newest
    first: the ones a coordinator may send again (``services.notification_retry``)."""
    return notifications_for(user).filter(status=Notification.Status.FAILED)


def links_requested_at(participant_pk: int) -> dict[int, dt.datetime]:
    """When a staff member last asked for each visit's questionnaire link to be sent to the participant (a request
    cancelled with the participant's messages does not count), by visit id. One query."""
    return links_requested_by_participant([participant_pk]).get(participant_pk, {})


def links_requested_by_participant(participant_pks: list[int]) -> dict[int, dict[int, dt.datetime]]:
    """``links_requested_at`` for many participants at once, by participant (one query)."""
    out: dict[int, dict[int, dt.datetime]] = {}
    rows = (
        Notification.objects.filter(participant_id__in=participant_pks, key__startswith=LINK_KEY_PREFIX)
        .exclude(status=Notification.Status.CANCELLED)
        .order_by()
        .values_list("participant_id", "context", "nominal_at")
    )
    for participant_pk, context, nominal in rows:
        visit_id = context.get("visit_id") if isinstance(context, dict) else None
        mine = out.setdefault(participant_pk, {})
        if isinstance(visit_id, int) and (visit_id not in mine or nominal > mine[visit_id]):
            mine[visit_id] = nominal
    return out
