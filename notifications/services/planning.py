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
from typing import cast

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


# One outstanding administration as assessments.selectors.administration_inputs_by_participant gives it.
_AdministrationInputs = tuple[int, int, str, str, dt.datetime | None, dt.datetime | None, bool, bool | None]


@dataclass(frozen=True)
class ReconcileResult:
    created: int
    cancelled: int


def _participant_states(
    participant_pks: list[int], now: dt.datetime
) -> dict[int, tuple[Rules, planner.ParticipantState]]:
    """What the planner needs to know about each of these participants, with its rules, read for the whole batch in a
    handful of queries (participants, visits, outstanding administrations, the links staff asked to send), plus a few
    per site for escalation (its coordinators, which of them are blinded, their languages) and two per participant
    whose escalation goes to blinded staff (the codes their schedule shows). Participants that do not exist are
    absent."""
    people = participant_selectors.participants_with_study_and_contact(participant_pks)
    visits_of = scheduling_selectors.visits_by_participant(participant_pks)
    outstanding_of = assessment_selectors.administration_inputs_by_participant(participant_pks, now=now)
    requested_of = notification_selectors.links_requested_by_participant(participant_pks)
    coordinators_at: dict[tuple[int, tuple[str, ...]], tuple[int, ...]] = {}
    blinded_at: dict[tuple[int, int, tuple[int, ...]], tuple[int, ...]] = {}
    languages_of: dict[tuple[int, ...], tuple[tuple[int, str], ...]] = {}
    out = {}
    for pk in participant_pks:
        participant = people.get(pk)
        if participant is None:
            continue
        rules = rules_for(participant.study.protocol_code)
        contact = getattr(participant, "contact", None)
        visits = {v.pk: v for v in visits_of.get(pk, [])}
        # (id, visit id, status, respondent, opens, closes, still open at now, held for want of wording): those that
        # can still be answered are the open self-reports (assessments.selectors.self_reports_open).
        outstanding = outstanding_of.get(pk, ())
        questionnaires: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
        overdue: dict[int, int] = {}
        for adm in outstanding:
            _id, visit_id, _status, respondent, opens, closes, still_open, held = cast(_AdministrationInputs, adm)
            overdue[visit_id] = overdue.get(visit_id, 0) + 1
            if respondent == Administration.Respondent.SELF and opens is not None and still_open and not held:
                questionnaires.setdefault(visit_id, []).append((opens, cast(dt.datetime, closes)))
        requested = requested_of.get(pk, {})
        coordinators: tuple[int, ...] = ()
        blinded: tuple[int, ...] = ()
        shown_blinded: dict[int, str] = {}
        if rules.escalation_overdue_days is not None and overdue:
            roles = tuple(rules.escalation_roles)
            if (participant.site_id, roles) not in coordinators_at:
                coordinators_at[participant.site_id, roles] = participant_selectors.staff_user_ids_with_email(
                    site_id=participant.site_id, roles=rules.escalation_roles
                )
            coordinators = coordinators_at[participant.site_id, roles]
            # Recipients who may not see the arm are told only of the visits their blinded schedule lists, by the
            # code it shows them (scheduling.blinded_view).
            blind_key = (participant.site_id, participant.study_id, coordinators)
            if blind_key not in blinded_at:
                blinded_at[blind_key] = participant_selectors.user_ids_blinded_at(
                    site_id=participant.site_id, user_ids=coordinators, study=participant.study
                )
            blinded = blinded_at[blind_key]
            if blinded:
                shown_blinded = blinded_view.blinded_codes(participant, visits.values())
            if coordinators not in languages_of:
                languages_of[coordinators] = (
                    tuple(sorted(participant_selectors.staff_languages(coordinators).items())) if coordinators else ()
                )
        state = planner.ParticipantState(
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
                    opens_at=min(opens for opens, _ in group),
                    closes_at=max(closes for _, closes in group),
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
            staff_languages=languages_of.get(coordinators, ()) if coordinators else (),
        )
        out[pk] = (rules, state)
    return out


def _lock_participants(participant_pks: list[int]) -> None:
    # Two reconciles of one participant (a hook and the periodic sweep) run one after the other, so each diffs against
    # what the other wrote. The unique key would stop a twin anyway; the lock keeps the loser from cancelling a row it
    # never saw. A batch takes its participants' locks in ascending order, one statement: two batches cannot
    # deadlock, and a single participant's reconcile holds only one.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, pk) FROM unnest(%s::integer[]) WITH ORDINALITY AS t(pk, n) ORDER BY n",
                [_LOCK_NAMESPACE, sorted(participant_pks)],
            )


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
    return _replan([participant_id], now, None if inputs is None else {participant_id: inputs})


def _replan(participant_pks: list[int], now: dt.datetime, inputs: dict[int, str] | None) -> ReconcileResult:
    """``notifications_reconcile`` for a batch of participants in one transaction: their state read for the whole
    batch, one cancel, one insert and one write of their plans."""
    pks = sorted(set(participant_pks))
    with transaction.atomic():
        _lock_participants(pks)
        if inputs is None:
            inputs = notification_selectors.planner_inputs(pks, now=now)
        states = _participant_states(pks, now)
        wanted_of = {pk: {w.key: w for w in planner.plan(state, rules, now)} for pk, (rules, state) in states.items()}
        rows_of: dict[int, dict[str, Notification]] = {}
        for row in (
            Notification.objects.filter(participant_id__in=list(states))
            .exclude(status=N.CANCELLED)
            # A link a staff member asked for is no reminder: the plan never wants it, so the diff must not see it.
            .exclude(key__startswith=LINK_KEY_PREFIX)
            .filter(Q(status__in=REPLACEABLE) | Q(key__in=[k for wanted in wanted_of.values() for k in wanted]))
        ):
            rows_of.setdefault(row.participant_id, {})[row.key] = row
        stale: list[int] = []
        new: list[Notification] = []
        plans: list[ReminderPlan] = []
        for pk, wanted in wanted_of.items():
            rows = rows_of.get(pk, {})
            mine = [
                r.pk for k, r in rows.items() if r.status in REPLACEABLE and (k not in wanted or _differs(r, wanted[k]))
            ]
            stale += mine
            stale_set = set(mine)
            new += [
                Notification(
                    key=w.key,
                    participant_id=pk,
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
            plans.append(
                ReminderPlan(
                    participant_id=pk,
                    inputs=inputs[pk],
                    recheck_at=planner.recheck_at(states[pk][1], wanted.values(), now),
                    planned_at=now,
                    examined_at=now,
                )
            )
        cancelled = 0
        if stale:
            cancelled = Notification.objects.filter(pk__in=stale, status__in=REPLACEABLE).update(
                status=N.CANCELLED, cancel_reason="re-planned", claim_token=None, updated_at=now
            )
        # ignore_conflicts: a row that moved on to "sending" between the read and the cancel keeps its key; the
        # unique constraint then refuses the replacement, which is right (that message is going out).
        created = Notification.objects.bulk_create(new, ignore_conflicts=True)
        ReminderPlan.objects.bulk_create(
            plans,
            update_conflicts=True,
            unique_fields=["participant"],
            update_fields=["inputs", "recheck_at", "planned_at", "examined_at"],
        )
    return ReconcileResult(created=len(created), cancelled=cancelled)


@dataclass(frozen=True)
class SweepResult:
    examined: int  # participants whose inputs were compared
    replanned: int  # of those, the ones re-planned (inputs changed, never planned, or their recheck time came)
    created: int
    complete: bool  # False when the time budget ran out first: the next run goes on with the rest


# Participants re-planned together, in one transaction: small enough that a run stops close to its budget and that a
# hook's reconcile waits little for the batch's locks.
_REPLAN_CHUNK = 50


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
    batch instead of a re-plan per participant. Those to re-plan are re-planned in chunks, a few queries per chunk.

    Stops starting work once ``budget_seconds`` (NOTIFICATIONS_RECONCILE_BUDGET_SECONDS, below the task's soft time
    limit) have passed; participants are taken longest-unexamined first, so the next run resumes with those this one
    did not reach and every participant is reached at any size. Each chunk's re-plan is its own transaction, so
    stopping never leaves half a plan."""
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
        changed: list[int] = []
        same: list[int] = []
        for pk in batch:
            plan = plans.get(pk)
            if plan is None or plan.inputs != digests[pk] or (plan.recheck_at is not None and plan.recheck_at <= now):
                changed.append(pk)
            else:
                same.append(pk)
        if same:
            ReminderPlan.objects.filter(pk__in=same).update(examined_at=now)
            examined += len(same)
        for at in range(0, len(changed), min(size, _REPLAN_CHUNK)):
            if clock() >= deadline:
                break
            chunk = changed[at : at + min(size, _REPLAN_CHUNK)]
            created += _replan(chunk, now, {pk: digests[pk] for pk in chunk}).created
            replanned += len(chunk)
            examined += len(chunk)
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
