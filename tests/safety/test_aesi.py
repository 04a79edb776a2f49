"""AESI categories are data: the shipped list, a study's own list from SAFETY_AESI_DIR, and the start-up check."""

from __future__ import annotations

import json

import pytest

from safety import aesi, checks
from safety.models import AdverseEvent
from tests.safety.conftest import sae_payload

pytestmark = pytest.mark.django_db


def test_the_shipped_list_holds_the_six_mdma_categories():
    shipped = aesi.aesi_list_for("ANY")
    assert [c.code for c in shipped.categories] == [
        "cardiovascular",
        "suicidality",
        "abuse_misuse",
        "positive_psychoactive",
        "dissociation",
        "hepatic",
    ]
    assert "Euphoria or elevated mood and other positive psychoactive effects" in [c.label for c in shipped.categories]


def test_a_study_declares_its_own_list(participant, alice, api, settings, tmp_path, study):
    (tmp_path / f"{study.code}.json").write_text(
        json.dumps({"version": 2, "categories": [{"code": "hyponatraemia", "label": "Hyponatraemia"}]})
    )
    settings.SAFETY_AESI_DIR = str(tmp_path)
    assert checks.aesi_lists_valid() == []
    client = api(alice)
    refused = client.post("/api/v1/adverse-events/", sae_payload(participant), format="json")
    assert refused.status_code == 400
    assert refused.json()["aesi_categories"] == ["not an AESI category of this study: cardiovascular"]
    r = client.post(
        "/api/v1/adverse-events/", sae_payload(participant, aesi_categories=["hyponatraemia"]), format="json"
    )
    assert r.status_code == 201, r.content
    assert AdverseEvent.objects.get().aesi_categories == ["hyponatraemia"]


def test_a_broken_list_fails_the_start_up_check(settings, tmp_path):
    (tmp_path / "BAD.json").write_text(json.dumps({"version": 1, "categories": [{"code": "Not A Code", "label": "x"}]}))
    settings.SAFETY_AESI_DIR = str(tmp_path)
    errors = checks.aesi_lists_valid()
    assert [e.id for e in errors] == ["safety.E002"] and "BAD.json" in errors[0].msg


def test_a_list_naming_a_category_twice_is_refused():
    with pytest.raises(aesi.AesiListError, match="twice"):
        aesi.parse(
            {"version": 1, "categories": [{"code": "ab", "label": "a"}, {"code": "ab", "label": "b"}]}, source="x"
        )
