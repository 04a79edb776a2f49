"""Real processes: a Celery worker (prefork, as deployed), Redis, and the loopback SMTP server.

The worker reaches the pytest database through DATABASE_URL, so these tests commit (transaction=True). Each test uses
its own Redis database number (or its own redis-server) and purges it first, so nothing else's queues are touched.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from pathlib import Path

import pytest
import redis
from django.db import transaction

from notifications import services
from notifications.models import Notification
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.notifications.conftest import free_port
from tests.notifications.test_delivery import due_rows
from tests.support.processes import Worker, broker, broker_url, purged, wait_for_worker_sessions_to_end, wait_until
from tests.support.zones import daytime_zone

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
N = Notification.Status


@pytest.fixture
def booked(make_participant, alice):
    p = make_participant("randomized", contact={"email": "p@example.org", "time_zone": daytime_zone()})
    visit = Visit.objects.get(participant=p, code="BASELINE")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    with transaction.atomic():
        scheduling_services.visit_schedule(visit=visit, start=start, by=alice)
    # Only the rows a test creates itself matter; the visit's own reminders lie in the future anyway.
    Notification.objects.all().delete()
    return p, visit, start


def test_kill_9_worker_mid_batch_then_another_worker_delivers_exactly_1000(booked, smtp_server, settings):
    total = 1000
    p, visit, start = booked
    rows = due_rows(p, visit, start, total)
    url = purged(broker_url(13))
    with broker(url):
        first = Worker(url, smtp_server.port)
        second = None
        try:
            first.wait_ready()
            services.enqueue_sends(services.notifications_claim_due())  # one beat tick hands out all 1,000
            wait_until(lambda: smtp_server.count() >= 200, 60, lambda: "200 messages\n" + first.output()[-3000:])
            first.kill()
            at_kill = smtp_server.count()
            assert at_kill < total, "the worker finished before it could be killed"
            # Whatever the dead worker held (claimed, or mid-SMTP in "sending") waits for the claim timeout; the beat
            # keeps ticking and takes those rows back.
            settings.NOTIFICATIONS_CLAIM_TIMEOUT_SECONDS = 10
            second = Worker(url, smtp_server.port)
            second.wait_ready()

            def tick_and_check():
                services.enqueue_sends(services.notifications_claim_due())
                return smtp_server.count() >= total and not Notification.objects.exclude(status=N.SENT).exists()

            wait_until(tick_and_check, 120, lambda: _progress(smtp_server, second), interval=1)
            # A few more ticks: nothing late may arrive twice.
            for _ in range(3):
                services.enqueue_sends(services.notifications_claim_due())
                time.sleep(0.5)
        finally:
            first.stop()
            if second is not None:
                second.stop()
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == total and len(set(ids)) == total, f"{len(ids)} received, {len(set(ids))} distinct"
    assert Notification.objects.filter(pk__in=rows, status=N.SENT).count() == total
    wait_for_worker_sessions_to_end()


def test_with_redis_down_requests_answer_fast_and_due_reminders_go_out_once_it_is_back(
    booked, smtp_server, make_participant, alice, api
):
    p, visit, start = booked
    rows = due_rows(p, visit, start, 20)
    failed = Notification.objects.get(pk=rows[0])
    Notification.objects.filter(pk=failed.pk).update(status=N.FAILED, attempts=5, last_error="550 earlier")
    enrolling = make_participant("consented")
    # Another visit to reschedule (the due rows are about BASELINE's slot, which must stay put for them to be sent).
    other = Visit.objects.get(participant=p, code="SCREEN")
    with transaction.atomic():
        scheduling_services.visit_schedule(visit=other, start=start + dt.timedelta(days=1), by=alice)
    port = free_port()
    server_args = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--daemonize", "no"]
    redis_server = subprocess.Popen(server_args, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: _pings(url), 10, "redis-server")
    worker = None
    try:
        with broker(url):
            redis_server.kill()
            redis_server.wait()
            client = api(alice)
            calls = [
                ("post", f"/api/v1/participants/{enrolling.participant_id}/enroll/", {}),
                ("post", f"/api/v1/visits/{other.pk}/schedule/", {"start": (start + dt.timedelta(days=2)).isoformat()}),
                ("post", f"/api/v1/notifications/{failed.pk}/retry/", {"reason": "provider fixed"}),
            ]
            for method, path, data in calls:
                started = time.monotonic()
                response = getattr(client, method)(path, data, format="json")
                elapsed = time.monotonic() - started
                assert 200 <= response.status_code < 300, (path, response.status_code, response.content[:300])
                assert elapsed < 1.0, f"{path} took {elapsed:.2f} s with the broker down"
            # A beat tick during the outage cannot publish: its claims are released and the rows wait in PostgreSQL.
            assert services.enqueue_sends(services.notifications_claim_due()) == 0
            assert set(Notification.objects.filter(pk__in=rows).values_list("status", flat=True)) == {N.PENDING}

            redis_server = subprocess.Popen(server_args, stdout=subprocess.DEVNULL)
            wait_until(lambda: _pings(url), 10, "redis-server to come back")
            worker = Worker(url, smtp_server.port)
            worker.wait_ready()
            from trialsite.celery import app

            app.send_task("notifications.dispatch_due")  # the beat's next tick
            wait_until(lambda: smtp_server.count() >= len(rows), 60, lambda: _progress(smtp_server, worker))
            app.send_task("notifications.dispatch_due")
            time.sleep(1)
    finally:
        if worker is not None:
            worker.stop()
        redis_server.kill()
        redis_server.wait()
    ids = [m.message_id for m in smtp_server.messages]
    assert len(ids) == len(rows) == len(set(ids))
    assert Notification.objects.filter(pk__in=rows, status=N.SENT).count() == len(rows)
    wait_for_worker_sessions_to_end()


def _progress(smtp_server, worker) -> str:
    from django.db.models import Count

    statuses = dict(Notification.objects.values_list("status").annotate(n=Count("id")))
    return f"messages: {smtp_server.count()}, rows: {statuses}\n{worker.output()[-4000:]}"


def _pings(url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=0.2).ping()
    except redis.ConnectionError:
        return False


def test_writers_hooks_reconcile_through_the_broker_and_a_worker(make_participant, alice, api, smtp_server):
    """End to end through the hooks the writers enqueue on commit ("notifications.reconcile_participant", by name):
    visit schedule, administration completion and visit cancel. Needs the one-line hooks in scheduling/services.py
    and assessments/services.py (see docs/operations.md, "Reminders")."""
    from assessments import services as assessment_services
    from assessments.models import Administration
    from tests.notifications.conftest import complete_answers

    p = make_participant("randomized", contact={"email": "p@example.org", "time_zone": daytime_zone()})
    visit = Visit.objects.get(participant=p, code="BASELINE")
    url = purged(broker_url(12))
    with broker(url):
        worker = Worker(url, smtp_server.port)
        try:
            worker.wait_ready()
            mine = Notification.objects.filter(participant=p, key__startswith=f"visit:{visit.pk}:")
            start = dt.datetime.now(dt.UTC) + dt.timedelta(days=4)
            r = api(alice).post(f"/api/v1/visits/{visit.pk}/schedule/", {"start": start.isoformat()}, format="json")
            assert r.status_code == 200, r.json()
            wait_until(lambda: mine.filter(status=N.PENDING).count() == 2, 20, "visit reminders planned by the hook")

            questionnaires = Notification.objects.filter(participant=p, key__startswith=f"questionnaire:{visit.pk}:")
            for adm in Administration.objects.filter(visit=visit, respondent="self"):
                assessment_services.administration_open_early(administration=adm, by=alice)
            services.notifications_reconcile(participant_id=p.pk)
            assert questionnaires.filter(status=N.PENDING).exists()
            link, _ = assessment_services.link_issue(visit=visit, by=alice)
            assessment_services.link_save_answers(
                link=link, answers_by_instrument={c: complete_answers(c) for c in ("PCL5", "SCS")}
            )
            assessment_services.link_submit(link=link)
            wait_until(
                lambda: not questionnaires.filter(status=N.PENDING).exists(), 20, "questionnaire reminders cancelled"
            )

            r = api(alice).post(
                f"/api/v1/visits/{visit.pk}/cancel/", {"reason": "participant moved away"}, format="json"
            )
            assert r.status_code == 200, r.json()
            wait_until(lambda: not mine.filter(status=N.PENDING).exists(), 20, "visit reminders cancelled by the hook")
        finally:
            worker.stop()
    wait_for_worker_sessions_to_end()
