"""Visits are generated on randomization, stored with local dates, and in a constant number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from participants import services as participant_services
from participants.models import AllocationSlot, Participant
from scheduling.models import ParticipantSchedule, ProtocolVersion, Visit
from tests.conftest import advance
from tests.factories import build_study
from tests.scheduling.test_shipped_protocols import GOLDEN

ENROLLED = dt.datetime(2026, 2, 2, 17, 0, tzinfo=dt.UTC)  # 09:00 in Portland
RANDOMIZED = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)  # 10:00 in Portland


def create(study, site, by) -> Participant:
    with transaction.atomic():
        return participant_services.participant_create(study=study, site=site, by=by, contact={"full_name": "X Y"})


def enrolled(study, site, by, at=ENROLLED) -> Participant:
    with time_machine.travel(at, tick=False):
        return advance(create(study, site, by), "enrolled", by=by)


def randomize(participant, by, at=RANDOMIZED) -> Participant:
    with time_machine.travel(at, tick=False), transaction.atomic():
        participant_services.participant_randomize(participant=participant, by=by)
    return Participant.objects.get(pk=participant.pk)


def stored_table(participant) -> list[tuple[str, str, str, str]]:
    rows = Visit.objects.filter(participant=participant).order_by("id")
    return [(v.code, v.target_date.isoformat(), v.window_start.isoformat(), v.window_end.isoformat()) for v in rows]


def arm_of(participant) -> str:
    return AllocationSlot.objects.get(participant=participant).arm.code


@pytest.fixture
def samati(alice, pdx):
    study, _ = build_study(code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", site_codes=("PDX",))
    return study


def test_mapp_visits_stored_match_the_golden_table(study, pdx, alice):
    participant = randomize(enrolled(study, pdx, alice), alice)

    expected = GOLDEN[("mapp-v1", arm_of(participant))]
    assert stored_table(participant) == expected
    visits = Visit.objects.filter(participant=participant)
    assert {v.status for v in visits} == {"planned"}
    assert {v.protocol_version.code for v in visits} == {"mapp-v1"}
    dose = visits.get(code="DOSE2")
    assert (dose.dosing_number, dose.staff_required, dose.overnight, dose.duration_minutes) == (2, 2, True, 480)
    assert dose.instruments == [{"code": "CSSRS_SCREEN", "respondent": "clinician"}]
    schedule = ParticipantSchedule.objects.get(participant=participant)
    assert (schedule.enrollment_date, schedule.randomization_date) == (dt.date(2026, 2, 2), dt.date(2026, 3, 2))
    # Enrollment planned the arm-neutral visits (readable by blinded roles); randomization the arm's own (not).
    at_enrollment, at_randomization = AuditEvent.objects.filter(
        entity_type="participant_schedule", field="visits"
    ).order_by("id")
    assert at_enrollment.participant_id == at_randomization.participant_id == participant.participant_id
    assert at_enrollment.new_value == ["SCREEN 2026-02-02", "BASELINE 2026-02-16"]
    assert (at_enrollment.action, at_enrollment.sensitivity) == ("create", "")
    assert "DOSE1 2026-03-30" in at_randomization.new_value
    assert (at_randomization.action, at_randomization.sensitivity) == ("update", "allocation")


def test_samati_visits_stored_match_the_golden_table_for_both_arms(samati, pdx, alice):
    seen = {}
    # The allocation list is blocked by 2 or 4, so four participants cover both arms.
    for _ in range(4):
        participant = randomize(enrolled(samati, pdx, alice), alice)
        seen.setdefault(arm_of(participant), participant)
    assert set(seen) == {"immediate", "delayed"}
    for arm, participant in seen.items():
        assert stored_table(participant) == GOLDEN[("samati-v1", arm)], arm


def test_day0_is_the_local_date_not_the_utc_date(study, pdx, alice):
    # 04:30 UTC on 3 March is still 2 March (20:30) in Portland: day 0 is 2 March.
    participant = randomize(enrolled(study, pdx, alice), alice, at=dt.datetime(2026, 3, 3, 4, 30, tzinfo=dt.UTC))

    assert stored_table(participant) == GOLDEN[("mapp-v1", arm_of(participant))]


def test_window_across_the_dst_change_uses_local_dates(study, pdx, alice):
    # Randomized 1 March 2026 at 23:30 Portland time (07:30 UTC on 2 March); DST starts 8 March. Whole-day offsets
    # must not drift by an hour into the neighbouring day.
    participant = randomize(enrolled(study, pdx, alice), alice, at=dt.datetime(2026, 3, 2, 7, 30, tzinfo=dt.UTC))

    prep1 = Visit.objects.get(participant=participant, code="PREP1")
    assert (prep1.window_start, prep1.target_date, prep1.window_end) == (
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 8),
        dt.date(2026, 3, 15),
    )
    assert ParticipantSchedule.objects.get(participant=participant).randomization_date == dt.date(2026, 3, 1)


def test_no_protocol_code_generates_nothing(alice, pdx):
    study, _ = build_study(code="NOP", protocol_code="", site_codes=("PDX",))
    participant = randomize(enrolled(study, pdx, alice), alice)

    assert participant.status == "randomized"
    assert not Visit.objects.filter(participant=participant).exists()
    assert not ParticipantSchedule.objects.filter(participant=participant).exists()


def test_participant_stays_on_the_version_they_started(study, pdx, alice):
    first = randomize(enrolled(study, pdx, alice), alice)
    v1 = ProtocolVersion.objects.get(code="mapp-v1", version=1)
    definition = dict(v1.definition, version=2)
    definition["arms"] = {
        code: dict(arm, visits=[dict(v, offset_days=v["offset_days"] + 1) for v in arm["visits"]])
        for code, arm in v1.definition["arms"].items()
    }
    ProtocolVersion.objects.create(code="mapp-v1", version=2, title="v2", definition=definition)

    second = randomize(enrolled(study, pdx, alice), alice)

    assert {v.protocol_version.version for v in first.visits.all()} == {1}
    assert {v.protocol_version.version for v in second.visits.all()} == {2}
    assert first.visits.get(code="PREP1").target_date == dt.date(2026, 3, 9)
    assert second.visits.get(code="PREP1").target_date == dt.date(2026, 3, 10)


def test_generation_uses_the_same_number_of_queries_for_both_protocols(study, samati, pdx, alice):
    mapp_participant = enrolled(study, pdx, alice)
    samati_participant = enrolled(samati, pdx, alice)
    # Warm the parsed-protocol cache for both, so the comparison measures generation, not first-use parsing.
    ProtocolVersion.objects.get(code="mapp-v1").protocol()
    ProtocolVersion.objects.get(code="samati-v1").protocol()

    with time_machine.travel(RANDOMIZED, tick=False), CaptureQueriesContext(connection) as mapp_queries:
        with transaction.atomic():
            participant_services.participant_randomize(participant=mapp_participant, by=alice)
    mapp_count = Visit.objects.filter(participant=mapp_participant).count()

    with time_machine.travel(RANDOMIZED, tick=False), CaptureQueriesContext(connection) as samati_queries:
        with transaction.atomic():
            participant_services.participant_randomize(participant=samati_participant, by=alice)
    samati_count = Visit.objects.filter(participant=samati_participant).count()

    assert mapp_count == len(GOLDEN[("mapp-v1", "mdma")])
    assert samati_count == len(GOLDEN[("samati-v1", arm_of(samati_participant))])
    assert len(samati_queries) == len(mapp_queries)


def test_generation_query_count_is_fixed(study, pdx, alice, django_assert_num_queries):
    participant = enrolled(study, pdx, alice)
    ProtocolVersion.objects.get(code="mapp-v1").protocol()
    with time_machine.travel(RANDOMIZED, tick=False), CaptureQueriesContext(connection) as baseline:
        with transaction.atomic():
            participant_services.participant_randomize(participant=participant, by=alice)
    other = enrolled(study, pdx, alice)
    with time_machine.travel(RANDOMIZED, tick=False), django_assert_num_queries(len(baseline)):
        with transaction.atomic():
            participant_services.participant_randomize(participant=other, by=alice)
    assert Visit.objects.filter(participant=other).count() == len(GOLDEN[("mapp-v1", "mdma")])
