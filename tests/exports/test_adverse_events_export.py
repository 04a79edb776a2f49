"""The adverse_events dataset: every format round-trips the recorded events as the codebook describes them, the
verbatim term never leaves, the arm only where exports show arms, a rater's hidden participants are absent, and the
query count does not grow with the data."""

from __future__ import annotations

import datetime as dt
import io
import json

import pandas as pd
import pyreadstat
import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exports import services as export_services
from participants.models import AllocationSlot, Participant, Study
from safety import services
from safety.models import AdverseEvent, AdverseEventReview
from tests.exports.conftest import body_of
from tests.exports.test_scale import bulk_population
from tests.factories import staff, unblind_by_api
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2030, 3, 5, 18, 0, tzinfo=dt.UTC)  # 10:00 in Portland
VERBATIM = "fainted at her sister's wedding in Salem"


def _values(participant, **extra):
    return {
        "participant": participant,
        "verbatim_term": "headache",
        "onset_at": NOW - dt.timedelta(days=1),
        "severity_grade": 1,
        "relatedness_drug": "possible",
        "relatedness_therapy": "not_related",
        "expectedness": "expected",
        "action_taken": "dose_not_changed",
        "outcome": "recovered",
        **extra,
    }


@pytest.fixture
def events(make_participant, alice, personas, nyc):
    """P1: a serious AESI (coded, reviewed twice, one follow-up) and a mild headache; P2: one grade-2 event; an NYC
    participant's event lies outside the PDX users' sites."""
    investigator = personas["investigator"]
    with time_machine.travel(NOW - dt.timedelta(days=10), tick=False):
        p1 = make_participant("randomized")
        p2 = make_participant("randomized")
        bob = staff("bob-nyc", Role.COORDINATOR, nyc)
        p3 = make_participant("randomized", site=nyc, by=bob)
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        serious = services.adverse_event_record(
            by=alice,
            **_values(
                p1,
                verbatim_term=VERBATIM,
                coded_term_code="10042772",
                coded_term_text="Syncope",
                onset_at=NOW - dt.timedelta(days=3),
                severity_grade=3,
                seriousness=frozenset({"serious_hospitalisation"}),
                aesi_categories=["dissociation", "cardiovascular"],
                outcome="recovering",
                relatedness_drug="probable",
            ),
        )
        mild = services.adverse_event_record(by=alice, **_values(p1, resolved_at=NOW - dt.timedelta(hours=2)))
        other = services.adverse_event_record(by=alice, **_values(p2, severity_grade=2, verbatim_term="nausea"))
        services.adverse_event_record(by=bob, **_values(p3, verbatim_term="outside"))
    with time_machine.travel(NOW + dt.timedelta(hours=5), tick=False), transaction.atomic():
        services.adverse_event_review(
            event=serious, causality_drug="possible", causality_therapy="unlikely", by=investigator
        )
    with time_machine.travel(NOW + dt.timedelta(days=1), tick=False), transaction.atomic():
        services.adverse_event_follow_up(event=serious, note="discharged home, spoke with her mother", by=alice)
        services.adverse_event_review(
            event=serious, causality_drug="probable", causality_therapy="not_related", by=investigator
        )
    return {"p1": p1, "p2": p2, "serious": serious, "mild": mild, "other": other}


def _expected(events) -> dict[int, dict[str, object]]:
    """The rows as a statistician should read them, computed by hand: day 0 is the randomization date (NOW - 10 days,
    a local date in Portland), so an onset 3 days before NOW falls on study day 7."""
    p1, p2 = events["p1"].participant_id, events["p2"].participant_id
    # Blinded: the timepoint of the visit an event is tied to, never the visit code (these events have no visit).
    blank = dict.fromkeys(("timepoint", "coded_term_code", "coded_term", "aesi_categories"))
    base = {
        "site": "PDX",
        "serious": 0,
        "serious_death": 0,
        "serious_life_threatening": 0,
        "serious_hospitalisation": 0,
        "serious_disability": 0,
        "serious_congenital_anomaly": 0,
        "serious_important_medical_event": 0,
        "aesi": 0,
        "relatedness_therapy": "not_related",
        "expectedness": "expected",
        "action_taken": "dose_not_changed",
        "recorded_study_day": 10,
        "reviewed": 0,
        "reviewed_study_day": None,
        "hours_to_review": None,
        "review_count": 0,
        "latest_causality_drug": None,
        "latest_causality_therapy": None,
        "follow_up_count": 0,
        **blank,
    }
    return {
        events["serious"].pk: base
        | {
            "participant_id": p1,
            "coded_term_code": "10042772",
            "coded_term": "Syncope",
            "onset_study_day": 7,
            "resolved_study_day": None,
            "severity_grade": 3,
            "serious": 1,
            "serious_hospitalisation": 1,
            "aesi": 1,
            "aesi_categories": "cardiovascular|dissociation",
            "relatedness_drug": "probable",
            "outcome": "recovering",
            "reviewed": 1,
            "reviewed_study_day": 10,
            "hours_to_review": 5.0,
            "review_count": 2,
            "latest_causality_drug": "probable",
            "latest_causality_therapy": "not_related",
            "follow_up_count": 1,
        },
        events["mild"].pk: base
        | {
            "participant_id": p1,
            "onset_study_day": 9,
            "resolved_study_day": 10,
            "severity_grade": 1,
            "relatedness_drug": "possible",
            "outcome": "recovered",
        },
        events["other"].pk: base
        | {
            "participant_id": p2,
            "onset_study_day": 9,
            "resolved_study_day": None,
            "severity_grade": 2,
            "relatedness_drug": "possible",
            "outcome": "recovered",
        },
    }


def _normalise(record: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
            out[key] = None
        elif isinstance(value, float) and value.is_integer() and key != "hours_to_review":
            out[key] = int(value)
        else:
            out[key] = value
    return out


def _frame(fmt: str, body: bytes, tmp_path, text: list[str]) -> tuple[pd.DataFrame, object]:
    if fmt == "csv":  # read as the codebook types them: a MedDRA code is text, though made of digits
        frame = pd.read_csv(io.BytesIO(body), keep_default_na=False, na_values=[""], dtype=dict.fromkeys(text, str))
        return frame, None
    if fmt == "json":
        return pd.DataFrame(json.loads(body)), None
    path = tmp_path / f"ae.{fmt}"
    path.write_bytes(body)
    return (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(path))


@pytest.mark.parametrize("fmt", ["csv", "json", "sav", "dta"])
def test_every_format_round_trips_the_events_as_the_codebook_describes(events, personas, api, tmp_path, fmt):
    statistician = personas["statistician"]
    codebook = [
        row
        for row in json.loads(body_of(api(statistician).get("/api/v1/export/codebook.json")))
        if row["dataset"] == "adverse_events"
    ]
    r = api(statistician).get(f"/api/v1/export/adverse_events.{fmt}")
    assert r.status_code == 200
    body = body_of(r)
    assert VERBATIM.encode() not in body and b"headache" not in body and b"nausea" not in body
    assert b"mother" not in body and b"outside" not in body
    df, meta = _frame(fmt, body, tmp_path, [row["variable"] for row in codebook if row["type"] == "string"])
    assert list(df.columns) == [row["variable"] for row in codebook]
    assert "arm" not in df.columns and "onset_date" not in df.columns and "visit_code" not in df.columns
    got = {int(rec["ae_id"]): _normalise(rec) for rec in df.to_dict("records")}
    expected = _expected(events)
    assert set(got) == set(expected)
    for pk, want in expected.items():
        assert {k: got[pk][k] for k in want} == want, pk
    # The file's order: participant, then onset.
    assert [int(x) for x in df.ae_id] == sorted(
        expected, key=lambda pk: (expected[pk]["participant_id"], expected[pk]["onset_study_day"], pk)
    )
    types = {row["variable"]: row["type"] for row in codebook}
    for row in codebook:
        if row["value_labels"]:
            allowed = set(row["allowed_values"].split("|"))
            present = {str(int(v)) if isinstance(v, float) else str(v) for v in df[row["variable"]].dropna() if v != ""}
            assert present <= allowed, row["variable"]
    if meta is not None:
        labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
        assert labels == {row["variable"]: row["label"] for row in codebook}
        assert meta.variable_value_labels["serious"] == {0: "No", 1: "Yes"}
        assert meta.variable_value_labels["severity_grade"][3] == "Severe"
        assert types["severity_grade"] == "integer"
    # What the statistician read is what the database holds.
    stored = AdverseEvent.objects.get(pk=events["serious"].pk)
    assert stored.serious and stored.aesi_categories == ["dissociation", "cardiovascular"]
    assert AdverseEventReview.objects.filter(event=stored).count() == got[stored.pk]["review_count"] == 2


def test_codebook_documents_that_the_verbatim_term_is_not_exported(personas, api):
    rows = json.loads(body_of(api(personas["statistician"]).get("/api/v1/export/codebook.json")))
    mine = {row["variable"]: row for row in rows if row["dataset"] == "adverse_events"}
    assert "verbatim_term" not in mine
    assert "verbatim term is free text" in mine["coded_term"]["derivation"]
    assert mine["latest_causality_drug"]["allowed_values"].split("|") == [
        "not_related",
        "unlikely",
        "possible",
        "probable",
        "definite",
    ]


def test_postgres_and_python_paths_agree(events, personas):
    user = personas["statistician"]
    for fmt in ("csv", "json"):
        files = [
            b"".join(
                export_services.export_open(
                    user=user, dataset="adverse_events", fmt=fmt, params={}, force_python=force
                ).chunks
            )
            for force in (False, True)
        ]
        assert files[0] == files[1], fmt
        assert files[0].count(b"PDX") >= 3


def test_arm_only_for_the_unblinded_statistician_after_unblinding(events, personas, api):
    statistician, unblinded = personas["statistician"], personas["unblinded_statistician"]
    body = body_of(api(unblinded).get("/api/v1/export/adverse_events.csv"))
    assert b"arm" not in body.split(b"\r\n")[0] and b"mdma" not in body and b"placebo" not in body
    r = unblind_by_api(api, "MAP", personas["investigator"], unblinded)
    assert r.status_code == 200
    assert Study.objects.get(code="MAP").unblinded
    body = body_of(api(statistician).get("/api/v1/export/adverse_events.csv"))
    assert b"arm" not in body.split(b"\r\n")[0]
    df = pd.read_csv(io.BytesIO(body_of(api(unblinded).get("/api/v1/export/adverse_events.csv"))))
    truth = dict(
        AllocationSlot.objects.filter(participant__isnull=False).values_list("participant__participant_id", "arm__code")
    )
    assert len(df) == 3
    assert all(row.arm == truth[row.participant_id] for row in df.itertuples())


@pytest.mark.parametrize("force_python", [False, True])
def test_a_statistician_who_also_rates_gets_no_events_of_a_study_hiding_safety(events, personas, pdx, force_python):
    from participants.services import membership_grant

    statistician = personas["statistician"]
    membership_grant(user=statistician, site=pdx, role=Role.RATER, by=None)
    assert Study.objects.get(code="MAP").hides_safety_from_raters

    def read() -> list[dict[str, object]]:
        export = export_services.export_open(
            user=statistician, dataset="adverse_events", fmt="json", params={}, force_python=force_python
        )
        return json.loads(b"".join(export.chunks))

    assert read() == []
    # Other datasets are untouched; once the study shows safety data to raters, the events come back.
    Study.objects.filter(code="MAP").update(safety_hidden_from_raters=False)
    assert {row["ae_id"] for row in read()} == set(_expected(events))
    assert AdverseEvent.objects.filter(participant__site=pdx).count() == 3


def _ae_population(study, site, start: int, count: int) -> None:
    """One adverse event with a review and a follow-up per participant numbered from ``start``: bulk inserts."""
    from safety.models import AdverseEventFollowUp

    now = timezone.now()
    people = Participant.objects.filter(site=site, number__gte=start, number__lt=start + count)
    created = AdverseEvent.objects.bulk_create(
        AdverseEvent(
            participant=p,
            verbatim_term="x",
            onset_at=now - dt.timedelta(hours=1),
            severity_grade=2,
            relatedness_drug="possible",
            relatedness_therapy="unlikely",
            expectedness="expected",
            action_taken="dose_not_changed",
            outcome="recovered",
            aesi_categories=["hepatic"],
            recorded_at=now,
            reviewed_at=now,
        )
        for p in people
    )
    reviewer = staff(f"inv-{start}", Role.INVESTIGATOR, site)
    AdverseEventReview.objects.bulk_create(
        AdverseEventReview(
            event=e, causality_drug="possible", causality_therapy="unlikely", reviewed_at=now, reviewed_by=reviewer
        )
        for e in created
    )
    AdverseEventFollowUp.objects.bulk_create(AdverseEventFollowUp(event=e, note="n", recorded_at=now) for e in created)


def test_query_count_is_the_same_for_10_and_1000_participants(study, pdx, personas, api):
    statistician = personas["statistician"]
    urls = [f"adverse_events.{fmt}" for fmt in ("csv", "json", "sav", "dta")]

    def counts() -> dict[str, tuple[int, int]]:
        out = {}
        for url in urls:
            with CaptureQueriesContext(connection) as ctx:
                r = api(statistician).get(f"/api/v1/export/{url}")
                body = body_of(r)
            assert r.status_code == 200, url
            out[url] = (len(ctx.captured_queries), len(body))
        return out

    bulk_population(study, pdx, 1, 10)
    _ae_population(study, pdx, 1, 10)
    small = counts()
    bulk_population(study, pdx, 11, 990)
    _ae_population(study, pdx, 11, 990)
    large = counts()
    assert AdverseEvent.objects.count() == 1000
    for url in urls:
        assert small[url][0] == large[url][0], (url, small[url][0], large[url][0])
        # The data really grew (the binary formats carry a fixed header of labels).
        assert large[url][1] > small[url][1] * (20 if url.endswith(("csv", "json")) else 5), url
    # The Python path streams too: the same count for the small and the large population.
    with CaptureQueriesContext(connection) as ctx:
        export = export_services.export_open(
            user=statistician, dataset="adverse_events", fmt="json", params={}, force_python=True
        )
        rows = json.loads(b"".join(export.chunks))
    assert len(rows) == 1000 and rows[0]["review_count"] == 1 and rows[0]["follow_up_count"] == 1
    assert len(ctx.captured_queries) <= small["adverse_events.json"][0] + 2
