"""Past one machine: two web processes (gunicorn, as deployed) and two Celery workers against one PostgreSQL and one
Redis, and the loopback SMTP server; one worker is killed with SIGKILL in the middle of a batch.

Coordinators' requests, alternating between the two web processes, put failed messages back in the outbox (the retry
endpoint: an audited write that kicks the dispatcher on commit) while a backlog of due reminders goes out; both
workers claim and deliver; one worker dies holding a batch while the requests go on, a replacement starts, and this
test plays the one beat that hands out again what the dead worker held. Every message must reach the SMTP server exactly once, every row must end sent, and every request's audit event
must be there exactly once, with the chain intact (docs/operations.md, "Past one machine").
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count

from accounts import services as account_services
from audit.models import AuditEvent
from notifications import messages, services
from notifications.models import Notification
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.support.processes import Web, Worker, broker, own_redis, wait_for_worker_sessions_to_end, wait_until
from tests.support.zones import daytime_zone

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
N = Notification.Status
TOTAL = int(os.environ.get("TWO_PROCESSES_MESSAGES", "1000"))
# Of those, the messages coordinators put back in the outbox through the web processes (one request each); the rest
# are already due when the test starts, a backlog the first request's dispatch hands out.
RETRIED = min(TOTAL, int(os.environ.get("TWO_PROCESSES_REQUESTS", "200")))
PARTICIPANTS = 4
CLIENT_THREADS = 4  # requests in flight at once, spread over both web processes
TASK_LINE = re.compile(r"Task notifications\.send_batch\[([0-9a-f-]+)\] (received|succeeded)")


@pytest.fixture
def outbox(make_participant, alice):
    """TOTAL visit reminders (distinct keys, so distinct messages) spread over a few participants, each about a visit
    booked three days ahead: RETRIED of them failed (what a coordinator retries once the mail provider is fixed), the
    others due now."""
    from notifications.planner import iso

    rows = []
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    for n in range(PARTICIPANTS):
        p = make_participant("randomized", contact={"email": f"p{n}@example.org", "time_zone": daytime_zone()})
        visit = Visit.objects.get(participant=p, code="BASELINE")
        start = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
        with transaction.atomic():
            scheduling_services.visit_schedule(visit=visit, start=start, by=alice)
        rows += [
            Notification(
                key=f"load:{n}:{i}",
                participant=p,
                recipient_kind="participant",
                channel="email",
                template="visit_reminder",
                language="en",
                context={"visit_id": visit.pk, "starts_at": iso(start)},
                nominal_at=now,
                due_at=now,
                **({"status": N.FAILED, "attempts": 5, "last_error": "550 mailbox unavailable"} if i < RETRIED else {}),
            )
            for i in range(n, TOTAL, PARTICIPANTS)
        ]
    # Only these rows matter; the visits' own reminders lie in the future anyway.
    Notification.objects.all().delete()
    return Notification.objects.bulk_create(rows)


def test_two_web_processes_and_two_workers_lose_and_double_nothing_when_a_worker_is_killed_mid_batch(
    outbox, alice, smtp_recorder, settings
):
    _, secret = account_services.token_issue(user=alice, days=1, by=alice)
    ids = [row.pk for row in outbox if row.status == N.FAILED]
    with own_redis() as url, broker(url):
        cache_url = url.rsplit("/", 1)[0] + "/1"
        webs = [Web(url, redis_url=cache_url) for _ in range(2)]
        workers = [Worker(url, smtp_recorder.port, env={"REDIS_URL": cache_url}) for _ in range(2)]
        replacement = None
        try:
            for process in (*webs, *workers):
                process.wait_ready()

            def retry(i: int, pk: int) -> tuple[int, int, int, dict]:
                response = requests.post(
                    f"{webs[i % 2].url}/api/v1/notifications/{pk}/retry/",
                    json={"reason": "provider fixed"},
                    headers={"Authorization": f"Token {secret}"},
                    timeout=30,
                )
                return i % 2, pk, response.status_code, response.json()

            with ThreadPoolExecutor(CLIENT_THREADS) as pool:
                futures = [pool.submit(retry, i, pk) for i, pk in enumerate(ids)]
                victim = workers[0]

                def victim_holds_a_batch() -> bool:
                    # Well into the run, and the victim holds a send batch it has not finished.
                    return smtp_recorder.count() >= TOTAL // 5 and bool(_in_hand(victim))

                wait_until(victim_holds_a_batch, 120, lambda: _progress(smtp_recorder, victim))
                victim.kill()
                at_kill = smtp_recorder.count()
                held = _in_hand(victim)  # its log is final now
                assert at_kill < TOTAL, "the worker finished before it could be killed"
                assert held, "the killed worker held no unfinished batch"
                assert _done(victim), "the killed worker had delivered nothing before it was killed"
                # The deployment restarts a dead worker; the requests go on meanwhile.
                replacement = Worker(url, smtp_recorder.port, env={"REDIS_URL": cache_url})
                answers = [future.result() for future in futures]
            replacement.wait_ready()

            # What the dead worker held (claimed, or mid-SMTP in "sending") waits for the claim timeout; the beat
            # (this test) keeps ticking and hands those rows out again.
            settings.NOTIFICATIONS_CLAIM_TIMEOUT_SECONDS = 10
            live = [workers[1], replacement]

            def tick_until_all_sent() -> bool:
                services.enqueue_sends(services.notifications_claim_due())
                return smtp_recorder.count() >= TOTAL and not Notification.objects.exclude(status=N.SENT).exists()

            wait_until(tick_until_all_sent, 90, lambda: _progress(smtp_recorder, workers[1]), interval=1)
            # Nothing is queued or in a live worker's hands any more: nothing late can still arrive.
            client = redis.Redis.from_url(url)
            wait_until(
                lambda: _queued(client) == 0 and not any(_in_hand(w) for w in live),
                30,
                lambda: f"queues to drain ({_queued(client)} queued)",
            )
        finally:
            for worker in (*workers, *([replacement] if replacement else [])):
                worker.stop()
            web_logs = [web.output() for web in webs]
            for web in webs:
                web.stop()

    # Every request went through its web process and answered with the row it put back in the outbox.
    for server, pk, status, body in answers:
        assert status == 200, (server, pk, status, body)
        assert body["id"] == pk and body["status"] in {N.PENDING, N.CLAIMED, N.SENDING, N.SENT}, body
    for n, log in enumerate(web_logs):
        served = len(re.findall(r'"POST /api/v1/notifications/\d+/retry/ HTTP/1\.1" 200', log))
        assert served == len(ids[n::2]), f"web process {n} served {served} retries"

    # 0 lost, 0 duplicated at the SMTP server: each row's stable Message-ID exactly once.
    received = [m.message_id for m in smtp_recorder.messages]
    expected = {messages.message_id(row) for row in outbox}
    assert len(received) == TOTAL and set(received) == expected, (
        f"{len(received)} received, {len(set(received))} distinct, {len(expected - set(received))} missing"
    )
    # Every outbox row sent once; the killed attempt counts as an attempt, never as a second message.
    assert dict(Notification.objects.values_list("status").annotate(n=Count("id"))) == {N.SENT: TOTAL}
    assert not Notification.objects.filter(sent_at__isnull=True).exists()
    # Each request's audit event exactly once: none lost between the two web processes, none doubled.
    retried = (
        AuditEvent.objects.filter(entity_type="notification", field="status", new_value=N.PENDING)
        .values_list("entity_id")
        .annotate(n=Count("id"))
    )
    assert sorted(retried) == sorted((str(pk), 1) for pk in ids)
    assert set(
        AuditEvent.objects.filter(entity_type="notification", field="status").values_list("actor_username", flat=True)
    ) == {alice.username}
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "audit chain intact" in out.getvalue()
    wait_for_worker_sessions_to_end()


def _tasks(worker: Worker) -> tuple[set[str], set[str]]:
    received, succeeded = set(), set()
    for task_id, what in TASK_LINE.findall(worker.output()):
        (received if what == "received" else succeeded).add(task_id)
    return received, succeeded


def _in_hand(worker: Worker) -> set[str]:
    received, succeeded = _tasks(worker)
    return received - succeeded


def _done(worker: Worker) -> set[str]:
    return _tasks(worker)[1]


def _queued(client: redis.Redis) -> int:
    """Messages waiting in the broker's queues (Redis lists; a priority queue keeps one list per level)."""
    return sum(client.llen(key) for key in client.scan_iter() if client.type(key) == b"list")


def _progress(smtp_recorder, worker: Worker) -> str:
    statuses = dict(Notification.objects.values_list("status").annotate(n=Count("id")))
    return f"messages: {smtp_recorder.count()}, rows: {statuses}\n{worker.output()[-4000:]}"
