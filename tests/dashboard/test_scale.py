"""manage.py seed_scale: its bulk path writes what the services write, its chain verifies, its states and arms are
realistic, and it refuses to run on a deployment."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import models, transaction
from django.test import override_settings

from assessments.models import Administration, Response
from audit.models import AuditEvent
from audit.verify import verify_chain
from dashboard import scale as seeding
from notifications.models import Notification
from participants.models import (
    AllocationList,
    AllocationSlot,
    Arm,
    ConsentDocument,
    ConsentRecord,
    ContactDetails,
    EligibilityAnswer,
    EligibilityCriterion,
    Participant,
    ParticipantCounter,
    Site,
    Study,
)
from scheduling.models import ParticipantSchedule, ProtocolVersion, Visit
from tests.support.scale_services import through_services

pytestmark = pytest.mark.django_db
S = Participant.Status
NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
# The six participants of the comparison: one of each path (two randomized, one per site at least).
FINALS = [
    (S.SCREENING, 3),
    (S.SCREEN_FAILED, 5),
    (S.CONSENTED, 6),
    (S.ENROLLED, 9),
    (S.RANDOMIZED, 40),
    (S.RANDOMIZED, 120),
]
TABLES: list[type[models.Model]] = [
    Participant,
    ParticipantCounter,
    ContactDetails,
    EligibilityAnswer,
    ConsentRecord,
    AllocationSlot,
    ParticipantSchedule,
    Visit,
    Administration,
]
SKIP = {"id", "created_at", "updated_at"}


def _names() -> dict[type[models.Model], dict[Any, str]]:
    """A name for each row that both paths share (ids differ between them): what foreign keys and audit entity ids
    are compared by."""
    pid = dict(Participant.objects.values_list("pk", "participant_id"))
    names: dict[type[models.Model], dict[Any, str]] = {
        Participant: pid,
        get_user_model(): dict(get_user_model().objects.values_list("pk", "username")),
        Study: dict(Study.objects.values_list("pk", "code")),
        Site: dict(Site.objects.values_list("pk", "code")),
        Arm: dict(Arm.objects.values_list("pk", "code")),
        EligibilityCriterion: dict(EligibilityCriterion.objects.values_list("pk", "code")),
        ConsentDocument: dict(ConsentDocument.objects.values_list("pk", "version")),
        AllocationList: {pk: "list" for pk in AllocationList.objects.values_list("pk", flat=True)},
        ProtocolVersion: {v.pk: str(v) for v in ProtocolVersion.objects.all()},
        ContactDetails: {pk: pid[p] for pk, p in ContactDetails.objects.values_list("pk", "participant_id")},
        ConsentRecord: {pk: pid[p] for pk, p in ConsentRecord.objects.values_list("pk", "participant_id")},
        ParticipantSchedule: {pk: pid[p] for pk, p in ParticipantSchedule.objects.values_list("pk", "participant_id")},
        AllocationSlot: {
            pk: f"{s}#{n}" for pk, s, n in AllocationSlot.objects.values_list("pk", "stratum", "sequence")
        },
        EligibilityAnswer: {
            pk: f"{pid[p]}/{c}"
            for pk, p, c in EligibilityAnswer.objects.values_list("pk", "participant_id", "criterion__code")
        },
    }
    names[Visit] = {pk: f"{pid[p]}/{c}" for pk, p, c in Visit.objects.values_list("pk", "participant_id", "code")}
    return names


ENTITY = {
    "participant": Participant,
    "contact_details": ContactDetails,
    "eligibility_answer": EligibilityAnswer,
    "consent_record": ConsentRecord,
    "allocation_slot": AllocationSlot,
    "participant_schedule": ParticipantSchedule,
    "administrations": Participant,
}


def _snapshot(after_event: int) -> dict[str, Any]:
    """Every row of the tables the participant steps write, minus ids and timestamps, foreign keys by name; and the
    audit events after ``after_event`` in chain order, entity ids by name."""
    names = _names()
    tables = {}
    for model in TABLES:
        # Times set by the clock at INSERT (auto_now, auto_now_add) are the seeding's, not the step's.
        fields = [
            f
            for f in model._meta.concrete_fields
            if f.name not in SKIP and not getattr(f, "auto_now", False) and not getattr(f, "auto_now_add", False)
        ]
        rows = []
        for obj in model.objects.all():
            row = {}
            for f in fields:
                value = getattr(obj, f.attname)
                if f.is_relation and value is not None:
                    value = names[f.related_model][value]  # type: ignore[index]
                row[f.name] = value
            rows.append(json.dumps(row, sort_keys=True, default=str))
        tables[model._meta.label] = sorted(rows)
    events = [
        (
            e.occurred_at,
            e.actor_username,
            e.action,
            e.entity_type,
            names[ENTITY[e.entity_type]][int(e.entity_id)],
            e.participant_id,
            e.site_code,
            e.field,
            json.dumps(e.old_value),
            json.dumps(e.new_value),
            e.reason,
            e.sensitivity,
        )
        for e in AuditEvent.objects.filter(pk__gt=after_event).order_by("id")
    ]
    return {"tables": tables, "events": events}


def _study() -> tuple[seeding.Scale, int]:
    scale = seeding.scale_study(code="SC", site_count=2, participants=len(FINALS), seed=7, now=NOW)
    plans = seeding.scale_plans(scale, participants=len(FINALS), seed=7, now=NOW)
    for plan, (final, days) in zip(plans, FINALS, strict=True):
        plan.final, plan.started = (
            final,
            plan.started.replace(year=NOW.year, month=NOW.month, day=NOW.day) - dt.timedelta(days=days),
        )
    plans.sort(key=lambda p: p.started)
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    return scale, last


class _Rollback(Exception):
    pass


def test_bulk_path_writes_what_the_services_write() -> None:
    with time_machine.travel(NOW, tick=False):
        try:
            with transaction.atomic():
                scale, last = _study()
                seeding.scale_bulk(scale)
                bulk = _snapshot(last)
                assert verify_chain().ok
                raise _Rollback
        except _Rollback:
            pass
        assert not Participant.objects.exists()
        scale, last = _study()
    through_services(scale)
    served = _snapshot(last)

    assert Counter(p.final for p in scale.plans) == Counter(f for f, _ in FINALS)
    for table, rows in served["tables"].items():
        assert rows, f"{table}: the services wrote nothing, the comparison would be empty"
        assert bulk["tables"][table] == rows, table
    assert len(served["events"]) > 60
    assert bulk["events"] == served["events"]
    kinds = {(e[2], e[3]) for e in served["events"]}
    assert ("update", "allocation_slot") in kinds and ("create", "administrations") in kinds
    assert verify_chain().ok


@override_settings(DEBUG=True)
def test_seed_scale_builds_a_realistic_study_that_verifies() -> None:
    call_command("seed_scale", participants=60, sites=3, seed=3, study="SCT", verify=True)
    study = Study.objects.get(code="SCT")
    participants = Participant.objects.filter(study=study)
    assert participants.count() == 60
    states = Counter(participants.values_list("status", flat=True))
    assert states[S.RANDOMIZED] > 30 and states[S.SCREENING] and states[S.ENROLLED]
    # Randomized through the list: each site's arms within a block's imbalance of each other.
    for site in study.sites.all():
        arms = Counter(AllocationSlot.objects.filter(participant__site=site).values_list("arm__code", flat=True))
        assert abs(arms["mdma"] - arms["placebo"]) <= 3, arms
        assert list(
            AllocationSlot.objects.filter(participant__site=site)
            .order_by("sequence")
            .values_list("sequence", flat=True)
        ) == list(range(1, sum(arms.values()) + 1))
    assert Visit.objects.filter(participant__study=study, status=Visit.Status.COMPLETED).exists()
    assert Visit.objects.filter(participant__study=study, status=Visit.Status.PLANNED).exists()
    assert Response.objects.filter(participant__study=study).exists()
    assert Notification.objects.filter(participant__study=study).exists()
    assert Administration.objects.filter(participant__study=study).count() > 300
    assert verify_chain().ok
    # The same seed gives the same study.
    first = list(participants.order_by("participant_id").values_list("participant_id", "status", "enrolled_at"))
    call_command("seed_scale", participants=60, sites=3, seed=3, study="SCU")
    again = Participant.objects.filter(study__code="SCU").order_by("participant_id")
    assert [s for _, s, _ in first] == list(again.values_list("status", flat=True))


@override_settings(DEBUG=False)
def test_seed_scale_refuses_without_debug() -> None:
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_scale", participants=5, sites=1)
    assert not Study.objects.exists()
