"""Seeding benchmark: ``manage.py seed_scale`` at 10,000 participants (``SEED_SCALE_PARTICIPANTS`` overrides) at four
sites, then ``manage.py audit_verify`` over the result.

The baseline, measured in the same run and the same database first: the services' own path, one participant at a
time (create, eligibility, consent, enroll, randomize, each through its service at the time it happened, as
``tests/support/scale_services.py`` plays a plan), for ``SEED_SCALE_BASELINE`` participants (200) of the same kind of
study. Its cost per participant, times N, is what seeding N through the services would take; the ratio printed is
seed_scale's time against that.

In a throwaway database (``<configured name>_bench_seed``, migrated), with DEBUG off (``--force``) as on a benchmark
box. Prints the seeding's wall time, the rows it made, and audit_verify's outcome and time. Goals: seeding under
10 minutes and a chain that verifies; a missed goal prints FAIL and exits non-zero.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PARTICIPANTS = int(os.environ.get("SEED_SCALE_PARTICIPANTS", "10000"))
BASELINE_PARTICIPANTS = int(os.environ.get("SEED_SCALE_BASELINE", "200"))
SITES = 4
GOAL_SECONDS = 600.0


def _urls() -> tuple[str, str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/') or 'trialsite'}_bench_seed"
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{name}")), name


def _env(url: str, checkpoints: str) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": url,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + "x" * 50),
        "ALLOWED_HOSTS": "testserver",
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "locmem://",
        "CELERY_BROKER_URL": "memory://",  # the reminder requests the services publish go nowhere
        # DEBUG off requires the audit chain's key (and a place for its checkpoints, outside the database).
        "AUDIT_KEY": os.environ.get("AUDIT_KEY", "bench-audit-key-" + "x" * 48),
        "AUDIT_CHECKPOINT_DIR": checkpoints,
    }


def _database(admin: str, name: str, *, create: bool) -> None:
    import psycopg

    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def main() -> int:
    admin, url, name = _urls()
    _database(admin, name, create=True)
    try:
        with tempfile.TemporaryDirectory() as checkpoints:
            env = _env(url, checkpoints)
            migrated = _manage(env, "migrate", "--verbosity", "0")
            if migrated.returncode:
                print(migrated.stderr[-3000:])
                return 1
            baseline = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "baseline"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if baseline.returncode:
                print(baseline.stdout[-2000:], baseline.stderr[-3000:], sep="\n")
                return 1
            baseline_seconds = float(baseline.stdout.strip().splitlines()[-1])
            started = time.perf_counter()
            seeded = _manage(env, "seed_scale", "--participants", str(PARTICIPANTS), "--sites", str(SITES), "--force")
            seconds = time.perf_counter() - started
            if seeded.returncode:
                print(seeded.stdout[-2000:], seeded.stderr[-3000:], sep="\n")
                return 1
            started = time.perf_counter()
            verified = _manage(env, "audit_verify")
            verify_seconds = time.perf_counter() - started
    finally:
        _database(admin, name, create=False)
    print(f"   {seeded.stdout.strip()}")
    print(
        f"   seed_scale: {PARTICIPANTS:,} participants at {SITES} sites in {seconds:.1f} s "
        f"({1000 * seconds / PARTICIPANTS:.1f} ms each; goal {GOAL_SECONDS:.0f} s at 10,000)"
    )
    each = baseline_seconds / BASELINE_PARTICIPANTS
    through_services = each * PARTICIPANTS
    print(
        f"   baseline: the services' path, {BASELINE_PARTICIPANTS} participants one at a time in {baseline_seconds:.1f} s "
        f"({1000 * each:.1f} ms each; {through_services:.0f} s for {PARTICIPANTS:,}); "
        f"seed_scale takes {seconds / through_services:.2f}x that ({through_services / seconds:.1f}x faster)"
    )
    outcome = "passed" if verified.returncode == 0 else "FAILED"
    print(f"   audit_verify {outcome} in {verify_seconds:.1f} s: {(verified.stdout or verified.stderr).strip()[-300:]}")
    failed = verified.returncode != 0
    if PARTICIPANTS < 10_000:
        print("   (the goal is set at 10,000 participants: not judged at this size)")
    elif seconds > GOAL_SECONDS:
        print("   FAIL: seeding slower than the goal")
        failed = True
    else:
        print("   PASS")
    return 1 if failed else 0


def _baseline() -> None:
    """In the bench database: a study like seed_scale's, its plans played through the services; prints the seconds."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    import django

    django.setup()
    from django.utils import timezone

    from dashboard import scale as seeding
    from tests.support.scale_services import through_services

    now = timezone.now()
    scale = seeding.scale_study(code="BASE", site_count=SITES, participants=BASELINE_PARTICIPANTS, seed=1, now=now)
    seeding.scale_plans(scale, participants=BASELINE_PARTICIPANTS, seed=1, now=now)
    started = time.perf_counter()
    through_services(scale)
    print(time.perf_counter() - started)


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "baseline":
        _baseline()
    else:
        sys.exit(main())
