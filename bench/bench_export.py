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
from typing import Any
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


# ------------------------------------------------------------------------------ query cost at 10,000 participants
#
# In a second throwaway database (named after the configured one, so checkouts sharing a server do not drop each
# other's), a blinded study at two sites gets BENCH_EXPORT_PARTICIPANTS participants (tests/support/seed.py, as the
# dashboard benchmark seeds them), then the rows the other datasets read, in bulk SQL: a response with
# BENCH_EXPORT_ITEMS answers and two scores per completed questionnaire, consent records, deviations, adverse events
# with reviews and follow-ups, dosing sessions with vital signs and present staff, treatment guesses, medications.
#
# For every dataset with a SELECT (per_participant is a summary computed in Python), in the blinded scope (the
# command line's: no arm, no dates) and the unblinded one (arm and dates: every column): COPY (the dataset's SELECT)
# TO STDOUT against COPY (a plain join) TO STDOUT, median of QUERY_RUNS each. The plain join reads the same rows from
# the same base tables (participant, site and the dataset's own tables; in the blinded scope also the timepoint
# mapping that decides which visit rows are kept) with no computed column, in the same order; both without JIT
# compilation, as the export runs its SELECT (exports.formats.NO_JIT). Goal: at most
# QUERY_GOAL x. Then, per dataset, the CSV export (the generator the view streams, audit row included) against COPY
# of its SELECT (goal >= RATIO_GOAL), and the peak RSS of a fresh process exporting it (goal: within PEAK_GOAL_MB and
# FLAT_GOAL_MB above the process's RSS before the export started: rows stream, memory does not grow with them).
# BENCH_EXPORT_KEEP=1 keeps the seeded database and reuses it on the next run (for a quicker second look).

QUERY_PARTICIPANTS = int(os.environ.get("BENCH_EXPORT_PARTICIPANTS", "10000"))  # 0: skip this part
QUERY_ITEMS = int(os.environ.get("BENCH_EXPORT_ITEMS", "10"))  # answers per seeded response
QUERY_RUNS = int(os.environ.get("BENCH_EXPORT_QUERY_RUNS", "3"))
QUERY_GOAL = 1.5
FLAT_GOAL_MB = 30


def _query_db() -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    return f"{urlsplit(base).path.lstrip('/') or 'trialsite'}_bench_export_q"


QUERY_DB = _query_db()


def _query_url() -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    return urlunsplit(urlsplit(base)._replace(path=f"/{QUERY_DB}"))


# The rows tests/support/seed.py does not make, derived from its visits and questionnaires. ``{by}`` is the bench
# user's id, ``{items}`` the answers per response.
TOP_UP = [
    # A response for every completed questionnaire (the seed answers a few screens itself).
    "INSERT INTO assessments_response (instrument_code, instrument_version, source, submitted_at, updated_at, "
    "administration_id, entered_by_id, participant_id, visit_id) "
    "SELECT a.instrument_code, '1.0', CASE WHEN a.respondent = 'clinician' THEN 'staff' ELSE 'participant_link' END, "
    "COALESCE(v.occurred_at, now()), COALESCE(v.occurred_at, now()), a.id, "
    "CASE WHEN a.respondent = 'clinician' THEN {by} END, a.participant_id, a.visit_id "
    "FROM assessments_administration a JOIN scheduling_visit v ON v.id = a.visit_id WHERE a.status = 'completed' "
    "AND NOT EXISTS (SELECT 1 FROM assessments_response r WHERE r.administration_id = a.id)",
    "INSERT INTO assessments_answer (item_code, value, response_id) "
    "SELECT r.instrument_code || '_' || lpad(i::text, 2, '0'), CASE WHEN (r.id + i) % 17 = 0 THEN NULL "
    "ELSE (r.id + i) % 5 END, r.id FROM assessments_response r CROSS JOIN generate_series(1, {items}) i",
    "INSERT INTO assessments_score (kind, code, value, text_value, complete, prorated, method, band, "
    "instrument_version, scoring_version, computed_at, response_id) "
    "SELECT k.kind, k.code, CASE WHEN k.kind = 'scale' THEN (r.id % 40) ELSE (r.id % 2) END, '', true, r.id % 9 = 0, "
    "CASE WHEN k.kind = 'scale' THEN 'sum' ELSE '' END, '', '1.0', '1', r.submitted_at, r.id "
    "FROM assessments_response r CROSS JOIN (VALUES ('scale', 'TOTAL'), ('flag', 'PROBABLE')) k (kind, code)",
    # One consent record per participant past screening.
    "INSERT INTO participants_consentrecord (signed_at, recorded_at, document_id, obtained_by_id, participant_id) "
    "SELECT COALESCE(p.enrolled_at, now()), COALESCE(p.enrolled_at, now()), "
    "(SELECT max(d.id) FROM participants_consentdocument d WHERE d.study_id = p.study_id), {by}, p.id "
    "FROM participants_participant p WHERE p.enrolled_at IS NOT NULL",
    # A deviation per missed visit, and one tied to no visit at one participant in ten.
    "INSERT INTO scheduling_protocoldeviation (type, description, days_outside, recorded_at, participant_id, "
    "visit_id) SELECT 'missed_visit', 'seeded', NULL, now() - interval '1 day', v.participant_id, v.id "
    "FROM scheduling_visit v WHERE v.status = 'missed'",
    "INSERT INTO scheduling_protocoldeviation (type, description, days_outside, recorded_at, participant_id, "
    "visit_id) SELECT 'other', 'seeded', NULL, now() - interval '2 days', p.id, NULL "
    "FROM participants_participant p WHERE p.id % 10 = 0",
    # An adverse event at one participant in three, tied to its latest completed visit when it has one.
    "INSERT INTO safety_adverseevent (verbatim_term, coded_term_code, coded_term_text, onset_at, resolved_at, "
    "severity_grade, serious_death, serious_life_threatening, serious_hospitalisation, serious_disability, "
    "serious_congenital_anomaly, serious_important_medical_event, serious, relatedness_drug, relatedness_therapy, "
    "expectedness, action_taken, outcome, aesi_categories, recorded_at, alert_started_at, reviewed_at, "
    "participant_id, recorded_by_id, visit_id) "
    "SELECT 'headache', '10019211', 'Headache', COALESCE(lv.occurred_at, now()) + interval '2 hours', "
    "CASE WHEN p.id % 2 = 0 THEN COALESCE(lv.occurred_at, now()) + interval '2 days' END, 1 + p.id % 3, false, false, p.id % 30 = 0, false, false, false, "
    "p.id % 30 = 0, 'possible', 'unlikely', 'expected', 'dose_not_changed', 'recovered', "
    "CASE WHEN p.id % 6 = 0 THEN '[\"cardiac\", \"abuse\"]'::jsonb ELSE '[]'::jsonb END, now(), "
    "CASE WHEN p.id % 30 = 0 THEN now() - interval '3 days' END, CASE WHEN p.id % 3 = 0 THEN now() END, "
    "p.id, {by}, lv.id FROM participants_participant p LEFT JOIN LATERAL (SELECT v.id, v.occurred_at "
    "FROM scheduling_visit v WHERE v.participant_id = p.id AND v.occurred_at IS NOT NULL "
    "ORDER BY v.occurred_at DESC LIMIT 1) lv ON true WHERE p.id % 3 = 0",
    "INSERT INTO safety_adverseeventreview (causality_drug, causality_therapy, note, reviewed_at, event_id, "
    "reviewed_by_id) SELECT 'possible', CASE WHEN k = 1 THEN 'unlikely' ELSE 'possible' END, '', "
    "now() - (k || ' hours')::interval, ae.id, {by} FROM safety_adverseevent ae "
    "CROSS JOIN generate_series(1, 2) k WHERE ae.reviewed_at IS NOT NULL AND (k = 1 OR ae.id % 2 = 0)",
    "INSERT INTO safety_adverseeventfollowup (note, outcome, resolved_at, recorded_at, event_id, recorded_by_id) "
    "SELECT 'seeded', 'recovering', NULL, now(), ae.id, {by} FROM safety_adverseevent ae CROSS JOIN "
    "generate_series(1, 2) k WHERE k = 1 OR ae.id % 4 = 0",
    # A dosing session record per dosing visit that took place, with its present staff, vital signs and guesses.
    "INSERT INTO safety_dosingsession (kit_identifier, initial_dose_mg, initial_dose_at, supplemental_dose_mg, "
    "supplemental_dose_at, started_at, ended_at, present_others, recorded_at, closed_at, missing_timepoints_reason, "
    "participant_id, recorded_by_id, visit_id) "
    "SELECT 'KIT-' || v.id, 120, v.occurred_at + interval '30 minutes', 60, v.occurred_at + interval '150 minutes', "
    'v.occurred_at, v.occurred_at + interval \'8 hours\', \'[{{"name": "x", "role": "support"}}]\'::jsonb, '
    "v.occurred_at, v.occurred_at + interval '9 hours', '', v.participant_id, {by}, v.id "
    "FROM scheduling_visit v WHERE v.kind = 'dosing' AND v.occurred_at IS NOT NULL",
    "INSERT INTO safety_dosingsession_present_staff (dosingsession_id, user_id) SELECT ds.id, {by} "
    "FROM safety_dosingsession ds",
    "INSERT INTO safety_vitalsign (timepoint_code, measured_at, systolic_bp, diastolic_bp, heart_rate, "
    "temperature_c, note, recorded_at, recorded_by_id, session_id) "
    "SELECT 'T' || k, ds.started_at + (k || ' hours')::interval, 110 + k, 70 + k, 60 + k, 36.6, '', now(), {by}, "
    "ds.id FROM safety_dosingsession ds CROSS JOIN generate_series(0, 5) k",
    "INSERT INTO safety_treatmentguess (respondent, guess, confidence, recorded_at, corrected_at, participant_id, "
    "recorded_by_id, visit_id) SELECT g.respondent, CASE WHEN ds.id % 3 = 0 THEN 'dont_know' ELSE 'immediate' END, "
    "50, ds.ended_at, NULL, ds.participant_id, {by}, ds.visit_id FROM safety_dosingsession ds "
    "CROSS JOIN (VALUES ('participant'), ('lead_therapist'), ('independent_rater')) g (respondent)",
    "INSERT INTO safety_concomitantmedication (name, medication_class, dose_amount, dose_unit, dose_text, frequency, "
    "route, indication, start_date, stop_date, taper_note, recorded_at, participant_id, recorded_by_id) "
    "SELECT 'seeded', CASE WHEN k = 1 THEN 'ssri' ELSE 'snri' END, 20, 'mg', '', 'daily', 'oral', '', "
    "current_date - 400 + k, CASE WHEN k = 2 THEN current_date - 30 END, '', now(), p.id, {by} "
    "FROM participants_participant p CROSS JOIN generate_series(1, 2) k WHERE p.enrolled_at IS NOT NULL",
]


def _seed_child() -> None:
    """Seed the query database (in a child: Django set up on it)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from tests.factories import UserFactory, build_study
    from tests.support.seed import seed_participants

    study, sites = build_study(
        code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", site_codes=("PDX", "NYC")
    )
    by = UserFactory(username="bench-admin", is_superuser=True)
    seed_participants(study, list(sites.values()), QUERY_PARTICIPANTS, now=timezone.now(), by=by)
    with connection.cursor() as cursor:
        for statement in TOP_UP:
            cursor.execute(statement.format(by=by.pk, items=QUERY_ITEMS))
        cursor.execute("VACUUM ANALYZE")


# The plain join of each dataset: participant, site and the dataset's own tables, base columns only, the dataset's
# row order. ``{tp}`` is where the blinded scope joins the timepoint mapping (it needs the visit ``v``).
PLAIN: dict[str, tuple[str, str, str]] = {
    # name: (columns, joins after "participant p JOIN site s", order)
    "participants": (
        "p.status, p.stratum, p.randomized_at, p.withdrawal_level, p.withdrawal_date, p.enrolled_at, d.version",
        "LEFT JOIN participants_consentrecord cr ON cr.participant_id = p.id "
        "LEFT JOIN participants_consentdocument d ON d.id = cr.document_id",
        "p.participant_id",
    ),
    "visits": (
        "v.code, v.kind, v.unscheduled, v.status, v.target_date, v.window_start, v.window_end, v.occurred_at, "
        "v.dosing_number",
        "JOIN scheduling_visit v ON v.participant_id = p.id",
        "p.participant_id, v.target_date NULLS LAST, v.id",
    ),
    "responses": (
        "v.code, r.instrument_code, r.instrument_version, a.item_code, a.value, ad.respondent, r.source, "
        "r.submitted_at, r.entered_by_id",
        "JOIN assessments_response r ON r.participant_id = p.id JOIN scheduling_visit v ON v.id = r.visit_id "
        "JOIN assessments_administration ad ON ad.id = r.administration_id "
        "JOIN assessments_answer a ON a.response_id = r.id",
        "p.participant_id, r.id, a.id",
    ),
    "scores": (
        "v.code, r.instrument_code, sc.instrument_version, sc.kind, sc.code, sc.value, sc.text_value, sc.complete, "
        "sc.prorated, sc.method, sc.scoring_version, r.submitted_at",
        "JOIN assessments_response r ON r.participant_id = p.id JOIN scheduling_visit v ON v.id = r.visit_id "
        "JOIN assessments_score sc ON sc.response_id = r.id",
        "p.participant_id, r.id, sc.kind DESC, sc.id",  # 'scale' before 'flag', as the dataset orders them
    ),
    "deviations": (
        "v.code, dv.type, dv.days_outside, dv.recorded_at",
        "JOIN scheduling_protocoldeviation dv ON dv.participant_id = p.id "
        "LEFT JOIN scheduling_visit v ON v.id = dv.visit_id",
        "p.participant_id, dv.recorded_at, dv.id",
    ),
    "safety_alerts": (
        "v.code, r.instrument_code, al.rule_code, al.severity, al.created_at, al.acknowledged_at, al.escalated_at",
        "JOIN assessments_safetyalert al ON al.participant_id = p.id AND al.source = 'questionnaire' "
        "JOIN assessments_response r ON r.id = al.response_id JOIN scheduling_visit v ON v.id = r.visit_id",
        "p.participant_id, al.created_at, al.id",
    ),
    "adverse_events": (
        "ae.id, v.code, ae.coded_term_code, ae.coded_term_text, ae.onset_at, ae.resolved_at, ae.severity_grade, "
        "ae.serious, ae.serious_death, ae.serious_life_threatening, ae.serious_hospitalisation, "
        "ae.serious_disability, ae.serious_congenital_anomaly, ae.serious_important_medical_event, "
        "ae.aesi_categories, ae.relatedness_drug, ae.relatedness_therapy, ae.expectedness, ae.action_taken, "
        "ae.outcome, ae.recorded_at, ae.reviewed_at, ae.alert_started_at",
        "JOIN safety_adverseevent ae ON ae.participant_id = p.id LEFT JOIN scheduling_visit v ON v.id = ae.visit_id",
        "p.participant_id, ae.onset_at, ae.id",
    ),
    "dosing_sessions": (
        "v.code, v.dosing_number, ds.started_at, ds.ended_at, ds.initial_dose_mg, ds.initial_dose_at, "
        "ds.supplemental_dose_mg, ds.supplemental_dose_at, ds.present_others, ds.closed_at, "
        "ds.missing_timepoints_reason",
        "JOIN safety_dosingsession ds ON ds.participant_id = p.id JOIN scheduling_visit v ON v.id = ds.visit_id",
        "p.participant_id, ds.started_at, ds.id",
    ),
    "vital_signs": (
        "v.code, vs.timepoint_code, ds.initial_dose_at, vs.measured_at, vs.systolic_bp, vs.diastolic_bp, "
        "vs.heart_rate, vs.temperature_c",
        "JOIN safety_dosingsession ds ON ds.participant_id = p.id JOIN safety_vitalsign vs ON vs.session_id = ds.id "
        "JOIN scheduling_visit v ON v.id = ds.visit_id",
        "p.participant_id, vs.measured_at, vs.id",
    ),
    "concomitant_medications": (
        "cm.medication_class, cm.dose_amount, cm.dose_unit, cm.route, cm.start_date, cm.stop_date",
        "JOIN safety_concomitantmedication cm ON cm.participant_id = p.id",
        "p.participant_id, cm.start_date, cm.id",
    ),
    "blinding_guesses": (
        "v.code, v.dosing_number, g.respondent, g.guess, g.confidence, g.recorded_at, g.corrected_at",
        "JOIN safety_treatmentguess g ON g.participant_id = p.id JOIN scheduling_visit v ON v.id = g.visit_id",
        "p.participant_id, g.recorded_at, g.id",
    ),
}
# The blinded scope's rows: only visits that serve a timepoint (MAYBE_VISIT: or none), as the dataset keeps them.
_TP_JOIN = (
    " JOIN scheduling_participantschedule ps ON ps.participant_id = p.id"
    " LEFT JOIN participants_allocationslot sl ON sl.participant_id = p.id"
    " LEFT JOIN participants_arm arm ON arm.id = sl.arm_id"
    " {kind} JOIN tp ON tp.pv_id = ps.protocol_version_id AND tp.arm = COALESCE(arm.code, '')"
    " AND tp.visit_code = v.code AND NOT v.unscheduled"
)


def _plain_sql(name: str, scope, visit_rows: str, blinded: bool, timepoints) -> Any:
    from psycopg import sql

    from exports.datasets.base import MAYBE_VISIT, VISIT_ROWS
    from exports.timepoints import timepoint_cte

    cols, joins, order = PLAIN[name]
    where = [sql.SQL("p.site_id = ANY({})").format(sql.Literal(list(scope.site_ids)))]
    with_tp = sql.SQL("")
    if blinded and visit_rows in (VISIT_ROWS, MAYBE_VISIT):
        joins += _TP_JOIN.format(kind="" if visit_rows == VISIT_ROWS else "LEFT")
        if visit_rows == MAYBE_VISIT:
            where.append(sql.SQL("(v.id IS NULL OR tp.timepoint IS NOT NULL)"))
        with_tp = sql.SQL("WITH {} ").format(timepoint_cte(timepoints))
    return sql.SQL(
        "{with_tp}SELECT p.participant_id, s.code AS site, {cols} FROM participants_participant p "
        "JOIN participants_site s ON s.id = p.site_id {joins} WHERE {where} ORDER BY {order}"
    ).format(
        with_tp=with_tp,
        cols=sql.SQL(cols),
        joins=sql.SQL(joins),
        where=sql.SQL(" AND ").join(where),
        order=sql.SQL(order),
    )


def _copy_seconds(query: Any) -> tuple[float, int]:
    """Seconds and bytes of ``COPY (query) TO STDOUT`` (CSV with a header, as the export's COPY)."""
    from django.db import connection
    from psycopg import sql

    started = time.perf_counter()
    size = 0
    with connection.connection.cursor() as cursor:
        with cursor.copy(sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)").format(query)) as copy:
            for data in copy:
                size += len(data)
        rows = cursor.rowcount
    return time.perf_counter() - started, rows


def _queries_child() -> None:
    """Dataset SELECT against the plain join, and the CSV export against COPY; prints one JSON line per dataset."""
    import dataclasses
    import statistics

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    import django

    django.setup()
    from django.db import connection

    from exports import services
    from exports.columns import Filters
    from exports.datasets import DATASETS
    from exports.pseudonyms import staff_ids
    from exports.selectors import export_scope
    from exports.sql import select_sql
    from exports.timepoints import timepoint_map

    connection.ensure_connection()
    # Both sides run as the export runs its SELECT: without JIT compilation (exports.formats.NO_JIT).
    with connection.connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    blinded_scope, _ = export_scope(None, site_codes=[], study_codes=[], dates=False)
    scopes = {"blinded": blinded_scope, "unblinded": dataclasses.replace(blinded_scope, with_arm=True, with_dates=True)}
    only = [d for d in os.environ.get("BENCH_EXPORT_DATASETS", "").split(",") if d]
    for name, ds in DATASETS.items():
        if ds.summary_rows is not None or (only and name not in only):
            continue
        out: dict[str, Any] = {"dataset": name}
        for label, scope in scopes.items():
            staff = staff_ids(scope.site_ids, scope.study_ids) if ds.needs_staff else None
            tps = timepoint_map(scope) if ds.visit_rows else None
            ours_q = select_sql(ds, scope, Filters(), escape=True, staff=staff, timepoints=tps)
            plain_q = _plain_sql(name, scope, ds.visit_rows, ds.blinded(scope), tps or timepoint_map(scope))
            _copy_seconds(ours_q)  # warm: both sides then read the same pages from memory
            _copy_seconds(plain_q)
            ours_t, plain_t = [], []
            for _ in range(QUERY_RUNS):
                seconds, rows = _copy_seconds(ours_q)
                ours_t.append(seconds)
                seconds, plain_rows = _copy_seconds(plain_q)
                plain_t.append(seconds)
            out[label] = {
                "select": statistics.median(ours_t),
                "plain": statistics.median(plain_t),
                "rows": rows,
                "plain_rows": plain_rows,
            }
        # The CSV export as the view streams it (the command line's scope: blinded), against COPY of its SELECT.
        copy_t, export_t = [], []
        for _ in range(QUERY_RUNS):
            staff = staff_ids(blinded_scope.site_ids, blinded_scope.study_ids) if ds.needs_staff else None
            tps = timepoint_map(blinded_scope) if ds.visit_rows else None
            started = time.perf_counter()
            _copy_seconds(select_sql(ds, blinded_scope, Filters(), escape=True, staff=staff, timepoints=tps))
            copy_t.append(time.perf_counter() - started)
            started = time.perf_counter()
            export = services.export_open(user=None, dataset=name, fmt="csv", params={}, actor_username="bench")
            for _chunk in export.chunks:
                pass
            export_t.append(time.perf_counter() - started)
        out["copy"], out["export"] = statistics.median(copy_t), statistics.median(export_t)
        print(json.dumps(out), flush=True)


def _peak_child(name: str) -> None:
    """The CSV export of one dataset in a fresh process: its RSS before the export and at its peak."""
    import resource

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    import django

    django.setup()
    from django.db import connection

    from exports import services

    connection.ensure_connection()
    before = _rss_mb()
    export = services.export_open(user=None, dataset=name, fmt="csv", params={}, actor_username="bench")
    size = 0
    for chunk in export.chunks:
        size += len(chunk)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"before_mb": before, "peak_mb": peak, "rows": export.progress.rows, "bytes": size}))


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _query_child_run(*args: str) -> list[dict]:
    env = os.environ | {
        "DATABASE_URL": _query_url(),
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + "x" * 50),
        "AUDIT_KEY": os.environ.get("AUDIT_KEY", "bench-audit-key-" + "x" * 48),
        "AUDIT_CHECKPOINT_DIR": os.environ.get("AUDIT_CHECKPOINT_DIR", "/tmp/trialsite-bench-checkpoints"),  # noqa: S108
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "locmem://",
    }
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "child", *args],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _query_cost() -> bool:
    """The query-cost part at QUERY_PARTICIPANTS participants; True when every goal is met."""
    import psycopg

    admin, _ = _urls()
    url = _query_url()
    started = time.perf_counter()
    with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [QUERY_DB]).fetchone()
        reuse = bool(exists) and bool(os.environ.get("BENCH_EXPORT_KEEP"))
        seeded = False
        if not reuse:
            conn.execute(f'DROP DATABASE IF EXISTS "{QUERY_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{QUERY_DB}"')
    try:
        env = os.environ | {"DATABASE_URL": url, "DEBUG": os.environ.get("DEBUG", "true")}
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True
        )
        if not reuse:
            _query_child_run("seed", "-")
        seeded = True
        print(f"   query cost at {QUERY_PARTICIPANTS:,} participants (seeded in {time.perf_counter() - started:.0f} s)")
        ok = True
        for r in _query_child_run("queries", "-"):
            name = r["dataset"]
            for label in ("blinded", "unblinded"):
                q = r[label]
                ratio = q["select"] / q["plain"] if q["plain"] else 0.0
                good = ratio <= QUERY_GOAL
                ok = ok and good
                print(
                    f"   {name:24} {label:9} {q['rows']:>9,} rows: SELECT {q['select']:.3f} s, plain join "
                    f"{q['plain']:.3f} s ({q['plain_rows']:,} rows): {ratio:.2f}x (goal <= {QUERY_GOAL}x) "
                    f"{'PASS' if good else 'FAIL'}"
                )
            ratio = r["copy"] / r["export"] if r["export"] else 0.0
            good = ratio >= RATIO_GOAL
            ok = ok and good
            print(
                f"   {name:24} export    COPY {r['copy']:.3f} s, CSV export {r['export']:.3f} s: COPY/export "
                f"{ratio:.2f} (goal >= {RATIO_GOAL}) {'PASS' if good else 'FAIL'}"
            )
        for name in PLAIN:
            (m,) = _query_child_run("peak", name)
            growth = m["peak_mb"] - m["before_mb"]
            good = m["peak_mb"] < PEAK_GOAL_MB and growth <= FLAT_GOAL_MB
            ok = ok and good
            print(
                f"   {name:24} memory    {m['rows']:,} rows, {m['bytes'] / 1e6:.1f} MB of CSV: RSS before "
                f"{m['before_mb']:.0f} MB, peak {m['peak_mb']:.0f} MB (+{growth:.0f} MB; goal <= +{FLAT_GOAL_MB} MB, "
                f"< {PEAK_GOAL_MB} MB) {'PASS' if good else 'FAIL'}"
            )
        return ok
    finally:
        with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
            if not (seeded and os.environ.get("BENCH_EXPORT_KEEP")):
                conn.execute(f'DROP DATABASE IF EXISTS "{QUERY_DB}" WITH (FORCE)')


def main() -> int:
    ok = _formats() if FORMATS else True
    if QUERY_PARTICIPANTS:
        ok = _query_cost() and ok
    return 0 if ok else 1


def _formats() -> bool:
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
    return ok


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child" and sys.argv[2] == "seed":
        _seed_child()
    elif len(sys.argv) == 4 and sys.argv[1] == "child" and sys.argv[2] == "queries":
        _queries_child()
    elif len(sys.argv) == 4 and sys.argv[1] == "child" and sys.argv[2] == "peak":
        _peak_child(sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "child":
        _child(sys.argv[2], sys.argv[3])
    else:
        sys.path.insert(0, str(ROOT))
        sys.exit(main())
