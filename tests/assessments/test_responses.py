"""Staff entry, stored scores at full precision, validation, corrections, rescoring, instrument loading and checks."""

from __future__ import annotations

import copy
import json
from fractions import Fraction

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from assessments import library, windows
from assessments.checks import check_instruments, check_protocol_instruments
from assessments.definitions import load_shipped_instruments
from assessments.models import Administration, Answer, InstrumentVersion, Response, Score
from assessments.scoring import score
from audit.models import AuditEvent
from scheduling.models import Visit

pytestmark = pytest.mark.django_db

SHIPPED = load_shipped_instruments()


def scs_answers_total_11_3() -> dict[str, int]:
    """SK = CH = MI = 4, SJ = 2, IS = OI = 3: the total (Neff) is (4+4+4+4+3+3)/6 = 11/3, which has no exact float."""
    inst = SHIPPED["SCS"]
    answers = {}
    for scale, value in [
        ("self_kindness", 4),
        ("common_humanity", 4),
        ("mindfulness", 4),
        ("self_judgment", 2),
        ("isolation", 3),
        ("over_identification", 3),
    ]:
        for code in inst.scale(scale).items:
            answers[code] = value
    return answers


def pcl5(total_each: int) -> dict[str, int]:
    return {f"PCL5_{i:02d}": total_each for i in range(1, 21)}


def post(client, participant, visit, instrument, answers):
    return client.post(
        "/api/v1/responses/",
        {
            "participant_id": participant.participant_id,
            "visit_id": visit.pk,
            "instrument": instrument,
            "answers": answers,
        },
        format="json",
    )


def test_stored_scores_equal_the_engine_at_full_precision(participant, baseline, alice, api):
    answers = scs_answers_total_11_3()
    r = post(api(alice), participant, baseline, "SCS", answers)
    assert r.status_code == 201, r.content
    expected = score(SHIPPED["SCS"], answers)
    assert r.json()["scores"]["total"] == 11 / 3
    response = Response.objects.get(pk=r.json()["id"])
    stored = {s.code: s for s in Score.objects.filter(response=response, kind="scale")}
    for code, scale in expected.scales.items():
        assert stored[code].value == scale.value  # exact float equality, read back from double precision
        assert stored[code].method == scale.method
        assert stored[code].scoring_version == expected.scoring_version
        assert stored[code].instrument_version == "1.0"
    assert Fraction(stored["total"].value) == Fraction(11 / 3)
    assert stored["total"].method == "neff_mean_of_subscale_means"
    # Raw answers are the record, one queryable row per item.
    assert Answer.objects.filter(response=response, item_code="SCS_05").get().value == 4
    assert response.answers.count() == 26
    assert Administration.objects.get(visit=baseline, instrument_code="SCS").status == "completed"


def test_clinician_instrument_only_by_the_roles_the_definition_allows(participant, baseline, personas, api):
    answers = {f"CAPS5_{i:02d}": 2 for i in range(1, 21)} | {
        "CAPS5_CRIT_A": 1,
        "CAPS5_DUR": 1,
        "CAPS5_DISTRESS": 1,
        "CAPS5_DEPERS": 0,
        "CAPS5_DEREAL": 0,
    }
    r = post(api(personas["therapist"]), participant, baseline, "CAPS5", answers)
    assert r.status_code == 403
    assert not Response.objects.exists()
    r = post(api(personas["rater"]), participant, baseline, "CAPS5", answers)
    assert r.status_code == 201, r.content
    assert r.json()["scores"]["total"] == 40.0
    assert r.json()["flags"]["ptsd_diagnosis"] == 1.0
    assert "arm" not in json.dumps(r.json())


def test_staff_outside_the_site_get_404(participant, baseline, bob, api):
    r = post(api(bob), participant, baseline, "PCL5", pcl5(1))
    assert r.status_code == 404
    assert not Response.objects.exists()


def test_incomplete_staff_entry_is_refused_with_the_missing_items(participant, baseline, alice, api):
    answers = pcl5(1)
    del answers["PCL5_07"], answers["PCL5_20"]
    r = post(api(alice), participant, baseline, "PCL5", answers)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "incomplete"
    assert body["PCL5_07"] == ["required item not answered"] and body["PCL5_20"] == ["required item not answered"]
    assert not Response.objects.exists() and not Score.objects.exists()


def test_invalid_answers_name_each_item(participant, baseline, personas, api):
    answers = pcl5(1) | {"PCL5_99": 1, "PCL5_01": 7, "PCL5_02": "3", "PCL5_03": True}
    r = post(api(personas["coordinator"]), participant, baseline, "PCL5", answers)
    assert r.status_code == 400
    body = r.json()
    assert "unknown item code" in body["PCL5_99"][0]
    assert "not an option" in body["PCL5_01"][0]
    assert "wrong type" in body["PCL5_02"][0] and "wrong type" in body["PCL5_03"][0]
    # Branching: CSSRS_3 is shown only when CSSRS_2 = 1.
    cssrs = {"CSSRS_1": 0, "CSSRS_2": 0, "CSSRS_3": 1, "CSSRS_6": 0}
    r = post(api(personas["rater"]), participant, baseline, "CSSRS_SCREEN", cssrs)
    assert r.status_code == 400
    assert "hidden by branching" in r.json()["CSSRS_3"][0]
    assert not Response.objects.exists()


def test_second_entry_is_a_conflict(participant, baseline, alice, api):
    assert post(api(alice), participant, baseline, "PCL5", pcl5(1)).status_code == 201
    r = post(api(alice), participant, baseline, "PCL5", pcl5(2))
    assert r.status_code == 409
    assert Response.objects.count() == 1


def test_correction_needs_a_reason_and_keeps_the_earlier_value_in_the_audit(participant, baseline, alice, api):
    created = post(api(alice), participant, baseline, "PCL5", pcl5(1)).json()
    assert created["scores"]["total"] == 20.0
    url = f"/api/v1/responses/{created['id']}/"
    r = api(alice).patch(url, {"answers": {"PCL5_01": 4}}, format="json")
    assert r.status_code == 400 and "reason" in r.json()
    r = api(alice).patch(url, {"answers": {"PCL5_01": 4}, "reason": "transcription error"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["answers"]["PCL5_01"] == 4 and r.json()["scores"]["total"] == 23.0
    assert Answer.objects.get(response_id=created["id"], item_code="PCL5_01").value == 4
    event = AuditEvent.objects.get(entity_type="response", field="answers.PCL5_01", action="update")
    assert (event.old_value, event.new_value, event.reason) == (1, 4, "transcription error")
    score_event = AuditEvent.objects.get(entity_type="response_scores", field="scores.total")
    assert (score_event.old_value, score_event.new_value) == (20.0, 23.0)


def test_rescore_recomputes_and_audits(participant, baseline, alice, api):
    created = post(api(alice), participant, baseline, "SCS", scs_answers_total_11_3()).json()
    # Simulate a stored score from an earlier, faulty scoring version.
    Score.objects.filter(response_id=created["id"], code="total").update(value=3.5, scoring_version="0.9")
    call_command("rescore", "--reason", "scoring fix 1.0")
    total = Score.objects.get(response_id=created["id"], code="total")
    assert total.value == 11 / 3 and total.scoring_version == "1.0"
    event = AuditEvent.objects.get(entity_type="response_scores", field="scores.total")
    assert (event.old_value, event.new_value, event.reason) == (3.5, 11 / 3, "scoring fix 1.0")
    # Nothing left to fix: a second run changes nothing and writes no event.
    before = AuditEvent.objects.filter(entity_type="response_scores").count()
    call_command("rescore", "--reason", "again")
    assert AuditEvent.objects.filter(entity_type="response_scores").count() == before


def caps5(crit_a: int) -> dict[str, int]:
    # Minimum symptom counts (items 1, 6, 8, 9, 15, 16 at severity 2), duration and distress met.
    severities = dict.fromkeys(["CAPS5_01", "CAPS5_06", "CAPS5_08", "CAPS5_09", "CAPS5_15", "CAPS5_16"], 2)
    return (
        {f"CAPS5_{i:02d}": 0 for i in range(1, 21)}
        | severities
        | {
            "CAPS5_CRIT_A": crit_a,
            "CAPS5_DUR": 1,
            "CAPS5_DISTRESS": 1,
            "CAPS5_DEPERS": 0,
            "CAPS5_DEREAL": 0,
        }
    )


def test_caps5_responses_keep_the_version_they_were_scored_with(participant, baseline, personas, api):
    rater = api(personas["rater"])
    # A response stored under CAPS-5 1.0 (before criterion A): no CAPS5_CRIT_A answer, diagnosed by the 1.0 rule.
    created = post(rater, participant, baseline, "CAPS5", caps5(crit_a=0)).json()
    assert (created["instrument_version"], created["flags"]["ptsd_diagnosis"]) == ("1.1", 0.0)
    old = Response.objects.get(pk=created["id"])
    Response.objects.filter(pk=old.pk).update(instrument_version="1.0")
    Answer.objects.filter(response=old, item_code="CAPS5_CRIT_A").delete()
    Score.objects.filter(response=old).update(instrument_version="1.0")
    Score.objects.filter(response=old, code="ptsd_diagnosis").update(value=1.0)
    # A rescore recomputes with 1.0, the version the response was answered under: nothing changes, nothing audited.
    call_command("rescore", "--reason", "criterion A release")
    assert not AuditEvent.objects.filter(entity_type="response_scores").exists()
    assert Score.objects.get(response=old, code="ptsd_diagnosis").value == 1.0
    # A correction is made under 1.0 as well: criterion A is not demanded and the 1.0 rule still applies.
    r = rater.patch(f"/api/v1/responses/{old.pk}/", {"answers": {"CAPS5_02": 3}, "reason": "typo"}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["instrument_version"], r.json()["flags"]["ptsd_diagnosis"]) == ("1.0", 1.0)
    assert set(Score.objects.filter(response=old).values_list("instrument_version", flat=True)) == {"1.0"}
    assert "CAPS5_CRIT_A" not in r.json()["answers"]
    # New entries use 1.1, which refuses answers without criterion A and diagnoses only with it.
    endpoint = Visit.objects.get(participant=participant, code="ENDPOINT")
    without = caps5(crit_a=1)
    del without["CAPS5_CRIT_A"]
    refused = post(rater, participant, endpoint, "CAPS5", without)
    assert refused.status_code == 400 and refused.json()["CAPS5_CRIT_A"] == ["required item not answered"]
    new = post(rater, participant, endpoint, "CAPS5", caps5(crit_a=1)).json()
    assert (new["instrument_version"], new["flags"]["ptsd_diagnosis"]) == ("1.1", 1.0)
    assert Answer.objects.get(response_id=new["id"], item_code="CAPS5_CRIT_A").value == 1


def test_partial_answers_are_never_scored(participant, baseline, alice, api):
    r = post(api(alice), participant, baseline, "SCS", {"SCS_01": 3})
    assert r.status_code == 400
    assert not Score.objects.exists()


# --- instrument library -------------------------------------------------------------------------------------------


def _write(tmp_path, data, name="inst.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_load_instrument_stores_a_version_and_scoring_uses_it(tmp_path, participant, baseline, alice, api):
    data = copy.deepcopy(SHIPPED["PCL5"].raw)
    data["version"] = "1.1"
    data["items"][0]["text"] = "Site-supplied wording of item 1"
    call_command("load_instrument", str(_write(tmp_path, data)))
    row = InstrumentVersion.objects.get(code="PCL5")
    assert row.version == "1.1" and row.source == "inst.json"
    assert library.instrument_get("PCL5").items[0].text == "Site-supplied wording of item 1"
    r = post(api(alice), participant, baseline, "PCL5", pcl5(1))
    assert r.json()["instrument_version"] == "1.1"
    assert set(Score.objects.values_list("instrument_version", flat=True)) == {"1.1"}
    detail = api(alice).get("/api/v1/instruments/PCL5/").json()
    assert detail["version"] == "1.1" and detail["items"][0]["text"] == "Site-supplied wording of item 1"


def test_invalid_instrument_file_loads_nothing_and_names_the_path(tmp_path):
    data = copy.deepcopy(SHIPPED["SCS"].raw)
    data["version"] = "1.1"
    data["scales"][0]["items"][2] = "SCS_99"
    with pytest.raises(CommandError) as exc:
        call_command("load_instrument", str(_write(tmp_path, data)))
    assert "scales[0].items[2]: unknown item 'SCS_99'" in str(exc.value)
    assert not InstrumentVersion.objects.exists()
    # Codes are a contract: a site file may change wording, never item codes.
    data = copy.deepcopy(SHIPPED["SCS"].raw)
    data["version"] = "1.2"
    data["items"][0]["code"] = "SCS_X1"
    for scale in data["scales"]:
        if "items" in scale:
            scale["items"] = ["SCS_X1" if c == "SCS_01" else c for c in scale["items"]]
        if "reversed" in scale:
            scale["reversed"] = ["SCS_X1" if c == "SCS_01" else c for c in scale["reversed"]]
    with pytest.raises(CommandError) as exc:
        call_command("load_instrument", str(_write(tmp_path, data)))
    assert "items: item codes must be exactly those of SCS" in str(exc.value)
    assert not InstrumentVersion.objects.exists()


def test_system_checks_pass_and_name_a_missing_instrument():
    assert check_instruments() == []
    library = {code: inst for code, inst in SHIPPED.items() if code != "SCS"}
    errors = check_protocol_instruments(library)
    assert errors and {e.id for e in errors} == {"assessments.E003"}
    assert any("visit BASELINE: instrument 'SCS' is not in the instrument library" in e.msg for e in errors)


def test_shipped_instrument_error_is_e001(monkeypatch):
    monkeypatch.setattr("assessments.checks.check_shipped_instruments", lambda: ["X.json: code: broken"])
    errors = check_instruments()
    assert [(e.id, e.msg) for e in errors] == [("assessments.E001", "X.json: code: broken")]


def test_instruments_api_lists_definitions_with_scales(alice, api):
    body = api(alice).get("/api/v1/instruments/").json()
    codes = [i["code"] for i in body]
    assert codes == sorted(SHIPPED)
    scs = next(i for i in body if i["code"] == "SCS")
    assert {s["code"] for s in scs["scales"]} >= {"self_kindness", "total", "cs", "ucs"}
    detail = api(alice).get("/api/v1/instruments/CSSRS_SCREEN/").json()
    assert detail["respondent"] == "clinician" and len(detail["items"]) == 7
    assert detail["items"][2]["show_if"] == {"item": "CSSRS_2", "equals": 1}
    assert api(alice).get("/api/v1/instruments/NOPE/").status_code == 404
    assert api().get("/api/v1/instruments/").status_code in (401, 403)


# --- administrations ----------------------------------------------------------------------------------------------


def test_visits_become_due_administrations_with_windows_in_local_time(participant, baseline, alice, api):
    rows = {a.instrument_code: a for a in Administration.objects.filter(visit=baseline)}
    assert set(rows) == {"CAPS5", "PCL5", "SCS"}
    assert rows["PCL5"].respondent == "self" and rows["CAPS5"].respondent == "clinician"
    pcl = rows["PCL5"]
    local_open = pcl.opens_at.astimezone(__import__("zoneinfo").ZoneInfo("America/Los_Angeles"))
    local_close = pcl.closes_at.astimezone(__import__("zoneinfo").ZoneInfo("America/Los_Angeles"))
    assert (local_open.date(), local_open.time().isoformat()) == (baseline.window_start, "00:00:00")
    assert (local_close.date(), local_close.time().isoformat()) == (baseline.window_end, "23:59:59.999999")
    assert pcl.status == "due"
    body = api(alice).get(f"/api/v1/visits/{baseline.pk}/administrations/").json()
    assert {a["instrument"]: a["status"] for a in body} == {"CAPS5": "due", "PCL5": "due", "SCS": "due"}
    # Every visit with instruments has them; visits without instruments have none.
    assert Administration.objects.filter(visit__code="PREP1").count() == 0
    assert Administration.objects.filter(visit__code="SCREEN").count() == 2


def test_statuses_expire_and_cancelled_visit_is_not_applicable(participant, baseline, alice, api):
    import datetime as dt

    import time_machine

    from scheduling.services import visit_cancel

    pcl = Administration.objects.get(visit=baseline, instrument_code="PCL5")
    with time_machine.travel(pcl.closes_at + dt.timedelta(seconds=1)):
        body = api(alice).get(f"/api/v1/visits/{baseline.pk}/administrations/").json()
    statuses = {a["instrument"]: a["status"] for a in body}
    assert statuses == {"PCL5": "expired", "SCS": "expired", "CAPS5": "due"}  # clinician ratings do not expire
    endpoint = Visit.objects.get(code="ENDPOINT", participant=participant)
    visit_cancel(visit=endpoint, reason="participant moved away", by=alice)
    assert set(Administration.objects.filter(visit__code="ENDPOINT").values_list("status", flat=True)) == {
        "not_applicable"
    }


def test_coordinator_opens_a_questionnaire_early(participant, baseline, alice, personas, api):
    pcl = Administration.objects.get(visit=baseline, instrument_code="PCL5")
    assert api(personas["rater"]).post(f"/api/v1/administrations/{pcl.pk}/open/").status_code == 403
    r = api(alice).post(f"/api/v1/administrations/{pcl.pk}/open/", {"reason": "travel"}, format="json")
    assert r.status_code == 200
    pcl.refresh_from_db()
    assert pcl.opened_early_at is not None and pcl.opens_at == pcl.opened_early_at
    assert windows.is_open(pcl, pcl.opens_at)
    assert AuditEvent.objects.filter(entity_type="administration", field="opens_at").exists()
