"""Status rules, consent and eligibility through the API: refused requests answer 400 and change nothing."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import AuditEvent
from participants import services
from participants.models import ConsentRecord, Participant

pytestmark = pytest.mark.django_db


def snapshot(participant):
    p = Participant.objects.get(pk=participant.pk)
    return (
        p.status,
        p.enrolled_at,
        p.randomized_at,
        p.needs_reconsent,
        AuditEvent.objects.count(),
        ConsentRecord.objects.filter(participant=p).count(),
    )


def test_illegal_transition_answers_400_naming_both_statuses(api, alice, make_participant):
    participant = make_participant("screening")
    before = snapshot(participant)
    response = api(alice).patch(
        f"/api/v1/participants/{participant.participant_id}/", {"status": "completed", "reason": "typo"}, format="json"
    )
    assert response.status_code == 400
    assert "screening" in response.json()["detail"] and "completed" in response.json()["detail"]
    assert snapshot(participant) == before


def test_randomize_before_enrollment_is_refused(api, alice, make_participant):
    participant = make_participant("consented")
    before = snapshot(participant)
    response = api(alice).post(f"/api/v1/participants/{participant.participant_id}/randomize/", {}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_transition"
    assert "'consented'" in body["detail"] and "'randomized'" in body["detail"]
    assert snapshot(participant) == before


def test_enroll_without_consent_is_refused(api, alice, study, pdx):
    with transaction.atomic():
        participant = services.participant_create(study=study, site=pdx, by=alice)
        services.eligibility_record(participant=participant, answers={"INC_AGE": True, "EXC_PREG": False}, by=alice)
    # Eligible but never consented: enrolled is not even a legal next status.
    before = snapshot(participant)
    response = api(alice).post(f"/api/v1/participants/{participant.participant_id}/enroll/", {}, format="json")
    assert response.status_code == 400
    assert "'eligible'" in response.json()["detail"]
    assert snapshot(participant) == before


def test_enroll_with_outdated_consent_version_is_refused(api, alice, study, make_participant):
    participant = make_participant("consented")
    with transaction.atomic():
        services.consent_document_publish(study=study, version="2.0", title="Amended consent", by=alice)
    participant.refresh_from_db()
    assert participant.needs_reconsent is True
    before = snapshot(participant)
    response = api(alice).post(f"/api/v1/participants/{participant.participant_id}/enroll/", {}, format="json")
    assert response.status_code == 400
    assert "version 1.0" in response.json()["detail"] and "2.0" in response.json()["detail"]
    assert snapshot(participant) == before

    # Consent on the outdated version is refused too, and consent on the current one unlocks enrollment.
    response = api(alice).post(
        f"/api/v1/participants/{participant.participant_id}/consent/",
        {"version": "1.0", "signed_at": "2026-01-05T10:00:00Z"},
        format="json",
    )
    assert response.status_code == 400 and "outdated" in response.json()["detail"]
    assert snapshot(participant) == before
    response = api(alice).post(
        f"/api/v1/participants/{participant.participant_id}/consent/",
        {"version": "2.0", "signed_at": "2026-01-05T10:00:00Z"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["consent_version"] == "2.0" and response.json()["needs_reconsent"] is False
    response = api(alice).post(f"/api/v1/participants/{participant.participant_id}/enroll/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "enrolled"
    assert Participant.objects.get(pk=participant.pk).status == "enrolled"


def test_full_happy_path_through_the_api(api, alice, study, pdx):
    client = api(alice)
    response = client.post(
        "/api/v1/participants/",
        {
            "study": "MAP",
            "site": "PDX",
            "contact": {
                "full_name": "Ana Example",
                "email": "ana@example.org",
                "preferred_channel": "email",
                "language": "es",
                "time_zone": "America/Los_Angeles",
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    pid = response.json()["participant_id"]
    assert pid == "MAP-PDX-001" and response.json()["status"] == "screening"
    assert response.json()["contact"]["language"] == "es"

    response = client.post(
        f"/api/v1/participants/{pid}/eligibility/", {"answers": {"INC_AGE": True, "EXC_PREG": False}}, format="json"
    )
    assert response.json()["status"] == "eligible" and response.json()["eligibility_verdict"] is True
    response = client.post(
        f"/api/v1/participants/{pid}/consent/", {"version": "1.0", "signed_at": "2026-01-05T10:00:00Z"}, format="json"
    )
    assert response.json()["status"] == "consented"
    response = client.post(f"/api/v1/participants/{pid}/enroll/", {}, format="json")
    assert response.json()["status"] == "enrolled"
    response = client.post(f"/api/v1/participants/{pid}/randomize/", {}, format="json")
    body = response.json()
    assert body["status"] == "randomized" and body["allocated"] is True
    assert "arm" not in body  # MAP is double-blind: a coordinator does not see the arm
    participant = Participant.objects.get(participant_id=pid)
    assert participant.allocation.sequence == 1 and participant.stratum == "PDX"

    response = client.post(
        f"/api/v1/participants/{pid}/withdraw/",
        {"level": "stop_contact", "reason": "Asked to stop calls", "date": "2026-02-01"},
        format="json",
    )
    assert response.json()["status"] == "withdrawn" and response.json()["withdrawal_level"] == "stop_contact"
    participant.refresh_from_db()
    assert participant.withdrawal_reason == "Asked to stop calls"
    assert str(participant.withdrawal_date) == "2026-02-01"


def test_eligibility_failure_and_override_needs_reason(api, alice, study, pdx):
    with transaction.atomic():
        participant = services.participant_create(study=study, site=pdx, by=alice)
    url = f"/api/v1/participants/{participant.participant_id}/eligibility/"
    client = api(alice)
    response = client.post(url, {"answers": {"INC_AGE": True, "EXC_PREG": True}}, format="json")
    assert response.json()["status"] == "screen_failed" and response.json()["eligibility_verdict"] is False

    events_before = AuditEvent.objects.count()
    response = client.post(url, {"answers": {}, "override": True}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    assert AuditEvent.objects.count() == events_before
    assert Participant.objects.get(pk=participant.pk).status == "screen_failed"

    response = client.post(
        url, {"answers": {}, "override": True, "reason": "PI judged pregnancy test false positive"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "eligible" and response.json()["eligibility_override"] is True
    participant.refresh_from_db()
    assert participant.eligibility_override_reason == "PI judged pregnancy test false positive"


def test_bad_input_answers_field_messages(api, alice, make_participant):
    participant = make_participant("screening")
    client = api(alice)
    response = client.post(
        "/api/v1/participants/",
        {"study": "MAP", "site": "PDX", "contact": {"email": "not-an-email", "time_zone": "Mars/Olympus"}},
        format="json",
    )
    assert response.status_code == 400
    assert "email" in response.json()["contact"] and "time_zone" in response.json()["contact"]
    response = client.post(
        f"/api/v1/participants/{participant.participant_id}/withdraw/",
        {"level": "vanish", "date": "soon"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) >= {"level", "reason", "date"}
    assert Participant.objects.get(pk=participant.pk).status == "screening"
    response = client.post(
        f"/api/v1/participants/{participant.participant_id}/eligibility/", {"answers": {"NOPE": True}}, format="json"
    )
    assert response.status_code == 400 and "NOPE" in response.json()


def test_changing_contact_details_needs_reason_and_keeps_old_value(api, alice, make_participant):
    participant = make_participant("screening")
    url = f"/api/v1/participants/{participant.participant_id}/"
    response = api(alice).patch(url, {"contact": {"email": "new@example.org"}}, format="json")
    assert response.status_code == 400 and response.json()["reason"] == ["required"]
    response = api(alice).patch(
        url, {"contact": {"email": "new@example.org"}, "reason": "participant moved"}, format="json"
    )
    assert response.status_code == 200 and response.json()["contact"]["email"] == "new@example.org"
    event = AuditEvent.objects.get(field="email", action="update")
    assert (event.old_value, event.new_value, event.reason) == (
        "person@example.org",
        "new@example.org",
        "participant moved",
    )
