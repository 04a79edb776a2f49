"""Treatment guesses over the API: who records whose guess, the rater's receipt, corrections with a reason,
site scoping, and the blinding report (indices for unblinded roles, the pooled distribution for blinded ones)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from participants import selectors as participant_selectors
from safety import services
from safety.models import TreatmentGuess
from scheduling.models import Visit
from tests.factories import staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def therapist(pdx):
    return staff("theo", Role.THERAPIST, pdx)


def visit_of(participant, code="DOSE1"):
    return Visit.objects.get(participant=participant, code=code)


def payload(participant, **extra):
    return {
        "participant_id": participant.participant_id,
        "visit": visit_of(participant).pk,
        "respondent": "participant",
        "guess": "mdma",
        "confidence": 70,
        **extra,
    }


def seed(by, participant, *, guess, respondent="participant", code="DOSE1", confidence=50):
    with transaction.atomic():
        return services.guess_record(
            participant=participant,
            visit=visit_of(participant, code),
            respondent=respondent,
            guess=guess,
            confidence=confidence,
            by=by,
        )


def test_a_coordinator_enters_the_participants_guess(participant, alice, api):
    r = api(alice).post("/api/v1/treatment-guesses/", payload(participant), format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    entry = TreatmentGuess.objects.get()
    assert (entry.participant, entry.visit.code, entry.respondent) == (participant, "DOSE1", "participant")
    assert (entry.guess, entry.confidence, entry.recorded_by) == ("mdma", 70, alice)
    assert body["id"] == entry.pk and body["guess"] == "mdma" and body["confidence"] == 70
    assert body["visit_code"] == "DOSE1" and body["recorded_by"] == "alice" and body["site"] == "PDX"
    assert "arm" not in body and "correct" not in body
    fields = set(
        AuditEvent.objects.filter(entity_type="treatment_guess", entity_id=str(entry.pk), action="create").values_list(
            "field", flat=True
        )
    )
    assert {"visit", "respondent", "guess", "confidence"} <= fields


def test_at_the_primary_endpoint_too(participant, alice, api):
    endpoint = visit_of(participant, "ENDPOINT")
    r = api(alice).post("/api/v1/treatment-guesses/", payload(participant, visit=endpoint.pk), format="json")
    assert r.status_code == 201, r.content
    assert TreatmentGuess.objects.get().visit == endpoint


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"guess": "unicorn"}, "guess"),
        ({"confidence": 101}, "confidence"),
        ({"confidence": "sure"}, "confidence"),
        ({"respondent": "mother"}, "respondent"),
        ({"visit": 999999}, "visit"),
        ({"visit": "BASELINE"}, "visit"),
    ],
)
def test_each_bad_field_answers_400_naming_it_and_records_nothing(participant, alice, api, change, field):
    if change.get("visit") == "BASELINE":
        change = {"visit": visit_of(participant, "BASELINE").pk}
    r = api(alice).post("/api/v1/treatment-guesses/", payload(participant, **change), format="json")
    assert r.status_code == 400, r.content
    assert field in r.json(), r.json()
    assert not TreatmentGuess.objects.exists()
    assert not AuditEvent.objects.filter(entity_type="treatment_guess").exists()


@pytest.mark.parametrize(
    ("role", "respondent", "allowed"),
    [
        (Role.THERAPIST, "lead_therapist", True),
        (Role.THERAPIST, "participant", True),
        (Role.INVESTIGATOR, "participant", True),
        (Role.COORDINATOR, "lead_therapist", False),
        (Role.RATER, "participant", False),
        (Role.RATER, "lead_therapist", False),
        (Role.THERAPIST, "independent_rater", False),
        (Role.STATISTICIAN, "participant", False),
    ],
)
def test_who_records_whose_guess(participant, pdx, api, role, respondent, allowed):
    user = staff(f"{role}-x", role, pdx)
    r = api(user).post("/api/v1/treatment-guesses/", payload(participant, respondent=respondent), format="json")
    assert r.status_code == (201 if allowed else 403), r.content
    assert TreatmentGuess.objects.filter(respondent=respondent).exists() is allowed


def test_a_rater_records_gets_a_receipt_and_never_reads_a_guess_back(participant, alice, rater, api):
    seed(alice, participant, guess="placebo")
    client = api(rater)
    r = client.post("/api/v1/treatment-guesses/", payload(participant, respondent="independent_rater"), format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    mine = TreatmentGuess.objects.get(respondent="independent_rater")
    assert (mine.guess, mine.recorded_by) == ("mdma", rater)
    assert body["id"] == mine.pk and body["respondent"] == "independent_rater"
    assert "guess" not in body and "confidence" not in body and "mdma" not in str(body)
    # Nothing to read back: the list is empty, every guess a 404, the report holds none.
    assert client.get("/api/v1/treatment-guesses/").json()["count"] == 0
    for entry in TreatmentGuess.objects.all():
        assert client.get(f"/api/v1/treatment-guesses/{entry.pk}/").status_code == 404
    report = client.get(f"/api/v1/blinding-index/{participant.study.code}/").json()
    assert report["timepoints"] == [] and report["arm_level"] is False
    # The rater corrects their own guess, again with a receipt only; the participant's guess is not theirs to touch.
    r = client.post(
        f"/api/v1/treatment-guesses/{mine.pk}/correct/", {"guess": "dont_know", "reason": "mis-keyed"}, format="json"
    )
    assert r.status_code == 200, r.content
    assert "guess" not in r.json()
    mine.refresh_from_db()
    assert mine.guess == "dont_know" and mine.corrected_at is not None
    other = TreatmentGuess.objects.get(respondent="participant")
    r = client.post(f"/api/v1/treatment-guesses/{other.pk}/correct/", {"guess": "mdma", "reason": "x"}, format="json")
    assert r.status_code == 404
    assert TreatmentGuess.objects.get(pk=other.pk).guess == "placebo"


def test_a_second_guess_for_the_same_visit_and_respondent_is_a_conflict(participant, alice, api):
    seed(alice, participant, guess="placebo")
    r = api(alice).post("/api/v1/treatment-guesses/", payload(participant), format="json")
    assert r.status_code == 409, r.content
    assert "correct" in str(r.json())
    assert TreatmentGuess.objects.get().guess == "placebo"


def test_a_correction_needs_a_reason_and_the_trail_keeps_the_old_value(participant, alice, api):
    entry = seed(alice, participant, guess="placebo", confidence=20)
    client = api(alice)
    r = client.post(f"/api/v1/treatment-guesses/{entry.pk}/correct/", {"guess": "mdma"}, format="json")
    assert r.status_code == 400 and "reason" in r.json()
    r = client.post(
        f"/api/v1/treatment-guesses/{entry.pk}/correct/",
        {"guess": "mdma", "confidence": 80, "reason": "participant's answer read from the paper form"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert (r.json()["guess"], r.json()["confidence"]) == ("mdma", 80)
    entry.refresh_from_db()
    assert (entry.guess, entry.confidence) == ("mdma", 80)
    update = AuditEvent.objects.get(entity_type="treatment_guess", action="update", field="guess")
    assert (update.old_value, update.new_value) == ("placebo", "mdma")
    assert update.reason == "participant's answer read from the paper form"
    r = client.post(f"/api/v1/treatment-guesses/{entry.pk}/correct/", {"guess": "zebra", "reason": "x"}, format="json")
    assert r.status_code == 400 and "guess" in r.json()
    assert TreatmentGuess.objects.count() == 1


def test_out_of_site_guesses_are_404_and_absent(participant, alice, bob, api):
    entry = seed(alice, participant, guess="mdma")
    client = api(bob)
    assert client.get(f"/api/v1/treatment-guesses/{entry.pk}/").status_code == 404
    assert client.get("/api/v1/treatment-guesses/").json()["count"] == 0
    r = client.post(
        f"/api/v1/treatment-guesses/{entry.pk}/correct/", {"guess": "placebo", "reason": "x"}, format="json"
    )
    assert r.status_code == 404
    assert TreatmentGuess.objects.get().guess == "mdma"
    assert client.post("/api/v1/treatment-guesses/", payload(participant), format="json").status_code == 404


def test_list_filters_and_its_query_count_does_not_grow_with_rows(make_participant, alice, api):
    client = api(alice)
    people = [make_participant("randomized") for _ in range(4)]
    seed(alice, people[0], guess="mdma")
    with CaptureQueriesContext(connection) as few:
        r = client.get("/api/v1/treatment-guesses/")
    assert r.json()["count"] == 1
    for person in people:
        seed(alice, person, guess="dont_know", code="DOSE2")
        seed(alice, person, guess="placebo", code="ENDPOINT")
    with CaptureQueriesContext(connection) as many:
        r = client.get("/api/v1/treatment-guesses/")
    assert r.json()["count"] == 9
    assert len(many.captured_queries) == len(few.captured_queries)
    assert client.get("/api/v1/treatment-guesses/?visit_code=ENDPOINT").json()["count"] == 4
    assert client.get(f"/api/v1/treatment-guesses/?participant={people[0].participant_id}").json()["count"] == 3
    assert client.get("/api/v1/treatment-guesses/?respondent=lead_therapist").json()["count"] == 0


def _seed_report(make_participant, alice):
    """Six participants' own guesses after DOSE1: the first three guess mdma, then placebo, then don't know."""
    people = [make_participant("randomized") for _ in range(6)]
    for person, guess in zip(people, ["mdma", "mdma", "mdma", "placebo", "placebo", "dont_know"], strict=True):
        seed(alice, person, guess=guess)
    return people


def test_blinded_roles_get_only_the_pooled_distribution(make_participant, alice, pdx, api):
    people = _seed_report(make_participant, alice)
    statistician = staff("stan", Role.STATISTICIAN, pdx)
    for user in (alice, statistician):
        r = api(user).get(f"/api/v1/blinding-index/{people[0].study.code}/")
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["arm_level"] is False and body["options"] == ["mdma", "placebo", "dont_know"]
        [timepoint] = body["timepoints"]
        assert timepoint["visit_code"] == "DOSE1"
        assert timepoint["respondents"] == [
            {"respondent": "participant", "n": 6, "pooled": {"mdma": 3, "placebo": 2, "dont_know": 1}}
        ]
        assert "by_arm" not in r.content.decode() and "bang" not in r.content.decode()
        assert "james" not in r.content.decode() and "correct" not in r.content.decode()


def test_unblinded_roles_get_the_indices_per_arm_and_respondent(make_participant, alice, pdx, api):
    people = _seed_report(make_participant, alice)
    arms = participant_selectors.arm_codes([p.pk for p in people])
    guesses = dict(
        zip([p.pk for p in people], ["mdma", "mdma", "mdma", "placebo", "placebo", "dont_know"], strict=True)
    )
    expected = {}
    for arm in ("mdma", "placebo"):
        mine = [guesses[pk] for pk, a in arms.items() if a == arm]
        correct = sum(g == arm for g in mine)
        dont_know = sum(g == "dont_know" for g in mine)
        incorrect = len(mine) - correct - dont_know
        bang = round((correct - incorrect) / len(mine), 4) if mine else None
        expected[arm] = (len(mine), correct, incorrect, dont_know, bang)
    unblinded = staff("una", Role.UNBLINDED_STATISTICIAN, pdx)
    api(unblinded).get(f"/api/v1/blinding-index/{people[0].study.code}/")  # warm the per-process protocol cache
    with CaptureQueriesContext(connection) as queries:
        body = api(unblinded).get(f"/api/v1/blinding-index/{people[0].study.code}/").json()
    assert body["arm_level"] is True
    [item] = body["timepoints"][0]["respondents"]
    assert item["pooled"] == {"mdma": 3, "placebo": 2, "dont_know": 1}
    for arm, (n, correct, incorrect, dont_know, bang) in expected.items():
        row = item["by_arm"][arm]
        assert (row["n"], row["correct"], row["incorrect"], row["dont_know"]) == (n, correct, incorrect, dont_know)
        assert (row["bang"]["value"] if row["bang"] else None) == bang
    assert "james" in item
    # More guesses, same number of queries.
    for person in people:
        seed(alice, person, guess="placebo", code="ENDPOINT")
        seed(alice, person, guess="mdma", code="DOSE2")
    with CaptureQueriesContext(connection) as more:
        body = api(unblinded).get(f"/api/v1/blinding-index/{people[0].study.code}/").json()
    assert [t["visit_code"] for t in body["timepoints"]] == ["DOSE1", "DOSE2", "ENDPOINT"]
    assert len(more.captured_queries) == len(queries.captured_queries)


def test_the_report_of_a_study_outside_the_users_sites_is_404(participant, alice, api):
    assert api(alice).get("/api/v1/blinding-index/NOPE/").status_code == 404
