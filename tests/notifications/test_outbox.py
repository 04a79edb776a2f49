"""Planning against the database: reconcile from state, the unique key, withdrawal, escalation; and the API."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import time_machine
from django.db import IntegrityError, transaction

from notifications import services
from notifications.models import Notification
from participants import services as participant_services
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.factories import staff
from trialsite.roles import Role

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
T0 = dt.datetime(2026, 2, 20, 18, 0, tzinfo=dt.UTC)
N = Notification.Status


@pytest.fixture
def participant(make_participant, alice):
    with time_machine.travel(T0, tick=False):
        p = make_participant("randomized", contact={"email": "p@example.org"})
        with transaction.atomic():
            scheduling_services.visit_schedule(
                visit=Visit.objects.get(participant=p, code="BASELINE"),
                start=dt.datetime(2026, 3, 9, 14, tzinfo=LA),
                by=alice,
            )
        services.notifications_reconcile(participant_id=p.pk)
    return p


def test_the_unique_key_refuses_a_twin_but_not_after_cancellation(participant):
    row = Notification.objects.filter(participant=participant, status=N.PENDING).first()
    twin = dict(
        key=row.key,
        participant=participant,
        recipient_kind="participant",
        channel="email",
        template=row.template,
        nominal_at=row.due_at,
        due_at=row.due_at,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(**twin)
    Notification.objects.filter(pk=row.pk).update(status=N.CANCELLED)
    Notification.objects.create(**twin)


def test_reconcile_is_idempotent_and_keeps_history(participant):
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        before = list(Notification.objects.order_by("id").values_list("id", "key", "status"))
        assert services.notifications_reconcile(participant_id=participant.pk) == services.ReconcileResult(0, 0)
        assert list(Notification.objects.order_by("id").values_list("id", "key", "status")) == before
    # A visit that moves keeps its sent reminder as history and cancels only what is pending.
    Notification.objects.filter(key__contains=":48h:").update(status=N.SENT)
    visit = Visit.objects.get(participant=participant, code="BASELINE")
    with time_machine.travel(T0 + dt.timedelta(days=1), tick=False):
        with transaction.atomic():
            scheduling_services.visit_schedule(visit=visit, start=dt.datetime(2026, 3, 11, 14, tzinfo=LA), by=None)
        assert services.notifications_reconcile(participant_id=participant.pk) == services.ReconcileResult(2, 1)
    assert Notification.objects.get(key__contains=":48h:2026-03-09").status == N.SENT


def test_withdrawal_stop_contact_cancels_everything_pending_in_the_same_transaction(participant, alice):
    assert Notification.objects.filter(participant=participant, status=N.PENDING).count() > 3
    with time_machine.travel(T0 + dt.timedelta(days=1), tick=False), transaction.atomic():
        participant_services.participant_withdraw(
            participant=participant,
            level="stop_contact",
            reason="asked not to be contacted",
            date=dt.date(2026, 2, 21),
            by=alice,
        )
    assert not Notification.objects.filter(participant=participant, status__in=[N.PENDING, N.CLAIMED]).exists()
    assert set(Notification.objects.filter(participant=participant).values_list("cancel_reason", flat=True)) == {
        "participant withdrawn (stop_contact)"
    }
    with time_machine.travel(T0 + dt.timedelta(days=2), tick=False):
        assert services.notifications_reconcile(participant_id=participant.pk).created == 0


def test_overdue_assessments_escalate_to_site_coordinators_by_email(participant, pdx, smtp):
    from tests.notifications.conftest import deliver_due

    carol = staff("carol", Role.COORDINATOR, pdx)
    carol.email = "carol@site.example"
    carol.save()
    with time_machine.travel(T0, tick=False):
        services.notifications_reconcile(participant_id=participant.pk)
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    row = Notification.objects.get(recipient_user=carol, context__visit_id=screen.pk)
    # SCREEN's target is 20 Feb: three days later at 08:00 in Portland.
    assert row.due_at == dt.datetime(2026, 2, 23, 8, tzinfo=LA) and row.recipient_kind == "staff"
    with time_machine.travel(row.due_at, tick=False):
        deliver_due()
    (mail,) = [m for m in smtp.messages if m.to == ["carol@site.example"]]
    assert mail.subject == f"[trialsite] Overdue assessments for participant {participant.participant_id} (SCREEN)"
    assert "2 assessment(s)" in mail.body


def test_list_is_scoped_filtered_paginated_and_constant_in_queries(
    participant, make_participant, alice, bob, nyc, api, django_assert_num_queries
):
    with time_machine.travel(T0, tick=False):
        other = make_participant("randomized", site=nyc, by=bob, contact={"email": "o@example.org"})
        services.notifications_reconcile(participant_id=other.pk)
    mine = Notification.objects.filter(participant=participant).count()
    assert mine > 3 and Notification.objects.filter(participant=other).exists()
    client = api(alice)
    expected = [
        n.pk for n in Notification.objects.filter(participant__site=participant.site).order_by("-due_at", "-id")
    ]
    # roles, the studies and protocol versions the blinded view reads (alice is blinded in MAP), one page (participant,
    # site and recipient joined); no COUNT
    with django_assert_num_queries(5):
        r = client.get("/api/v1/notifications/", {"page_size": 2})
    assert r.status_code == 200 and set(r.json()) == {"next", "results"}
    seen = [n["id"] for n in r.json()["results"]]
    assert seen == expected[:2]
    # Following the cursor walks the whole list in order, each page at the same cost, and ends with next null.
    while r.json()["next"] is not None:
        with django_assert_num_queries(5):
            r = client.get(r.json()["next"])
        assert r.status_code == 200 and len(r.json()["results"]) <= 2
        seen += [n["id"] for n in r.json()["results"]]
    assert seen == expected and len(seen) == mine
    with django_assert_num_queries(5):
        r = client.get("/api/v1/notifications/", {"page_size": 100})
    body = r.json()
    assert body["next"] is None and [n["id"] for n in body["results"]] == expected
    assert {n["participant_id"] for n in body["results"]} == {participant.participant_id}
    assert "p@example.org" not in r.content.decode()  # no contact detail in the outbox view
    r = client.get("/api/v1/notifications/", {"participant_id": other.participant_id})
    assert r.json() == {"next": None, "results": []}  # another site's participant is invisible
    r = client.get("/api/v1/notifications/", {"status": "pending", "participant_id": participant.participant_id})
    pending = Notification.objects.filter(participant=participant, status=N.PENDING).order_by("-due_at", "-id")
    assert [n["id"] for n in r.json()["results"]] == [n.pk for n in pending]
    # The cursor keeps the filters: the second page of pending rows holds pending rows only.
    r = client.get("/api/v1/notifications/", {"status": "pending", "page_size": 1})
    r = client.get(r.json()["next"])
    assert [n["id"] for n in r.json()["results"]] == [pending[1].pk]
    assert client.get("/api/v1/notifications/", {"cursor": "not-a-cursor"}).status_code == 404
    foreign = Notification.objects.filter(participant=other).first()
    assert client.post(f"/api/v1/notifications/{foreign.pk}/retry/").status_code == 404


def test_cursor_pages_rows_that_share_a_due_time(participant, alice, api):
    """Reminders of many participants fall due at the same 08:00: the cursor's id breaks the tie, so paging through
    rows with one due_at shows each exactly once."""
    row = Notification.objects.filter(participant=participant).first()
    due = row.due_at
    twins = Notification.objects.bulk_create(
        [
            Notification(
                key=f"tie:{i}",
                participant=participant,
                recipient_kind="participant",
                channel="email",
                template="visit_reminder",
                nominal_at=due,
                due_at=due,
                status=N.SENT,
            )
            for i in range(5)
        ]
    )
    client = api(alice)
    seen: list[int] = []
    url: str | None = "/api/v1/notifications/?page_size=2"
    while url:
        body = client.get(url).json()
        seen += [n["id"] for n in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == Notification.objects.filter(participant=participant).count()
    tied = [pk for pk in seen if pk in {t.pk for t in twins} | {row.pk}]
    assert tied == sorted(tied, reverse=True) and len(tied) >= 6


def test_roles_without_management_see_nothing(participant, personas, api):
    assert api(personas["rater"]).get("/api/v1/notifications/").json()["results"] == []
    assert len(api(personas["coordinator"]).get("/api/v1/notifications/").json()["results"]) > 0
    assert api().get("/api/v1/notifications/").status_code in (401, 403)
