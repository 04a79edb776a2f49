"""Reminders delivered per second through the outbox, Celery and Redis to an SMTP server, against a plain smtplib loop
to the same server.

Both runs send N messages to one loopback SMTP server running in its own process (so neither side shares a GIL with
it). The baseline is the fastest plain approach: one smtplib connection, ``sendmail`` in a loop. The pipeline is what
production does: N due outbox rows in a throwaway PostgreSQL database (``trialsite_bench``), one dispatcher tick
(claim + publish) and a real worker (``-c 4 -P prefork``, as docker-compose.yml runs it), timed from the tick until the server holds N messages.

Environment: DATABASE_URL (any database on the server; the bench creates and drops ``trialsite_bench`` beside it),
REDIS_URL (the bench uses database 15 of that server and flushes it), BENCH_REMINDERS_N (default 1000).
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "trialsite_bench"

SERVER = r"""
import asyncio, sys
from aiosmtpd.controller import Controller
class Counter:
    async def handle_DATA(self, server, session, envelope):
        mid = b""
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                mid = line.split(b":", 1)[1].strip()
                break
        sys.stdout.buffer.write(mid + b"\n")
        sys.stdout.flush()
        return "250 2.0.0 Ok: queued"
c = Controller(Counter(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
sys.stdout.buffer.write(b"READY\n"); sys.stdout.flush()
sys.stdin.read()
c.stop()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """The loopback SMTP server in a child process; reports each accepted Message-ID on a pipe."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdout.readline().strip() == b"READY"
        self.ids: list[bytes] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.lock:
                self.ids.append(line.strip())

    def count(self) -> int:
        with self.lock:
            return len(self.ids)

    def reset(self) -> None:
        with self.lock:
            self.ids = []

    def wait_for(self, n: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.count()} of {n} messages arrived within {timeout:.0f} s")
            time.sleep(0.005)
        return time.perf_counter()

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def _baseline(server: SmtpServer, n: int) -> float:
    server.reset()
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", server.port) as conn:
        for i in range(n):
            msg = EmailMessage()
            msg["Subject"], msg["From"], msg["To"] = "Reminder", "no-reply@trialsite.invalid", "p@example.org"
            msg["Message-ID"] = f"<baseline-{i}@trialsite.invalid>"
            msg.set_content("This is a reminder of your study visit.\n" * 5)
            conn.send_message(msg)
    finished = server.wait_for(n, 60)
    return n / (finished - started)


def _bench_database_url() -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite"))
    if not parts.scheme.startswith("postgres"):
        raise SystemExit("bench_reminders needs DATABASE_URL pointing at PostgreSQL")
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _admin_sql(url: str, sql: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def _prepare_database(url: str) -> None:
    _admin_sql(url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    _admin_sql(url, f"CREATE DATABASE {BENCH_DB}")
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "true"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def _due_rows(n: int) -> None:
    from notifications.models import Notification
    from notifications.planner import iso
    from participants.models import ContactDetails, Participant, Site, Study
    from scheduling.models import Visit

    study = Study.objects.create(code="BENCH", title="bench")
    site = Site.objects.create(code="BEN", name="Bench site", time_zone="America/Los_Angeles")
    participant = Participant.objects.create(
        participant_id="BENCH-BEN-001", study=study, site=site, number=1, status="randomized"
    )
    ContactDetails.objects.create(participant=participant, email="p@example.org")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    visit = Visit.objects.create(
        participant=participant, site=site, study=study, code="UNS1", name="Visit", kind="baseline", unscheduled=True,
        status="scheduled", scheduled_start=start, scheduled_end=start + dt.timedelta(hours=1),
    )  # fmt: skip
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    Notification.objects.bulk_create(
        Notification(
            key=f"bench:{i}",
            participant=participant,
            recipient_kind="participant",
            channel="email",
            template="visit_reminder",
            language="en",
            context={"visit_id": visit.pk, "starts_at": iso(start)},
            nominal_at=now,
            due_at=now,
        )  # fmt: skip
        for i in range(n)
    )


def _worker(db_url: str, broker_url: str, smtp_port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        # Production settings: with DEBUG on, Django keeps every query in memory and the figures would not be ours.
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "trialsite", "worker", "-Q", "safety,reminders,default", "-c", "4",
         "-P", "prefork", "--without-heartbeat", "--without-mingle", "--without-gossip", "-l", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def main() -> None:
    import signal

    n = int(os.environ.get("BENCH_REMINDERS_N", "1000"))
    db_url = _bench_database_url()
    redis_parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    broker_url = urlunsplit(redis_parts._replace(path="/15"))
    _prepare_database(db_url)
    os.environ["DATABASE_URL"] = db_url
    os.environ["CELERY_BROKER_URL"] = broker_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import redis
    from django.db import connections

    from notifications import services
    from notifications.models import Notification
    from trialsite.celery import app

    redis.Redis.from_url(broker_url).flushdb()
    server = SmtpServer()
    worker = None
    try:
        baseline = _baseline(server, n)
        _due_rows(n)
        server.reset()
        worker = _worker(db_url, broker_url, server.port)
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not start")
        started = time.perf_counter()
        services.enqueue_sends(services.notifications_claim_due())  # one beat tick
        finished = server.wait_for(n, 300)
        pipeline = n / (finished - started)
        time.sleep(0.5)
        sent = Notification.objects.filter(status="sent").count()
        duplicates = server.count() - len(set(server.ids))
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(20)
        server.stop()
        connections.close_all()
        _admin_sql(db_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    print(
        f"   messages: {n} (worker -c 4 prefork, as in docker-compose.yml; SMTP server on loopback in its own process)"
    )
    print(f"   plain smtplib loop, one connection:        {baseline:8.1f} messages/s")
    print(f"   outbox -> Celery/Redis -> worker -> SMTP:   {pipeline:8.1f} messages/s")
    print(f"   ratio (goal >= 0.5):                        {pipeline / baseline:8.2f}")
    print(f"   rows sent: {sent}/{n}, duplicate Message-IDs at the server: {duplicates}")


if __name__ == "__main__":
    main()
