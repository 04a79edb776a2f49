"""The blinding pages: recording a guess from the participant's guesses page, and the report (indices with a chart
and table beside it for unblinded roles, the pooled distribution for blinded ones)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client

from audit.models import AuditEvent
from safety import services
from safety.models import TreatmentGuess
from scheduling.models import Visit
from tests.factories import staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def seed(participant, by, guess, code="DOSE1"):
    with transaction.atomic():
        return services.guess_record(
            participant=participant,
            visit=Visit.objects.get(participant=participant, code=code),
            respondent="participant",
            guess=guess,
            confidence=30,
            by=by,
        )


def test_a_coordinator_records_a_guess_on_the_page(make_participant, alice):
    participant = make_participant("randomized")
    dose = Visit.objects.get(participant=participant, code="DOSE1")
    url = f"/participants/{participant.participant_id}/guesses/"
    page = client_for(alice).get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert f'value="{dose.pk}"' in body and "BASELINE" not in body.split('name="visit"')[1].split("</select>")[0]
    r = client_for(alice).post(
        url, {"visit": dose.pk, "respondent": "participant", "guess": "placebo", "confidence": 55}
    )
    assert r.status_code == 302 and r["Location"].endswith("?saved=1")
    entry = TreatmentGuess.objects.get()
    assert (entry.visit, entry.guess, entry.confidence, entry.recorded_by) == (dose, "placebo", 55, alice)
    assert AuditEvent.objects.filter(entity_type="treatment_guess", entity_id=str(entry.pk), field="guess").exists()
    listed = client_for(alice).get(url + "?saved=1").content.decode()
    assert "Guess recorded." in listed and "DOSE1" in listed


def test_a_bad_entry_answers_400_with_its_message_and_records_nothing(make_participant, alice):
    participant = make_participant("randomized")
    dose = Visit.objects.get(participant=participant, code="DOSE1")
    url = f"/participants/{participant.participant_id}/guesses/"
    r = client_for(alice).post(url, {"visit": dose.pk, "respondent": "participant", "guess": "mdma", "confidence": "x"})
    assert r.status_code == 400 and "A whole number from 0 to 100." in r.content.decode()
    r = client_for(alice).post(
        url, {"visit": dose.pk, "respondent": "lead_therapist", "guess": "mdma", "confidence": 5}
    )
    assert r.status_code == 403
    assert not TreatmentGuess.objects.exists()


def test_a_rater_records_but_reads_no_guess_on_the_page(make_participant, alice, pdx):
    participant = make_participant("randomized")
    seed(participant, alice, "placebo")
    rater = staff("rory", Role.RATER, pdx)
    url = f"/participants/{participant.participant_id}/guesses/"
    body = client_for(rater).get(url).content.decode()
    assert "Guesses are not shown to your role" in body and "<td data-arm-option>" not in body
    dose = Visit.objects.get(participant=participant, code="DOSE1")
    r = client_for(rater).post(
        url, {"visit": dose.pk, "respondent": "independent_rater", "guess": "mdma", "confidence": 9}
    )
    assert r.status_code == 302
    assert TreatmentGuess.objects.get(respondent="independent_rater").recorded_by == rater


def test_the_report_pooled_for_blinded_and_per_arm_for_unblinded(make_participant, alice, pdx, study):
    people = [make_participant("randomized") for _ in range(4)]
    for person, guess in zip(people, ["mdma", "mdma", "placebo", "dont_know"], strict=True):
        seed(person, alice, guess)
    blinded = client_for(alice).get(f"/guesses/?study={study.code}")
    assert blinded.status_code == 200
    body = blinded.content.decode()
    assert "Answers, all arms together" in body and "Bang" not in body and "James" not in body
    assert "<svg" in body and "guesses-table" in body
    unblinded = client_for(staff("uma", Role.UNBLINDED_STATISTICIAN, pdx)).get(f"/guesses/?study={study.code}")
    body = unblinded.content.decode()
    assert "Bang&#x27;s blinding index per arm" in body or "Bang's blinding index per arm" in body
    assert "<svg" in body and "James " in body and "Correct" in body
