"""Real processes for integration tests: a Celery worker (prefork, as deployed) and a web server (gunicorn, as
deployed) against the pytest database, and this process's Celery app pointed at a given broker.

Both reach the pytest database through DATABASE_URL, so tests that use them commit (transaction=True). Their
database sessions carry an application name, so a test can wait for exactly those to end before the database is
dropped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
WORKER_APPLICATION_NAME = "trialsite-test-worker"
WEB_APPLICATION_NAME = "trialsite-test-web"


def wait_until(predicate, timeout: float, what, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")


@contextlib.contextmanager
def broker(url: str):
    """Point this process's Celery app (the publisher: web requests, the dispatcher) at ``url``.

    Each test must use a URL of its own (its own Redis database or server): kombu keeps producer pools in a global
    registry keyed by the URL, and the pool closed here on exit must never be handed to a later test."""
    from trialsite.celery import app

    names = ("broker_url", "broker_write_url", "broker_read_url")
    saved = [app.conf[n] for n in names], app._pool, app.amqp._producer_pool
    app._pool = app.amqp._producer_pool = None
    for n in names:
        app.conf[n] = url
    try:
        yield app
    finally:
        if app._pool is not None:
            app._pool.force_close_all()
        for n, value in zip(names, saved[0], strict=True):
            app.conf[n] = value
        app._pool, app.amqp._producer_pool = saved[1], saved[2]


def _database_url(application_name: str) -> str:
    return (
        f"postgres://postgres@127.0.0.1:5432/{settings.DATABASES['default']['NAME']}"
        f"?application_name={application_name}"
    )


class Worker:
    def __init__(self, broker_url: str, smtp_port: int, env: dict[str, str] | None = None):
        self.log = tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log", delete=False)  # noqa: SIM115
        env = {
            **os.environ,
            "DEBUG": "true",
            "DATABASE_URL": _database_url(WORKER_APPLICATION_NAME),
            "CELERY_BROKER_URL": broker_url,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "trialsite",
                "worker",
                "-Q",
                "safety,reminders,default",
                "-c",
                "2",
                "-P",
                "prefork",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        wait_until(lambda: " ready." in self.output() or self.proc.poll() is not None, timeout, "the worker")
        assert self.proc.poll() is None, self.output()[-3000:]

    def kill(self) -> None:
        """SIGKILL to the whole process group: the main process and its pool children die at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        os.unlink(self.log.name)


class Web:
    """The web process as deployed (gunicorn, sync workers) on a loopback port, against the pytest database and the
    given broker; its own Redis for the cache when ``redis_url`` is given."""

    def __init__(self, broker_url: str, *, workers: int = 2, redis_url: str | None = None):
        from tests.support.smtp import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="web-", suffix=".log", delete=False)  # noqa: SIM115
        env = {
            **os.environ,
            "DEBUG": "true",
            "DATABASE_URL": _database_url(WEB_APPLICATION_NAME),
            "CELERY_BROKER_URL": broker_url,
            **({"REDIS_URL": redis_url} if redis_url else {}),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "trialsite.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--access-logfile",
                "-",
                # Its default path is one per user: two servers (or two tests) at once would take each other's.
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        import requests

        def answers() -> bool:
            if self.proc.poll() is not None:
                return True
            try:
                return requests.get(f"{self.url}/healthz", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or its workers still starting
                return False

        wait_until(answers, timeout, lambda: f"the web process on {self.url}\n{self.output()[-3000:]}")
        assert self.proc.poll() is None, self.output()[-3000:]

    def stop(self) -> None:
        """SIGTERM: gunicorn's graceful stop (its workers finish their request and close their sessions)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        os.unlink(self.log.name)


def wait_for_worker_sessions_to_end() -> None:
    # The test database is dropped at the end of the session; a killed worker's (or a web process's) sessions must be
    # gone by then.
    def gone():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = ANY(%s)",
                [[WORKER_APPLICATION_NAME, WEB_APPLICATION_NAME]],
            )
            return cursor.fetchone()[0] == 0

    wait_until(gone, 15, "the worker's database sessions to end")


def broker_url(db: int) -> str:
    """Database ``db`` of the Redis server the suite runs against (REDIS_URL), for one test's queues."""
    from urllib.parse import urlsplit

    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return f"redis://{parts.hostname or '127.0.0.1'}:{parts.port or 6379}/{db}"


def purged(url: str) -> str:
    """A Redis database emptied for one test's queues."""
    redis.Redis.from_url(url).flushdb()
    return url


@contextlib.contextmanager
def own_redis():
    """A Redis server of this test's own on a free loopback port, yielding its URL: its queues cannot meet another
    test's, whatever runs at the same time (the suite's server keeps databases 11-15 for the older broker tests)."""
    from tests.support.smtp import free_port

    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)

        def ready() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(ready, 10, "a Redis server of the test's own")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
