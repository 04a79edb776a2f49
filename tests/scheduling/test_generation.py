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
from scheduling.models import ParticipantSchedule, ProtocolDeviation, ProtocolVersion, Visit
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
    """The stored plan in the protocol's order (the ids follow the blinded schedule's timepoints first, see
    ``scheduling.services.generation._allocate_ids``)."""
    schedule = ParticipantSchedule.objects.select_related("protocol_version").get(participant=participant)
    slot = AllocationSlot.objects.filter(participant=participant).select_related("arm").first()
    protocol = schedule.protocol_version.protocol()
    arm = protocol.arm(slot.arm.code) if slot is not None else next(iter(protocol.arms.values()))
    order = {code: n for n, code in enumerate(arm.codes)}
    rows = sorted(Visit.objects.filter(participant=participant), key=lambda v: (order.get(v.code, len(order)), v.pk))
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


# --- version 2: visits from enrollment, randomization after baseline ------------------------------------------------


@pytest.fixture
def mapp2(alice, pdx):
    study, _ = build_study(code="MP2", protocol_code="mapp-v2", site_codes=("PDX",))
    return study


@pytest.fixture
def samati2(alice, pdx):
    study, _ = build_study(code="SM2", arms=("immediate", "delayed"), protocol_code="samati-v2", site_codes=("PDX",))
    return study


def complete(participant, code, day, by):
    """Complete ``code`` at local noon of ``day`` (Portland), through the service."""
    from scheduling.services import visit_complete

    at = dt.datetime.combine(day, dt.time(12), tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    with time_machine.travel(at, tick=False), transaction.atomic():
        visit_complete(visit=Visit.objects.get(participant=participant, code=code), occurred_at=at, by=by)


def test_enrollment_creates_the_arm_neutral_visits_before_randomization(mapp2, pdx, alice):
    participant = enrolled(mapp2, pdx, alice)

    assert participant.status == "enrolled"
    assert stored_table(participant) == [
        ("SCREEN", "2026-02-02", "2026-02-02", "2026-03-02"),
        ("TAPER_END", "2026-03-02", "2026-02-02", "2026-03-30"),
        ("BASELINE", "2026-03-09", "2026-03-02", "2026-03-16"),
    ]
    schedule = ParticipantSchedule.objects.get(participant=participant)
    assert (schedule.protocol_version.code, schedule.enrollment_date, schedule.randomization_date) == (
        "mapp-v2",
        dt.date(2026, 2, 2),
        None,
    )
    # Nothing about an arm exists yet, so the history of this plan is readable by blinded roles.
    event = AuditEvent.objects.get(entity_type="participant_schedule", field="visits")
    assert (event.action, event.sensitivity) == ("create", "")
    assert event.new_value == ["SCREEN 2026-02-02", "TAPER_END 2026-03-02", "BASELINE 2026-03-09"]


def test_randomization_before_baseline_is_refused_and_changes_nothing(mapp2, pdx, alice, api):
    participant = enrolled(mapp2, pdx, alice)
    complete(participant, "SCREEN", dt.date(2026, 2, 2), alice)

    with time_machine.travel(RANDOMIZED, tick=False):
        response = api(alice).post(f"/api/v1/participants/{participant.participant_id}/randomize/", {}, format="json")

    assert response.status_code == 400
    message = "protocol mapp-v2 randomizes only after the BASELINE visit is completed"
    assert (response.json()["detail"], response.json()["randomization"]) == (message, [message])
    participant.refresh_from_db()
    assert (participant.status, participant.randomized_at) == ("enrolled", None)
    assert not AllocationSlot.objects.filter(participant=participant).exists()
    assert set(Visit.objects.filter(participant=participant).values_list("code", flat=True)) == {
        "SCREEN",
        "TAPER_END",
        "BASELINE",
    }
    assert ParticipantSchedule.objects.get(participant=participant).randomization_date is None


def test_after_taper_and_baseline_the_arm_visits_follow_the_actual_dates(mapp2, pdx, alice):
    participant = enrolled(mapp2, pdx, alice)
    complete(participant, "SCREEN", dt.date(2026, 2, 3), alice)
    complete(participant, "TAPER_END", dt.date(2026, 3, 24), alice)  # a 7-week taper
    complete(participant, "BASELINE", dt.date(2026, 3, 31), alice)
    participant = randomize(participant, alice, at=dt.datetime(2026, 4, 1, 18, 0, tzinfo=dt.UTC))

    rows = {v.code: v for v in Visit.objects.filter(participant=participant)}
    assert (rows["PREP1"].target_date, rows["PREP1"].window_start) == (dt.date(2026, 4, 8), dt.date(2026, 4, 5))
    assert rows["PREP1"].window_start > rows["BASELINE"].occurred_at.date()
    assert rows["ENDPOINT"].target_date == rows["DOSE3"].target_date + dt.timedelta(days=56)
    assert list(ProtocolDeviation.objects.filter(participant=participant).values_list("description", flat=True)) == []
    # The arm's visits came with randomization, in an allocation-sensitive event.
    event = AuditEvent.objects.filter(entity_type="participant_schedule", field="visits").latest("id")
    assert (event.action, event.sensitivity) == ("update", "allocation")
    assert "PREP1 2026-04-08" in event.new_value and not any(v.startswith("BASELINE") for v in event.new_value)
    # A late last dose moves the endpoint with it (the endpoint hangs on DOSE3's actual date).
    complete(participant, "DOSE3", rows["DOSE3"].window_end, alice)
    endpoint = Visit.objects.get(participant=participant, code="ENDPOINT")
    assert endpoint.target_date == rows["DOSE3"].window_end + dt.timedelta(days=56)
    assert endpoint.window_start == rows["DOSE3"].window_end + dt.timedelta(days=49)


@pytest.mark.parametrize("arm", ["immediate", "delayed"])
def test_samati_v2_stored_plan_matches_the_golden_table(samati2, pdx, alice, arm):
    from tests.scheduling.test_shipped_protocols import GOLDEN_V2

    # Draw participants until one lands in ``arm`` (the allocation list is fixed by its seed).
    while True:
        participant = enrolled(samati2, pdx, alice)
        complete(participant, "SCREEN", dt.date(2026, 2, 2), alice)
        complete(participant, "BASELINE", dt.date(2026, 2, 16), alice)
        participant = randomize(participant, alice, at=dt.datetime(2026, 3, 16, 18, 0, tzinfo=dt.UTC))
        if arm_of(participant) == arm:
            break
    assert stored_table(participant) == GOLDEN_V2[("samati-v2", arm)]


def test_the_primary_comparison_accessor_gives_each_arms_visit_codes(db):
    from scheduling.protocol import ComparisonVisits
    from scheduling.selectors import primary_comparison_visits

    assert primary_comparison_visits("samati-v2") == {
        "immediate": ComparisonVisits(baseline="BASELINE", endpoint="POST"),
        "delayed": ComparisonVisits(baseline="BASELINE", endpoint="WAIT_END"),
    }
    assert primary_comparison_visits("mapp-v2") == {
        "mdma": ComparisonVisits(baseline="BASELINE", endpoint="ENDPOINT"),
        "placebo": ComparisonVisits(baseline="BASELINE", endpoint="ENDPOINT"),
    }
    # A version-1 protocol declares none: derived from its first baseline and first assessment visit per arm.
    assert primary_comparison_visits("mapp-v1") == primary_comparison_visits("mapp-v2")
    assert primary_comparison_visits("samati-v1") == primary_comparison_visits("samati-v2")
    assert primary_comparison_visits("") == {} and primary_comparison_visits("no-such-protocol") == {}
