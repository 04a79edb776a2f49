"""What the participant-facing and staff-entry requests cost in queries: staff entry of a whole questionnaire, a
participant's link read and save (the same whatever the number of questionnaires and items), and the instrument
library's per-process cache of parsed definitions."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assessments import library, services, texts
from assessments.definitions import INSTRUMENTS_DIR, load_shipped_instruments
from assessments.models import Administration, Answer, InstrumentText, InstrumentVersion, Response, Score
from audit.models import AuditEvent
from tests.support.text_packs import pack_data

pytestmark = pytest.mark.django_db

SCS_ANSWERS = {f"SCS_{i:02d}": (i % 5) + 1 for i in range(1, 27)}


def test_staff_entry_of_a_26_item_questionnaire_runs_at_most_15_queries(
    participant, baseline, alice, api, django_assert_max_num_queries
):
    client = api(alice)  # a coordinator at the participant's site
    body = {
        "participant_id": participant.participant_id,
        "visit_id": baseline.pk,
        "instrument": "SCS",
        "answers": SCS_ANSWERS,
    }
    library.instrument_get("SCS")  # the definition is parsed once per process, as a running server has it
    with django_assert_max_num_queries(15):
        r = client.post("/api/v1/responses/", body, format="json")
    assert r.status_code == 201, r.content
    out = r.json()
    response = Response.objects.get(pk=out["id"])
    # The body: what a read of the stored response renders (nothing was read back to render it).
    assert out == api(alice).get(f"/api/v1/responses/{response.pk}/").json()
    assert out["instrument"] == "SCS" and out["source"] == "staff"
    assert out["answers"] == SCS_ANSWERS
    assert set(out["scores"]) == {s.code for s in load_shipped_instruments()["SCS"].scales}
    assert out["scores"]["self_kindness"] == pytest.approx(
        sum(SCS_ANSWERS[c] for c in load_shipped_instruments()["SCS"].scale("self_kindness").items) / 5
    )
    # The database: the response, its 26 answers and its scores, the administration completed, the audit rows.
    assert response.participant_id == participant.pk and response.entered_by_id == alice.pk
    assert dict(Answer.objects.filter(response=response).values_list("item_code", "value")) == SCS_ANSWERS
    assert Score.objects.filter(response=response, kind="scale").count() == len(out["scores"])
    adm = Administration.objects.get(visit=baseline, instrument_code="SCS")
    assert adm.status == Administration.Status.COMPLETED and adm.response == response
    events = AuditEvent.objects.filter(entity_type="response", entity_id=str(response.pk))
    assert events.count() == 2 + 26  # instrument, source, and one row per answer
    assert {e.actor_username for e in events} == {alice.username}
    assert events.get(field="answers.SCS_07").new_value == SCS_ANSWERS["SCS_07"]


def test_a_second_staff_entry_of_the_same_questionnaire_is_refused(participant, baseline, alice, api):
    client = api(alice)
    body = {
        "participant_id": participant.participant_id,
        "visit_id": baseline.pk,
        "instrument": "SCS",
        "answers": SCS_ANSWERS,
    }
    first = client.post("/api/v1/responses/", body, format="json")
    assert first.status_code == 201
    second = client.post("/api/v1/responses/", body, format="json")
    assert second.status_code == 409
    assert second.json()["response_id"] == [str(first.json()["id"])]
    assert Response.objects.filter(visit=baseline).count() == 1
    assert Answer.objects.count() == 26


def _load_version(tmp_path, version: str) -> InstrumentVersion:
    data = json.loads((INSTRUMENTS_DIR / "SCS.json").read_text(encoding="utf-8"))
    data["version"] = version
    path = tmp_path / f"SCS-{version}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    from assessments.services import instrument_version_load

    return instrument_version_load(path=path)


def test_a_versions_definition_is_read_and_parsed_once_per_process(tmp_path, django_assert_num_queries):
    row = _load_version(tmp_path, "7.1")
    with CaptureQueriesContext(connection) as first:
        first_load = library.instrument_get("SCS", "7.1")
    assert first_load.version == "7.1" and len(first.captured_queries) == 1
    # The second load: the lookup of which version is current (a site may load one at any time), which no longer
    # carries the definition; nothing is parsed again.
    with CaptureQueriesContext(connection) as second:
        assert library.instrument_get("SCS", "7.1") is first_load
        assert library.instrument_get("SCS") is first_load
    assert len(second.captured_queries) == 2
    carried = InstrumentVersion.objects.annotate(d=library.unless_read("definition", library._parsed_versions_pks()))
    assert carried.values_list("d", flat=True).get(pk=row.pk) is None
    # Within one request the library is read once: a second (and any further) load runs no query at all.
    read = library.Library()
    assert read.instrument("SCS") is first_load
    with django_assert_num_queries(0):
        assert read.instrument("SCS") is first_load
        assert read.instrument("SCS", "7.1") is first_load
        assert read.instrument("PCL5") is library.shipped_instruments()["PCL5"]
    # A newer version is seen by the next read: versions are immutable, so each is cached by its own row.
    newer = _load_version(tmp_path, "7.2")
    assert library.instrument_get("SCS").version == "7.2"
    assert library.Library().instrument("SCS").version == "7.2"
    assert library.instrument_get("SCS", "7.1") is first_load
    assert newer.pk != row.pk


def test_a_pack_loaded_by_a_site_is_seen_by_the_next_read(participant, baseline, alice, in_window):
    from assessments.services import instrument_text_load

    before = texts.Wording().in_force()[("SCS", "en")]
    data = pack_data("SCS", "en", version="9.9")
    data["title"] = "A newer English pack"
    instrument_text_load(data=data, by=None, source="test")
    after = texts.Wording().in_force()[("SCS", "en")]
    assert before.version != "9.9" and after.version == "9.9" and after.title == "A newer English pack"
    assert texts.packs_in_force()[("SCS", "en")] is after  # parsed once per process
    assert after.pk == InstrumentText.objects.get(instrument_code="SCS", language="en", version="9.9").pk


def _add_questionnaires(visit, by, codes):
    for code in codes:
        services.administration_add(visit=visit, instrument_code=code, by=by, reason="test")


def _link_costs(api, token):
    client = api()
    url = f"/api/v1/links/{token}/"
    client.get(url)  # a running server has parsed the definitions and packs already
    with CaptureQueriesContext(connection) as read:
        got = client.get(url)
    assert got.status_code == 200, got.content
    pending = got.json()["administrations"]
    answers = {a["instrument"]: {a["items"][0]["code"]: a["items"][0]["options"][0]["value"]} for a in pending}
    with CaptureQueriesContext(connection) as save:
        saved = client.put(url, {"answers": answers}, format="json")
    assert saved.status_code == 200, saved.content
    return len(read.captured_queries), len(save.captured_queries), pending, saved.json(), answers


def test_link_read_and_save_cost_the_same_whatever_the_number_of_questionnaires(
    participant, baseline, alice, api, in_window
):
    # The visit's two self-report questionnaires (PCL-5, SCS: 46 items).
    _link, token = services.link_issue(visit=baseline, by=alice)
    small_read, small_save, small, saved, answers = _link_costs(api, token)
    assert [a["instrument"] for a in small] == ["PCL5", "SCS"]
    assert [a["instrument"] for a in saved["administrations"]] == ["PCL5", "SCS"]
    assert [a["answers"] for a in saved["administrations"]] == [answers["PCL5"], answers["SCS"]]
    assert small_read <= 4
    assert small_save <= 11

    # Two more (SCS-SF, LSAS-SR: 60 more items), saved together: the same number of queries.
    _add_questionnaires(baseline, alice, ["SCS_SF", "LSAS_SR"])
    _link2, token2 = services.link_issue(visit=baseline, by=alice)
    large_read, large_save, large, saved, answers = _link_costs(api, token2)
    assert [a["instrument"] for a in large] == ["PCL5", "SCS", "SCS_SF", "LSAS_SR"]
    assert sum(len(a["items"]) for a in large) > sum(len(a["items"]) for a in small) + 50
    assert (large_read, large_save) == (small_read, small_save)
    # The database: each questionnaire's draft saved, in progress, with one audit row for the save.
    for code, draft in answers.items():
        adm = Administration.objects.get(visit=baseline, instrument_code=code)
        assert {k: v for k, v in adm.draft_answers.items() if k in draft} == draft
        assert adm.status == Administration.Status.IN_PROGRESS
    assert AuditEvent.objects.filter(entity_type="draft_answers", entity_id=str(_link2.pk)).count() == 1
