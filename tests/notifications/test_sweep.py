"""The reminder safety net (notifications.reconcile_all) re-plans only what changed, and resumes where a run that
ran out of time stopped."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

import pytest
import time_machine
from django.db import transaction

from notifications import services, tasks
from notifications.models import Notification, ReminderPlan
from scheduling import services as scheduling_services
from scheduling.models import Visit

pytestmark = pytest.mark.django_db

LA = zoneinfo.ZoneInfo("America/Los_Angeles")
T0 = dt.datetime(2026, 2, 20, 18, 0, tzinfo=dt.UTC)


@pytest.fixture
def trio(make_participant):
    with time_machine.travel(T0, tick=False):
        return [make_participant("randomized", contact={"email": f"p{i}@example.org"}) for i in range(3)]


def planned_at() -> dict[int, dt.datetime]:
    return dict(ReminderPlan.objects.values_list("participant_id", "planned_at"))


def test_unchanged_participants_are_compared_not_replanned(trio):
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):
        first = services.notifications_reconcile_changed()
    assert (first.examined, first.replanned, first.complete) == (3, 3, True)  # never planned before
    before = planned_at()
    rows = list(Notification.objects.order_by("id").values_list("id", "status", "due_at"))
    with time_machine.travel(T0 + dt.timedelta(minutes=10), tick=False):
        second = services.notifications_reconcile_changed()
    assert (second.examined, second.replanned, second.created, second.complete) == (3, 0, 0, True)
    assert planned_at() == before
    assert list(Notification.objects.order_by("id").values_list("id", "status", "due_at")) == rows
    assert set(ReminderPlan.objects.values_list("examined_at", flat=True)) == {T0 + dt.timedelta(minutes=10)}


def test_a_changed_participant_is_replanned_by_the_next_run(trio, alice):
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):
        services.notifications_reconcile_changed()
    before = planned_at()
    moved, untouched, _ = trio
    # A booking whose "reconcile this participant" hook never reached a worker (no worker runs in tests).
    with time_machine.travel(T0 + dt.timedelta(minutes=6), tick=False), transaction.atomic():
        scheduling_services.visit_schedule(
            visit=Visit.objects.get(participant=moved, code="BASELINE"),
            start=dt.datetime(2026, 3, 9, 14, tzinfo=LA),
            by=alice,
        )
    assert not Notification.objects.filter(participant=moved, key__startswith="visit:").exists()
    with time_machine.travel(T0 + dt.timedelta(minutes=10), tick=False):
        result = services.notifications_reconcile_changed()
    assert (result.examined, result.replanned) == (3, 1)
    after = planned_at()
    assert after[moved.pk] == T0 + dt.timedelta(minutes=10) and after[untouched.pk] == before[untouched.pk]
    keys = set(Notification.objects.filter(participant=moved, status="pending").values_list("key", flat=True))
    assert {k.split(":")[2] for k in keys if k.startswith("visit:")} == {"48h", "2h"}
    # A change of contact preference, a write with no hook at all, is caught the same way.
    contact = untouched.contact
    contact.preferred_channel, contact.phone = "sms", "+15035550100"
    contact.save(update_fields=["preferred_channel", "phone"])
    with time_machine.travel(T0 + dt.timedelta(minutes=15), tick=False):
        result = services.notifications_reconcile_changed()
    assert result.replanned == 1 and planned_at()[untouched.pk] == T0 + dt.timedelta(minutes=15)


def test_time_alone_replans_when_the_plan_says_so(trio, alice):
    p = trio[0]
    start = dt.datetime(2026, 3, 9, 14, tzinfo=LA)
    with time_machine.travel(T0 + dt.timedelta(minutes=1), tick=False), transaction.atomic():
        scheduling_services.visit_schedule(
            visit=Visit.objects.get(participant=p, code="BASELINE"), start=start, by=alice
        )
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):
        services.notifications_reconcile_changed()
    plan = ReminderPlan.objects.get(participant=p)
    first_due = Notification.objects.filter(participant=p, status="pending").order_by("due_at").first().due_at
    assert plan.recheck_at == first_due
    with time_machine.travel(first_due - dt.timedelta(seconds=1), tick=False):
        assert services.notifications_reconcile_changed().replanned == 0
    come = set(ReminderPlan.objects.filter(recheck_at__lte=first_due).values_list("participant_id", flat=True))
    assert p.pk in come
    with time_machine.travel(first_due, tick=False):
        result = services.notifications_reconcile_changed()
    assert result.replanned == len(come) and {pk for pk, at in planned_at().items() if at == first_due} == come
    assert ReminderPlan.objects.get(participant=p).recheck_at > first_due


def test_a_run_out_of_time_resumes_where_it_stopped(trio):
    ticks = itertools.count()
    # Each clock reading is one second later: a 3 s budget lets the run re-plan one participant, then it stops.
    with time_machine.travel(T0 + dt.timedelta(minutes=5), tick=False):
        first = services.notifications_reconcile_changed(
            budget_seconds=3, batch_size=1, clock=lambda: float(next(ticks))
        )
    assert first.complete is False and first.replanned == 1
    done = set(planned_at())
    with time_machine.travel(T0 + dt.timedelta(minutes=10), tick=False):
        second = services.notifications_reconcile_changed(batch_size=1)
    # The next run reaches the participants the first one did not, and skips the one it planned.
    assert second.complete is True and second.replanned == 2
    assert set(planned_at()) == {p.pk for p in trio}
    assert planned_at()[done.pop()] == T0 + dt.timedelta(minutes=5)
    with time_machine.travel(T0 + dt.timedelta(minutes=15), tick=False):
        assert tasks.reconcile_all() == 0  # the beat task: nothing changed, nothing created
    assert max(planned_at().values()) == T0 + dt.timedelta(minutes=10)
