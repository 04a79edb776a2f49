"""With Redis stopped (a redis-server of this test's own, serving both the cache and the broker), participant links
and safety entry keep working; the alert's mail goes out once Redis is back, through the sweep, exactly once.

Before, the link pages answered 500 (the wrong-token counter read the cache first), and a high-risk C-SSRS entry
answered 500 after committing the response and its alert (publishing the mail task raised), with a retry answering
409 and the alert never mailed."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis
from django.test import Client, override_settings

from assessments import links, services
from assessments.models import Response, SafetyAlert
from scheduling.models import Visit
from tests.factories import staff
from tests.support.processes import Worker, broker, wait_for_worker_sessions_to_end, wait_until
from tests.support.smtp import free_port
from trialsite.roles import Role

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HIGH = {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_3": 1, "CSSRS_4": 1, "CSSRS_5": 0, "CSSRS_6": 0}
SWEEP = "assessments.safety_alerts_notify_pending"


def start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = redis.Redis(port=port)

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_until(ready, 10, f"redis-server on port {port}")
    return proc


def stop_redis(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)


def succeeded(worker: Worker, task: str) -> int:
    return sum(1 for line in worker.output().splitlines() if f"Task {task}[" in line and " succeeded in " in line)


def test_with_redis_stopped_links_and_safety_entry_work_and_the_alert_is_mailed_once_it_is_back(
    participant, baseline, alice, pdx, api, smtp_recorder, in_window, settings
):
    ivy = staff("ivy", Role.INVESTIGATOR, pdx)
    ivy.email = "ivy@example.org"
    ivy.save()
    link, token = services.link_issue(visit=baseline, by=alice)
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    cache = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": url}}
    server = start_redis(port)
    worker = None
    try:
        with override_settings(CACHES=cache, CELERY_BROKER_URL=url), broker(url) as app:
            stop_redis(server)

            # The participant's link: the page flow and the JSON endpoint answer, and a wrong token is still counted
            # (in this process) and refused with 404, never a 500.
            browser = Client(REMOTE_ADDR="198.51.100.20")
            page = browser.get(f"/l/{token}/", follow=True)
            assert page.status_code == 200 and page.redirect_chain[-1][0] == "/l/q/1/"
            assert "1 of 2" in page.content.decode()
            state = Client().get(f"/api/v1/links/{token}/")
            assert state.status_code == 200
            assert [a["instrument"] for a in state.json()["administrations"]] == ["PCL5", "SCS"]
            assert Client().get(f"/api/v1/links/{links.new_token()}/").status_code == 404

            # Staff entry of a high-risk C-SSRS: 201 at once, the response and its alert stored, the mail pending.
            started = time.monotonic()
            entry = api(alice).post(
                "/api/v1/responses/",
                {"participant_id": participant.participant_id, "visit_id": screen.pk, "instrument": "CSSRS_SCREEN",
                 "answers": HIGH},
                format="json",
            )  # fmt: skip
            elapsed = time.monotonic() - started
            assert entry.status_code == 201, entry.content
            assert entry.json()["flags"]["risk"] == "high"
            assert elapsed < 5, f"the entry took {elapsed:.1f} s with Redis down"
            alert = SafetyAlert.objects.get()
            assert (alert.response_id, alert.severity, alert.notified_at) == (entry.json()["id"], "high", None)
            assert Response.objects.filter(participant=participant).count() == 1

            # Redis is back on the same port; a worker runs the sweep (as beat does each minute), twice, and the
            # alert's own task arrives late as well: one mail.
            server = start_redis(port)
            worker = Worker(url, smtp_recorder.port)
            worker.wait_ready()
            app.send_task(SWEEP)
            wait_until(lambda: smtp_recorder.count() >= 1, 60, lambda: "the alert e-mail\n" + worker.output()[-3000:])
            app.send_task(SWEEP)
            app.send_task("assessments.safety_alert_notify", args=[alert.pk])
            wait_until(
                lambda: succeeded(worker, SWEEP) == 2 and succeeded(worker, "assessments.safety_alert_notify") == 1,
                30,
                lambda: worker.output()[-3000:],
            )
    finally:
        if worker is not None:
            worker.stop()
        stop_redis(server)
    wait_for_worker_sessions_to_end()
    assert smtp_recorder.count() == 1
    message = smtp_recorder.messages[0]
    assert message.to == ["ivy@example.org"]
    assert "Safety alert (high)" in message.subject and participant.participant_id in message.subject
    alert.refresh_from_db()
    assert alert.notified_at is not None and alert.notified_to == SafetyAlert.NotifiedTo.INVESTIGATORS
