"""Baseline demographics: the form is data (checked, versioned, loaded by a command), answers are recorded by the
staff who manage participants through the API, checked against the form, corrected only with a reason, audited."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from participants.demographics import DemographicFormError, answer_errors, parse_form, shipped_form
from participants.models import DemographicFormVersion, DemographicRecord

pytestmark = pytest.mark.django_db


def url(p) -> str:
    return f"/api/v1/participants/{p.participant_id}/demographics/"


def test_the_shipped_form_declares_the_nih_categories():
    form = shipped_form()
    assert [f.code for f in form.fields] == ["age_years", "sex", "gender", "ethnicity", "race", "education"]
    assert form.field("age_years").type == "integer" and (form.field("age_years").min, form.field("age_years").max) == (
        18,
        120,
    )
    assert form.field("ethnicity").value_labels() == {
        1: "Hispanic or Latino",
        2: "Not Hispanic or Latino",
        9: "Unknown or not reported",
    }
    races = form.field("race").value_labels()
    assert races is not None and races[6] == "More than one race" and len(races) == 7
    assert form.field("sex").label("es") == "Sexo asignado al nacer"


def test_a_broken_definition_is_refused_with_every_json_path():
    raw = copy.deepcopy(dict(shipped_form().raw))
    raw["fields"][1]["options"][1]["value"] = 1
    raw["fields"][0]["min"] = "eighteen"
    raw["fields"].append({"code": "Bad Code", "type": "text", "label": {"es": "x"}})
    with pytest.raises(DemographicFormError) as exc:
        parse_form(raw)
    assert exc.value.errors == [
        "$.fields[0].min: an integer",
        "$.fields[1].options[1].value: 1 is used twice",
        "$.fields[6].code: lower-case letters, digits and '_' (max 30), starting with a letter",
        "$.fields[6].type: one of integer, choice",
        "$.fields[6].label.en: the English label is required",
    ]


def test_answers_are_checked_against_the_form():
    form = shipped_form()
    assert answer_errors(form, {"age_years": 40, "race": 6, "sex": None}) == {}
    assert answer_errors(form, {"age_years": 12, "race": 8, "shoe_size": 3, "sex": True}) == {
        "age_years": ["between 18 and 120"],
        "race": ["one of 1, 2, 3, 4, 5, 6, 9"],
        "shoe_size": ["not a field of DEMOGRAPHICS v1"],
        "sex": ["an integer"],
    }


def test_a_coordinator_records_and_corrects_with_a_reason(make_participant, alice, api):
    p = make_participant("enrolled")
    r = api(alice).put(url(p), {"answers": {"age_years": 41, "sex": 1, "race": 5, "ethnicity": 2}}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["answers"] == {"age_years": 41, "sex": 1, "race": 5, "ethnicity": 2}
    assert body["form_version"] == "1" and body["form"]["fields"][0]["code"] == "age_years"
    record = DemographicRecord.objects.get(participant=p)
    assert record.answers["age_years"] == 41 and record.recorded_by == alice
    created = AuditEvent.objects.filter(entity_type="demographics", action="create", participant_id=p.participant_id)
    assert {e.field for e in created} == {"age_years", "sex", "race", "ethnicity", "form_version"}

    # A correction of a recorded value needs a reason; adding a value not yet recorded does not.
    r = api(alice).put(url(p), {"answers": {"age_years": 42}}, format="json")
    assert r.status_code == 400 and r.json()["reason"] == ["required to change age_years"]
    assert DemographicRecord.objects.get(participant=p).answers["age_years"] == 41
    r = api(alice).put(url(p), {"answers": {"education": 5}}, format="json")
    assert r.status_code == 200 and r.json()["answers"]["education"] == 5
    r = api(alice).put(url(p), {"answers": {"age_years": 42}, "reason": "typo at entry"}, format="json")
    assert r.status_code == 200 and r.json()["answers"]["age_years"] == 42
    event = AuditEvent.objects.get(entity_type="demographics", action="update", field="age_years")
    assert (event.old_value, event.new_value, event.reason) == (41, 42, "typo at entry")


def test_bad_answers_are_a_400_per_field_and_change_nothing(make_participant, alice, api):
    p = make_participant("enrolled")
    r = api(alice).put(url(p), {"answers": {"age_years": 7, "race": 42}}, format="json")
    assert r.status_code == 400
    assert r.json()["answers.age_years"] == ["between 18 and 120"] and r.json()["answers.race"]
    r = api(alice).put(url(p), {"answers": {"age_years": "old"}}, format="json")
    assert r.status_code == 400 and "answers" in r.json()
    assert not DemographicRecord.objects.filter(participant=p).exists()


@pytest.mark.parametrize("role", ["rater", "therapist", "statistician", "unblinded_statistician"])
def test_only_staff_who_manage_participants_read_or_record(make_participant, personas, api, role):
    p = make_participant("enrolled")
    assert api(personas[role]).get(url(p)).status_code == 403
    r = api(personas[role]).put(url(p), {"answers": {"age_years": 30}}, format="json")
    assert r.status_code == 403
    assert not DemographicRecord.objects.filter(participant=p).exists()


def test_another_sites_participant_is_a_404(make_participant, bob, api):
    p = make_participant("enrolled")
    assert api(bob).get(url(p)).status_code == 404


def test_a_site_form_is_loaded_by_command_and_versioned(tmp_path, make_participant, alice, api):
    raw = copy.deepcopy(dict(shipped_form().raw))
    raw["version"] = "2-site"
    raw["fields"].append(
        {
            "code": "employment",
            "type": "choice",
            "label": {"en": "Employment"},
            "options": [{"value": 1, "label": {"en": "Employed"}}, {"value": 2, "label": {"en": "Not employed"}}],
        }
    )
    path = tmp_path / "form.json"
    path.write_text(json.dumps(raw))
    call_command("load_demographic_form", str(path))
    call_command("load_demographic_form", str(path))  # the same content again: nothing new
    assert DemographicFormVersion.objects.filter(version="2-site").count() == 1
    assert AuditEvent.objects.filter(entity_type="demographic_form").count() == 2  # version + fields, once

    p = make_participant("enrolled")
    r = api(alice).put(url(p), {"answers": {"employment": 2}}, format="json")
    assert r.status_code == 200 and r.json()["form_version"] == "2-site"

    raw["fields"][0]["max"] = 99  # same version, other content
    path.write_text(json.dumps(raw))
    with pytest.raises(CommandError, match="already loaded with other content"):
        call_command("load_demographic_form", str(path))
    raw["fields"][0]["type"] = "date"
    path.write_text(json.dumps(raw))
    with pytest.raises(CommandError, match=r"\$\.fields\[0\]\.type"):
        call_command("load_demographic_form", str(path))
    assert DemographicFormVersion.objects.count() == 1
