"""Fixtures for the export tests: export roles at PDX, a participant with answers entered both ways, CSV helpers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import cache
from django.db import transaction

from assessments import services as assessments
from scheduling.models import Visit

PCL5 = {f"PCL5_{i:02d}": (i % 5) for i in range(1, 21)}
SCS = {f"SCS_{i:02d}": 1 + (i % 5) for i in range(1, 27)}
CAPS5 = {f"CAPS5_{i:02d}": 2 for i in range(1, 21)} | {
    "CAPS5_CRIT_A": 1,
    "CAPS5_DUR": 1,
    "CAPS5_DISTRESS": 1,
    "CAPS5_DEPERS": 0,
    "CAPS5_DEREAL": 3,
}


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _freeze_dir(settings, tmp_path):
    settings.FREEZE_DIR = tmp_path / "freezes"


@pytest.fixture
def statistician(personas):
    return personas["statistician"]


@pytest.fixture
def unblinded(personas):
    return personas["unblinded_statistician"]


def unblind(code: str = "MAP") -> None:
    """Mark a study unblinded, as an investigator's unblinding leaves it (the approvals are not what the export tests
    are about): the one place the export tests do it."""
    from participants.models import Study

    Study.objects.filter(code=code).update(unblinded=True)


@pytest.fixture
def open_view(personas, study):
    """The unblinded statistician of an unblinded MAP: exports with the arm, every visit and its visit code."""
    unblind(study.code)
    return personas["unblinded_statistician"]


@pytest.fixture
def investigator(personas):
    return personas["investigator"]


def noon(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=zoneinfo.ZoneInfo(tz))


def answer_baseline(participant, *, by, rater):
    """PCL-5 and SCS through the participant link, CAPS-5 by staff entry, at noon on the first day of the window."""
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    with time_machine.travel(noon(baseline.window_start, participant.time_zone), tick=True):
        link, _token = assessments.link_issue(visit=baseline, by=by)
        assessments.link_save_answers(link=link, answers_by_instrument={"PCL5": PCL5, "SCS": SCS})
        assessments.link_submit(link=link)
        with transaction.atomic():
            assessments.response_create_staff(
                participant=participant, visit=baseline, instrument_code="CAPS5", answers=CAPS5, by=rater
            )
    return baseline


@pytest.fixture
def answered(make_participant, alice, personas):
    """A randomized participant whose baseline PCL-5 and SCS came through a link and CAPS-5 through staff entry."""
    p = make_participant("randomized", contact={"full_name": "Test Person", "email": "person@example.org"})
    answer_baseline(p, by=alice, rater=personas["rater"])
    return p


def read_csv(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(body, newline="")))


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


CSSRS_HIGH = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}


def at_noon(visit: Visit, participant, *, day: dt.date | None = None):
    return time_machine.travel(noon(day or visit.target_date, participant.time_zone), tick=True)


def dosing_session(dose, *, by):
    """DOSE1's record at noon: started 09:00, 120 mg at 09:30 and 60 mg at 11:00 (local), a staff member and a
    visiting monitor present (by name), and vital signs at PRE (with a note naming the participant) and T60."""
    from safety import services as safety_services

    now = dt.datetime.now(dt.UTC)
    with transaction.atomic():
        session = safety_services.dosing_session_open(
            visit=dose,
            by=by,
            kit_identifier="KIT-SECRET-9",
            started_at=now - dt.timedelta(hours=3),
            present_staff=[by],
            present_others=[{"name": "Dr Visiting Name", "role": "monitor"}],
        )
        safety_services.dosing_doses_record(
            session=session,
            by=by,
            initial_dose_mg="120",
            initial_dose_at=now - dt.timedelta(hours=2, minutes=30),
            supplemental_dose_mg="60",
            supplemental_dose_at=now - dt.timedelta(hours=1),
        )
        safety_services.vital_sign_record(
            session=session,
            timepoint_code="PRE",
            measured_at=now - dt.timedelta(hours=2, minutes=45),
            systolic_bp=128,
            diastolic_bp=82,
            heart_rate=76,
            temperature_c="36.8",
            note="Ada said she felt fine",
            by=by,
        )
        safety_services.vital_sign_record(
            session=session,
            timepoint_code="T60",
            measured_at=now - dt.timedelta(hours=1, minutes=30),
            systolic_bp=150,
            diastolic_bp=95,
            heart_rate=104,
            temperature_c="37.4",
            by=by,
        )
    return session


@pytest.fixture
def trial(make_participant, alice, personas, nyc):
    """A small trial: P1 answered baseline (link + staff entry), had DOSE1 on target, INT1A two days after its window
    (a deviation, whose description holds dates), a high-risk C-SSRS at DOSE1 (an acknowledged alert) and a reviewed
    adverse event at DOSE1; P2 was
    withdrawn; P1 answered "don't know" when asked to guess their arm after DOSE1; P3 belongs to NYC, outside the PDX users' sites."""
    from assessments.models import SafetyAlert
    from participants.services import participant_withdraw
    from safety.services import adverse_event_record, adverse_event_review
    from scheduling.services import visit_complete

    rater, investigator = personas["rater"], personas["investigator"]
    p1 = make_participant("randomized", contact={"full_name": "Ada Example", "email": "ada@example.org"})
    answer_baseline(p1, by=alice, rater=rater)
    dose1 = Visit.objects.get(participant=p1, code="DOSE1")
    with at_noon(dose1, p1):
        visit_complete(visit=dose1, occurred_at=dt.datetime.now(dt.UTC), by=alice)
        with transaction.atomic():
            assessments.response_create_staff(
                participant=p1, visit=dose1, instrument_code="CSSRS_SCREEN", answers=CSSRS_HIGH, by=rater
            )
        alert = SafetyAlert.objects.get(participant=p1)
        assessments.safety_alert_acknowledge(alert=alert, note="called, safe", by=investigator)
        dosing_session(dose1, by=alice)
    with transaction.atomic():
        # A tapered SSRI (its indication and note are free text that never reaches an export) and an ongoing
        # medication whose dose is text.
        from safety import services as safety_services

        taper = safety_services.medication_record(
            participant=p1,
            name="sertraline (Ada's GP)",
            medication_class="ssri",
            dose_amount=Decimal("37.5"),
            dose_unit="mg",
            route="oral",
            indication="low mood after the divorce",
            start_date=dt.datetime.now(dt.UTC).date() - dt.timedelta(days=200),
            by=alice,
        )
        safety_services.medication_stop(
            medication=taper,
            stop_date=dt.datetime.now(dt.UTC).date() - dt.timedelta(days=40),
            taper_note="halved weekly",
            by=alice,
        )
        safety_services.medication_record(
            participant=p1,
            name="salbutamol",
            medication_class="other",
            dose_text="2 puffs as needed",
            frequency="as needed",
            start_date=dt.datetime.now(dt.UTC).date() - dt.timedelta(days=10),
            by=alice,
        )
        with transaction.atomic():  # an adverse event in session, whose verbatim term is free text
            ae = adverse_event_record(
                participant=p1,
                visit=dose1,
                verbatim_term="nausea after the dose, per Ada",
                coded_term_code="10028813",
                coded_term_text="Nausea",
                onset_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
                severity_grade=1,
                relatedness_drug="probable",
                relatedness_therapy="not_related",
                expectedness="expected",
                action_taken="dose_not_changed",
                outcome="recovering",
                by=alice,
            )
            adverse_event_review(event=ae, causality_drug="probable", causality_therapy="unlikely", by=investigator)
        from safety.services import guess_record

        with transaction.atomic():
            # "Don't know": no arm code in the body, so the blinded exports hold none.
            guess_record(
                participant=p1, visit=dose1, respondent="participant", guess="dont_know", confidence=0, by=alice
            )
    int1a = Visit.objects.get(participant=p1, code="INT1A")
    with at_noon(int1a, p1, day=int1a.window_end + dt.timedelta(days=2)):
        visit_complete(visit=int1a, occurred_at=dt.datetime.now(dt.UTC), by=alice)
    p2 = make_participant("randomized", contact={"full_name": "Bo Example", "email": "bo@example.org"})
    participant_withdraw(
        participant=p2, level="stop_follow_up", reason="moved away", date=dt.datetime.now(dt.UTC).date(), by=alice
    )
    from tests.factories import staff
    from trialsite.roles import Role

    nyc_coordinator = staff("nyc-coordinator", Role.COORDINATOR, nyc)
    p3 = make_participant("randomized", site=nyc, by=nyc_coordinator)
    answer_baseline(p3, by=nyc_coordinator, rater=staff("nyc-rater", Role.RATER, nyc))
    from participants.models import Participant

    return [Participant.objects.get(pk=p.pk) for p in (p1, p2, p3)]
