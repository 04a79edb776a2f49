"""Delivery in-process against a real SMTP server on loopback, with the clock moved by time-machine: the dispatcher and
the send step run here exactly as the beat and the worker run them (the worker-process tests use rows already due)."""

from __future__ import annotations

import datetime as dt
import re
import threading
import zoneinfo

import pytest
import time_machine
from django.db import connection, transaction

from assessments import selectors as assessment_selectors
from assessments import services as assessment_services
from audit.models import AuditEvent
from notifications import services
from notifications.channels import sms as sms_channel
from notifications.models import Notification
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.notifications.conftest import complete_answers, deliver_due

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
UTC = dt.UTC
# Randomized on Friday 20 Feb 2026 (10:00 in Portland). US daylight saving starts on Sunday 8 March 2026.
T0 = dt.datetime(2026, 2, 20, 18, 0, tzinfo=UTC)
N = Notification.Status


@pytest.fixture
def participant(make_participant):
    with time_machine.travel(T0, tick=False):
        return make_participant(
            "randomized", contact={"full_name": "Test Person", "email": "person@example.org", "language": "en"}
        )


def baseline(participant) -> Visit:
    return Visit.objects.get(participant=participant, code="BASELINE")


def schedule(visit, start, by):
    with transaction.atomic():
        scheduling_services.visit_schedule(visit=visit, start=start, by=by)
    # What the lead's on_commit hook does in production ("notifications.reconcile_participant").
    services.notifications_reconcile(participant_id=visit.participant_id)


def local(instant: dt.datetime) -> str:
    return instant.astimezone(LA).strftime("%Y-%m-%d %H:%M %Z")


def planned(participant, before: dt.datetime) -> list[tuple[str, str]]:
    rows = Notification.objects.filter(participant=participant, status=N.PENDING, due_at__lt=before)
    return sorted((local(r.due_at), r.key.split(":")[0] + ":" + r.key.split(":")[2]) for r in rows)


def step_to(instant: dt.datetime, smtp) -> list:
    """One minute before ``instant`` nothing goes out; at ``instant`` the new messages arrive. Returns them."""
    before = smtp.count()
    with time_machine.travel(instant - dt.timedelta(minutes=1), tick=False):
        deliver_due()
    assert smtp.count() == before, f"sent early, before {local(instant)}"
    with time_machine.travel(instant, tick=False):
        deliver_due()
    return smtp.messages[before:]


def token_of(body: str) -> str:
    return re.search(r"/l/([A-Za-z0-9_-]+)/", body).group(1)


def test_end_to_end_local_times_quiet_hours_dst_and_completion(participant, alice, smtp):
    visit = baseline(participant)
    assert (visit.window_start, visit.window_end) == (dt.date(2026, 2, 27), dt.date(2026, 3, 20))
    # Booked for Monday 9 March 09:30 PDT, the day after the clocks went forward.
    with time_machine.travel(T0, tick=False):
        schedule(visit, dt.datetime(2026, 3, 9, 9, 30, tzinfo=LA), alice)

    assert planned(participant, dt.datetime(2026, 3, 10, tzinfo=UTC)) == [
        # The questionnaire opens at 00:00 on the window's first day: quiet hours move it to 08:00.
        ("2026-02-27 08:00 PST", "questionnaire:open"),
        ("2026-03-01 08:00 PST", "questionnaire:2d"),
        ("2026-03-04 08:00 PST", "questionnaire:5d"),
        # 48 h before is wall-clock time: 09:30 on Saturday, although the clocks change in between.
        ("2026-03-07 09:30 PST", "visit:48h"),
        # 2 h before would be 07:30, inside quiet hours: 08:00 PDT.
        ("2026-03-09 08:00 PDT", "visit:2h"),
    ]

    got = step_to(dt.datetime(2026, 2, 27, 16, 0, tzinfo=UTC), smtp)
    assert [m.subject for m in got] == ["Your questionnaire is ready"]
    assert got[0].to == ["person@example.org"] and local(got[0].at) == "2026-02-27 08:00 PST"
    # The link works and nothing clinical is named.
    with time_machine.travel(dt.datetime(2026, 2, 27, 16, 0, tzinfo=UTC), tick=False):
        assert assessment_selectors.link_find(token_of(got[0].body)) is not None
    assert not re.search(r"PCL|SCS|CAPS|PTSD|MDMA|Baseline", got[0].body + got[0].subject)

    got = step_to(dt.datetime(2026, 3, 1, 16, 0, tzinfo=UTC), smtp)
    assert [local(m.at) for m in got] == ["2026-03-01 08:00 PST"]

    # The participant answers both questionnaires through the link from the last message.
    with time_machine.travel(dt.datetime(2026, 3, 2, 19, 0, tzinfo=UTC), tick=False):
        link = assessment_selectors.link_find(token_of(got[0].body))
        assessment_services.link_save_answers(
            link=link, answers_by_instrument={c: complete_answers(c) for c in ("PCL5", "SCS")}
        )
        assessment_services.link_submit(link=link)
        services.notifications_reconcile(participant_id=participant.pk)  # the completion hook
    assert Notification.objects.get(key__startswith=f"questionnaire:{visit.pk}:5d").status == N.CANCELLED

    with time_machine.travel(dt.datetime(2026, 3, 4, 16, 0, tzinfo=UTC), tick=False):
        deliver_due()
    assert smtp.count() == 2  # the 5-day reminder is never sent

    got = step_to(dt.datetime(2026, 3, 7, 17, 30, tzinfo=UTC), smtp)
    assert [(local(m.at), m.subject) for m in got] == [
        ("2026-03-07 09:30 PST", "Reminder: your study visit on Monday, March 9")
    ]
    assert "09:30" in got[0].body and "Baseline" not in got[0].body
    got = step_to(dt.datetime(2026, 3, 9, 15, 0, tzinfo=UTC), smtp)
    assert [local(m.at) for m in got] == ["2026-03-09 08:00 PDT"]

    with time_machine.travel(dt.datetime(2026, 3, 25, tzinfo=UTC), tick=False):
        deliver_due()
    assert smtp.count() == 4
    assert len({m.message_id for m in smtp.messages}) == 4


def test_moved_visit_old_reminders_never_sent_new_ones_are(participant, alice, smtp):
    visit = baseline(participant)
    old_start = dt.datetime(2026, 3, 9, 14, 0, tzinfo=LA)
    new_start = dt.datetime(2026, 3, 12, 15, 0, tzinfo=LA)
    with time_machine.travel(T0, tick=False):
        schedule(visit, old_start, alice)
        old = set(Notification.objects.filter(key__startswith=f"visit:{visit.pk}:").values_list("key", flat=True))
        assert len(old) == 2
        schedule(visit, new_start, alice)
        # Re-planning the same state again creates no twin.
        assert services.notifications_reconcile(participant_id=participant.pk).created == 0

    rows = Notification.objects.filter(key__startswith=f"visit:{visit.pk}:")
    assert {r.key for r in rows if r.status == N.CANCELLED} == old
    assert sorted(local(r.due_at) for r in rows if r.status == N.PENDING) == [
        "2026-03-10 15:00 PDT",
        "2026-03-12 13:00 PDT",
    ]
    for instant in (dt.datetime(2026, 3, 7, 22, 0, tzinfo=UTC), dt.datetime(2026, 3, 9, 19, 0, tzinfo=UTC)):
        with time_machine.travel(instant, tick=False):
            deliver_due()
    assert [m for m in smtp.messages if "visit" in m.subject] == []
    step_to(dt.datetime(2026, 3, 10, 22, 0, tzinfo=UTC), smtp)
    step_to(dt.datetime(2026, 3, 12, 20, 0, tzinfo=UTC), smtp)
    visit_mail = [m for m in smtp.messages if "visit" in m.subject]
    assert [local(m.at) for m in visit_mail] == ["2026-03-10 15:00 PDT", "2026-03-12 13:00 PDT"]
    assert all("15:00" in m.body for m in visit_mail)


def test_moved_visit_without_replanning_is_refused_at_send_time(participant, alice, smtp):
    """Even if the reconcile hook never ran (broker down at commit), a reminder for a slot the visit no longer has is
    cancelled when it comes due, not sent."""
    visit = baseline(participant)
    with time_machine.travel(T0, tick=False):
        schedule(visit, dt.datetime(2026, 3, 9, 14, 0, tzinfo=LA), alice)
        with transaction.atomic():
            scheduling_services.visit_schedule(visit=visit, start=dt.datetime(2026, 3, 16, 14, 0, tzinfo=LA), by=alice)
    with time_machine.travel(dt.datetime(2026, 3, 7, 23, 0, tzinfo=UTC), tick=False):
        assert N.CANCELLED in deliver_due()
    assert [m for m in smtp.messages if "visit" in m.subject] == []
    row = Notification.objects.get(key__startswith=f"visit:{visit.pk}:48h")
    assert (row.status, row.cancel_reason) == (N.CANCELLED, "the visit is no longer booked at that time")


def test_spanish_and_preferred_sms_through_the_provider_api(make_participant, alice, smtp, sms_provider):
    with time_machine.travel(T0, tick=False):
        p = make_participant(
            "randomized",
            contact={
                "full_name": "Persona",
                "email": "p@example.org",
                "phone": "+15035550100",
                "preferred_channel": "sms",
                "language": "es",
            },
        )
        schedule(baseline(p), dt.datetime(2026, 3, 9, 14, 0, tzinfo=LA), alice)
    with time_machine.travel(dt.datetime(2026, 2, 27, 16, 0, tzinfo=UTC), tick=False):
        assert deliver_due() == [N.SENT]
    assert smtp.count() == 0
    (request,) = sms_provider.requests
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["auth"] == "Basic QUMxMjM6c2VjcmV0"  # AC123:secret
    assert request["form"]["To"] == ["+15035550100"] and request["form"]["From"] == ["+15550001111"]
    text = request["form"]["Body"][0]
    assert text.startswith("Su cuestionario del estudio está listo: http") and "/l/" in text
    row = Notification.objects.get(participant=p, status=N.SENT)
    assert (row.channel, row.language, row.provider_message_id) == ("sms", "es", "SM" + "0" * 31 + "1")
    assert "/l/" not in str(row.context) and token_of(text) not in str(Notification.objects.values_list())

    # E-mail in Spanish when the participant prefers it.
    from participants.models import ContactDetails

    ContactDetails.objects.filter(participant=p).update(preferred_channel="email")
    with time_machine.travel(dt.datetime(2026, 3, 5, 18, 0, tzinfo=UTC), tick=False):
        services.notifications_reconcile(participant_id=p.pk)
        # The pending SMS reminders move to e-mail; of the two overdue ones (2 and 5 days) only the latest goes out.
        assert deliver_due() == [N.SENT]
    step_to(dt.datetime(2026, 3, 7, 22, 0, tzinfo=UTC), smtp)
    assert [m.subject for m in smtp.messages] == [
        "Su cuestionario está listo",
        "Recordatorio: su visita del estudio el lunes 9 de marzo",
    ]
    assert "el lunes 9 de marzo de 2026 a las 14:00" in smtp.messages[1].body


def test_smtp_refusal_retries_with_backoff_then_fails_visibly_and_retry_works(participant, alice, smtp, settings, api):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    settings.NOTIFICATIONS_RETRY_BACKOFF_SECONDS = 60
    visit = baseline(participant)
    with time_machine.travel(T0, tick=False):
        schedule(visit, dt.datetime(2026, 3, 9, 14, 0, tzinfo=LA), alice)
    # Only the visit reminder matters here.
    Notification.objects.exclude(key__startswith=f"visit:{visit.pk}:48h").update(status=N.CANCELLED)
    smtp.refuse = "550 5.7.1 Recipient refused by policy"
    due = dt.datetime(2026, 3, 7, 22, 0, tzinfo=UTC)  # 48 h before, 14:00 PST
    row = Notification.objects.get(key__startswith=f"visit:{visit.pk}:48h")
    assert row.due_at == due
    outcomes = []
    for offset in (0, 60, 60 + 120):  # backoff doubles: 60 s, then 120 s
        with time_machine.travel(due + dt.timedelta(seconds=offset - 1), tick=False):
            assert deliver_due() == []  # not before the backoff has passed
        with time_machine.travel(due + dt.timedelta(seconds=offset), tick=False):
            outcomes += deliver_due()
    assert outcomes == [N.PENDING, N.PENDING, N.FAILED]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at) == (N.FAILED, 3, None)
    assert "550 5.7.1 Recipient refused by policy" in row.last_error

    r = api(alice).get("/api/v1/notifications/", {"status": "failed"})
    assert r.status_code == 200
    assert [(n["id"], n["status"], n["attempts"]) for n in r.json()["results"]] == [(row.pk, "failed", 3)]
    assert "550" in r.json()["results"][0]["last_error"]

    smtp.refuse = None
    with time_machine.travel(due + dt.timedelta(hours=1), tick=False):
        r = api(alice).post(f"/api/v1/notifications/{row.pk}/retry/", {"reason": "mail server fixed"}, format="json")
        assert r.status_code == 200 and r.json()["status"] == "pending"
        event = AuditEvent.objects.get(entity_type="notification", entity_id=str(row.pk), field="status")
        assert (event.old_value, event.new_value, event.reason, event.actor_username) == (
            "failed",
            "pending",
            "mail server fixed",
            "alice",
        )
        assert deliver_due() == [N.SENT]
    assert smtp.count() == 1
    assert api(alice).post(f"/api/v1/notifications/{row.pk}/retry/").status_code == 409


def test_a_superseded_claim_sends_nothing(participant, alice, smtp, settings):
    """A task redelivered after its row was re-claimed carries a stale token and is refused."""
    settings.NOTIFICATIONS_CLAIM_TIMEOUT_SECONDS = 60
    visit = baseline(participant)
    with time_machine.travel(T0, tick=False):
        schedule(visit, dt.datetime(2026, 3, 9, 14, 0, tzinfo=LA), alice)
    Notification.objects.exclude(key__startswith=f"visit:{visit.pk}:48h").update(status=N.CANCELLED)
    due = dt.datetime(2026, 3, 7, 22, 0, tzinfo=UTC)
    with time_machine.travel(due, tick=False):
        ((pk, first),) = services.notifications_claim_due()
        assert services.notifications_claim_due() == []  # claimed: a second dispatcher gets nothing
    with time_machine.travel(due + dt.timedelta(minutes=5), tick=False):
        # Its task never started (message lost): handed out again with the same token; either copy may run, once.
        assert services.notifications_claim_due() == [(pk, first)]
        assert services.notifications_claim_due() == []
        # The attempt starts and its worker dies mid-send: the row stays "sending" until the timeout...
        Notification.objects.filter(pk=pk).update(status=N.SENDING)
    with time_machine.travel(due + dt.timedelta(minutes=10), tick=False):
        # ...then it is taken back under a new token: the dead attempt's token can no longer mark it sent.
        ((pk2, second),) = services.notifications_claim_due()
        assert pk2 == pk and second != first
        assert services.notification_send(notification_id=pk, claim_token=first) == "skipped"
        assert services.notification_send(notification_id=pk, claim_token=second) == N.SENT
        assert services.notification_send(notification_id=pk, claim_token=second) == "skipped"
    assert smtp.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_claim_each_row_once_and_send_it_once(make_participant, alice, smtp):
    """Two beats (here two threads, each with its own database connection) over the same 300 due rows."""
    p = make_participant("randomized", contact={"email": "p@example.org"})
    visit = Visit.objects.get(participant=p, code="BASELINE")
    start = dt.datetime.now(UTC) + dt.timedelta(days=3)
    with transaction.atomic():
        scheduling_services.visit_schedule(visit=visit, start=start, by=alice)
    rows = due_rows(p, visit, start, 300)
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def beat(name: str) -> None:
        try:
            barrier.wait()
            while batch := services.notifications_claim_due(limit=7):
                claimed[name] += [pk for pk, _ in batch]
                for pk, token in batch:
                    services.notification_send(notification_id=pk, claim_token=token)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert claimed["a"] and claimed["b"], "both dispatchers took part"
    assert not set(claimed["a"]) & set(claimed["b"])
    assert sorted(claimed["a"] + claimed["b"]) == sorted(rows)
    assert smtp.count() == 300 and len({m.message_id for m in smtp.messages}) == 300
    assert Notification.objects.filter(status=N.SENT).count() == 300


def due_rows(participant, visit, start, n: int) -> list[int]:
    """``n`` distinct due reminders about one booked visit (distinct keys, so distinct messages)."""
    from notifications.planner import iso

    now = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
    created = Notification.objects.bulk_create(
        Notification(
            key=f"load:{i}",
            participant=participant,
            recipient_kind="participant",
            channel="email",
            template="visit_reminder",
            language="en",
            context={"visit_id": visit.pk, "starts_at": iso(start)},
            nominal_at=now,
            due_at=now,
        )
        for i in range(n)
    )
    return [r.pk for r in created]


def test_locmem_sms_and_unreachable_participant(make_participant, alice, settings):
    settings.SMS_URL = "locmem://"
    sms_channel.outbox.clear()
    with time_machine.travel(T0, tick=False):
        p = make_participant("randomized", contact={"phone": "+15035550100", "preferred_channel": "email"})
        schedule(baseline(p), dt.datetime(2026, 3, 9, 14, 0, tzinfo=LA), alice)
        nobody = make_participant("randomized", contact={"full_name": "No Address"})
        schedule(baseline(nobody), dt.datetime(2026, 3, 9, 16, 0, tzinfo=LA), alice)
    # No e-mail address: the phone is used although e-mail is preferred; no address at all: nothing is planned.
    assert set(Notification.objects.filter(participant=p).values_list("channel", flat=True)) == {"sms"}
    assert not Notification.objects.filter(participant=nobody).exists()
    with time_machine.travel(dt.datetime(2026, 3, 7, 22, 0, tzinfo=UTC), tick=False):
        deliver_due()
    # Three questionnaire reminders were due at once: only the latest went out; and the 48 h visit reminder.
    assert [m.to for m in sms_channel.outbox] == ["+15035550100"] * 2
    assert (
        sorted(Notification.objects.filter(participant=p).values_list("cancel_reason", flat=True))[-2:]
        == ["overtaken by a later reminder"] * 2
    )
