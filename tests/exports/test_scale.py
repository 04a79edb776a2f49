"""Query count does not grow with the data: 10 and 1,000 participants cost the same number of queries per export."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assessments.models import Administration, Answer, Response, SafetyAlert, Score
from participants.models import ContactDetails, Participant, Site, Study
from safety.models import ConcomitantMedication, DosingSession, TreatmentGuess, VitalSign
from scheduling.models import ParticipantSchedule, ProtocolDeviation, Visit
from scheduling.services.protocols import protocol_version_ensure
from tests.exports.conftest import body_of, unblind
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def bulk_population(study: Study, site: Site, start: int, count: int) -> None:
    """Participants with a baseline visit, a PCL-5 response (20 answers, 2 scores), a deviation and an alert, inserted
    with bulk_create: a handful of statements for any count."""
    now = timezone.now()
    today = dt.date(2030, 1, 1)
    people = Participant.objects.bulk_create(
        Participant(
            participant_id=f"{study.code}-{site.code}-{n:05d}",
            study=study,
            site=site,
            number=n,
            status="randomized",
            randomized_at=now,
            enrolled_at=now,
            stratum=site.code,
        )
        for n in range(start, start + count)
    )
    ContactDetails.objects.bulk_create(
        ContactDetails(participant=p, full_name="X", email="x@example.org") for p in people
    )
    # A schedule under the study's protocol, so that BASELINE serves its timepoint in blinded exports.
    version = protocol_version_ensure(code=study.protocol_code, by=None)
    ParticipantSchedule.objects.bulk_create(
        ParticipantSchedule(participant=p, protocol_version=version, randomization_date=today) for p in people
    )
    visits = Visit.objects.bulk_create(
        Visit(
            participant=p,
            site_id=p.site_id,
            study_id=p.study_id,
            protocol_version=version,
            code="BASELINE",
            name="Baseline",
            kind="baseline",
            target_date=today,
            window_start=today,
            window_end=today + dt.timedelta(days=3),
            occurred_at=now,
            status="completed",
        )
        for p in people
    )
    adms = Administration.objects.bulk_create(
        Administration(
            participant=v.participant, visit=v, instrument_code="PCL5", respondent="self", status="completed"
        )
        for v in visits
    )
    responses = Response.objects.bulk_create(
        Response(
            administration=a,
            participant=a.participant,
            visit=a.visit,
            instrument_code="PCL5",
            instrument_version="1.0",
            source="staff",
            submitted_at=now,
        )
        for a in adms
    )
    Answer.objects.bulk_create(
        Answer(response=r, item_code=f"PCL5_{i:02d}", value=i % 5) for r in responses for i in range(1, 21)
    )
    Score.objects.bulk_create(
        Score(
            response=r,
            kind=kind,
            code=code,
            value=40.0,
            complete=True,
            instrument_version="1.0",
            scoring_version="1.0",
            computed_at=now,
            method="sum",
        )
        for r in responses
        for kind, code in (("scale", "total"), ("flag", "provisional_ptsd"))
    )
    ProtocolDeviation.objects.bulk_create(
        ProtocolDeviation(participant=v.participant, visit=v, type="out_of_window", description="late", days_outside=1)
        for v in visits
    )
    ConcomitantMedication.objects.bulk_create(
        ConcomitantMedication(
            participant=p,
            name="sertraline",
            medication_class="ssri",
            dose_amount=50,
            dose_unit="mg",
            start_date=today - dt.timedelta(days=60),
            stop_date=today - dt.timedelta(days=20),
            recorded_at=now,
        )
        for p in people
    )
    SafetyAlert.objects.bulk_create(
        SafetyAlert(
            participant=r.participant,
            response=r,
            source_id=r.pk,
            rule_code="pcl5_rise",
            severity="medium",
            message="m",
            created_at=now,
        )
        for r in responses
    )

    # A dosing visit per participant, its session record (with a staff member present) and two vital signs.
    doses = Visit.objects.bulk_create(
        Visit(
            participant=p,
            site_id=p.site_id,
            study_id=p.study_id,
            code="DOSE1",
            name="Dosing 1",
            kind="dosing",
            dosing_number=1,
            target_date=today,
            window_start=today,
            window_end=today + dt.timedelta(days=3),
            occurred_at=now,
            status="completed",
        )
        for p in people
    )
    sessions = DosingSession.objects.bulk_create(
        DosingSession(
            participant_id=v.participant_id,
            visit=v,
            kit_identifier="KIT",
            initial_dose_mg=120,
            initial_dose_at=now,
            supplemental_dose_mg=60,
            supplemental_dose_at=now + dt.timedelta(minutes=90),
            started_at=now - dt.timedelta(minutes=30),
            ended_at=now + dt.timedelta(hours=8),
            present_others=[{"name": "N", "role": "monitor"}],
            recorded_at=now,
        )
        for v in doses
    )
    someone = UserFactory()
    DosingSession.present_staff.through.objects.bulk_create(
        DosingSession.present_staff.through(dosingsession_id=s.pk, user_id=someone.pk) for s in sessions
    )
    VitalSign.objects.bulk_create(
        VitalSign(
            session=s,
            timepoint_code=code,
            measured_at=now + dt.timedelta(minutes=minutes),
            systolic_bp=130,
            diastolic_bp=80,
            heart_rate=90,
            temperature_c="37.1",
            note="a note",
            recorded_at=now,
        )
        for s in sessions
        for code, minutes in (("PRE", -30), ("T60", 60))
    )
    TreatmentGuess.objects.bulk_create(
        TreatmentGuess(
            participant=v.participant, visit=v, respondent=respondent, guess="dont_know", confidence=10, recorded_at=now
        )
        for v in visits
        for respondent in ("participant", "lead_therapist")
    )


URLS = [
    *(
        f"{d}.{f}"
        for d in (
            "participants",
            "visits",
            "responses",
            "scores",
            "deviations",
            "safety_alerts",
            "dosing_sessions",
            "vital_signs",
            "concomitant_medications",
            "blinding_guesses",
        )
        for f in ("csv", "json")
    ),
    "concomitant_medications.sav",
    "blinding_guesses.sav",
    "blinding_guesses.dta",
    "scores.csv?layout=wide",
    "scores.json?layout=wide",
    "responses.sav",
    "codebook.csv",
]


def counts(api, user, urls=None) -> dict[str, tuple[int, int]]:
    out = {}
    for url in urls or URLS:
        with CaptureQueriesContext(connection) as ctx:
            r = api(user).get(f"/api/v1/export/{url}")
            body = body_of(r)
        assert r.status_code == 200, url
        out[url] = (len(ctx.captured_queries), len(body))
    return out


def test_query_count_is_the_same_for_10_and_1000_participants(study, pdx, personas, api):
    statistician = personas["statistician"]
    # Blinded, the dosing sessions (at DOSE1, which serves no timepoint) are left out: the unblinded statistician
    # measures those datasets with rows.
    dosing = [url for url in URLS if url.startswith(("dosing_sessions", "vital_signs"))]
    unblind(study.code)
    unblinded = personas["unblinded_statistician"]
    bulk_population(study, pdx, 1, 10)
    # Once to warm the process-wide caches (a stored protocol version is parsed once, checking its instrument codes),
    # whose first use depends on which test ran before in this process; then measured.
    counts(api, statistician)
    small = counts(api, statistician)
    small_open = counts(api, unblinded, dosing)
    bulk_population(study, pdx, 11, 990)
    large = counts(api, statistician)
    large_open = counts(api, unblinded, dosing)
    for url in URLS:
        assert small[url][0] == large[url][0], (url, small[url][0], large[url][0])
        if url in dosing:
            assert large[url][1] == small[url][1], url  # blinded: a header, no row
            assert small_open[url][0] == large_open[url][0], (url, small_open[url][0], large_open[url][0])
            assert large_open[url][1] > small_open[url][1] * 20, url
        elif not url.startswith("codebook"):
            assert large[url][1] > small[url][1] * 20, url  # the data really grew
    # The statement that streams the rows is among the queries counted.
    with CaptureQueriesContext(connection) as ctx:
        body_of(api(statistician).get("/api/v1/export/responses.csv"))
    assert any(q["sql"].startswith("COPY (WITH px AS") for q in ctx.captured_queries)
