"""The demographics action page: the form comes from the demographic form definition (labels in the viewer's
language), saves through demographics_record like the API, and a correction without a reason changes nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from participants.models import DemographicRecord
from participants.services import staff_language_set

pytestmark = pytest.mark.django_db


def url(p) -> str:
    return reverse("dashboard-demographics", args=[p.participant_id])


def test_coordinator_records_and_corrects_demographics(make_participant, alice, client):
    p = make_participant("enrolled")
    client.force_login(alice)
    page = client.get(reverse("dashboard-participant", args=[p.participant_id])).content.decode()
    assert url(p) in page
    form = client.get(url(p)).content.decode()
    assert "Race (NIH)" in form and "More than one race" in form and "Age (years)" in form

    r = client.post(url(p), {"field_age_years": "51", "field_race": "6", "field_ethnicity": "1", "reason": ""})
    assert r.status_code == 302
    assert DemographicRecord.objects.get(participant=p).answers == {"age_years": 51, "race": 6, "ethnicity": 1}

    # A correction needs a reason: the form comes back with the message at the field, nothing saved.
    r = client.post(url(p), {"field_age_years": "52", "field_race": "6", "field_ethnicity": "1", "reason": ""})
    assert r.status_code == 400 and "required to change age_years" in r.content.decode()
    assert DemographicRecord.objects.get(participant=p).answers["age_years"] == 51
    r = client.post(url(p), {"field_age_years": "52", "field_race": "6", "field_ethnicity": "1", "reason": "typo"})
    assert r.status_code == 302 and DemographicRecord.objects.get(participant=p).answers["age_years"] == 52
    assert AuditEvent.objects.filter(entity_type="demographics", field="age_years", reason="typo").exists()

    r = client.post(url(p), {"field_age_years": "7", "field_race": "42", "reason": "x"})
    assert r.status_code == 400 and DemographicRecord.objects.get(participant=p).answers["age_years"] == 52


def test_labels_follow_the_viewers_language(make_participant, alice, client):
    p = make_participant("enrolled")
    staff_language_set(user=alice, language="es", by=alice)
    client.force_login(alice)
    form = client.get(url(p)).content.decode()
    assert "Raza (NIH)" in form and "Más de una raza" in form and "Guardar datos demográficos" in form


def test_a_role_that_does_not_manage_participants_is_refused(make_participant, personas, client):
    p = make_participant("enrolled")
    client.force_login(personas["rater"])
    assert client.post(url(p), {"field_age_years": "40"}).status_code == 403
    assert not DemographicRecord.objects.filter(participant=p).exists()
