"""Roles exactly as documented (issue 13, finding 11): a clinician rating is corrected by the clinician who entered
it or an investigator, never by another entry role; and a participant's draft saves through a link are audited
(finding 12)."""

from __future__ import annotations

import pytest

from assessments.models import Answer, Response
from audit.models import AuditEvent
from tests.conftest import changed_tables, table_state
from tests.factories import staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

CSSRS = {"CSSRS_1": 0, "CSSRS_2": 0, "CSSRS_6": 0}


def enter(client, participant, visit):
    r = client.post(
        "/api/v1/responses/",
        {
            "participant_id": participant.participant_id,
            "visit_id": visit.pk,
            "instrument": "CSSRS_SCREEN",
            "answers": CSSRS,
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    return r.json()["id"]


def correct(client, response_id, value, reason="transcription error"):
    return client.patch(
        f"/api/v1/responses/{response_id}/", {"answers": {"CSSRS_1": value}, "reason": reason}, format="json"
    )


def test_a_therapist_cannot_correct_an_investigators_cssrs_entry(participant, baseline, personas, api, pdx):
    response_id = enter(api(personas["investigator"]), participant, baseline)
    before = table_state()
    for role in ("therapist", "rater", "coordinator"):
        r = correct(api(personas[role]), response_id, 1)
        assert r.status_code == 403, (role, r.content)
        assert r.json()["detail"] == (
            "CSSRS_SCREEN is a clinician rating: it may be corrected only by the clinician who entered it or an "
            "investigator of the site"
        )
    assert changed_tables(before, table_state()) == []
    assert Answer.objects.get(response_id=response_id, item_code="CSSRS_1").value == 0
    # The investigator who entered it corrects it.
    r = correct(api(personas["investigator"]), response_id, 1)
    assert r.status_code == 200, r.content
    assert r.json()["answers"]["CSSRS_1"] == 1
    event = AuditEvent.objects.get(entity_type="response", field="answers.CSSRS_1", action="update")
    assert (event.old_value, event.new_value, event.actor_username) == (0, 1, "investigator-pdx")


def test_a_therapists_own_rating_is_corrected_by_them_or_an_investigator(participant, baseline, personas, api, pdx):
    other = staff("other-therapist", Role.THERAPIST, pdx)
    response_id = enter(api(personas["therapist"]), participant, baseline)
    assert Response.objects.get(pk=response_id).entered_by == personas["therapist"]
    before = table_state()
    r = correct(api(other), response_id, 1)
    assert r.status_code == 403 and "clinician who entered it" in r.json()["detail"]
    assert changed_tables(before, table_state()) == []
    r = correct(api(personas["therapist"]), response_id, 1)
    assert r.status_code == 200 and r.json()["answers"]["CSSRS_1"] == 1
    r = correct(api(personas["investigator"]), response_id, 0, reason="source document says no")
    assert r.status_code == 200 and r.json()["answers"]["CSSRS_1"] == 0
    events = AuditEvent.objects.filter(entity_type="response", field="answers.CSSRS_1", action="update")
    assert [(e.old_value, e.new_value, e.actor_username) for e in events.order_by("id")] == [
        (0, 1, "therapist-pdx"),
        (1, 0, "investigator-pdx"),
    ]


def test_a_draft_save_through_a_link_is_audited_in_one_row(participant, baseline, alice, api, in_window):
    from assessments import services

    link, token = services.link_issue(visit=baseline, by=alice)
    url = f"/api/v1/links/{token}/"
    marker = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    r = api().put(url, {"answers": {"PCL5": {"PCL5_01": 3, "PCL5_02": 2}}}, format="json")
    assert r.status_code == 200 and r.json()["administrations"][0]["answers"] == {"PCL5_01": 3, "PCL5_02": 2}
    r = api().put(url, {"answers": {"PCL5": {"PCL5_02": 4, "PCL5_01": 3}}}, format="json")
    assert r.status_code == 200
    # Saving the same answers again changes nothing and writes nothing.
    assert api().put(url, {"answers": {"PCL5": {"PCL5_02": 4}}}, format="json").status_code == 200
    events = list(AuditEvent.objects.filter(id__gt=marker).order_by("id"))
    assert [
        (e.actor_id, e.actor_username, e.action, e.entity_type, e.entity_id, e.field, e.old_value, e.new_value)
        for e in events
    ] == [
        (
            None,
            "participant-link",
            "update",
            "draft_answers",
            str(link.pk),
            "draft_answers",
            {"PCL5": {"PCL5_01": None, "PCL5_02": None}},
            {"PCL5": {"PCL5_01": 3, "PCL5_02": 2}},
        ),
        (
            None,
            "participant-link",
            "update",
            "draft_answers",
            str(link.pk),
            "draft_answers",
            {"PCL5": {"PCL5_02": 2}},
            {"PCL5": {"PCL5_02": 4}},
        ),
    ]
    assert {(e.participant_id, e.site_code) for e in events} == {(participant.participant_id, "PDX")}
    # The token is never in the audit trail.
    assert not [e for e in events if token in str(e.old_value) + str(e.new_value) + e.entity_id + e.reason]
