"""Export benchmark: our CSV path against plain COPY of the same SELECT, and peak memory for N and 4N rows in every
format that builds a file (CSV, SPSS .sav, Stata .dta).

In a throwaway database (trialsite_bench_export, migrated), 4 sites x N PCL-5 answers are inserted with
INSERT ... SELECT generate_series (N = 1,000,000 `responses` rows per site by default; site B1 alone holds N, the 4
sites 4N). ``BENCH_EXPORT_ROWS`` sets N (a multiple of 20, the items per response) for a quicker run. Each run is a
fresh subprocess, so its peak RSS (ru_maxrss) is that run's alone:

- copy N: psycopg ``COPY (<the export's SELECT>) TO STDOUT WITH (FORMAT csv, HEADER)``, bytes counted;
- ours N / ours 4N: ``exports.services.export_open(...).chunks`` (the generator the view streams), bytes counted,
  audit row included;
- sav N / 4N and dta N / 4N: the same generator for ``.sav`` and ``.dta`` (the file is built in a temporary file and
  then streamed).

Prints both CSV times, the ratio COPY/ours (goal >= 0.9) and the peak RSS for N and 4N of each format (goal: 4N
within 1.2x of N, under 200 MB). ``BENCH_EXPORT_FORMATS`` (comma-separated, default ``csv,sav,dta``) picks formats.
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
BENCH_DB = "trialsite_bench_export"
SITES = 4
ITEMS = 20
ROWS_PER_SITE = int(os.environ.get("BENCH_EXPORT_ROWS", "1000000"))  # N: answer rows in site B1 (4N in all sites)
RESPONSES_PER_SITE = ROWS_PER_SITE // ITEMS
FORMATS = [f for f in os.environ.get("BENCH_EXPORT_FORMATS", "csv,sav,dta").split(",") if f]
RATIO_GOAL = 0.9  # CSV export time against COPY of the same SELECT
GROWTH_GOAL = 1.2  # peak RSS at 4N against N
PEAK_GOAL_MB = 200


def _urls() -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    parts = urlsplit(base)
    admin = urlunsplit(parts._replace(path="/postgres"))
    bench = urlunsplit(parts._replace(path=f"/{BENCH_DB}"))
    return admin, bench


def _conninfo(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _create_database() -> str:
    import psycopg

    admin, bench = _urls()
    with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    env = os.environ | {"DATABASE_URL": bench, "DEBUG": os.environ.get("DEBUG", "true")}
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return bench


POPULATE = [
    "INSERT INTO participants_study (code, title, protocol_reference, protocol_code, target_enrollment, blinded, "
    "unblinded, created_at, medical_monitor_email, medical_monitor_name) "
    "VALUES ('BEN', 'bench', '', '', 0, true, false, now(), '', '')",
    "INSERT INTO participants_site (code, name, time_zone, contact_email, contact_phone) "
    f"SELECT 'B' || g, 'Bench ' || g, 'America/Los_Angeles', '', '' FROM generate_series(1, {SITES}) g",
    "INSERT INTO participants_site_studies (site_id, study_id) SELECT s.id, st.id FROM participants_site s, "
    "participants_study st",
    # One participant per response keeps the schedule simple.
    "INSERT INTO participants_participant (participant_id, number, status, stratum, eligibility_override_reason, "
    "needs_reconsent, withdrawal_level, withdrawal_reason, created_at, updated_at, site_id, study_id, randomized_at, "
    "enrolled_at) SELECT 'BEN-' || s.code || '-' || lpad(g::text, 6, '0'), g, 'randomized', s.code, '', false, '', "
    "'', now(), now(), s.id, st.id, now() - interval '30 days', now() - interval '31 days' "
    f"FROM participants_site s CROSS JOIN participants_study st CROSS JOIN generate_series(1, {RESPONSES_PER_SITE}) g",
    # Every participant follows the shipped MAPP protocol (v2), so that BASELINE serves its timepoint: the command
    # line's export is blinded and keeps only visits that serve one (exports.timepoints).
    "INSERT INTO scheduling_participantschedule (participant_id, protocol_version_id, created_at, randomization_date) "
    "SELECT p.id, (SELECT id FROM scheduling_protocolversion WHERE code = 'mapp-v2'), now(), "
    "(p.randomized_at AT TIME ZONE 'America/Los_Angeles')::date FROM participants_participant p",
    "INSERT INTO scheduling_visit (participant_id, code, name, kind, unscheduled, optional, instruments, "
    "duration_minutes, staff_required, overnight, status, missed_reason, cancel_reason, needs_reschedule, "
    "created_at, updated_at, target_date, window_start, window_end, occurred_at, site_id, study_id) "
    "SELECT p.id, 'BASELINE', 'Baseline', 'baseline', false, false, '[]'::jsonb, 60, 0, false, 'completed', '', '', "
    "false, now(), now(), current_date - 20, current_date - 23, current_date - 17, now() - interval '20 days', "
    "p.site_id, p.study_id "
    "FROM participants_participant p",
    'INSERT INTO assessments_administration (participant_id, visit_id, instrument_code, respondent, "order", '
    "from_protocol, status, draft_answers, created_at, updated_at) "
    "SELECT v.participant_id, v.id, 'PCL5', 'self', 0, true, 'completed', '{}'::jsonb, now(), now() "
    "FROM scheduling_visit v",
    "INSERT INTO assessments_response (administration_id, participant_id, visit_id, instrument_code, "
    "instrument_version, source, submitted_at, updated_at) "
    "SELECT a.id, a.participant_id, a.visit_id, 'PCL5', '1.0', 'participant_link', now() - interval '20 days', now() "
    "FROM assessments_administration a",
    "INSERT INTO assessments_answer (response_id, item_code, value) "
    f"SELECT r.id, 'PCL5_' || lpad(i::text, 2, '0'), (r.id + i) % 5 FROM assessments_response r "
    f"CROSS JOIN generate_series(1, {ITEMS}) i",
    "ANALYZE",
]


def _populate(bench: str) -> int:
    import psycopg

    with psycopg.connect(_conninfo(bench), autocommit=True) as conn:
        for statement in POPULATE:
            conn.execute(statement)
        return conn.execute("SELECT count(*) FROM assessments_answer").fetchone()[0]


# ------------------------------------------------------------------------------------------------------------ child


def _child(mode: str, site: str) -> None:
    """One measured run in a fresh process: prints seconds, bytes and this process's peak RSS as JSON."""
    import resource

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    import django

    django.setup()
    from django.db import connection
    from psycopg import sql

    from exports import services
    from exports.columns import Filters
    from exports.datasets import RESPONSES
    from exports.pseudonyms import staff_ids
    from exports.selectors import export_scope
    from exports.sql import select_sql
    from exports.timepoints import timepoint_map

    params = {"site": site} if site != "all" else {}
    connection.ensure_connection()
    started = time.perf_counter()
    size = 0
    rows = 0
    if mode == "copy":
        scope, _ = export_scope(None, site_codes=[site] if site != "all" else [], study_codes=[], dates=False)
        # The SELECT exactly as export_open builds it (pseudonymous staff ids and timepoints read first).
        staff = staff_ids(scope.site_ids, scope.study_ids) if RESPONSES.needs_staff else None
        tps = timepoint_map(scope) if RESPONSES.visit_rows else None
        query = select_sql(RESPONSES, scope, Filters(), escape=True, staff=staff, timepoints=tps)
        with connection.connection.cursor() as cursor:
            with cursor.copy(sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)").format(query)) as copy:
                for data in copy:
                    size += len(data)
            rows = cursor.rowcount
    else:
        fmt = "csv" if mode == "ours" else mode
        export = services.export_open(user=None, dataset="responses", fmt=fmt, params=params, actor_username="bench")
        for chunk in export.chunks:
            size += len(chunk)
        rows = export.progress.rows
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "bytes": size, "rows": rows, "peak_mb": peak_kb / 1024}))


def _run(bench: str, mode: str, site: str) -> dict:
    env = os.environ | {
        "DATABASE_URL": bench,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + "x" * 50),
        "AUDIT_KEY": os.environ.get("AUDIT_KEY", "bench-audit-key-" + "x" * 48),
    }
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "child", mode, site],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"{mode} {site} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _growth(name: str, n: dict, big: dict) -> bool:
    growth = big["peak_mb"] / n["peak_mb"]
    ok = growth <= GROWTH_GOAL and big["peak_mb"] < PEAK_GOAL_MB
    print(
        f"   {name} peak RSS N ({n['rows']:,} rows, {n['seconds']:.2f} s, {n['bytes'] / 1e6:.0f} MB): "
        f"{n['peak_mb']:.0f} MB; 4N ({big['rows']:,} rows, {big['seconds']:.2f} s, {big['bytes'] / 1e6:.0f} MB): "
        f"{big['peak_mb']:.0f} MB; 4N/N = {growth:.2f} (goal <= {GROWTH_GOAL}, < {PEAK_GOAL_MB} MB) "
        f"{'OK' if ok else 'FAIL'}"
    )
    return ok


def main() -> int:
    started = time.perf_counter()
    bench = _create_database()
    total = _populate(bench)
    print(f"   setup: {total:,} answer rows in {BENCH_DB} ({time.perf_counter() - started:.1f} s)")
    ok = True
    if "csv" in FORMATS:
        _run(bench, "copy", "B1")  # warm the cache: both sides then read the same pages from memory
        copy_runs = [_run(bench, "copy", "B1") for _ in range(2)]
        ours_runs = [_run(bench, "ours", "B1") for _ in range(2)]
        copy = min(copy_runs, key=lambda r: r["seconds"])
        ours = min(ours_runs, key=lambda r: r["seconds"])
        big = _run(bench, "ours", "all")
        print(
            f"   N = {ours['rows']:,} rows, {ours['bytes'] / 1e6:.1f} MB of CSV "
            f"(COPY's bytes: {copy['bytes'] / 1e6:.1f} MB)"
        )
        print(f"   COPY (same SELECT) via psycopg: {copy['seconds']:.2f} s")
        print(f"   ours (export generator):        {ours['seconds']:.2f} s")
        ratio = copy["seconds"] / ours["seconds"]
        print(f"   ratio COPY/ours: {ratio:.2f} (goal >= {RATIO_GOAL}) {'OK' if ratio >= RATIO_GOAL else 'FAIL'}")
        ok = _growth("csv", ours, big) and ratio >= RATIO_GOAL and ok
    for fmt in ("sav", "dta"):
        if fmt in FORMATS:
            ok = _growth(fmt, _run(bench, fmt, "B1"), _run(bench, fmt, "all")) and ok
    import psycopg

    admin, _ = _urls()
    with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        _child(sys.argv[2], sys.argv[3])
    else:
        sys.path.insert(0, str(ROOT))
        sys.exit(main())
