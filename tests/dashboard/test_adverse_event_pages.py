"""The adverse-event pages: the log with its filters and paging, an event's page with its history, the forms that
record, correct, follow up and review (each checked in the database and the audit trail), and the summary per arm
for unblinded roles only."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from participants.models import Study
from safety import services
from safety.models import AdverseEvent, AdverseEventFollowUp, AdverseEventReview
from tests.factories import staff
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 5, 18, 0, tzinfo=dt.UTC)  # 10:00 in Portland
LOG = "/adverse-events/"


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def participant(make_participant):
    return make_participant("randomized")


@pytest.fixture
def investigator(pdx):
    return staff("ivy", Role.INVESTIGATOR, pdx)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def record(participant, by, **extra):
    values = {
        "participant": participant,
        "verbatim_term": "headache",
        "onset_at": NOW - dt.timedelta(hours=3),
        "severity_grade": 1,
        "relatedness_drug": "possible",
        "relatedness_therapy": "not_related",
        "expectedness": "expected",
        "action_taken": "dose_not_changed",
        "outcome": "recovered",
        **extra,
    }
    with transaction.atomic():
        return services.adverse_event_record(by=by, **values)


def form_body(who, **extra):
    return {
        "participant": who.participant_id,
        "verbatim_term": "dizzy and faint after the session",
        "coded_term_code": "10013573",
        "coded_term_text": "Dizziness",
        "onset_at": "2026-03-05T08:15",
        "resolved_at": "",
        "severity_grade": "3",
        "seriousness": ["serious_important_medical_event"],
        "aesi_categories": ["cardiovascular"],
        "relatedness_drug": "probable",
        "relatedness_therapy": "unlikely",
        "expectedness": "unexpected",
        "action_taken": "dose_not_changed",
        "outcome": "recovering",
        **extra,
    }


def test_recording_through_the_form_stores_the_event_in_the_sites_time(participant, alice):
    client = client_for(alice)
    page = client.get(f"/adverse-events/new/?participant={participant.participant_id}")
    assert page.status_code == 200 and b"Record the event" in page.content
    r = client.post("/adverse-events/new/", form_body(participant))
    event = AdverseEvent.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("dashboard-adverse-event", args=[event.pk])
    assert event.participant == participant and event.verbatim_term == "dizzy and faint after the session"
    assert event.onset_at == dt.datetime(2026, 3, 5, 16, 15, tzinfo=dt.UTC)  # 08:15 in Portland (PST)
    assert event.serious and event.serious_important_medical_event and event.aesi_categories == ["cardiovascular"]
    assert event.reporting_due_at == NOW + dt.timedelta(hours=24) and event.recorded_by == alice
    assert AuditEvent.objects.filter(entity_type="adverse_event", entity_id=str(event.pk), action="create").exists()
    detail = client.get(r["Location"])
    assert b"dizzy and faint after the session" in detail.content and b"Due by 2026-03-06 10:00" in detail.content


def test_bad_input_re_renders_the_form_with_a_message_per_field_and_saves_nothing(participant, alice):
    client = client_for(alice)
    r = client.post(
        "/adverse-events/new/",
        form_body(participant, verbatim_term="", severity_grade="9", onset_at="2026-03-09T10:00", outcome="bogus"),
    )
    assert r.status_code == 400
    body = r.content.decode()
    assert "Nothing was saved." in body and "Select a valid choice" in body and "This field is required" in body
    r = client.post("/adverse-events/new/", form_body(participant, onset_at="2026-03-09T10:00"))
    assert r.status_code == 400 and "cannot be in the future" in r.content.decode()
    r = client.post("/adverse-events/new/", form_body(participant, participant="MAP-PDX-999"))
    assert r.status_code == 400 and "No such participant at your sites." in r.content.decode()
    assert not AdverseEvent.objects.exists()


def test_a_rater_may_not_record(participant, personas):
    r = client_for(personas["rater"]).get("/adverse-events/new/")
    assert r.status_code == 403 and b'<form method="post"' not in r.content
    r = client_for(personas["rater"]).post("/adverse-events/new/", form_body(participant))
    assert r.status_code == 403 and not AdverseEvent.objects.exists()


def test_the_log_lists_the_sites_events_with_its_filters(participant, make_participant, alice, nyc, investigator):
    serious = record(
        participant,
        alice,
        verbatim_term="chest pain",
        seriousness=frozenset({"serious_hospitalisation"}),
        severity_grade=3,
    )
    aesi = record(participant, alice, verbatim_term="dissociated", aesi_categories=["dissociation"])
    other = make_participant("randomized")
    plain = record(other, alice, verbatim_term="nausea")
    bob = staff("bob-nyc", Role.COORDINATOR, nyc)
    record(make_participant("randomized", site=nyc, by=bob), bob, verbatim_term="elsewhere")
    with transaction.atomic():
        services.adverse_event_review(
            event=aesi, causality_drug="possible", causality_therapy="unlikely", by=investigator
        )
    client = client_for(alice)

    def listed(query: str = "") -> set[str]:
        r = client.get(LOG + query)
        assert r.status_code == 200
        body = r.content.decode()
        assert "elsewhere" not in body
        return {term for term in ("chest pain", "dissociated", "nausea") if term in body}

    assert listed() == {"chest pain", "dissociated", "nausea"}
    assert listed("?serious=yes") == {"chest pain"}
    assert listed("?aesi=yes") == {"dissociated"}
    assert listed("?clock=unreviewed") == {"chest pain", "nausea"}
    assert listed(f"?participant={other.participant_id}") == {"nausea"}
    assert listed("?clock=overdue") == set()
    # The clock ran out an hour ago (moved on the row: a 25-hour jump would also end the session).
    AdverseEvent.objects.filter(pk=serious.pk).update(reporting_due_at=NOW - dt.timedelta(hours=1))
    assert listed("?clock=overdue") == {"chest pain"}
    assert "Overdue" in client.get(LOG).content.decode()
    r = client.get(LOG + "?clock=soon")
    assert r.status_code == 400 and "Select a valid choice" in r.content.decode()
    assert {serious.pk, aesi.pk, plain.pk} <= set(AdverseEvent.objects.values_list("pk", flat=True))


def test_the_log_pages_at_a_constant_query_count(participant, alice, monkeypatch):
    monkeypatch.setattr("dashboard.adverse_events.PAGE_SIZE", 5)
    client = client_for(alice)
    for n in range(3):
        record(participant, alice, verbatim_term=f"event {n}")
    client.get(LOG)
    with CaptureQueriesContext(connection) as few:
        assert client.get(LOG).status_code == 200
    for n in range(3, 12):
        record(participant, alice, verbatim_term=f"event {n}")
    with CaptureQueriesContext(connection) as many:
        r = client.get(LOG)
    assert len(many.captured_queries) == len(few.captured_queries)
    body = r.content.decode()
    assert "12 events" in body and "Page 1 of 3" in body and "event 11" in body and "event 6" not in body
    r = client.get(LOG + "?page=3")
    assert "event 0" in r.content.decode() and "event 2" not in r.content.decode()


def test_a_rater_of_a_study_hiding_safety_data_sees_no_event(participant, alice, personas, study):
    event = record(participant, alice, verbatim_term="chest pain")
    rater = client_for(personas["rater"])
    assert study.hides_safety_from_raters
    assert "chest pain" not in rater.get(LOG).content.decode()
    for path in ("", "correct/", "follow-up/", "review/"):
        assert rater.get(f"/adverse-events/{event.pk}/{path}").status_code == 404
    assert rater.post(f"/adverse-events/{event.pk}/follow-up/", {"note": "x"}).status_code == 404
    assert not AdverseEventFollowUp.objects.exists()
    Study.objects.filter(pk=study.pk).update(safety_hidden_from_raters=False)
    assert "chest pain" in rater.get(LOG).content.decode()


def test_another_sites_event_is_404(participant, alice, bob):
    event = record(participant, alice)
    assert client_for(bob).get(f"/adverse-events/{event.pk}/").status_code == 404
    assert client_for(bob).post(f"/adverse-events/{event.pk}/correct/", {"reason": "x"}).status_code == 404


def test_correction_follow_up_and_review_through_the_forms_and_the_history(participant, alice, investigator, clock):
    event = record(participant, alice, verbatim_term="headache", aesi_categories=["cardiovascular"])
    client = client_for(alice)
    clock.shift(dt.timedelta(minutes=5))
    page = client.get(f"/adverse-events/{event.pk}/correct/")
    assert page.status_code == 200 and b'value="headache"' in page.content
    body = form_body(participant, verbatim_term="headache", severity_grade="2", seriousness=[], reason="")
    body.pop("participant")
    body.update(coded_term_code="", coded_term_text="", onset_at="2026-03-05T07:00", relatedness_drug="possible",
                relatedness_therapy="not_related", expectedness="expected", outcome="recovered")  # fmt: skip
    r = client.post(f"/adverse-events/{event.pk}/correct/", body)
    assert r.status_code == 400 and "Give a reason" in r.content.decode()
    assert AdverseEvent.objects.get(pk=event.pk).severity_grade == 1
    r = client.post(f"/adverse-events/{event.pk}/correct/", body | {"reason": "grade misread from the notes"})
    assert r.status_code == 302
    event.refresh_from_db()
    assert event.severity_grade == 2
    change = AuditEvent.objects.get(
        entity_type="adverse_event", entity_id=str(event.pk), field="severity_grade", action="update"
    )
    assert (change.old_value, change.new_value, change.reason) == (1, 2, "grade misread from the notes")

    clock.shift(dt.timedelta(minutes=5))
    r = client.post(
        f"/adverse-events/{event.pk}/follow-up/",
        {"note": "feeling better", "outcome": "recovered", "resolved_at": "2026-03-05T09:30"},
    )
    assert r.status_code == 302
    assert AdverseEventFollowUp.objects.get(event=event).note == "feeling better"
    event.refresh_from_db()
    assert event.resolved_at == dt.datetime(2026, 3, 5, 17, 30, tzinfo=dt.UTC)

    refused = client.get(f"/adverse-events/{event.pk}/review/")
    assert refused.status_code == 403 and b"only an investigator" in refused.content
    assert client.post(f"/adverse-events/{event.pk}/review/", {"causality_drug": "possible"}).status_code == 403
    ivy = client_for(investigator)
    clock.shift(dt.timedelta(minutes=5))
    r = ivy.post(
        f"/adverse-events/{event.pk}/review/",
        {"causality_drug": "probable", "causality_therapy": "not_related", "note": "as expected"},
    )
    assert r.status_code == 302
    review = AdverseEventReview.objects.get(event=event)
    assert review.reviewed_by == investigator and review.causality_drug == "probable"
    event.refresh_from_db()
    assert event.reviewed_at == NOW + dt.timedelta(minutes=15)

    detail = client.get(f"/adverse-events/{event.pk}/").content.decode()
    assert "severity_grade: 1 → 2" in detail and "Reason: grade misread from the notes" in detail
    assert "feeling better" in detail and "Causality, study drug: Probably related" in detail
    assert detail.index("Recorded") < detail.index("grade misread") < detail.index("feeling better")
    review_link = f'href="/adverse-events/{event.pk}/review/"'
    assert review_link not in detail  # a coordinator is offered no review
    assert review_link in ivy.get(f"/adverse-events/{event.pk}/").content.decode()


def test_the_summary_page_shows_arms_to_unblinded_roles_and_pools_for_blinded_ones(participant, alice, personas):
    record(participant, alice, severity_grade=3, aesi_categories=["cardiovascular"])
    record(participant, alice)
    admin = client_for(personas["admin"]).get("/adverse-events/summary/?study=MAP")
    body = admin.content.decode()
    assert admin.status_code == 200 and "Per arm" in body and ("Mdma" in body or "Placebo" in body)
    assert "<svg" in body and 'id="pooled-any"' in body
    for role in ("coordinator", "investigator", "statistician", "therapist"):
        r = client_for(personas[role]).get("/adverse-events/summary/?study=MAP")
        text = r.content.decode()
        assert r.status_code == 200 and 'id="pooled-any"' in text, role
        row = text.split('id="pooled-any"')[1].split("</tr>")[0]
        assert [cell.split("<")[0] for cell in row.split('class="num">')[1:]] == ["1", "2", "1", "0"], role
        # The arms' labels and codes (the study's title names the drug, so the code is looked for as a word).
        assert "Mdma" not in text and "placebo" not in text.lower() and "Per arm" not in text, role
        assert ">mdma<" not in text and '"mdma"' not in text and "randomized)" not in text, role
    rater = client_for(personas["rater"]).get("/adverse-events/summary/?study=MAP")
    assert rater.status_code == 200 and "No adverse event of this study" in rater.content.decode()
    assert AdverseEvent.objects.filter(participant=participant).count() == 2
