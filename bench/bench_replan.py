"""Reminder re-plan benchmark: the safety net (task ``notifications.reconcile_all``) at 10,000 participants, against
the task's soft time limit.

In a throwaway database (``<db>_bench_replan``, migrated), a study (samati-v1) at two sites with a coordinator gets
10,000 participants with their plans and questionnaires (tests/support/seed.py, bulk COPY: no reminder is planned yet).
Then, in one fresh process with production settings, the task runs as the beat runs it, one run after another:

1. first: every participant is new. When one run cannot plan them all within its budget (by design: it stops before
   the soft time limit and the next run resumes with the rest), runs follow until every participant is planned; each
   run is timed and the number of runs is printed;
2. nothing changed: every participant's inputs are compared, none re-planned; the per-participant cost is printed;
3. about 1% changed by writes that enqueue no re-plan (a contact's language and channel, a visit booked straight in
   the table): those are re-planned, the rest compared.

Whether the work finished is read from the database (``ReminderPlan``): every participant the sweep must look at was
examined in the run, and every changed one was re-planned. Each run must end within the soft time limit (read from
the task definition, else the app's default); the first series must converge; the later runs must finish in one run.
PASS/FAIL per goal; a missed goal makes the benchmark exit non-zero.

Environment: DATABASE_URL (any database on the server; the bench creates and drops its own beside it),
BENCH_REPLAN_PARTICIPANTS (default 10000), BENCH_REPLAN_CHANGED (fraction changed in run 3, default 0.01),
BENCH_REPLAN_MAX_RUNS (runs allowed to converge the first series, default 10).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def _bench_db() -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    return f"{urlsplit(base).path.lstrip('/') or 'trialsite'}_bench_replan"


BENCH_DB = _bench_db()


def _urls() -> tuple[str, str]:
    parts = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite"))
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _env(bench: str) -> dict[str, str]:
    import tempfile

    return os.environ | {
        "DATABASE_URL": bench,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + "x" * 50),
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "locmem://",
        "CELERY_BROKER_URL": "memory://",  # the re-plan hooks of the seed's writes go nowhere: the sweep must find them
        "AUDIT_KEY": os.environ.get("AUDIT_KEY", "bench-audit-key-" + "x" * 48),
        "AUDIT_CHECKPOINT_DIR": str(Path(tempfile.gettempdir()) / "trialsite-bench-checkpoints"),
    }


def _admin(sql: str) -> None:
    import psycopg

    admin, _ = _urls()
    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(sql)


# ------------------------------------------------------------------------------------------------------------ child


def _child() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    import django

    django.setup()
    import datetime as dt
    import random

    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from notifications import selectors as notification_selectors
    from notifications import tasks
    from notifications.models import Notification, ReminderPlan
    from participants.models import ContactDetails
    from scheduling.models import Visit
    from tests.factories import UserFactory, build_study, staff
    from tests.support.seed import seed_participants
    from trialsite.celery import app
    from trialsite.roles import Role

    n = int(os.environ.get("BENCH_REPLAN_PARTICIPANTS", "10000"))
    fraction = float(os.environ.get("BENCH_REPLAN_CHANGED", "0.01"))
    max_runs = int(os.environ.get("BENCH_REPLAN_MAX_RUNS", "10"))
    started = time.perf_counter()
    study, sites = build_study(
        code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", site_codes=("PDX", "NYC")
    )
    admin = UserFactory(username="bench-admin", is_superuser=True)
    staff("bench-coordinator", Role.COORDINATOR, *sites.values())
    seed_participants(study, list(sites.values()), n, now=timezone.now(), by=admin)
    ReminderPlan.objects.all().delete()  # nothing planned yet: the first run meets every participant as new
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    seeded = time.perf_counter() - started

    task = tasks.reconcile_all
    limit = float(task.soft_time_limit or app.conf.task_soft_time_limit)
    wanted = set(notification_selectors.participant_ids_to_reconcile())

    def run() -> dict[str, float | int]:
        before = timezone.now()
        t0 = time.perf_counter()
        created = task()  # the task's body, in this process, as a worker runs it for the beat
        seconds = time.perf_counter() - t0
        examined = ReminderPlan.objects.filter(participant_id__in=wanted, examined_at__gte=before)
        return {
            "seconds": seconds,
            "examined": examined.count(),
            "replanned": examined.filter(planned_at__gte=before).count(),
            "created": created,
        }

    def all_examined_since(instant) -> bool:
        return ReminderPlan.objects.filter(participant_id__in=wanted, examined_at__gte=instant).count() == len(wanted)

    # 1. Every participant new: runs until all are planned.
    first_began = timezone.now()
    first = []
    while len(first) < max_runs:
        first.append(run())
        if all_examined_since(first_began):
            break
    first_done = all_examined_since(first_began)
    rows = Notification.objects.exclude(status="cancelled").count()

    # 2. Nothing changed.
    unchanged = run()

    # 3. About 1% changed, by writes that enqueue no re-plan.
    rng = random.Random(7)
    changed = sorted(rng.sample(sorted(wanted), max(2, int(len(wanted) * fraction))))
    contact_changed, visit_changed = changed[::2], changed[1::2]
    ContactDetails.objects.filter(participant_id__in=contact_changed).update(language="es", phone="+15035550100")
    ContactDetails.objects.filter(participant_id__in=contact_changed).update(preferred_channel="sms")
    booked = []
    for pk in visit_changed:
        visit = (
            Visit.objects.filter(participant_id=pk, status="planned", target_date__isnull=False)
            .order_by("target_date")
            .first()
        )
        if visit is None:  # no visit left to book: change the contact instead
            ContactDetails.objects.filter(participant_id=pk).update(language="es")
            continue
        start = timezone.now() + dt.timedelta(days=5, hours=len(booked) % 8)
        Visit.objects.filter(pk=visit.pk).update(status="scheduled", scheduled_start=start)
        booked.append(pk)
    after_change = timezone.now()
    some = run()
    replanned_changed = ReminderPlan.objects.filter(participant_id__in=changed, planned_at__gte=after_change).count()
    print(
        json.dumps(
            {
                "participants": n,
                "wanted": len(wanted),
                "seconds_to_seed": seeded,
                "soft_time_limit": limit,
                "budget": settings.NOTIFICATIONS_RECONCILE_BUDGET_SECONDS,
                "batch": settings.NOTIFICATIONS_RECONCILE_BATCH,
                "first": first,
                "first_done": first_done,
                "rows": rows,
                "unchanged": unchanged,
                "changed": len(changed),
                "visits_booked": len(booked),
                "some": some,
                "replanned_changed": replanned_changed,
            }
        )
    )


# ------------------------------------------------------------------------------------------------------------ parent


def main() -> int:
    _, bench = _urls()
    _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{BENCH_DB}"')
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"],
            cwd=ROOT,
            env=_env(bench),
            check=True,
        )
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "child"],
            cwd=ROOT,
            env=_env(bench),
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        print(exc.stdout[-2000:] if exc.stdout else "", exc.stderr[-4000:] if exc.stderr else "", sep="\n")
        return 1
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    r = json.loads(out.stdout.strip().splitlines()[-1])
    limit, wanted = r["soft_time_limit"], r["wanted"]
    failed = []

    def line(name: str, res: dict, extra: str = "") -> bool:
        ok = res["seconds"] <= limit
        print(
            f"   {name:30} {res['seconds']:6.1f} s of {limit:.0f} s ({'PASS' if ok else 'FAIL'}); examined "
            f"{res['examined']:,}/{wanted:,}, re-planned {res['replanned']:,}, rows created {res['created']:,}{extra}"
        )
        return ok

    print(
        f"   {r['participants']:,} participants seeded in {r['seconds_to_seed']:.1f} s; {wanted:,} for the sweep to "
        f"look at; task soft time limit {limit:.0f} s, sweep budget {r['budget']} s, batches of {r['batch']}"
    )
    print("   1. first sweep, every participant new:")
    for k, res in enumerate(r["first"], 1):
        if not line(f"   run {k}", res):
            failed.append(f"first sweep run {k} over the limit")
    runs = len(r["first"])
    if r["first_done"]:
        print(f"      every participant planned after {runs} run(s), each within the limit: PASS"
              if not failed else f"      every participant planned after {runs} run(s)")  # fmt: skip
        print(f"      outbox rows planned: {r['rows']:,}")
    else:
        print(f"      FAIL: not every participant planned after {runs} runs")
        failed.append("first sweep did not converge")
    u = r["unchanged"]
    per = u["seconds"] / max(1, u["examined"]) * 1000
    done = u["examined"] == wanted
    if not line("2. nothing changed", u, f"; {per:.3f} ms per participant compared"):
        failed.append("no-change run over the limit")
    if not done:
        failed.append("no-change run did not examine everyone")
    s = r["some"]
    ok_changed = r["replanned_changed"] == r["changed"] and s["examined"] == wanted
    if not line(f"3. {r['changed']} changed (~1%)", s):
        failed.append("1% run over the limit")
    print(
        f"      changed participants re-planned: {r['replanned_changed']}/{r['changed']} "
        f"({r['visits_booked']} by a booked visit, the rest by contact details): {'PASS' if ok_changed else 'FAIL'}"
    )
    if not ok_changed:
        failed.append("1% run missed changed participants")
    print(f"   {'FAIL: ' + '; '.join(failed) if failed else 'PASS: every run within the soft time limit'}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "child":
        _child()
    else:
        sys.exit(main())
