"""Seeding benchmark: ``manage.py seed_scale`` at 10,000 participants (``SEED_SCALE_PARTICIPANTS`` overrides) at four
sites, then ``manage.py audit_verify`` over the result.

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
    outcome = "passed" if verified.returncode == 0 else "FAILED"
    print(f"   audit_verify {outcome} in {verify_seconds:.1f} s: {(verified.stdout or verified.stderr).strip()[-300:]}")
    failed = verified.returncode != 0
    if seconds > GOAL_SECONDS * max(PARTICIPANTS, 1) / 10_000:
        print("   FAIL: seeding slower than the goal")
        failed = True
    else:
        print("   PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
