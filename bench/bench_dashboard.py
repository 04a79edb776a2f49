"""Dashboard benchmark: server time of the staff pages at 10,000 participants, against the REST API's participant list.

In a throwaway database (trialsite_bench_dashboard, migrated), a blinded study (samati-v1) at two sites gets 10,000
participants with their plans, questionnaires, alerts and failed messages (tests/support/seed.py, bulk COPY). Then, in
one fresh process, a coordinator of both sites is signed in to Django's test client (in-process: server time only,
no network) and each page is requested N times after a warm-up:

- the home page (nine worklists counted, one open: the default, and the overdue visits and overdue questionnaires
  opened), the matrix's first and last pages, a participant's page, the calendar (the
  first site's week, with its booked dosing sessions) and the study overview;
- the baseline: GET /api/v1/participants/ (first page), the same user, the same number of times.

Prints how many rows each home list and the calendar hold (so that every page is seen doing real work), then p50 and
p95 per page and each page's median against the API's median. For the home page, the matrix (first and last page)
and a participant's page the goals are p95 < 300 ms and a median at most 2x the API's: each prints PASS or FAIL, and
a missed goal makes the benchmark (and bench/run.py) exit non-zero. The calendar and the overview are measured and
printed with their ratio, without a goal.
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
PARTICIPANTS = 10_000
REQUESTS = 40
WARM_UP = 3
P95_GOAL_MS = 300.0
RATIO_GOAL = 2.0
# The pages the goals are set for (the working day's pages: home, the matrix, a participant); the calendar and the
# study overview are measured and printed beside them.
GOAL_PAGES = ("home", "matrix", "participant page")


def _bench_db() -> str:
    # Named after the configured database, so that two checkouts sharing a server do not drop each other's.
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    return f"{urlsplit(base).path.lstrip('/') or 'trialsite'}_bench_dashboard"


BENCH_DB = _bench_db()


def _urls() -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _conninfo(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


STATIC_ROOT = Path(tempfile.gettempdir()) / "trialsite-bench-static"


def _env(bench: str) -> dict[str, str]:
    return os.environ | {
        "STATIC_ROOT": str(STATIC_ROOT),  # DEBUG off serves hashed names from collectstatic's manifest
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
    for command in (["migrate"], ["collectstatic", "--noinput", "--clear"]):
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *command, "--verbosity", "0"],
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


# ------------------------------------------------------------------------------------------------------------ child


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _child() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    import django

    django.setup()
    from django.db import connection
    from django.http import QueryDict
    from django.test import Client
    from django.utils import timezone

    from dashboard.worklists import home_worklists
    from scheduling.models import Visit
    from tests.factories import UserFactory, build_study, staff
    from tests.support.seed import seed_participants
    from trialsite.roles import Role

    started = time.perf_counter()
    study, sites = build_study(
        code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", site_codes=("PDX", "NYC")
    )
    admin = UserFactory(username="bench-admin", is_superuser=True)
    coordinator = staff("bench-coordinator", Role.COORDINATOR, *sites.values())
    seed_participants(study, list(sites.values()), PARTICIPANTS, now=timezone.now(), by=admin)
    # After a bulk load, what autovacuum does on a running server: statistics, and the visibility map that lets the
    # lists' counts read their indexes alone.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    seeded = time.perf_counter() - started

    participant = study.participants.filter(status="randomized").order_by("id").first()
    last_page = math.ceil(study.participants.count() / 50)
    pages = {
        "home": "/home/",
        # One list is open at a time: the default (the first that holds anything) and the costliest lists opened.
        "home, overdue visits open": "/home/?list=overdue",
        "home, questionnaires overdue open": "/home/?list=questionnaires-overdue",
        "matrix, first page": f"/matrix/?study={study.code}",
        f"matrix, last page ({last_page})": f"/matrix/?study={study.code}&page={last_page}",
        "participant page": f"/participants/{participant.participant_id}/",
        "calendar": "/calendar/",
        "overview": f"/overview/?study={study.code}",
        "API /api/v1/participants/": "/api/v1/participants/",
    }
    now = timezone.now()
    rows = {f"home: {w.key}": w.count for w in home_worklists(coordinator, now, QueryDict())}
    first_site = sorted(sites.values(), key=lambda s: s.code)[0]
    rows[f"calendar: {first_site.code} dosing sessions booked"] = Visit.objects.filter(
        participant__site=first_site, kind="dosing", room__isnull=False
    ).count()
    rows["matrix: participants"] = study.participants.count()
    client = Client()
    client.force_login(coordinator)
    # Production requires a second factor: the coordinator has a confirmed TOTP device, verified in this session.
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=coordinator, name="bench", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    timings: dict[str, list[float]] = {}
    for name, url in pages.items():
        for _ in range(WARM_UP):
            response = client.get(url, secure=True)
            assert response.status_code == 200, (url, response.status_code)
        samples = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            response = client.get(url, secure=True)
            samples.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        timings[name] = samples
    print(json.dumps({"seconds_to_seed": seeded, "rows": rows, "timings": timings}))


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
        _drop_database()
        return 1
    result = json.loads(out.stdout.strip().splitlines()[-1])
    _drop_database()
    print(
        f"   setup: {PARTICIPANTS:,} participants seeded in {result['seconds_to_seed']:.1f} s "
        f"({time.perf_counter() - started:.1f} s with the database)"
    )
    print("   rows: " + ", ".join(f"{name} {count:,}" for name, count in result["rows"].items()))
    empty = [name for name, count in result["rows"].items() if not count]
    if empty:
        print(f"   FAIL: nothing to show in {', '.join(empty)} (the seed must fill every list)")
    timings = result["timings"]
    api_name = next(name for name in timings if name.startswith("API"))
    api_median = statistics.median(timings[api_name])
    print(f"   {REQUESTS} requests per page after {WARM_UP} warm-up, server time in-process (ms):")
    failed = []
    for name, samples in timings.items():
        p50, p95 = statistics.median(samples), _percentile(samples, 0.95)
        if name == api_name:
            print(f"   {name:34} p50 {p50:7.1f}  p95 {p95:7.1f}  (baseline)")
            continue
        ratio = p50 / api_median
        if not name.startswith(GOAL_PAGES):
            print(f"   {name:34} p50 {p50:7.1f}  p95 {p95:7.1f}  median/API {ratio:4.2f}x (measured; no goal)")
            continue
        fast, near = p95 < P95_GOAL_MS, ratio <= RATIO_GOAL
        if not (fast and near):
            failed.append(name)
        print(
            f"   {name:34} p50 {p50:7.1f}  p95 {p95:7.1f} (goal < {P95_GOAL_MS:.0f}: {'PASS' if fast else 'FAIL'})  "
            f"median/API {ratio:4.2f}x (goal <= {RATIO_GOAL:.0f}x: {'PASS' if near else 'FAIL'})"
        )
    failed += empty
    if failed:
        print(f"   FAIL: {', '.join(failed)}")
        return 1
    print("   PASS: every page met both goals")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "child":
        _child()
    else:
        sys.path.insert(0, str(ROOT))
        sys.exit(main())
