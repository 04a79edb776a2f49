"""The participant page's actions, through the test client as the roles that take them: each writes through the same
service as the API (the row and its audit event), shows the service's message when it refuses and then changes
nothing, asks a reason and a confirmation where it must, never hands a blinded role the arm, answers 404 for another
site's records, reads the time typed as the SITE's time, and the page's history is paged in a constant number of
queries."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assessments import services as assessment_services
from assessments.models import Administration, Answer, Response, Score
from audit.models import AuditEvent
from participants import services as participant_services
from participants.models import ConsentRecord, Participant
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.factories import staff
from tests.support import dbstate
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 20, 19, 0, tzinfo=dt.UTC)  # 12:00 in Portland (PDT), 15:00 in New York (EDT)
ARM_WORDS = ("mdma", "placebo")  # the test study's arm codes; their labels are the same words
PCL5_LOW = {f"PCL5_{i:02d}": 1 for i in range(1, 21)}  # item codes and values only; total 20


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


def participant(make_participant, to: str = "screening", **kwargs) -> Participant:
    return make_participant(to, **kwargs)


def randomized(make_participant, **kwargs) -> Participant:
    from scheduling.services import schedule_generate

    p = make_participant("randomized", **kwargs)
    if not Visit.objects.filter(participant=p).exists():
        with transaction.atomic():
            schedule_generate(participant=p, by=None)
    return p


def visit(p: Participant, code: str) -> Visit:
    return Visit.objects.get(participant=p, code=code)


def post(client, user, url: str, data: dict | None = None):
    client.force_login(user)
    return client.post(url, data or {})


def body(response) -> str:
    return response.content.decode()


def events(p: Participant, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(participant_id=p.participant_id, **filters).order_by("id"))


def follow(client, response) -> str:
    """The page a successful action redirects to, with its message."""
    assert response.status_code == 302, (response.status_code, body(response)[:2000])
    page = client.get(response["Location"])
    assert page.status_code == 200
    return body(page)


# --- creating a participant ---------------------------------------------------------------------------------------

NEW = {
    "site": "PDX",
    "study": "MAP",
    "stratum": "",
    "full_name": "New Person",
    "email": "new@example.org",
    "phone": "+1 503 555 0100",
    "preferred_channel": "sms",
    "time_zone": "",
    "language": "es",
}


def test_a_coordinator_creates_a_participant_at_their_site(client, alice, study, nyc):
    client.force_login(alice)
    form = body(client.get("/participants/new/"))
    assert '<option value="PDX">PDX · Site PDX</option>' in form and 'value="NYC"' not in form
    assert 'name="email"' in form  # a coordinator may enter contact details

    response = post(client, alice, "/participants/new/", NEW)
    created = Participant.objects.get(site__code="PDX")
    assert response["Location"] == f"/participants/{created.participant_id}/#summary"
    page = follow(client, response)
    assert f"Participant {created.participant_id} created." in page
    assert "<dd>New Person</dd>" in page
    assert created.status == "screening" and created.contact.phone == "+1 503 555 0100"
    assert created.contact.preferred_channel == "sms" and created.contact.language == "es"
    rows = events(created, action="create")
    assert {(e.field, e.new_value) for e in rows} >= {
        ("participant_id", created.participant_id),
        ("email", NEW["email"]),
    }
    assert {e.actor_username for e in rows} == {"alice"}


def test_creating_with_bad_input_keeps_what_was_typed_and_saves_nothing(client, alice, study):
    response = post(client, alice, "/participants/new/", {**NEW, "email": "not-an-address", "time_zone": "Mars/Base"})
    assert response.status_code == 400
    text = body(response)
    assert "Nothing was saved." in text and "Enter a valid email address." in text
    assert "Mars/Base" in text and 'value="New Person"' in text  # what was typed is kept
    # Another site's code is not a choice for alice.
    response = post(client, alice, "/participants/new/", {**NEW, "site": "NYC"})
    assert response.status_code == 400 and "Select a valid choice." in body(response)
    assert not Participant.objects.exists()


def test_a_role_that_may_not_create_gets_no_form(client, pdx, study):
    rater = staff("rita", Role.RATER, pdx)
    response = post(client, rater, "/participants/new/", NEW)
    assert response.status_code == 403
    assert "Your role cannot add participants at any site." in body(response) and "<form method" not in body(response)
    assert not Participant.objects.exists()


# --- eligibility, consent, enrollment -----------------------------------------------------------------------------


def test_eligibility_answers_and_a_changed_answer_needs_a_reason(client, alice, make_participant):
    p = participant(make_participant)
    url = f"/participants/{p.participant_id}/eligibility/"
    client.force_login(alice)
    form = body(client.get(url))
    assert '<label for="id_criterion_INC_AGE">Aged 18-65 (INC_AGE)</label>' in form

    response = post(client, alice, url, {"criterion_INC_AGE": "yes", "criterion_EXC_PREG": "no"})
    assert response["Location"] == f"/participants/{p.participant_id}/#eligibility"
    assert "Eligibility recorded." in follow(client, response)
    p.refresh_from_db()
    assert p.status == "eligible" and p.eligibility_verdict is True
    assert [(e.field, e.new_value) for e in events(p, action="transition")][-1] == ("status", "eligible")

    # Changing a recorded answer without a reason: the service's message, nothing changed.
    before = len(events(p))
    response = post(client, alice, url, {"criterion_INC_AGE": "no", "criterion_EXC_PREG": "no"})
    assert response.status_code == 400
    assert "a reason is required to change an answer already recorded" in body(response)
    assert "required: changing INC_AGE" in body(response)
    p.refresh_from_db()
    assert p.status == "eligible" and len(events(p)) == before

    response = post(
        client, alice, url, {"criterion_INC_AGE": "no", "criterion_EXC_PREG": "no", "reason": "age misread"}
    )
    assert response.status_code == 302
    p.refresh_from_db()
    assert p.status == "screen_failed"
    assert [e.reason for e in events(p, field="INC_AGE", action="update")] == ["age misread"]


def test_consent_is_read_in_the_sites_time(client, alice, make_participant):
    p = participant(make_participant, "eligible")
    url = f"/participants/{p.participant_id}/consent/"
    client.force_login(alice)
    form = body(client.get(url))
    assert 'value="2026-03-20T12:00"' in form  # now, as Portland's wall clock shows it
    assert '<option value="1.0" selected>1.0</option>' in form
    response = post(client, alice, url, {"version": "1.0", "signed_at": "2026-03-20T09:30"})
    assert "Consent on version 1.0 recorded." in follow(client, response)
    record = ConsentRecord.objects.get(participant=p)
    assert record.signed_at == dt.datetime(2026, 3, 20, 16, 30, tzinfo=dt.UTC)  # 09:30 PDT
    assert record.obtained_by == alice
    assert Participant.objects.get(pk=p.pk).status == "consented"
    assert [e.field for e in events(p, entity_type="consent_record")] == ["consent_version", "signed_at", "obtained_by"]

    # In the future: the service refuses, and says why at the field.
    response = post(client, alice, url, {"version": "1.0", "signed_at": "2026-03-21T09:30"})
    assert response.status_code == 400
    assert "signed_at lies in the future" in body(response) and "cannot be in the future" in body(response)
    assert ConsentRecord.objects.filter(participant=p).count() == 1


def test_enroll_and_a_refused_transition(client, alice, make_participant):
    early = participant(make_participant)
    response = post(client, alice, f"/participants/{early.participant_id}/enroll/")
    assert response.status_code == 400
    assert "cannot change status from &#x27;screening&#x27; to &#x27;enrolled&#x27;" in body(response)
    assert Participant.objects.get(pk=early.pk).status == "screening"

    p = participant(make_participant, "consented")
    response = post(client, alice, f"/participants/{p.participant_id}/enroll/")
    assert "Participant enrolled." in follow(client, response)
    p.refresh_from_db()
    assert p.status == "enrolled" and p.enrolled_at == NOW
    assert [e.new_value for e in events(p, action="transition")][-1] == "enrolled"


def test_a_role_that_may_not_manage_gets_the_apis_refusal(client, pdx, make_participant):
    p = participant(make_participant, "consented")
    rater = staff("rita", Role.RATER, pdx)
    before = len(events(p))
    for action in ("eligibility", "consent", "enroll", "randomize", "withdraw"):
        response = post(client, rater, f"/participants/{p.participant_id}/{action}/", {"confirm": "on"})
        assert response.status_code == 403, action
        assert "your role at this site cannot change participants" in body(response)
    assert Participant.objects.get(pk=p.pk).status == "consented" and len(events(p)) == before
    # The page links no action for the rater, and the enroll action for alice.
    client.force_login(rater)
    page = body(client.get(f"/participants/{p.participant_id}/"))
    assert "/enroll/" not in page and "/withdraw/" not in page
    client.force_login(p.site.memberships.get(user__username="alice").user)
    page = body(client.get(f"/participants/{p.participant_id}/"))
    assert f'href="/participants/{p.participant_id}/enroll/"' in page
    assert f'href="/participants/{p.participant_id}/randomize/"' not in page  # not before enrollment


# --- randomization and withdrawal ---------------------------------------------------------------------------------


def test_randomizing_needs_confirmation(client, alice, make_participant):
    p = participant(make_participant, "enrolled")
    response = post(client, alice, f"/participants/{p.participant_id}/randomize/")
    assert response.status_code == 400
    assert "Tick the box to confirm: this cannot be undone." in body(response)
    p.refresh_from_db()
    assert p.status == "enrolled" and p.randomized_at is None


def test_a_blinded_coordinator_randomizes_and_never_gets_the_arm(client, alice, make_participant):
    p = participant(make_participant, "enrolled")
    response = post(client, alice, f"/participants/{p.participant_id}/randomize/", {"confirm": "on"})
    assert response.status_code == 302
    raw = response.content + b"".join(c.value.encode() for c in response.cookies.values())
    page = follow(client, response)
    assert "Participant randomized." in page
    p.refresh_from_db()
    assert p.status == "randomized" and p.allocation is not None
    for text in (raw.decode().lower(), page.lower()):
        assert [w for w in ARM_WORDS if w in text] == []
    assert events(p, action="transition")[-1].new_value == "randomized"


def test_an_unblinded_role_is_told_the_arm(client, pdx, make_participant):
    admin = staff("ada", Role.ADMIN, pdx)
    p = participant(make_participant, "enrolled")
    response = post(client, admin, f"/participants/{p.participant_id}/randomize/", {"confirm": "on"})
    page = follow(client, response)
    p.refresh_from_db()
    assert f"Participant randomized to {p.allocation.arm.label}." in page


def test_withdrawal_needs_a_reason_and_confirmation_and_cancels_visits(client, alice, make_participant):
    p = randomized(make_participant)
    url = f"/participants/{p.participant_id}/withdraw/"
    client.force_login(alice)
    assert 'value="2026-03-20"' in body(client.get(url))  # today at the site
    response = post(client, alice, url, {"level": "stop_follow_up", "date": "2026-03-20"})
    assert response.status_code == 400
    text = body(response)
    assert "Give a reason: it is kept in the audit trail." in text and "Tick the box to confirm" in text
    assert Participant.objects.get(pk=p.pk).status == "randomized"

    data = {"level": "stop_follow_up", "date": "2026-03-20", "reason": "moved away", "confirm": "on"}
    assert "Participant withdrawn." in follow(client, post(client, alice, url, data))
    p.refresh_from_db()
    assert (p.status, p.withdrawal_level, p.withdrawal_reason) == ("withdrawn", "stop_follow_up", "moved away")
    assert not Visit.objects.filter(participant=p, status__in=["planned", "scheduled"]).exists()
    assert events(p, action="transition")[-1].reason == "moved away"


# --- visits -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site_code", "utc_hour"),
    [("PDX", 17), ("NYC", 14)],  # 10:00 on 1 April: PDT is UTC-7, EDT is UTC-4
)
def test_scheduling_reads_the_time_in_the_sites_zone(client, make_participant, nyc, pdx, site_code, utc_hour):
    site = {"PDX": pdx, "NYC": nyc}[site_code]
    user = staff(f"coord-{site_code}", Role.COORDINATOR, site)
    p = randomized(make_participant, site=site, by=user)
    prep = visit(p, "BASELINE")
    url = f"/visits/{prep.pk}/schedule/"
    response = post(client, user, url, {"start": "2026-04-01T10:00"})
    assert response["Location"] == f"/participants/{p.participant_id}/#visit-BASELINE"
    assert "Visit BASELINE scheduled." in follow(client, response)
    prep.refresh_from_db()
    assert prep.status == "scheduled"
    assert prep.scheduled_start == dt.datetime(2026, 4, 1, utc_hour, 0, tzinfo=dt.UTC)
    assert prep.scheduled_end == prep.scheduled_start + dt.timedelta(minutes=prep.duration_minutes)
    # The form shows the booked time back as the site's wall clock.
    assert 'value="2026-04-01T10:00"' in body(client.get(url))
    assert events(p, entity_type="visit", field="scheduled_start")[-1].actor_username == user.username


def test_rescheduling_needs_a_reason_and_a_time_the_clocks_skip_is_refused(client, alice, make_participant):
    p = randomized(make_participant)
    baseline = visit(p, "BASELINE")
    url = f"/visits/{baseline.pk}/schedule/"
    with transaction.atomic():
        scheduling_services.visit_schedule(visit=baseline, start=NOW + dt.timedelta(days=12), by=alice)
    booked = Visit.objects.get(pk=baseline.pk).scheduled_start

    response = post(client, alice, url, {"start": "2026-04-02T09:00"})
    assert response.status_code == 400 and "Give a reason" in body(response)
    # 02:30 on 8 November happens twice in Portland (fine); 02:30 on 8 March 2026 never happened there.
    response = post(client, alice, url, {"start": "2026-03-08T02:30", "reason": "moved"})
    assert response.status_code == 400
    assert "2026-03-08 02:30 does not exist in America/Los_Angeles" in body(response)
    assert Visit.objects.get(pk=baseline.pk).scheduled_start == booked

    response = post(client, alice, url, {"start": "2026-04-02T09:00", "reason": "participant asked"})
    assert "Visit BASELINE rescheduled." in follow(client, response)
    assert Visit.objects.get(pk=baseline.pk).scheduled_start == dt.datetime(2026, 4, 2, 16, 0, tzinfo=dt.UTC)
    assert events(p, entity_type="visit", field="scheduled_start")[-1].reason == "participant asked"


def test_a_booking_conflict_is_shown_with_the_services_message(client, alice, pdx, make_participant):
    admin = staff("ada", Role.ADMIN, pdx)
    with transaction.atomic():
        scheduling_services.room_create(site=pdx, name="Room A", by=admin)
    first, second = randomized(make_participant), randomized(make_participant)
    client.force_login(alice)
    assert '<option value="Room A">Room A</option>' in body(
        client.get(f"/visits/{visit(first, 'BASELINE').pk}/schedule/")
    )
    slot = {"start": "2026-04-01T10:00", "room": "Room A", "staff": ["alice"]}
    assert post(client, alice, f"/visits/{visit(first, 'BASELINE').pk}/schedule/", slot).status_code == 302
    before = len(events(second))
    response = post(client, alice, f"/visits/{visit(second, 'BASELINE').pk}/schedule/", slot)
    assert response.status_code == 409
    assert f"is booked 2026-04-01 10:00-12:00 for {first.participant_id} BASELINE" in body(response)
    assert visit(second, "BASELINE").status == "planned" and len(events(second)) == before


def test_complete_miss_and_cancel(client, alice, make_participant):
    p = randomized(make_participant)
    screen, baseline, prep = visit(p, "SCREEN"), visit(p, "BASELINE"), visit(p, "PREP1")
    response = post(client, alice, f"/visits/{screen.pk}/complete/", {"occurred_at": "2026-03-20T08:15"})
    assert "Visit SCREEN completed." in follow(client, response)
    screen.refresh_from_db()
    assert screen.status == "completed" and screen.occurred_at == dt.datetime(2026, 3, 20, 15, 15, tzinfo=dt.UTC)

    # Missed and cancelled need a reason and a confirmation.
    response = post(client, alice, f"/visits/{baseline.pk}/miss/", {"reason": "did not come"})
    assert response.status_code == 400 and "Tick the box to confirm" in body(response)
    response = post(client, alice, f"/visits/{baseline.pk}/cancel/", {"confirm": "on"})
    assert response.status_code == 400 and "Give a reason" in body(response)
    assert visit(p, "BASELINE").status == "planned"

    response = post(client, alice, f"/visits/{baseline.pk}/miss/", {"reason": "did not come", "confirm": "on"})
    assert "Visit BASELINE marked as missed." in follow(client, response)
    assert visit(p, "BASELINE").missed_reason == "did not come"
    response = post(client, alice, f"/visits/{prep.pk}/cancel/", {"reason": "not needed", "confirm": "on"})
    assert "Visit PREP1 cancelled." in follow(client, response)
    assert visit(p, "PREP1").status == "cancelled"
    assert [e.reason for e in events(p, entity_type="visit", field="status", action="update")][-2:] == [
        "did not come",
        "not needed",
    ]

    # A visit already done: the service's transition message, nothing changed.
    response = post(client, alice, f"/visits/{prep.pk}/cancel/", {"reason": "again", "confirm": "on"})
    assert response.status_code == 400
    assert "cannot change visit status from &#x27;cancelled&#x27; to &#x27;cancelled&#x27;" in body(response)


def test_a_therapist_books_the_sessions_they_work_on_and_no_other_visit(client, pdx, make_participant):
    therapist = staff("theo", Role.THERAPIST, pdx)
    p = randomized(make_participant)
    baseline, prep1 = visit(p, "BASELINE"), visit(p, "PREP1")
    client.force_login(therapist)
    page = body(client.get(f"/participants/{p.participant_id}/"))
    assert f'href="/visits/{prep1.pk}/schedule/"' in page
    assert f'href="/visits/{baseline.pk}/schedule/"' not in page
    assert f'href="/visits/{baseline.pk}/complete/"' not in page
    response = post(client, therapist, f"/visits/{baseline.pk}/complete/", {"occurred_at": "2026-03-20T08:15"})
    assert response.status_code == 403 and "your role at this site cannot change visits" in body(response)
    response = post(client, therapist, f"/visits/{baseline.pk}/schedule/", {"start": "2026-04-01T10:00"})
    assert response.status_code == 403
    assert "a therapist books only therapy sessions (preparation, dosing, integration)" in body(response)
    assert visit(p, "BASELINE").status == "planned"
    response = post(client, therapist, f"/visits/{prep1.pk}/schedule/", {"start": "2026-04-01T10:00"})
    assert response.status_code == 403 and "name yourself among the staff" in body(response)
    assert visit(p, "PREP1").status == "planned"
    response = post(
        client, therapist, f"/visits/{prep1.pk}/schedule/", {"start": "2026-04-01T10:00", "staff": ["theo"]}
    )
    assert response.status_code == 302
    assert visit(p, "PREP1").status == "scheduled"
    assert [u.username for u in visit(p, "PREP1").staff.all()] == ["theo"]


# --- questionnaires -----------------------------------------------------------------------------------------------


def test_opening_a_questionnaire_early_needs_a_reason(client, alice, make_participant):
    p = randomized(make_participant)
    adm = Administration.objects.get(visit__participant=p, visit__code="BASELINE", instrument_code="PCL5")
    assert adm.opens_at > NOW
    url = f"/participants/{p.participant_id}/questionnaires/{adm.pk}/open/"
    client.force_login(alice)
    assert f'href="{url}"' in body(client.get(f"/participants/{p.participant_id}/"))
    response = post(client, alice, url, {"reason": ""})
    assert response.status_code == 400 and "Give a reason" in body(response)
    assert Administration.objects.get(pk=adm.pk).opened_early_at is None

    response = post(client, alice, url, {"reason": "travelling next week"})
    assert response["Location"].endswith("#questionnaires")
    assert "PCL5 is open." in follow(client, response)
    adm.refresh_from_db()
    assert adm.opens_at == NOW and adm.opened_early_at == NOW
    event = events(p, entity_type="administration", field="opens_at")[-1]
    assert event.reason == "travelling next week" and event.actor_username == "alice"


def test_correcting_an_answer_keeps_the_old_value_in_the_audit_trail(client, alice, pdx, make_participant):
    p = randomized(make_participant)
    with transaction.atomic():
        response_row = assessment_services.response_create_staff(
            participant=p, visit=visit(p, "SCREEN"), instrument_code="PCL5", answers=PCL5_LOW, by=alice
        )
    url = f"/participants/{p.participant_id}/responses/{response_row.pk}/correct/"
    client.force_login(alice)
    assert f'href="{url}"' in body(client.get(f"/participants/{p.participant_id}/"))
    assert '<option value="PCL5_01">PCL5_01 = 1</option>' in body(client.get(url))

    response = post(client, alice, url, {"item": "PCL5_01", "value": "3"})
    assert response.status_code == 400 and "Give a reason" in body(response)
    # A value out of the item's range: the service's message at the value.
    response = post(client, alice, url, {"item": "PCL5_01", "value": "9", "reason": "typo"})
    assert response.status_code == 400 and "Nothing was saved." in body(response)
    assert Answer.objects.get(response=response_row, item_code="PCL5_01").value == 1

    response = post(client, alice, url, {"item": "PCL5_01", "value": "3", "reason": "typed from paper wrongly"})
    assert "PCL5 corrected." in follow(client, response)
    assert Answer.objects.get(response=response_row, item_code="PCL5_01").value == 3
    assert Score.objects.get(response=response_row, code="total").value == 22
    event = events(p, entity_type="response", field="answers.PCL5_01")[-1]
    assert (event.old_value, event.new_value, event.reason) == (1, 3, "typed from paper wrongly")


def test_a_rater_may_not_correct_a_self_report(client, alice, pdx, make_participant):
    rater = staff("rita", Role.RATER, pdx)
    p = randomized(make_participant)
    with transaction.atomic():
        row = assessment_services.response_create_staff(
            participant=p, visit=visit(p, "SCREEN"), instrument_code="PCL5", answers=PCL5_LOW, by=alice
        )
    url = f"/participants/{p.participant_id}/responses/{row.pk}/correct/"
    client.force_login(rater)
    assert f'href="{url}"' not in body(client.get(f"/participants/{p.participant_id}/"))
    response = post(client, rater, url, {"item": "PCL5_01", "value": "3", "reason": "r"})
    assert response.status_code == 403 and "PCL5 may be corrected only by:" in body(response)
    assert Answer.objects.get(response=row, item_code="PCL5_01").value == 1


# --- another site ---------------------------------------------------------------------------------------------------


def test_every_action_on_another_sites_records_is_a_404(client, alice, bob, make_participant):
    p = randomized(make_participant)
    with transaction.atomic():
        row = assessment_services.response_create_staff(
            participant=p, visit=visit(p, "SCREEN"), instrument_code="PCL5", answers=PCL5_LOW, by=alice
        )
    adm = Administration.objects.filter(visit__participant=p, instrument_code="PCL5").first()
    v = visit(p, "BASELINE")
    pid = p.participant_id
    urls = [
        f"/participants/{pid}/{action}/" for action in ("eligibility", "consent", "enroll", "randomize", "withdraw")
    ] + [f"/visits/{v.pk}/{action}/" for action in ("schedule", "complete", "miss", "cancel")]
    urls += [f"/participants/{pid}/questionnaires/{adm.pk}/open/", f"/participants/{pid}/responses/{row.pk}/correct/"]
    names = dbstate.tables(exclude=frozenset({"django_session"}))
    client.force_login(bob)
    before = dbstate.snapshot(names)
    for url in urls:
        data = {
            "reason": "x",
            "confirm": "on",
            "level": "stop_contact",
            "date": "2026-03-20",
            "start": "2026-04-01T10:00",
        }
        assert client.post(url, data).status_code == 404, url
        assert client.get(url).status_code == 404, url
    assert dbstate.differences(before, dbstate.snapshot(names)) == {}
    # alice's own: her participant's questionnaire under another participant's URL is a 404 too.
    other = participant(make_participant)
    assert post(client, alice, f"/participants/{other.participant_id}/responses/{row.pk}/correct/").status_code == 404
    assert Response.objects.get(pk=row.pk).answers.get(item_code="PCL5_01").value == 1


# --- the history, paged -------------------------------------------------------------------------------------------


def history_queries(client, user, p: Participant, page: int = 1) -> tuple[int, str]:
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/participants/{p.participant_id}/", {"history-page": page})
    return len(captured), body(response)


def test_the_history_is_paged_newest_first_in_constant_queries(client, alice, make_participant):
    small, large = participant(make_participant), participant(make_participant)
    with transaction.atomic():
        for n in range(1, 61):
            participant_services.participant_update(
                participant=large, stratum=f"S{n}", by=alice, reason=f"change {n}" if n > 1 else None
            )
    total = len(events(large))
    assert total > 60

    history_queries(client, alice, small)  # the process parses the protocol version once (kept per version)
    few, small_page = history_queries(client, alice, small)
    many, first = history_queries(client, alice, large)
    older, second = history_queries(client, alice, large, 2)
    assert few == many == older, (few, many, older)
    assert "Page" not in small_page.split('id="history"')[1]  # one page: no pager
    assert f'<span class="count">{total}</span>' in first and "Page 1 of 2" in first
    assert '<a href="?history-page=2#history" rel="next">Older</a>' in first
    assert first.count("change 60") == 1 and "change 5<" not in first  # the newest 50
    assert "Page 2 of 2" in second and '<a href="?history-page=1#history" rel="prev">Newer</a>' in second
    assert re.search(r"<td>[^<]*create participant", second)  # the oldest event is on the last page
    # Past the end, or not a number: the last and the first page.
    assert "Page 2 of 2" in history_queries(client, alice, large, 99)[1]
    assert "Page 1 of 2" in body(client.get(f"/participants/{large.participant_id}/", {"history-page": "x"}))


def test_the_home_page_links_the_new_participant_page_for_managers_only(client, alice, pdx):
    client.force_login(alice)
    assert '<a href="/participants/new/">New participant</a>' in body(client.get("/home/"))
    client.force_login(staff("rita", Role.RATER, pdx))
    assert "/participants/new/" not in body(client.get("/home/"))


def test_an_action_page_in_spanish(client, alice, make_participant):
    p = participant(make_participant, "enrolled")
    with transaction.atomic():
        participant_services.staff_language_set(user=alice, language="es", by=alice)
    response = post(client, alice, f"/participants/{p.participant_id}/randomize/")
    assert response.status_code == 400
    text = body(response)
    assert "No se ha guardado nada." in text and "Marque la casilla para confirmar" in text
    assert "Participante aleatorizado." in follow(
        client, post(client, alice, response.request["PATH_INFO"], {"confirm": "on"})
    )


def test_the_action_pages_write_nothing_when_opened(client, alice, make_participant):
    p = randomized(make_participant)
    with transaction.atomic():
        row = assessment_services.response_create_staff(
            participant=p, visit=visit(p, "SCREEN"), instrument_code="PCL5", answers=PCL5_LOW, by=alice
        )
    adm = Administration.objects.get(visit__participant=p, visit__code="BASELINE", instrument_code="PCL5")
    v = visit(p, "BASELINE")
    pid = p.participant_id
    urls = ["/participants/new/"]
    urls += [f"/participants/{pid}/{a}/" for a in ("eligibility", "consent", "enroll", "randomize", "withdraw")]
    urls += [f"/visits/{v.pk}/{a}/" for a in ("schedule", "complete", "miss", "cancel")]
    urls += [f"/participants/{pid}/questionnaires/{adm.pk}/open/", f"/participants/{pid}/responses/{row.pk}/correct/"]
    names = dbstate.tables(exclude=frozenset({"django_session"}))
    client.force_login(alice)
    before = dbstate.snapshot(names)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert '<form method="post"' in body(response) and "Back without saving" in body(response)
    assert dbstate.differences(before, dbstate.snapshot(names)) == {}
