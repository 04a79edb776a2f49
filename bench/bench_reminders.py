"""Reminders delivered per second through the outbox, Celery and Redis to an SMTP server, against plain smtplib senders
with the same parallelism, to the same server.

Both sides send N messages to one loopback aiosmtpd server (as tests/support/smtp.py runs it), in a process of its
own so that neither side shares a GIL with it. Its handler only records each message's Message-ID (for the count and
the duplicate check): a server that parses every message would cap both sides alike and hide the difference.

- Baseline: C sender processes (C = the worker's concurrency), each with one SMTP connection opened beforehand, each
  building its share of the N messages (stdlib EmailMessage) and ``send_message`` in a loop. Timed from the go signal
  until the server holds N messages.
- Pipeline: what production does. N due outbox rows in a throwaway PostgreSQL database (``<db>_bench_reminders``); a
  real worker (``-c C -P prefork`` with production settings, as docker-compose.yml runs it), started once; the
  dispatcher's beat task (``notifications.dispatch_due``) sent through the broker as the beat sends it. Timed from
  the task's publication until the server holds N messages.

Each side runs RUNS times (fresh rows each pipeline run); prints min, median and max of each, the ratio of the medians
(goal >= 0.8) with PASS/FAIL, and checks every row is marked sent and no Message-ID arrived twice.

Environment: DATABASE_URL (any database on the server; the bench creates and drops its own beside it), REDIS_URL (the
bench uses database 15 of that server and flushes it), BENCH_REMINDERS_N (default 5000), BENCH_REMINDERS_RUNS (3),
BENCH_REMINDERS_CONCURRENCY (4, as docker-compose.yml).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RATIO_GOAL = 0.8

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

# One baseline sender: connects, says READY, waits for a line on stdin, then sends its share and exits.
SENDER = r"""
import smtplib, sys
from email.message import EmailMessage
port, first, count, run = (int(a) for a in sys.argv[1:5])
conn = smtplib.SMTP("127.0.0.1", port)
conn.ehlo()
sys.stdout.write("READY\n"); sys.stdout.flush()
sys.stdin.readline()
for i in range(first, first + count):
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "Reminder", "no-reply@trialsite.invalid", "p@example.org"
    msg["Message-ID"] = f"<baseline-{run}-{i}@trialsite.invalid>"
    msg.set_content("This is a reminder of your study visit.\n" * 5)
    conn.send_message(msg)
conn.quit()
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
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == b"READY"
        self.ids: list[bytes] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.lock:
                self.ids.append(line.strip())

    def count(self) -> int:
        with self.lock:
            return len(self.ids)

    def reset(self) -> None:
        with self.lock:
            self.ids = []

    def duplicates(self) -> int:
        with self.lock:
            return len(self.ids) - len(set(self.ids))

    def wait_for(self, n: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.count()} of {n} messages arrived within {timeout:.0f} s")
            time.sleep(0.002)
        return time.perf_counter()

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def _baseline(server: SmtpServer, n: int, concurrency: int, run: int) -> float:
    """N messages from ``concurrency`` processes, each with its own connection; returns messages per second."""
    server.reset()
    shares = [n // concurrency + (1 if k < n % concurrency else 0) for k in range(concurrency)]
    senders, first = [], 0
    for share in shares:
        senders.append(
            subprocess.Popen(
                [sys.executable, "-c", SENDER, str(server.port), str(first), str(share), str(run)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
        first += share
    for proc in senders:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    started = time.perf_counter()
    for proc in senders:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    finished = server.wait_for(n, 300)
    for proc in senders:
        proc.wait(30)
    if server.duplicates():
        raise RuntimeError("the baseline delivered a message twice")
    return n / (finished - started)


def _bench_database_url() -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite"))
    if not parts.scheme.startswith("postgres"):
        raise SystemExit("bench_reminders needs DATABASE_URL pointing at PostgreSQL")
    # Named after the configured database, so that two checkouts sharing a server do not drop each other's.
    name = f"{parts.path.lstrip('/') or 'trialsite'}_bench_reminders"
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin_sql(url: str, sql: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql)


def _db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _prepare_database(url: str) -> None:
    _admin_sql(url, f'DROP DATABASE IF EXISTS "{_db_name(url)}" WITH (FORCE)')
    _admin_sql(url, f'CREATE DATABASE "{_db_name(url)}"')
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "true"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def _participant() -> tuple[object, object, dt.datetime]:
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
    return participant, visit, start


def _due_rows(participant: object, visit: object, start: dt.datetime, n: int, run: int) -> None:
    from notifications.models import Notification
    from notifications.planner import iso

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    Notification.objects.bulk_create(
        (
            Notification(
                key=f"bench:{run}:{i}",
                participant=participant,
                recipient_kind="participant",
                channel="email",
                template="visit_reminder",
                language="en",
                context={"visit_id": visit.pk, "starts_at": iso(start)},  # type: ignore[attr-defined]
                nominal_at=now,
                due_at=now,
            )
            for i in range(n)
        ),
        batch_size=2000,
    )


def _worker(db_url: str, broker_url: str, smtp_port: int, concurrency: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        # Production settings: with DEBUG on, Django keeps every query in memory and the figures would not be ours.
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "AUDIT_KEY": os.environ.get("AUDIT_KEY", "bench-audit-key-" + "x" * 48),
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "trialsite", "worker", "-Q", "safety,reminders,default",
         "-c", str(concurrency), "-P", "prefork", "--without-heartbeat", "--without-mingle", "--without-gossip",
         "-l", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _spread(values: list[float]) -> str:
    return f"min {min(values):7.1f}  median {statistics.median(values):7.1f}  max {max(values):7.1f}"


def main() -> int:
    n = int(os.environ.get("BENCH_REMINDERS_N", "5000"))
    runs = int(os.environ.get("BENCH_REMINDERS_RUNS", "3"))
    concurrency = int(os.environ.get("BENCH_REMINDERS_CONCURRENCY", "4"))
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

    from notifications.models import Notification
    from trialsite.celery import app

    redis.Redis.from_url(broker_url).flushdb()
    server = SmtpServer()
    worker = None
    baseline: list[float] = []
    pipeline: list[float] = []
    unsent = duplicates = 0
    try:
        participant, visit, start = _participant()
        worker = _worker(db_url, broker_url, server.port, concurrency)
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not start")
        for run in range(runs):  # the two sides in turn, so that a noisy neighbour weighs on both alike
            baseline.append(_baseline(server, n, concurrency, run))
            _due_rows(participant, visit, start, n, run)
            server.reset()
            began = time.perf_counter()
            app.send_task("notifications.dispatch_due")  # one beat tick, as the beat sends it
            finished = server.wait_for(n, 600)
            pipeline.append(n / (finished - began))
            time.sleep(0.3)
            duplicates += server.duplicates() + max(0, server.count() - n)
            unsent += Notification.objects.filter(key__startswith=f"bench:{run}:").exclude(status="sent").count()
            print(f"   run {run + 1}: baseline {baseline[-1]:7.1f}/s, pipeline {pipeline[-1]:7.1f}/s", flush=True)
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(20)
        server.stop()
        connections.close_all()
        _admin_sql(db_url, f'DROP DATABASE IF EXISTS "{_db_name(db_url)}" WITH (FORCE)')
    ratio = statistics.median(pipeline) / statistics.median(baseline)
    ok = ratio >= RATIO_GOAL and not unsent and not duplicates
    print(f"   messages per run: {n}, runs: {runs}, parallelism: {concurrency} on each side")
    print(f"   baseline, {concurrency} smtplib processes, a connection each (msg/s): {_spread(baseline)}")
    print(f"   outbox -> beat task -> Celery/Redis -> worker -c {concurrency} -> SMTP (msg/s): {_spread(pipeline)}")
    print(f"   rows not marked sent: {unsent}, messages delivered twice: {duplicates}")
    print(f"   ratio of medians: {ratio:.2f} (goal >= {RATIO_GOAL}) {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
