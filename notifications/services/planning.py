"""Planning: bring a participant's outbox in line with the messages their current state calls for, and cancel what a
withdrawal stops.

The state is read through the owning apps' selectors (participants, scheduling, assessments) in a bounded number of
queries; ``planner.plan`` (pure) decides; ``notifications_reconcile`` diffs its answer against the outbox.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from assessments import selectors as assessment_selectors
from assessments.models import Administration
from audit.models import AuditEvent
from audit.services import audit_participant_record
from notifications import planner
from notifications import selectors as notification_selectors
from notifications.channels import choose_channel
from notifications.models import Notification, ReminderPlan
from notifications.rules import Rules, rules_for
from notifications.selectors import ACTIVE_PARTICIPANT, LINK_KEY_PREFIX, REPLACEABLE
from participants import selectors as participant_selectors
from participants.access import Actor
from participants.models import Participant
from scheduling import blinded_view
from scheduling import selectors as scheduling_selectors
from scheduling.models import Visit

N = Notification.Status
_LOCK_NAMESPACE = 748_215_501  # advisory lock class: "reconciling one participant's reminders"
_NO_QUESTIONNAIRE_REMINDERS = (Visit.Status.CANCELLED, Visit.Status.MISSED)


@dataclass(frozen=True)
class ReconcileResult:
    created: int
    cancelled: int


def _participant_state(participant: Participant, rules: Rules, now: dt.datetime) -> planner.ParticipantState:
    """What the planner needs to know about one participant, read in at most six queries (visits, open
    questionnaires and the links staff asked to send for them, outstanding administrations, and the coordinators and
    their languages when escalation applies)."""
    contact = getattr(participant, "contact", None)
    visits = {v.pk: v for v in scheduling_selectors.participant_visits(participant.pk)}
    questionnaires: dict[int, list[Administration]] = {}
    for adm in assessment_selectors.self_reports_open(participant.pk, now=now):
        questionnaires.setdefault(adm.visit_id, []).append(adm)
    requested = notification_selectors.links_requested_at(participant.pk) if questionnaires else {}
    overdue: dict[int, int] = {}
    for adm in assessment_selectors.administrations_outstanding(participant.pk):
        overdue[adm.visit_id] = overdue.get(adm.visit_id, 0) + 1
    coordinators: tuple[int, ...] = ()
    blinded: tuple[int, ...] = ()
    shown_blinded: dict[int, str] = {}
    if rules.escalation_overdue_days is not None and overdue:
        coordinators = participant_selectors.staff_user_ids_with_email(
            site_id=participant.site_id, roles=rules.escalation_roles
        )
        # Recipients who may not see the arm are told only of the visits their blinded schedule lists, by the code
        # it shows them (scheduling.blinded_view).
        blinded = participant_selectors.user_ids_blinded_at(
            site_id=participant.site_id, user_ids=coordinators, study=participant.study
        )
        if blinded:
            shown_blinded = blinded_view.blinded_codes(participant, visits.values())
    return planner.ParticipantState(
        participant_id=participant.pk,
        active=participant.status in ACTIVE_PARTICIPANT,
        time_zone=participant.time_zone,
        site_time_zone=participant.site.time_zone,
        channel=choose_channel(contact),
        language=(contact.language if contact else "") or settings.LANGUAGE_CODE,
        visits=tuple(
            planner.VisitState(
                id=v.pk,
                code=v.code,
                kind=v.kind,
                status=v.status,
                target_date=v.target_date,
                scheduled_start=v.scheduled_start,
                occurred_at=v.occurred_at,
            )
            for v in visits.values()
        ),
        questionnaires=tuple(
            planner.QuestionnaireGroup(
                visit_id=visit_id,
                opens_at=min(a.opens_at for a in group if a.opens_at is not None),
                closes_at=max(a.closes_at for a in group if a.closes_at is not None),
                link_requested_at=requested.get(visit_id),
            )
            for visit_id, group in sorted(questionnaires.items())
            if visit_id not in visits or visits[visit_id].status not in _NO_QUESTIONNAIRE_REMINDERS
        ),
        overdue=tuple(
            planner.OverdueGroup(
                visit_id=visit_id,
                visit_code=visit.code,
                target_date=visit.target_date,
                count=n,
                blinded_code=shown_blinded.get(visit_id),
            )
            for visit_id, n in sorted(overdue.items())
            if (visit := visits.get(visit_id)) is not None
            and visit.target_date is not None
            # Nothing is owed for a cancelled visit (assessments marks its administrations not applicable).
            and visit.status != Visit.Status.CANCELLED
        ),
        coordinators=coordinators,
        blinded_recipients=blinded,
        staff_languages=tuple(sorted(participant_selectors.staff_languages(coordinators).items()))
        if coordinators
        else (),
    )


def _lock_participant(participant_id: int) -> None:
    # Two reconciles of one participant (a hook and the periodic sweep) run one after the other, so each diffs against
    # what the other wrote. The unique key would stop a twin anyway; the lock keeps the loser from cancelling a row it
    # never saw.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, participant_id])


def _differs(row: Notification, w: planner.Wanted) -> bool:
    return (row.due_at, row.channel, row.language, row.template, row.recipient_user_id) != (
        w.due_at,
        w.channel,
        w.language,
        w.template,
        w.recipient_user_id,
    )


def notifications_reconcile(
    *, participant_id: int, now: dt.datetime | None = None, inputs: str | None = None
) -> ReconcileResult:
    """Bring the participant's outbox in line with the messages their current state calls for: create the missing
    ones, cancel pending ones that are no longer wanted (or wanted at another time or on another channel). Rows that
    are sending or done are history and never touched. Idempotent.

    Writes no audit row of its own, by design: the outbox rows follow from audited changes (a visit booked, a
    questionnaire answered, a withdrawal), and each row records its own history (status, due time, cancel reason).

    Records what it planned from (``ReminderPlan``): ``inputs`` is the digest of the planner's inputs the caller took
    (the sweep, for its batch), else one is taken here. It is taken before the state is read, so a change that lands
    in between leaves an old digest behind and the next sweep re-plans once more: never the other way round."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_participant(participant_id)
        if inputs is None:
            inputs = notification_selectors.planner_inputs([participant_id], now=now)[participant_id]
        participant = participant_selectors.participant_with_study_and_contact(participant_id)
        rules = rules_for(participant.study.protocol_code)
        state = _participant_state(participant, rules, now)
        wanted = {w.key: w for w in planner.plan(state, rules, now)}
        rows = {
            r.key: r
            for r in Notification.objects.filter(participant_id=participant_id)
            .exclude(status=N.CANCELLED)
            # A link a staff member asked for is no reminder: the plan never wants it, so the diff must not see it.
            .exclude(key__startswith=LINK_KEY_PREFIX)
            .filter(Q(status__in=REPLACEABLE) | Q(key__in=list(wanted)))
        }
        stale = [
            r.pk for k, r in rows.items() if r.status in REPLACEABLE and (k not in wanted or _differs(r, wanted[k]))
        ]
        cancelled = 0
        if stale:
            cancelled = Notification.objects.filter(pk__in=stale, status__in=REPLACEABLE).update(
                status=N.CANCELLED, cancel_reason="re-planned", claim_token=None, updated_at=now
            )
        stale_set = set(stale)
        new = [
            Notification(
                key=w.key,
                participant_id=participant_id,
                recipient_kind="staff" if w.recipient_user_id else "participant",
                recipient_user_id=w.recipient_user_id,
                channel=w.channel,
                template=w.template,
                language=w.language,
                context=w.context,
                nominal_at=w.nominal_at,
                due_at=w.due_at,
            )
            for k, w in wanted.items()
            if k not in rows or rows[k].pk in stale_set
        ]
        # ignore_conflicts: a row that moved on to "sending" between the read and the cancel keeps its key; the
        # unique constraint then refuses the replacement, which is right (that message is going out).
        created = Notification.objects.bulk_create(new, ignore_conflicts=True)
        ReminderPlan.objects.update_or_create(
            participant_id=participant_id,
            defaults={
                "inputs": inputs,
                "recheck_at": planner.recheck_at(state, wanted.values(), now),
                "planned_at": now,
                "examined_at": now,
            },
        )
    return ReconcileResult(created=len(created), cancelled=cancelled)


@dataclass(frozen=True)
class SweepResult:
    examined: int  # participants whose inputs were compared
    replanned: int  # of those, the ones re-planned (inputs changed, never planned, or their recheck time came)
    created: int
    complete: bool  # False when the time budget ran out first: the next run goes on with the rest


def notifications_reconcile_changed(
    *,
    now: dt.datetime | None = None,
    budget_seconds: float | None = None,
    batch_size: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SweepResult:
    """The periodic safety net, incremental: re-plan the participants whose planner inputs changed since they were
    last planned (a hook that never reached the broker, a write with no hook, a language pack loaded), or whose plan
    time alone changes (``ReminderPlan.recheck_at``), and skip the rest after comparing digests, a few queries per
    batch instead of a re-plan per participant.

    Stops starting work once ``budget_seconds`` (NOTIFICATIONS_RECONCILE_BUDGET_SECONDS, below the task's soft time
    limit) have passed; participants are taken longest-unexamined first, so the next run resumes with those this one
    did not reach and every participant is reached at any size. Each re-plan is its own transaction, so stopping never
    leaves half a plan."""
    now = now or timezone.now()
    budget = settings.NOTIFICATIONS_RECONCILE_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    size = batch_size or settings.NOTIFICATIONS_RECONCILE_BATCH
    deadline = clock() + budget
    order = notification_selectors.participant_ids_to_reconcile()
    examined = replanned = created = 0
    for start in range(0, len(order), size):
        if clock() >= deadline:
            break
        batch = order[start : start + size]
        digests = notification_selectors.planner_inputs(batch, now=now)
        plans = notification_selectors.reminder_plans(batch)
        done: list[int] = []
        for pk in batch:
            plan = plans.get(pk)
            if plan is None or plan.inputs != digests[pk] or (plan.recheck_at is not None and plan.recheck_at <= now):
                if clock() >= deadline:
                    break
                created += notifications_reconcile(participant_id=pk, now=now, inputs=digests[pk]).created
                replanned += 1
            else:
                done.append(pk)
            examined += 1
        if done:
            ReminderPlan.objects.filter(pk__in=done).update(examined_at=now)
    return SweepResult(examined, replanned, created, complete=examined == len(order))


def notifications_cancel_for_participant(*, participant: Participant, reason: str, by: Actor = None) -> int:
    """Cancel every message not yet on its way (withdrawal). Runs inside the caller's transaction. The audit row
    counts the cancelled messages; when there were none, nothing changed and nothing is recorded."""
    count = Notification.objects.filter(participant=participant, status__in=REPLACEABLE).update(
        status=N.CANCELLED, cancel_reason=reason[:200], claim_token=None, updated_at=timezone.now()
    )
    if count:
        audit_participant_record(
            participant,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity_type="notifications",
            entity_id=participant.pk,
            changes=[("cancelled", None, count)],
            reason=reason,
        )
    return count


def _on_withdrawn(*, participant: Participant, level: str, by: Actor, **kwargs: object) -> None:
    # Registered in NotificationsConfig.ready(); runs inside participant_withdraw's transaction, so the withdrawal and
    # the cancellation commit together and no reminder can slip out in between. Every level stops messages to the
    # participant (stop_contact is the one that demands it; the others cancel the visits the messages were about).
    notifications_cancel_for_participant(participant=participant, reason=f"participant withdrawn ({level})", by=by)
