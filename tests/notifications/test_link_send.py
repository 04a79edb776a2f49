"""A staff member's "send the link now": the audited outbox row, the dispatch kicked after commit, delivery through the
real send path (SMTP on loopback, the SMS provider's stand-in) with a link that opens the questionnaire, the refusals,
and the planner leaving the row alone."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse

import pytest
import time_machine
from django.db import transaction

from assessments.models import ParticipantLink
from audit.models import AuditEvent
from notifications import services
from notifications.models import Notification
from participants import services as participant_services
from scheduling.models import Visit
from tests.notifications.conftest import deliver_due
from trialsite import followups
from trialsite.errors import ServiceError

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 2, 20, 18, 0, tzinfo=dt.UTC)  # randomized: Friday 20 Feb 2026, 10:00 in Portland
IN_WINDOW = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)  # BASELINE's questionnaires are open (27 Feb - 20 Mar)


def person(make_participant, **contact):
    with time_machine.travel(T0, tick=False):
        return make_participant("randomized", contact={"full_name": "Test Person", **contact})


def baseline(participant) -> Visit:
    return Visit.objects.get(participant=participant, code="BASELINE")


def send(visit, channel, by, when=IN_WINDOW) -> Notification:
    with time_machine.travel(when, tick=False), transaction.atomic():
        return services.questionnaire_link_send(visit=visit, channel=channel, by=by)


def link_events(participant):
    return AuditEvent.objects.filter(participant_id=participant.participant_id, entity_type="notification")


@pytest.fixture
def kicked(monkeypatch):
    """The tasks published after commit, by name (no broker needed)."""
    published: list[str] = []

    class App:
        def send_task(self, name, args=None, priority=None):
            published.append(name)

    monkeypatch.setattr(followups, "current_app", App())
    return published


def test_email_link_is_queued_audited_dispatched_at_once_and_delivered_with_a_working_link(
    make_participant, alice, smtp, kicked, client, django_capture_on_commit_callbacks
):
    participant = person(make_participant, email="person@example.org", language="en")
    with django_capture_on_commit_callbacks(execute=True):
        row = send(baseline(participant), "email", alice)
    assert kicked == ["notifications.dispatch_due"]  # a running worker sends it now, not at the next beat
    row.refresh_from_db()
    assert (row.template, row.channel, row.language, row.status) == ("questionnaire_link", "email", "en", "pending")
    assert row.key.startswith(f"link:{baseline(participant).pk}:") and row.due_at == IN_WINDOW
    assert row.recipient_kind == "participant" and row.recipient_user is None
    events = link_events(participant)
    assert {(e.action, e.field, e.new_value) for e in events} >= {
        ("create", "template", "questionnaire_link"),
        ("create", "channel", "email"),
    }
    assert {e.actor_username for e in events} == {"alice"}
    assert not ParticipantLink.objects.filter(participant=participant).exists()  # issued when sent, not before

    with time_machine.travel(IN_WINDOW + dt.timedelta(seconds=5), tick=False):
        assert deliver_due() == ["sent"]
    message = smtp.messages[-1]
    assert message.to == ["person@example.org"]
    assert message.subject == "The link to your study questionnaire"
    body = message.body
    token = re.search(r"/l/([A-Za-z0-9_-]+)/", body).group(1)
    assert ParticipantLink.objects.filter(participant=participant).count() == 1
    assert token not in str(Notification.objects.filter(pk=row.pk).values().get())
    # The link works: it opens the participant's questionnaire pages.
    with time_machine.travel(IN_WINDOW + dt.timedelta(minutes=1), tick=False):
        opened = client.get(f"/l/{token}/", follow=True)
    assert opened.status_code == 200 and opened.redirect_chain
    assert opened.redirect_chain[-1][0].startswith("/l/q/") and "<form" in opened.content.decode()


def test_sms_link_goes_through_the_provider_in_the_participants_language(make_participant, alice, sms_provider):
    participant = person(make_participant, phone="+15035550123", language="es")
    row = send(baseline(participant), "sms", alice)
    assert row.language == "es"
    with time_machine.travel(IN_WINDOW, tick=False):
        assert deliver_due() == ["sent"]
    form = sms_provider.requests[-1]["form"]
    assert form["To"] == ["+15035550123"]
    text = form["Body"][0]
    assert text.startswith("El enlace a su cuestionario del estudio") and re.search(r"/l/[A-Za-z0-9_-]{43}/", text)


def test_the_planner_leaves_a_requested_link_alone(make_participant, alice):
    participant = person(make_participant, email="person@example.org")
    row = send(baseline(participant), "email", alice)
    with time_machine.travel(IN_WINDOW, tick=False):
        services.notifications_reconcile(participant_id=participant.pk)
    row.refresh_from_db()
    assert row.status == Notification.Status.PENDING


def test_a_requested_link_replaces_the_pending_it_is_open_reminder_and_later_nudges_stay(make_participant, alice):
    participant = person(make_participant, email="person@example.org")
    visit = baseline(participant)
    with time_machine.travel(IN_WINDOW, tick=False):
        services.notifications_reconcile(participant_id=participant.pk)
    reminders = Notification.objects.filter(participant=participant, template="questionnaire_reminder")
    pending_before = set(reminders.filter(status="pending").values_list("key", flat=True))
    assert any(":2d:" in key or ":open:" in key for key in pending_before), pending_before

    row = send(visit, "email", alice)

    # The reminder due now (the link stands for it) is cancelled as re-planned in the same transaction; the ones due
    # more than a day after the request stay; nothing else is sent alongside the link.
    pending = set(reminders.filter(status="pending").values_list("key", flat=True))
    cancelled = set(reminders.filter(status="cancelled", cancel_reason="re-planned").values_list("key", flat=True))
    assert pending_before - pending == cancelled and cancelled
    due_now = Notification.objects.filter(participant=participant, status="pending", due_at__lte=IN_WINDOW)
    assert list(due_now.values_list("pk", flat=True)) == [row.pk]
    assert all(n.nominal_at > IN_WINDOW + dt.timedelta(days=1) for n in reminders.filter(status="pending")), (
        "a reminder within a day of the link is still pending"
    )
    # Re-planning again changes nothing: the request is remembered.
    with time_machine.travel(IN_WINDOW, tick=False):
        assert services.notifications_reconcile(participant_id=participant.pk).created == 0


def assert_refused(visit, channel, by, when, words):
    before = (Notification.objects.count(), AuditEvent.objects.filter(entity_type="notification").count())
    with pytest.raises(ServiceError) as refused:
        send(visit, channel, by, when)
    assert words in refused.value.message
    assert (Notification.objects.count(), AuditEvent.objects.filter(entity_type="notification").count()) == before


def test_refusals_say_why_and_create_nothing(make_participant, alice, bob):
    no_phone = person(make_participant, email="person@example.org")
    assert_refused(baseline(no_phone), "sms", alice, IN_WINDOW, "has no phone number")
    no_email = person(make_participant, phone="+15035550123")
    assert_refused(baseline(no_email), "email", alice, IN_WINDOW, "has no e-mail address")
    # Before the window opens, and after it closed: nothing of the visit can be answered.
    assert_refused(baseline(no_phone), "email", alice, T0, "no self-report questionnaire that can be answered now")
    late = dt.datetime(2026, 3, 22, 18, 0, tzinfo=dt.UTC)
    assert_refused(baseline(no_phone), "email", alice, late, "no self-report questionnaire that can be answered now")
    # A visit without self-reports.
    screen = Visit.objects.get(participant=no_phone, code="SCREEN")
    assert_refused(screen, "email", alice, IN_WINDOW, "no self-report questionnaire")
    # Another site's coordinator may not.
    assert_refused(baseline(no_phone), "email", bob, IN_WINDOW, "cannot send links")
    assert_refused(baseline(no_phone), "post", alice, IN_WINDOW, "choose e-mail or SMS")
    # Withdrawn from contact: no messages at all.
    with time_machine.travel(IN_WINDOW, tick=False), transaction.atomic():
        participant_services.participant_withdraw(
            participant=no_phone, level="stop_contact", reason="asked", date=IN_WINDOW.date(), by=alice
        )
    assert_refused(baseline(no_phone), "email", alice, IN_WINDOW, "gets no messages")


def test_a_withdrawal_cancels_a_link_not_yet_sent(make_participant, alice, smtp):
    participant = person(make_participant, email="person@example.org")
    row = send(baseline(participant), "email", alice)
    with time_machine.travel(IN_WINDOW, tick=False), transaction.atomic():
        participant_services.participant_withdraw(
            participant=participant, level="stop_contact", reason="asked", date=IN_WINDOW.date(), by=alice
        )
    row.refresh_from_db()
    assert row.status == Notification.Status.CANCELLED
    with time_machine.travel(IN_WINDOW, tick=False):
        assert deliver_due() == []
    assert smtp.count() == 0


def test_sms_body_is_short_and_carries_nothing_clinical(make_participant, alice, sms_provider):
    participant = person(make_participant, phone="+15035550123", language="en")
    send(baseline(participant), "sms", alice)
    with time_machine.travel(IN_WINDOW, tick=False):
        deliver_due()
    text = urllib.parse.unquote(sms_provider.requests[-1]["form"]["Body"][0])
    assert "BASELINE" not in text and "PCL" not in text and len(text) < 200
