"""Growth benchmark: the staff REST lists that grow with the participants, at 500 participants and at 10,000.

In a throwaway database (named after DATABASE_URL with ``_bench_growth``, migrated), a blinded study (samati-v1) at two
sites gets 500 participants with their plans, questionnaires, safety alerts and failed messages (tests/support/seed.py,
bulk COPY), and, beside them, an adverse event and a protocol deviation at one randomized participant in ten. After a
VACUUM ANALYZE, in one fresh process with production settings (DEBUG off, the audit key and checkpoints), a
coordinator of both sites (blinded: the study is blinded) signed in with a verified second factor requests each list
through Django's test client (in-process: server time only), serially, N times after a warm-up:

- GET /api/v1/participants/, the first page and the last page (a deep page: the OFFSET grows with the study);
- GET /api/v1/visits/?site=<first site> (a site's visits, through the blinded schedule's filtering), and its last page;
- GET /api/v1/notifications/ (the outbox, cursor pages);
- GET /api/v1/safety-alerts/, /api/v1/adverse-events/, /api/v1/deviations/.

Then the same study grows to 10,000 participants (the remaining ones seeded the same way), VACUUM ANALYZE, and every
list is measured again. Prints the rows each list holds at both sizes, p50 and p95 per list and size, and two goals
per list: p95 at 10,000 at most 1.5x its p95 at 500, and p95 at 10,000 at most 300 ms, each PASS or FAIL; a missed goal
makes the benchmark (and bench/run.py) exit non-zero.

Sizes: BENCH_GROWTH_SMALL (500), BENCH_GROWTH_LARGE (10,000), BENCH_GROWTH_REQUESTS (30 per list and size).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SMALL = int(os.environ.get("BENCH_GROWTH_SMALL", "500"))
LARGE = int(os.environ.get("BENCH_GROWTH_LARGE", "10000"))
REQUESTS = int(os.environ.get("BENCH_GROWTH_REQUESTS", "30"))
WARM_UP = 3
GROWTH_GOAL = 1.5
P95_GOAL_MS = 300.0
EXTRA_EVERY = 10  # an adverse event and a deviation at one randomized participant in this many


def _bench_db() -> str:
    # Named after the configured database, so that two checkouts sharing a server do not drop each other's.
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    return f"{urlsplit(base).path.lstrip('/') or 'trialsite'}_bench_growth"


BENCH_DB = _bench_db()


def _urls() -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _conninfo(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _env(bench: str) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": bench,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + "x" * 50),
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "locmem://",
        # DEBUG off requires the audit chain's key and a place for its checkpoints (outside the database).
        "AUDIT_KEY": os.environ.get("AUDIT_KEY", "bench-audit-key-" + "x" * 48),
        "AUDIT_CHECKPOINT_DIR": str(Path(tempfile.gettempdir()) / "trialsite-bench-checkpoints"),
    }


def _create_database() -> str:
    import psycopg

    admin, bench = _urls()
    with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env=_env(bench),
        check=True,
    )
    return bench


def _drop_database() -> None:
    import psycopg

    admin, _ = _urls()
    with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


# ------------------------------------------------------------------------------------------------------------ child


def _seed_extras(participants, now, by) -> None:
    """An adverse event and a protocol deviation at one randomized participant in ``EXTRA_EVERY`` (test data at
    volume: bulk rows, not through the services)."""
    import datetime as dt

    from safety.models import AdverseEvent
    from scheduling.models import ProtocolDeviation

    chosen = [p for p in participants if p.status == "randomized"][::EXTRA_EVERY]
    AdverseEvent.objects.bulk_create(
        [
            AdverseEvent(
                participant=p,
                verbatim_term="Headache (seeded)",
                onset_at=now - dt.timedelta(days=p.number % 200, hours=3),
                severity_grade=1 + p.number % 3,
                relatedness_drug="possible",
                relatedness_therapy="unlikely",
                expectedness="expected",
                action_taken="dose_not_changed",
                outcome="recovered",
                recorded_at=now - dt.timedelta(days=p.number % 200),
                recorded_by=by,
            )
            for p in chosen
        ],
        batch_size=2000,
    )
    deviations = ProtocolDeviation.objects.bulk_create(
        [
            ProtocolDeviation(participant=p, type="procedure", description="Seeded deviation", recorded_by=by)
            for p in chosen
        ],
        batch_size=2000,
    )
    # recorded_at is auto_now_add: spread the rows over time as a trial's would be.
    for k, row in enumerate(deviations):
        row.recorded_at = now - dt.timedelta(days=k % 300, minutes=k)
    ProtocolDeviation.objects.bulk_update(deviations, ["recorded_at"], batch_size=2000)


def _child() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from assessments.models import SafetyAlert
    from notifications.models import Notification
    from safety.models import AdverseEvent
    from scheduling.models import ProtocolDeviation, Visit
    from tests.factories import UserFactory, build_study, staff
    from tests.support.seed import seed_participants
    from trialsite.roles import Role

    study, sites = build_study(
        code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", site_codes=("PDX", "NYC")
    )
    admin = UserFactory(username="bench-admin", is_superuser=True)
    coordinator = staff("bench-coordinator", Role.COORDINATOR, *sites.values())
    first_site = sorted(sites.values(), key=lambda s: s.code)[0]
    client = Client()
    client.force_login(coordinator)
    # Production requires a second factor: the coordinator has a confirmed TOTP device, verified in this session.
    device = TOTPDevice.objects.create(user=coordinator, name="bench", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()

    def grow(n: int) -> float:
        started = time.perf_counter()
        now = timezone.now()
        made = seed_participants(study, list(sites.values()), n, now=now, by=admin)
        _seed_extras(made, now, admin)
        # After a bulk load, what autovacuum does on a running server: statistics and the visibility map.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        return time.perf_counter() - started

    def lists() -> dict[str, tuple[str, int]]:
        """(url, rows it lists in all) per list at the study's present size."""
        participants = study.participants.count()
        site_visits = client.get(f"/api/v1/visits/?site={first_site.code}", secure=True).json()["count"]
        return {
            "participants, first page": ("/api/v1/participants/", participants),
            "participants, last page": (
                f"/api/v1/participants/?page={math.ceil(participants / 50)}",
                participants,
            ),
            f"visits of {first_site.code}, first page": (f"/api/v1/visits/?site={first_site.code}", site_visits),
            f"visits of {first_site.code}, last page": (
                f"/api/v1/visits/?site={first_site.code}&page={math.ceil(site_visits / 50)}",
                site_visits,
            ),
            "notifications (outbox)": ("/api/v1/notifications/", Notification.objects.count()),
            "safety alerts": ("/api/v1/safety-alerts/", SafetyAlert.objects.count()),
            "adverse events": ("/api/v1/adverse-events/", AdverseEvent.objects.count()),
            "deviations": ("/api/v1/deviations/", ProtocolDeviation.objects.count()),
        }

    def measure() -> dict[str, dict]:
        out = {}
        for name, (url, rows) in lists().items():
            for _ in range(WARM_UP):
                response = client.get(url, secure=True)
                assert response.status_code == 200, (url, response.status_code, response.content[:300])
            samples = []
            for _ in range(REQUESTS):
                t0 = time.perf_counter()
                response = client.get(url, secure=True)
                samples.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            shown = len(response.json()["results"])
            out[name] = {"url": url, "rows": rows, "shown": shown, "samples": samples}
        return out

    seeded_small = grow(SMALL)
    small = measure()
    seeded_large = grow(LARGE - SMALL)
    large = measure()
    visits = Visit.objects.count()
    print(
        json.dumps(
            {
                "seconds": [seeded_small, seeded_large],
                "visits": visits,
                "small": small,
                "large": large,
            }
        )
    )


# ------------------------------------------------------------------------------------------------------------ parent


def main() -> int:
    started = time.perf_counter()
    bench = _create_database()
    try:
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "child"],
            cwd=ROOT,
            env=_env(bench),
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        print(exc.stdout[-2000:], exc.stderr[-4000:], sep="\n")
        if not os.environ.get("BENCH_GROWTH_KEEP"):
            _drop_database()
        return 1
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not os.environ.get("BENCH_GROWTH_KEEP"):  # keep it to EXPLAIN the lists' queries
        _drop_database()
    small_s, large_s = result["seconds"]
    print(
        f"   setup: {SMALL:,} participants seeded in {small_s:.1f} s, grown to {LARGE:,} in {large_s:.1f} s "
        f"({result['visits']:,} visits; {time.perf_counter() - started:.1f} s with the database)"
    )
    print(f"   {REQUESTS} requests per list and size after {WARM_UP} warm-up, serial, server time in-process (ms):")
    failed, empty = [], []
    for name, small in result["small"].items():
        large = result["large"][name]
        if not (small["shown"] and large["shown"]):
            empty.append(name)
        p50s, p95s = statistics.median(small["samples"]), _percentile(small["samples"], 0.95)
        p50l, p95l = statistics.median(large["samples"]), _percentile(large["samples"], 0.95)
        ratio = p95l / p95s
        flat, fast = ratio <= GROWTH_GOAL, p95l <= P95_GOAL_MS
        if not (flat and fast):
            failed.append(name)
        print(
            f"   {name:30} rows {small['rows']:>7,} -> {large['rows']:>7,}  "
            f"p50 {p50s:6.1f} -> {p50l:6.1f}  p95 {p95s:6.1f} -> {p95l:6.1f}  "
            f"p95 growth {ratio:4.2f}x (goal <= {GROWTH_GOAL}x: {'PASS' if flat else 'FAIL'})  "
            f"p95 (goal <= {P95_GOAL_MS:.0f}: {'PASS' if fast else 'FAIL'})"
        )
    if empty:
        print(f"   FAIL: nothing shown in {', '.join(empty)} (the seed must fill every list)")
    failed += empty
    if failed:
        print(f"   FAIL: {', '.join(failed)}")
        return 1
    print("   PASS: every list met both goals")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "child":
        _child()
    else:
        sys.path.insert(0, str(ROOT))
        sys.exit(main())
