"""Sending the questionnaire link from the staff pages (POST /visits/<id>/link/): by e-mail or SMS through the outbox
(PRG with a message, or an htmx fragment), shown in the clinic as a QR code (headers, the token nowhere else), other
sites' visits a 404; and the home page's new worklists (rescheduling, questionnaires due and overdue) at a moved
clock in two time zones, blinded to arm-only visits, in a constant number of queries."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from assessments.links import token_hash
from assessments.models import ParticipantLink
from audit.models import AuditEvent
from notifications.models import Notification
from participants import selectors as participant_selectors
from participants import services as participant_services
from scheduling.models import Visit
from tests.conftest import advance
from tests.dashboard.conftest import page_text
from tests.factories import build_study, staff
from tests.notifications.conftest import deliver_due, smtp, smtp_server  # noqa: F401 (fixtures)
from trialsite.roles import Role

pytestmark = pytest.mark.django_db

CREATED = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # randomized on 2 March in both zones
# BASELINE's target date is 16 March at both sites; its self-reports are open 9-30 March. At this instant Portland is
# still on Monday 16 March (22:30) and New York already on Tuesday 17 March (01:30).
NOW = dt.datetime(2026, 3, 17, 5, 30, tzinfo=dt.UTC)


def enrol(make_participant, site, by, **contact):
    with time_machine.travel(CREATED, tick=False):
        return make_participant("randomized", site=site, by=by, contact={"full_name": "Test Person", **contact})


def baseline(participant) -> Visit:
    return Visit.objects.select_related("participant__site").get(participant=participant, code="BASELINE")


def post(client, user, visit_id, when=NOW, htmx=False, **data):
    client.force_login(user)
    headers = {"HX-Request": "true"} if htmx else {}
    with time_machine.travel(when, tick=False):
        return client.post(f"/visits/{visit_id}/link/", data, headers=headers)


def test_baseline_dates_are_what_the_tests_assume(make_participant, pdx, alice):
    v = baseline(enrol(make_participant, pdx, alice, email="p@example.org"))
    assert v.target_date == dt.date(2026, 3, 16) and (v.window_start, v.window_end) == (
        dt.date(2026, 3, 9),
        dt.date(2026, 3, 30),
    )


def test_send_by_email_redirects_back_with_a_message_and_queues_an_audited_message(
    client,
    make_participant,
    pdx,
    alice,
    smtp,  # noqa: F811 (the fixture imported above)
):
    p = enrol(make_participant, pdx, alice, email="p@example.org")
    v = baseline(p)
    response = post(client, alice, v.pk, channel="email", next=f"/participants/{p.participant_id}/")
    assert response.status_code == 302 and response["Location"] == f"/participants/{p.participant_id}/"
    with time_machine.travel(NOW, tick=False):
        body = page_text(client.get(response["Location"]))
    assert f"The link to BASELINE will be sent to {p.participant_id} by e-mail." in body
    row = Notification.objects.get(participant=p, template="questionnaire_link")
    assert row.channel == "email" and row.status == "pending"
    assert AuditEvent.objects.filter(
        participant_id=p.participant_id, entity_type="notification", entity_id=str(row.pk), actor_username="alice"
    ).exists()
    # The worker sends it: the mail carries a working link.
    with time_machine.travel(NOW, tick=False):
        assert deliver_due() == ["sent"]
    token = re.search(r"/l/([A-Za-z0-9_-]{43})/", smtp.messages[-1].body).group(1)
    assert ParticipantLink.objects.filter(token_hash=token_hash(token), visit=v).exists()


def test_htmx_gets_the_fragment_and_refusals_show_the_services_message(client, make_participant, pdx, alice):
    with_email = enrol(make_participant, pdx, alice, email="p@example.org")
    sent = post(client, alice, baseline(with_email).pk, htmx=True, channel="email")
    assert sent.status_code == 200
    assert f'id="link-send-{baseline(with_email).pk}"' in sent.content.decode()
    assert "will be sent" in sent.content.decode() and "<html" not in sent.content.decode()
    refused = post(client, alice, baseline(with_email).pk, htmx=True, channel="sms")
    assert refused.status_code == 200 and "has no phone number on file" in refused.content.decode()
    # (The request also re-plans the participant's reminders; only the requested links are counted here.)
    assert Notification.objects.filter(participant=with_email, template="questionnaire_link").count() == 1
    # A plain post: back home with the refusal as a message.
    refused = post(client, alice, baseline(with_email).pk, channel="sms")
    assert refused.status_code == 302 and refused["Location"] == "/home/"
    with time_machine.travel(NOW, tick=False):
        assert "has no phone number on file" in page_text(client.get("/home/"))
    bad = post(client, alice, baseline(with_email).pk, htmx=True, channel="fax")
    assert bad.status_code == 400 and "Choose how to send the link" in bad.content.decode()
    assert Notification.objects.filter(participant=with_email, template="questionnaire_link").count() == 1


def test_another_sites_visit_is_a_404_and_nothing_is_created(client, make_participant, pdx, nyc, alice, bob):
    p = enrol(make_participant, pdx, alice, email="p@example.org")
    for channel in ("email", "sms", "show"):
        assert post(client, bob, baseline(p).pk, channel=channel).status_code == 404
    assert not Notification.objects.filter(participant=p).exists()
    assert not ParticipantLink.objects.filter(participant=p).exists()


def all_database_text() -> str:
    """Every row of every table in the database, as text."""
    out = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            name = connection.ops.quote_name(table)
            cursor.execute(f"SELECT coalesce(string_agg(t::text, '|'), '') FROM {name} t")
            out.append(cursor.fetchone()[0])
    return "\n".join(out)


def test_show_renders_a_qr_code_and_the_link_and_keeps_the_token_nowhere_else(
    client, make_participant, pdx, alice, caplog, capsys
):
    p = enrol(make_participant, pdx, alice, email="p@example.org")
    v = baseline(p)
    caplog.set_level(logging.DEBUG)
    response = post(client, alice, v.pk, channel="show")
    body = page_text(response)
    token = re.search(r'value="http[^"]*/l/([A-Za-z0-9_-]{43})/"', body).group(1)
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    assert "<svg" in body and 'class="qrline"' in body and "<title>QR code of the questionnaire link</title>" in body
    assert f"Questionnaire link for {p.participant_id} (BASELINE)" in body
    link = ParticipantLink.objects.get(participant=p, visit=v)
    assert link.token_hash == token_hash(token) and link.created_by == alice
    assert AuditEvent.objects.filter(
        participant_id=p.participant_id, entity_type="participant_link", entity_id=str(link.pk), actor_username="alice"
    ).exists()
    assert token not in caplog.text
    captured = capsys.readouterr()
    assert token not in captured.out and token not in captured.err
    assert token not in all_database_text()
    # No outbox row: it was shown, not sent.
    assert not Notification.objects.filter(participant=p).exists()


def test_show_refusal_goes_back_with_the_message(client, make_participant, pdx, alice):
    p = enrol(make_participant, pdx, alice, email="p@example.org")
    early = CREATED + dt.timedelta(days=1)  # BASELINE's questionnaires are not open yet
    response = post(client, alice, baseline(p).pk, when=early, channel="show", next="/home/")
    assert response.status_code == 302 and response["Location"] == "/home/"
    assert response.get("Referrer-Policy") != "no-referrer"  # not the page that shows a link
    assert not ParticipantLink.objects.filter(participant=p).exists()


def test_a_rater_may_not_show_a_link(client, make_participant, pdx, alice):
    p = enrol(make_participant, pdx, alice, email="p@example.org")
    rater = staff("rita", Role.RATER, pdx)
    response = post(client, rater, baseline(p).pk, htmx=True, channel="show")
    assert "cannot issue participant links" in response.content.decode()
    response = post(client, rater, baseline(p).pk, htmx=True, channel="email")
    assert "cannot send links" in response.content.decode()
    assert not ParticipantLink.objects.filter(participant=p).exists() and not Notification.objects.exists()


# --- the worklists ---------------------------------------------------------------------------------------------------


def lists(client, user, when=NOW):
    """The visit and questionnaire lists' rows, each list opened in turn, and the bodies of those pages."""
    client.force_login(user)
    out, bodies = {}, []
    with time_machine.travel(when, tick=False):
        for key in ("today", "closing", "overdue", "reschedule", "questionnaires-due", "questionnaires-overdue"):
            response = client.get("/home/", {"list": key})
            assert response.status_code == 200
            (wl,) = [wl for wl in response.context["worklists"] if wl.page is not None]
            assert wl.key == key
            out[key] = [(v.participant.participant_id, v.code) for v in wl.page]
            bodies.append(response.content.decode())
    return out, "".join(bodies)


def test_questionnaires_due_and_overdue_follow_each_sites_today(client, make_participant, pdx, nyc, alice, bob):
    p = enrol(make_participant, pdx, alice, email="p@example.org")
    n = enrol(make_participant, nyc, bob, phone="+12125550100")
    carol = staff("carol", Role.COORDINATOR, pdx, nyc)
    seen, body = lists(client, carol)
    # Portland is on the target date (due); New York is a day past it (overdue).
    assert seen["questionnaires-due"] == [(p.participant_id, "BASELINE")]
    assert seen["questionnaires-overdue"] == [(n.participant_id, "BASELINE")]
    # One click: e-mail for a participant with an e-mail address, SMS otherwise; both post to the send view.
    assert f'action="/visits/{baseline(p).pk}/link/"' in body and f'action="/visits/{baseline(n).pk}/link/"' in body
    assert "Send link by e-mail" in body and "Send link by SMS" in body
    assert f'href="/participants/{p.participant_id}/#visit-BASELINE"' in body
    # Each coordinator sees only their site.
    assert lists(client, alice)[0]["questionnaires-due"] == [(p.participant_id, "BASELINE")]
    assert lists(client, bob)[0]["questionnaires-due"] == []
    # Seven hours earlier both sites were on 16 March: both due. After 30 March both have left the lists.
    earlier, _ = lists(client, carol, NOW - dt.timedelta(hours=7))
    assert sorted(earlier["questionnaires-due"]) == sorted(
        [(p.participant_id, "BASELINE"), (n.participant_id, "BASELINE")]
    )
    closed, _ = lists(client, carol, dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC))
    assert closed["questionnaires-due"] == [] and closed["questionnaires-overdue"] == []
    # Answered questionnaires and withdrawn participants leave the lists.
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        participant_services.participant_withdraw(
            participant=n, level="stop_contact", reason="asked", date=NOW.date(), by=bob
        )
    assert lists(client, carol)[0]["questionnaires-overdue"] == []


def test_visits_that_need_rescheduling(client, make_participant, pdx, nyc, alice, bob):
    p = enrol(make_participant, pdx, alice, email="p@example.org")
    n = enrol(make_participant, nyc, bob, email="n@example.org")
    # As the schedule generator leaves a booked visit whose anchor moved (scheduling's own tests cover that step).
    Visit.objects.filter(participant__in=[p, n], code="PREP2").update(needs_reschedule=True)
    Visit.objects.filter(participant=p, code="PREP3").update(needs_reschedule=True, status=Visit.Status.CANCELLED)
    assert lists(client, alice)[0]["reschedule"] == [(p.participant_id, "PREP2")]
    assert lists(client, bob)[0]["reschedule"] == [(n.participant_id, "PREP2")]


def home_queries(client, user) -> int:
    client.force_login(user)
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as queries:
        assert client.get("/home/").status_code == 200
    return len(queries)


def test_the_new_lists_cost_the_same_queries_for_a_small_and_a_larger_study(client, make_participant, pdx, alice):
    enrol(make_participant, pdx, alice, email="p@example.org")
    Visit.objects.filter(code="PREP2").update(needs_reschedule=True)  # every list has a row: each costs its queries
    small = home_queries(client, alice)
    for i in range(8):
        enrol(make_participant, pdx, alice, **({"email": f"p{i}@example.org"} if i % 2 else {"phone": "+15035550100"}))
    Visit.objects.filter(code="PREP2").update(needs_reschedule=True)
    larger = home_queries(client, alice)
    seen, _ = lists(client, alice)
    assert len(seen["questionnaires-due"]) == 9 and len(seen["reschedule"]) == 9
    assert larger == small, f"{small} queries for 1 participant, {larger} for 9"


def test_blinded_roles_are_not_shown_arm_only_visits(client, study_sites, pdx):
    study, _ = build_study(
        code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", per_stratum=50, site_codes=("PDX", "NYC")
    )
    coordinator = staff("cora", Role.COORDINATOR, pdx)
    admin = staff("adam", Role.ADMIN, pdx)  # administrators always see the arm
    when = dt.datetime(2026, 1, 5, 18, tzinfo=dt.UTC)
    delayed = None
    with time_machine.travel(when, tick=False):
        for _ in range(12):
            with transaction.atomic():
                person = participant_services.participant_create(
                    study=study, site=pdx, by=coordinator, contact={"full_name": "X", "email": "x@example.org"}
                )
            person = advance(person, "randomized", by=coordinator)
            if participant_selectors.arm_code_of(person) == "delayed":
                delayed = person
                break
    assert delayed is not None
    wait_end = Visit.objects.get(participant=delayed, code="WAIT_END")
    Visit.objects.filter(pk=wait_end.pk).update(needs_reschedule=True)
    at = dt.datetime.combine(wait_end.target_date, dt.time(20), tzinfo=dt.UTC)
    unblinded, _ = lists(client, admin, at)
    assert (delayed.participant_id, "WAIT_END") in unblinded["reschedule"]
    assert (delayed.participant_id, "WAIT_END") in unblinded["questionnaires-due"]
    for role in (Role.COORDINATOR, Role.RATER, Role.INVESTIGATOR):
        viewer = staff(f"blind-{role.value}", role, pdx)
        seen, body = lists(client, viewer, at)
        assert all(code != "WAIT_END" for rows in seen.values() for _pid, code in rows), role
        assert "WAIT_END" not in body and "End-of-delay" not in body
