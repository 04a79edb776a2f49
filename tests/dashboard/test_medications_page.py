"""The medications page: a participant's medications with the prohibited ones flagged and their washout end, and the
forms to record, correct (with a reason) and stop one, through the same services as the API. Another site's staff
and a rater of a study that hides safety data get a 404; a role that may not record gets the list and a 403."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse

from audit.models import AuditEvent
from safety import services
from safety.models import ConcomitantMedication
from tests.factories import staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

# Thursday 5 March 2026, 10:00 in Portland.
NOW = dt.datetime(2026, 3, 5, 18, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def participant(make_participant):
    return make_participant("randomized")


def url(p, name="dashboard-medications", *args) -> str:
    return reverse(name, args=[p.participant_id, *args])


def record(p, by, **extra):
    values = {
        "participant": p,
        "name": "sertraline",
        "medication_class": "ssri",
        "dose_amount": 50,
        "dose_unit": "mg",
        "start_date": dt.date(2025, 11, 1),
        **extra,
    }
    with transaction.atomic():
        return services.medication_record(by=by, **values)


FORM = {
    "name": "phenelzine",
    "medication_class": "maoi",
    "dose_amount": "15",
    "dose_unit": "mg",
    "dose_text": "",
    "frequency": "three times daily",
    "route": "oral",
    "indication": "",
    "start_date": "2026-01-02",
    "stop_date": "2026-03-01",
    "taper_note": "",
}


def test_the_page_flags_prohibited_medications_with_their_washout_end(participant, alice, client):
    record(participant, alice)  # ongoing SSRI
    record(participant, alice, name="phenelzine", medication_class="maoi", stop_date=dt.date(2026, 3, 1))
    record(participant, alice, name="ibuprofen", medication_class="other", dose_amount=200)
    client.force_login(alice)
    participant_page = client.get(reverse("dashboard-participant", args=[participant.participant_id])).content.decode()
    assert url(participant) in participant_page
    r = client.get(url(participant))
    assert r.status_code == 200
    page = r.content.decode()
    assert "washout ends 14 days after it stops" in page  # the ongoing SSRI
    assert "washout ends 2026-03-15" in page  # the MAOI stopped on 1 March
    assert page.count("prohibited") >= 2 and "allowed" in page
    assert "Record a medication" in page


def test_a_coordinator_records_corrects_and_stops_through_the_forms(participant, alice, client):
    client.force_login(alice)
    r = client.post(url(participant), FORM)
    assert r.status_code == 302
    medication = ConcomitantMedication.objects.get()
    assert (medication.name, medication.medication_class, medication.stop_date) == (
        "phenelzine",
        "maoi",
        dt.date(2026, 3, 1),
    )

    correct = url(participant, "dashboard-medication-correct", medication.pk)
    assert client.get(correct).status_code == 200
    refused = client.post(correct, {**FORM, "dose_amount": "30", "reason": ""})
    assert refused.status_code == 400
    medication.refresh_from_db()
    assert medication.dose_amount == 15
    r = client.post(correct, {**FORM, "dose_amount": "30", "reason": "read from the prescription"})
    assert r.status_code == 302
    medication.refresh_from_db()
    assert medication.dose_amount == 30
    [row] = AuditEvent.objects.filter(entity_type="concomitant_medication", action="update")
    assert (row.field, row.old_value, row.new_value, row.reason) == (
        "dose_amount",
        "15.000",
        "30.000",
        "read from the prescription",
    )

    ongoing = record(participant, alice)
    stop = url(participant, "dashboard-medication-stop", ongoing.pk)
    r = client.post(stop, {"stop_date": "2026-03-04", "taper_note": "25 mg for a week"})
    assert r.status_code == 302
    ongoing.refresh_from_db()
    assert ongoing.stop_date == dt.date(2026, 3, 4) and ongoing.taper_note == "25 mg for a week"
    again = client.post(stop, {"stop_date": "2026-03-05"})
    assert again.status_code == 409 and "already stopped" in again.content.decode()
    ongoing.refresh_from_db()
    assert ongoing.stop_date == dt.date(2026, 3, 4)


def test_bad_input_is_400_and_saves_nothing(participant, alice, client):
    client.force_login(alice)
    r = client.post(url(participant), {**FORM, "medication_class": "xenon", "start_date": "2027-01-01"})
    assert r.status_code == 400
    r = client.post(url(participant), {**FORM, "dose_amount": "", "dose_unit": "", "dose_text": ""})
    assert r.status_code == 400 and "give the dose as an amount with its unit, or as text" in r.content.decode()
    assert not ConcomitantMedication.objects.exists()


def test_other_sites_and_raters_get_404_and_a_statistician_cannot_record(participant, alice, bob, pdx, client):
    medication = record(participant, alice)
    rater = staff("rita", Role.RATER, pdx)
    statistician = staff("stan", Role.STATISTICIAN, pdx)
    urls = [
        url(participant),
        url(participant, "dashboard-medication-correct", medication.pk),
        url(participant, "dashboard-medication-stop", medication.pk),
    ]
    for who in (bob, rater):
        client.force_login(who)
        for address in urls:
            assert client.get(address).status_code == 404, (who, address)
        assert client.post(urls[0], FORM).status_code == 404
    client.force_login(rater)
    participant_page = client.get(reverse("dashboard-participant", args=[participant.participant_id])).content.decode()
    assert url(participant) not in participant_page
    client.force_login(statistician)
    page = client.get(urls[0])
    assert page.status_code == 200 and "sertraline" in page.content.decode()
    assert "Record a medication" not in page.content.decode()
    assert client.post(urls[0], FORM).status_code == 403
    assert client.get(urls[2]).status_code == 403
    assert ConcomitantMedication.objects.count() == 1
