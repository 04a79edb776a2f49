"""A multi-site study at scale for load tests and benchmarks (``manage.py seed_scale``).

A blinded MAPP-style study (protocol mapp-v1) at S sites with N participants in realistic states, deterministic for a
given seed. The study, its sites, staff, arms, criteria, consent version and allocation list are made through the
services. Each participant's path is planned first (``scale_plans``): created on a day in the past year, screened,
and (for most) consented, enrolled a day later and randomized two weeks after that, at the times those steps
happened. Each step through the services costs several round trips per row (about 220 ms for a randomized
participant; bench/bench_seed_scale.py measures it as its baseline), so the common steps (create with contact
details, eligibility, consent, enroll with its screening and baseline plan and questionnaires, randomize with the
arm's plan) are written here in bulk: the same rows and the same audit events, built by the same helpers the services
use (``audit_events_build``, the protocol engine through ``_plan_from``, ``window_bounds``), at the times the services
would have run, appended in time order and chained after commit as the services' rows are. ``tests/dashboard/test_scale.py`` proves it: the same plan run through the services
writes the same rows and events.

Randomization takes the next free slot of the participant's stratum (their site) of the study's allocation list, in
the order participants were randomized, as ``participant_randomize`` does, so arms are balanced by the list's blocks.

The less common steps then run through the services themselves, now: for one randomized participant in
``VISITS_EVERY`` the screening and baseline visits are completed (re-planning what follows) and the C-SSRS screen is
entered (one in ``ALERT_EVERY`` of those at high risk, raising a safety alert); one in ``WITHDRAW_EVERY`` withdraws;
and the reminder planner plans the outbox of one enrolled participant in ``REMIND_EVERY`` (the periodic safety net
plans the rest).
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from assessments.models import Administration
from assessments.services import response_create_staff
from assessments.services.administrations import _label, _names_an_arm, _new_administration
from assessments.windows import window_bounds
from audit.models import AuditEvent
from audit.services import audit_append_bulk, audit_events_build
from notifications.services import notifications_reconcile
from participants import scale_rows, services
from participants.models import (
    AllocationSlot,
    ConsentRecord,
    ContactDetails,
    EligibilityAnswer,
    Participant,
    Site,
    Study,
)
from scheduling import selectors as scheduling_selectors
from scheduling.models import ParticipantSchedule, ProtocolVersion, Visit
from scheduling.services import protocol_version_ensure, visit_complete
from scheduling.services.generation import _before_randomization, _plan_from, _planned_rows
from trialsite.roles import Role

S = Participant.Status
PROTOCOL = "mapp-v1"
ARMS = [("mdma", "MDMA-assisted therapy"), ("placebo", "Placebo with therapy")]
CRITERIA = [
    ("INC_AGE", "inclusion", "Aged 18 or over"),
    ("INC_PTSD", "inclusion", "Severe PTSD (CAPS-5 total severity >= 35)"),
    ("EXC_CARDIO", "exclusion", "Uncontrolled hypertension or other cardiovascular contraindication"),
    ("EXC_PREG", "exclusion", "Pregnant or breastfeeding"),
]
CONSENT_VERSION = "1.0"
ZONES = ["America/Los_Angeles", "America/New_York", "America/Chicago", "America/Denver", "Europe/London"]
# Final states and their shares (out of 100). Withdrawals come later, from the randomized.
STATES = [
    (S.SCREENING, 8),
    (S.SCREEN_FAILED, 5),
    (S.ELIGIBLE, 3),
    (S.CONSENTED, 4),
    (S.ENROLLED, 10),
    (S.RANDOMIZED, 70),
]
ORDER: list[str] = [S.SCREENING, S.ELIGIBLE, S.CONSENTED, S.ENROLLED, S.RANDOMIZED]
# When each step happens after the participant's first contact.
ELIGIBILITY_AFTER = dt.timedelta(minutes=20)
SIGNED_AFTER = dt.timedelta(minutes=35)
CONSENT_AFTER = dt.timedelta(minutes=40)
ENROLL_AFTER = dt.timedelta(days=1)
RANDOMIZE_AFTER = dt.timedelta(days=15)
VISITS_EVERY = 20
ALERT_EVERY = 10
WITHDRAW_EVERY = 40
REMIND_EVERY = 25
BATCH = 2000

Progress = Callable[[str, int, int], None]


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


@dataclass
class Plan:
    """One participant's path: where, how far, and when each step happens."""

    site: Site
    final: str
    started: dt.datetime
    contact: dict[str, str]
    visits: bool = False  # screening and baseline completed, C-SSRS entered (through the services)
    high_risk: bool = False
    withdraw: bool = False
    participant: Participant | None = None

    def reaches(self, state: str) -> bool:
        if self.final == S.SCREEN_FAILED:
            return state == S.SCREENING
        return ORDER.index(self.final) >= ORDER.index(state)

    @property
    def eligible(self) -> bool:
        return self.final != S.SCREEN_FAILED

    @property
    def answers(self) -> dict[str, bool]:
        return {"INC_AGE": True, "INC_PTSD": self.eligible, "EXC_CARDIO": False, "EXC_PREG": False}

    def at(self, step: dt.timedelta) -> dt.datetime:
        return self.started + step


@dataclass
class Scale:
    study: Study
    sites: list[Site]
    coordinator: Any
    admin: Any
    plans: list[Plan] = field(default_factory=list)


def scale_study(*, code: str, site_count: int, participants: int, seed: int, now: dt.datetime) -> Scale:
    """The study and what it needs before a participant is seen, through the services: administrator and coordinator
    accounts, S sites, arms, criteria, the consent version and the allocation list (stratified by site, long enough
    for every participant)."""
    users = get_user_model().objects
    admin, _ = users.get_or_create(username="scale-admin", defaults={"is_staff": True, "is_superuser": True})
    coordinator, _ = users.get_or_create(username="scale-coordinator", defaults={"email": "coord@scale.invalid"})
    study = services.study_create(
        code=code,
        title=f"MDMA-assisted therapy for PTSD (scale data, {participants} participants)",
        protocol_code=PROTOCOL,
        target_enrollment=participants,
        blinded=True,
        start_date=(now - dt.timedelta(days=800)).date(),
        by=admin,
    )
    sites = []
    for k in range(site_count):
        site_code = f"{code[:5]}S{k + 1:02d}"
        sites.append(
            services.site_create(
                code=site_code,
                name=f"Site {k + 1}",
                time_zone=ZONES[k % len(ZONES)],
                contact_email=f"{site_code.lower()}@scale.invalid",
                studies=[study],
                by=admin,
            )
        )
        services.membership_grant(user=coordinator, site=sites[-1], role=Role.COORDINATOR, by=admin)
    for arm_code, label in ARMS:
        services.arm_create(study=study, code=arm_code, label=label, by=admin)
    for order, (criterion, kind, text) in enumerate(CRITERIA):
        services.criterion_create(study=study, code=criterion, kind=kind, text=text, order=order, by=admin)
    services.consent_document_publish(study=study, version=CONSENT_VERSION, title="Main study consent", by=admin)
    per_stratum = -(-participants // max(site_count, 1)) + 12
    per_stratum += -per_stratum % 12  # whole blocks of 4 and 6
    services.allocation_list_generate(
        study=study, strata=[s.code for s in sites], per_stratum=per_stratum, seed=f"scale-{seed}", by=admin
    )
    return Scale(study=study, sites=sites, coordinator=coordinator, admin=admin)


def scale_plans(scale: Scale, *, participants: int, seed: int, now: dt.datetime) -> list[Plan]:
    """Every participant's path, deterministic for ``seed``, in the order they were first seen."""
    rng = random.Random(seed)  # noqa: S311 (test data, reproducible on purpose)
    states = [state for state, share in STATES for _ in range(share)]
    plans = []
    for i in range(participants):
        final = rng.choice(states)
        # How long ago the participant was first seen: long enough for the steps their state has taken, short
        # enough that the next step has not come yet.
        if final == S.RANDOMIZED:
            days = rng.randint(17, 330)
        elif final == S.ENROLLED:
            days = rng.randint(2, 14)
        else:
            days = rng.randint(0, 30)
        started = now - dt.timedelta(days=days, minutes=rng.randint(60, 600), seconds=rng.randint(0, 59))
        plan = Plan(
            site=scale.sites[i % len(scale.sites)],
            final=final,
            started=started.replace(microsecond=rng.randint(0, 999_999)),
            contact={
                "full_name": f"Scale Participant {i + 1}",
                "email": f"p{i + 1}@scale.invalid",
                "preferred_channel": "email",
                "language": "es" if rng.random() < 0.15 else "en",
            },
        )
        if final == S.RANDOMIZED:
            plan.visits = rng.randrange(VISITS_EVERY) == 0
            plan.high_risk = plan.visits and rng.randrange(ALERT_EVERY) == 0
            plan.withdraw = rng.randrange(WITHDRAW_EVERY) == 0
        plans.append(plan)
    plans.sort(key=lambda p: p.started)
    scale.plans = plans
    return plans


class _Events:
    """Audit rows of many service calls, kept with the time each call would have run, to be chained in that order."""

    def __init__(self) -> None:
        self.rows: list[tuple[dt.datetime, int, AuditEvent]] = []

    def add(self, plan: Plan, when: dt.datetime, *, by: Any, action: str, entity: tuple[str, Any], **kw: Any) -> None:
        participant = plan.participant
        assert participant is not None
        for event in audit_events_build(
            by=by,
            action=action,
            entity_type=entity[0],
            entity_id=entity[1],
            participant_id=participant.participant_id,
            site_code=plan.site.code,
            occurred_at=when,
            **kw,
        ):
            self.rows.append((when, len(self.rows), event))

    def write(self) -> int:
        self.rows.sort(key=lambda row: (row[0], row[1]))
        return audit_append_bulk([event for _when, _n, event in self.rows])


def _local(when: dt.datetime, site: Site) -> dt.date:
    return when.astimezone(zoneinfo.ZoneInfo(site.time_zone)).date()


def _bulk(model: Any, objs: list[Any], progress: Progress, phase: str) -> None:
    for start in range(0, len(objs), BATCH):
        model.objects.bulk_create(objs[start : start + BATCH])
        progress(phase, min(start + BATCH, len(objs)), len(objs))


@transaction.atomic
def scale_bulk(scale: Scale, *, progress: Progress = _no_progress) -> None:
    """Write what create, eligibility, consent, enroll and randomize would write for every plan, as of the time each
    step happened: the rows in their final state, and each service call's audit events."""
    study, by = scale.study, scale.coordinator
    plans = scale.plans
    events = _Events()
    version = protocol_version_ensure(code=PROTOCOL, by=None)
    assert version is not None
    protocol = version.protocol()
    criteria = scale_rows.criteria_of(study)
    document = scale_rows.consent_document(study, CONSENT_VERSION)

    # participant_create: numbered per site in the order first seen.
    counters = {}
    for site in scale.sites:
        counters[site.pk] = scale_rows.counter_of(study, site)
    for plan in plans:
        counter = counters[plan.site.pk]
        counter.last_number += 1
        number = counter.last_number
        enrolled_at = plan.at(ENROLL_AFTER) if plan.reaches(S.ENROLLED) else None
        randomized_at = plan.at(RANDOMIZE_AFTER) if plan.reaches(S.RANDOMIZED) else None
        plan.participant = Participant(
            participant_id=f"{study.code}-{plan.site.code}-{number:03d}",
            study=study,
            site=plan.site,
            number=number,
            status=plan.final,
            stratum=plan.site.code if randomized_at else "",
            eligibility_verdict=None if plan.final == S.SCREENING else plan.eligible,
            enrolled_at=enrolled_at,
            randomized_at=randomized_at,
        )
    scale_rows.counters_save(counters.values())
    _bulk(Participant, [p.participant for p in plans if p.participant], progress, "participants")
    contacts = []
    for plan in plans:
        p = plan.participant
        assert p is not None
        events.add(
            plan,
            plan.started,
            by=by,
            action=AuditEvent.Action.CREATE,
            entity=("participant", p.pk),
            changes=[("participant_id", None, p.participant_id), ("status", None, S.SCREENING)],
        )
        details = ContactDetails(participant=p, **plan.contact)
        details.full_clean(exclude=["participant"])
        contacts.append(details)
    _bulk(ContactDetails, contacts, progress, "contact details")
    for plan, details in zip(plans, contacts, strict=True):
        events.add(
            plan,
            plan.started,
            by=by,
            action=AuditEvent.Action.CREATE,
            entity=("contact_details", details.pk),
            changes=[(k, None, v) for k, v in plan.contact.items() if v not in ("", None)],
            sensitivity=AuditEvent.Sensitivity.CONTACT,
        )

    # eligibility_record: one answer row and event each, the verdict, the status.
    screened = [plan for plan in plans if plan.final != S.SCREENING]
    answers = []
    for plan in screened:
        when = plan.at(ELIGIBILITY_AFTER)
        answers.append(
            [
                EligibilityAnswer(
                    participant=plan.participant,
                    criterion=criteria[code],
                    answer=value,
                    answered_at=when,
                    answered_by=by,
                )
                for code, value in plan.answers.items()
            ]
        )
    _bulk(EligibilityAnswer, [a for group in answers for a in group], progress, "eligibility")
    for plan, group in zip(screened, answers, strict=True):
        p = plan.participant
        assert p is not None
        when = plan.at(ELIGIBILITY_AFTER)
        for answer in group:
            events.add(
                plan,
                when,
                by=by,
                action=AuditEvent.Action.CREATE,
                entity=("eligibility_answer", answer.pk),
                changes=[(answer.criterion.code, None, answer.answer)],
            )
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity=("participant", p.pk),
            changes=[("eligibility_verdict", None, plan.eligible)],
        )
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.TRANSITION,
            entity=("participant", p.pk),
            changes=[("status", S.SCREENING, S.ELIGIBLE if plan.eligible else S.SCREEN_FAILED)],
        )

    # consent_record.
    consenting = [plan for plan in plans if plan.reaches(S.CONSENTED)]
    records = [
        ConsentRecord(participant=plan.participant, document=document, signed_at=plan.at(SIGNED_AFTER), obtained_by=by)
        for plan in consenting
    ]
    _bulk(ConsentRecord, records, progress, "consent")
    for plan, record in zip(consenting, records, strict=True):
        p = plan.participant
        assert p is not None
        when = plan.at(CONSENT_AFTER)
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.CREATE,
            entity=("consent_record", record.pk),
            changes=[
                ("consent_version", None, CONSENT_VERSION),
                ("signed_at", None, record.signed_at),
                ("obtained_by", None, by.get_username()),
            ],
        )
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.TRANSITION,
            entity=("participant", p.pk),
            changes=[("status", S.ELIGIBLE, S.CONSENTED)],
        )

    # participant_enroll and its hook: the schedule, the common visits, their questionnaires.
    enrolled = [plan for plan in plans if plan.reaches(S.ENROLLED)]
    schedules = {
        id(plan): ParticipantSchedule(
            participant=plan.participant,
            protocol_version=version,
            enrollment_date=_local(plan.at(ENROLL_AFTER), plan.site),
            randomization_date=_local(plan.at(RANDOMIZE_AFTER), plan.site) if plan.reaches(S.RANDOMIZED) else None,
        )
        for plan in enrolled
    }
    _bulk(ParticipantSchedule, list(schedules.values()), progress, "schedules")
    common = _before_randomization(protocol)
    first_visits = {}
    for plan in enrolled:
        # Planned as at enrollment: no randomization date yet.
        at_enrollment = ParticipantSchedule(enrollment_date=schedules[id(plan)].enrollment_date)
        first_visits[id(plan)] = _visits(plan, common, _plan_from(common, at_enrollment, {}, _zone(plan)), version)
    randomized = [plan for plan in enrolled if plan.reaches(S.RANDOMIZED)]
    slots = _allocate(scale, randomized)
    arm_visits = {}
    for plan in randomized:
        arm = protocol.arm(slots[id(plan)].arm.code)
        rows = {v.code: v for v in first_visits[id(plan)]}
        arm_visits[id(plan)] = _visits(
            plan, arm, _plan_from(arm, schedules[id(plan)], rows, _zone(plan)), version, skip=set(rows)
        )
    all_visits = [v for group in (*first_visits.values(), *arm_visits.values()) for v in group]
    _bulk(Visit, all_visits, progress, "visits")
    adms = {}
    for key, visits in (
        *((("enroll", k), v) for k, v in first_visits.items()),
        *((("randomize", k), v) for k, v in arm_visits.items()),
    ):
        plan_status = S.ENROLLED if key[0] == "enroll" else S.RANDOMIZED
        adms[key] = _administrations(visits, plan_status)
    _bulk(Administration, [a for group in adms.values() for a in group], progress, "questionnaires")

    for plan in enrolled:
        p = plan.participant
        assert p is not None
        when = plan.at(ENROLL_AFTER)
        schedule = schedules[id(plan)]
        visits = first_visits[id(plan)]
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity=("participant", p.pk),
            changes=[("enrolled_at", None, when)],
        )
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.TRANSITION,
            entity=("participant", p.pk),
            changes=[("status", S.CONSENTED, S.ENROLLED)],
        )
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.CREATE,
            entity=("participant_schedule", schedule.pk),
            sensitivity=AuditEvent.Sensitivity.NONE,
            changes=[("protocol_version", None, str(version)), ("visits", None, _visit_labels(visits))],
        )
        _administration_events(events, plan, when, by, visits, adms[("enroll", id(plan))])

    for plan in randomized:
        p = plan.participant
        assert p is not None
        when = plan.at(RANDOMIZE_AFTER)
        slot = slots[id(plan)]
        schedule = schedules[id(plan)]
        visits = arm_visits[id(plan)]
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity=("participant", p.pk),
            changes=[("randomized_at", None, when), ("stratum", "", plan.site.code)],
        )
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity=("allocation_slot", slot.pk),
            changes=[("arm", None, slot.arm.code), ("slot", None, f"{slot.stratum}#{slot.sequence}")],
            sensitivity=AuditEvent.Sensitivity.ALLOCATION,
        )
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.TRANSITION,
            entity=("participant", p.pk),
            changes=[("status", S.ENROLLED, S.RANDOMIZED)],
        )
        sensitivity = AuditEvent.Sensitivity.ALLOCATION if len(protocol.arms) > 1 else AuditEvent.Sensitivity.NONE
        events.add(
            plan,
            when,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity=("participant_schedule", schedule.pk),
            sensitivity=sensitivity,
            changes=[
                ("randomization_date", None, _local(when, plan.site).isoformat()),
                ("visits", None, _visit_labels(visits)),
            ],
        )
        _administration_events(events, plan, when, by, visits, adms[("randomize", id(plan))])

    progress("audit events", 0, len(events.rows))
    events.write()
    progress("audit events", len(events.rows), len(events.rows))
    with connection.cursor() as cursor:
        for model in (
            Participant,
            ContactDetails,
            EligibilityAnswer,
            ConsentRecord,
            AllocationSlot,
            Visit,
            ParticipantSchedule,
            Administration,
            AuditEvent,
        ):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def _zone(plan: Plan) -> zoneinfo.ZoneInfo:
    # The participant's zone is the site's: contact details carry none here.
    return zoneinfo.ZoneInfo(plan.site.time_zone)


def _visits(
    plan: Plan, arm: Any, dates: dict[str, Any], version: ProtocolVersion, skip: Iterable[str] = ()
) -> list[Visit]:
    """The rows ``schedule_generate`` creates for ``arm`` with planned ``dates``."""
    assert plan.participant is not None
    return _planned_rows(plan.participant, version, arm, dates, skip=set(skip))


def _visit_labels(visits: list[Visit]) -> list[str]:
    assert all(v.target_date is not None for v in visits)
    return [f"{v.code} {v.target_date.isoformat()}" for v in visits if v.target_date]


def _administrations(visits: list[Visit], participant_status: str) -> list[Administration]:
    """What ``administrations_follow_visits`` creates for new visits, the participant being in ``participant_status``
    at the time."""
    created = []
    for visit in visits:
        p = visit.participant
        opens, closes = window_bounds(visit, p.site.time_zone)
        as_of = _AsOf(p, participant_status)
        for order, due in enumerate(visit.instruments or []):
            created.append(_new_administration(p, visit, order, due, opens, closes, as_of=as_of))
    return created


class _AsOf:
    """A participant as a hook saw them at the time (their status then, not their final one)."""

    def __init__(self, participant: Participant, status: str) -> None:
        self.pk, self.status = participant.pk, status


def _administration_events(
    events: _Events, plan: Plan, when: dt.datetime, by: Any, visits: list[Visit], adms: list[Administration]
) -> None:
    p = plan.participant
    assert p is not None
    if not adms:
        return
    events.add(
        plan,
        when,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity=("administrations", p.pk),
        changes=[("administrations", None, [_label(a, visits) for a in adms])],
        sensitivity=AuditEvent.Sensitivity.ALLOCATION if _names_an_arm(visits) else "",
    )


def _allocate(scale: Scale, randomized: list[Plan]) -> dict[int, AllocationSlot]:
    """Each randomized participant takes the next free slot of their stratum (their site) of the active list, in the
    order they were randomized: ``participant_randomize``'s rule, so the list's blocks balance the arms."""
    free: dict[str, list[AllocationSlot]] = {}
    for slot in scale_rows.free_slots(scale.study):
        free.setdefault(slot.stratum, []).append(slot)
    taken: dict[int, AllocationSlot] = {}
    position = {stratum: 0 for stratum in free}
    for plan in sorted(randomized, key=lambda p: p.at(RANDOMIZE_AFTER)):
        stratum = plan.site.code
        slot = free[stratum][position[stratum]]
        position[stratum] += 1
        slot.participant, slot.allocated_at = plan.participant, plan.at(RANDOMIZE_AFTER)
        taken[id(plan)] = slot
    scale_rows.slots_save(taken.values(), batch_size=BATCH)
    return taken


CSSRS_NONE = {"CSSRS_1": 0, "CSSRS_2": 0, "CSSRS_6": 0}
CSSRS_HIGH = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}


def scale_services(scale: Scale, *, now: dt.datetime, progress: Progress = _no_progress) -> None:
    """The less common steps, through the services, now: completed screening and baseline visits with the C-SSRS
    screen entered (a few at high risk: safety alerts), withdrawals, and the reminder outbox of a share of the enrolled."""
    by = scale.coordinator
    visiting = [plan for plan in scale.plans if plan.visits]
    for n, plan in enumerate(visiting, 1):
        with transaction.atomic():
            p = plan.participant
            assert p is not None
            for code in ("SCREEN", "BASELINE"):
                visit = scheduling_selectors.participant_visits(p.pk).get(code=code)
                assert visit.target_date is not None
                occurred = dt.datetime.combine(visit.target_date, dt.time(10), tzinfo=_zone(plan))
                if occurred > now:
                    break
                visit_complete(visit=visit, occurred_at=occurred, by=by)
                if code == "SCREEN":
                    response_create_staff(
                        participant=p,
                        visit=visit,
                        instrument_code="CSSRS_SCREEN",
                        answers=CSSRS_HIGH if plan.high_risk else CSSRS_NONE,
                        by=by,
                    )
        progress("visits and responses", n, len(visiting))
    leaving = [plan for plan in scale.plans if plan.withdraw]
    for n, plan in enumerate(leaving, 1):
        assert plan.participant is not None
        p = scale_rows.participant_by_pk(plan.participant.pk)
        services.participant_withdraw(
            participant=p,
            level=Participant.WithdrawalLevel.STOP_FOLLOW_UP,
            reason="Moved away from the study area",
            date=_local(now, plan.site),
            by=by,
        )
        progress("withdrawals", n, len(leaving))
    reminded = [plan for plan in scale.plans if plan.reaches(S.ENROLLED)][::REMIND_EVERY]
    for n, plan in enumerate(reminded, 1):
        assert plan.participant is not None
        notifications_reconcile(participant_id=plan.participant.pk, now=now)
        progress("reminders", n, len(reminded))


def seed_scale(
    *, participants: int, sites: int, seed: int = 1, code: str = "SCALE", progress: Progress = _no_progress
) -> Scale:
    """The whole study: set-up and the common steps in bulk, then the rest through the services."""
    now = timezone.now()
    with transaction.atomic():
        scale = scale_study(code=code, site_count=sites, participants=participants, seed=seed, now=now)
        scale_plans(scale, participants=participants, seed=seed, now=now)
        scale_bulk(scale, progress=progress)
    scale_services(scale, now=now, progress=progress)
    return scale
