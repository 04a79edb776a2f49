"""Investigator review (only an investigator at the event's site; the first review stops the clock) and blinding
(a blinded study hides adverse events from its independent raters: 404 and an empty list; never an arm)."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import AuditEvent
from participants import services as participant_services
from safety import services
from safety.models import AdverseEvent, AdverseEventReview
from tests.factories import staff
from tests.safety.conftest import mild_values, record
from trialsite.errors import PermissionDeniedError
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

REVIEW = {"causality_drug": "probable", "causality_therapy": "unlikely", "note": "consistent with known effects"}


def test_an_investigator_at_the_site_reviews_and_the_clock_stops(
    participant, alice, investigator, api, requested_tasks
):
    event = record(alice, **mild_values(participant, seriousness=frozenset({"serious_hospitalisation"})))
    r = api(investigator).post(f"/api/v1/adverse-events/{event.pk}/reviews/", REVIEW, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["reviewed_by"] == "ivy" and r.json()["causality_drug"] == "probable"
    event.refresh_from_db()
    assert event.reviewed_at is not None
    review = AdverseEventReview.objects.get()
    assert (review.event_id, review.reviewed_by, review.causality_therapy) == (event.pk, investigator, "unlikely")
    assert AuditEvent.objects.filter(entity_type="adverse_event_review", field="causality_drug").exists()
    # Reviewed in time: the clock's end passes without an escalation.
    assert services.adverse_events_escalate_due(event.reporting_due_at) == []
    # A later review is a further sign-off, kept beside the first; the first one's time stays.
    first = event.reviewed_at
    assert (
        api(investigator).post(f"/api/v1/adverse-events/{event.pk}/reviews/", REVIEW, format="json").status_code == 201
    )
    event.refresh_from_db()
    assert event.reviewed_at == first and AdverseEventReview.objects.count() == 2


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.ADMIN, Role.THERAPIST])
def test_only_the_investigator_role_reviews(participant, alice, personas, api, role, requested_tasks):
    event = record(alice, **mild_values(participant))
    r = api(personas[role]).post(f"/api/v1/adverse-events/{event.pk}/reviews/", REVIEW, format="json")
    assert r.status_code == 403 and "investigator" in r.json()["detail"]
    assert not AdverseEventReview.objects.exists() and AdverseEvent.objects.get().reviewed_at is None


def test_an_investigator_elsewhere_does_not_see_the_event(participant, alice, nyc, api, requested_tasks):
    elsewhere = staff("nina", Role.INVESTIGATOR, nyc)
    event = record(alice, **mild_values(participant))
    r = api(elsewhere).post(f"/api/v1/adverse-events/{event.pk}/reviews/", REVIEW, format="json")
    assert r.status_code == 404
    assert not AdverseEventReview.objects.exists()


def test_a_review_with_a_bad_causality_answers_400_per_field(participant, alice, investigator, api, requested_tasks):
    event = record(alice, **mild_values(participant))
    r = api(investigator).post(
        f"/api/v1/adverse-events/{event.pk}/reviews/", {"causality_drug": "surely", "causality_therapy": ""}
    )
    assert r.status_code == 400 and {"causality_drug", "causality_therapy"} <= set(r.json())
    assert not AdverseEventReview.objects.exists()


def test_the_review_service_refuses_a_superuser(participant, alice, requested_tasks):
    from tests.factories import UserFactory

    root = UserFactory(username="root", is_superuser=True)
    event = record(alice, **mild_values(participant))
    with pytest.raises(PermissionDeniedError), transaction.atomic():
        services.adverse_event_review(event=event, causality_drug="possible", causality_therapy="possible", by=root)


def test_a_blinded_studys_rater_sees_no_adverse_event(participant, alice, rater, api, study, requested_tasks):
    assert study.blinded and study.safety_hidden_from_raters is None
    event = record(alice, **mild_values(participant))
    client = api(rater)
    assert client.get(f"/api/v1/adverse-events/{event.pk}/").status_code == 404
    listed = client.get("/api/v1/adverse-events/")
    assert listed.status_code == 200 and listed.json()["count"] == 0 and listed.json()["results"] == []
    assert client.post(f"/api/v1/adverse-events/{event.pk}/follow-ups/", {"note": "x"}).status_code == 404
    # A rater who also holds another role at the site is still a rater there: the blinded role wins.
    staff("rita", Role.COORDINATOR, participant.site)
    assert api(rater).get("/api/v1/adverse-events/").json()["count"] == 0


def test_a_study_may_show_raters_its_adverse_events(participant, alice, rater, api, study, requested_tasks):
    with transaction.atomic():
        participant_services.study_update(
            study=study, by=None, reason="DSMB agreed raters may see AEs", safety_hidden_from_raters=False
        )
    event = record(alice, **mild_values(participant))
    r = api(rater).get(f"/api/v1/adverse-events/{event.pk}/")
    assert r.status_code == 200 and r.json()["id"] == event.pk
    assert "arm" not in r.json()
    assert AuditEvent.objects.filter(entity_type="study", field="safety_hidden_from_raters").exists()


def test_the_study_api_sets_the_medical_monitor(root_api, study):
    r = root_api.patch(
        f"/api/v1/studies/{study.code}/",
        {"medical_monitor_email": "not-an-address", "reason": "monitor appointed"},
        format="json",
    )
    assert r.status_code == 400 and "medical_monitor_email" in r.json()
    r = root_api.patch(
        f"/api/v1/studies/{study.code}/",
        {"medical_monitor_email": "mm@example.org", "medical_monitor_name": "Dr M", "reason": "monitor appointed"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["medical_monitor_email"] == "mm@example.org" and r.json()["hides_safety_from_raters"] is True
    study.refresh_from_db()
    assert study.medical_monitor_email == "mm@example.org"
    trail = AuditEvent.objects.get(entity_type="study", field="medical_monitor_email")
    assert (trail.old_value, trail.new_value, trail.reason) == ("", "mm@example.org", "monitor appointed")


@pytest.fixture
def root_api(api):
    from tests.factories import UserFactory

    return api(UserFactory(username="root", is_superuser=True))


def test_a_blinded_studys_rater_reads_a_history_without_safety_rows(
    participant, alice, rater, api, study, requested_tasks, client
):
    """The participant's history (API and page) leaves out every safety row for the rater: their number and order
    would tell of an event. Staff who may see safety data read them."""
    event = record(alice, **mild_values(participant, verbatim_term="SENTINEL-HEADACHE"))
    assert AuditEvent.objects.filter(entity_type="adverse_event", entity_id=str(event.pk)).exists()
    path = f"/api/v1/participants/{participant.participant_id}/history/"
    seen = api(rater).get(path)
    assert seen.status_code == 200 and seen.json()
    assert not [row for row in seen.json() if row["entity_type"].startswith("adverse_event")]
    assert b"SENTINEL-HEADACHE" not in seen.content
    full = api(alice).get(path).json()
    assert {"adverse_event"} <= {row["entity_type"] for row in full}
    client.force_login(rater)
    page = client.get(f"/participants/{participant.participant_id}/")
    assert page.status_code == 200 and b"SENTINEL-HEADACHE" not in page.content
    client.force_login(alice)
    assert b"SENTINEL-HEADACHE" in client.get(f"/participants/{participant.participant_id}/").content
