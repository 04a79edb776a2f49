"""Request-path benchmark: requests per second of the busiest API paths through gunicorn, against GET /healthz on the
same server in the same run.

In a throwaway database (named after DATABASE_URL + ``_bench_requests``, migrated, static files collected), a blinded
study (samati-v1) at two sites gets 500 participants (``BENCH_REQUESTS_PARTICIPANTS``) with their plans and
questionnaires (tests/support/seed.py) and the default text packs. Then:

- a coordinator of both sites gets an API token (``Authorization: Token ...``: how API clients sign in; a token needs
  no session, so no second factor is asked of it);
- a participant link is issued (``assessments.services.link_issue``) for every visit with an SCS (Self-Compassion
  Scale, 26 items) open for answers now;
- staff-entry targets are prepared in advance, one per request: SCS administrations with no response, at visits of
  randomized participants, none of them a linked visit (a response per administration is unique: each POST stores a
  new response with its 26 answers, its scores and its audit event; none answers 409). Where the plans hold too few
  (``BENCH_REQUESTS_ENTRY_TARGETS``, 2,400), SCS administrations are added in bulk to the other visits the
  coordinator sees, then to unscheduled visits added in bulk (UNS1, UNS2, ...), as the seed writes its rows. A round
  that uses up its share of them before its time is up ends early and says so.

The server is gunicorn as docker-compose.yml runs it (``trialsite.wsgi:application``, 3 sync workers,
``BENCH_REQUESTS_WORKERS`` overrides, access log on) on a free loopback port, with production settings: DEBUG off,
the audit key and checkpoint folder, behind a TLS proxy (``BEHIND_TLS_PROXY``; every request says
``X-Forwarded-Proto: https``, so the HTTPS redirect stays on and is not taken), persistent database connections.
Tasks the requests publish go to the same Redis as the cache, database 15 (``BENCH_REQUESTS_BROKER_DB``), emptied at
the end, so that no worker of the tests picks them up.

The load: 8 connections (``BENCH_REQUESTS_CONNECTIONS``), one thread each with http.client (a sync worker closes the
connection after each response: each request opens a new one, as any client of it would), for 10 s
(``BENCH_REQUESTS_SECONDS``; the two paths without a goal half of it), three rounds, the paths in turn in each round,
after one warm-up second per path. Every response's status is checked (200, or 201 for the staff entry): any other
fails the benchmark. Printed per path: the median of the rounds' requests per second, p50 and p95 latency over all
rounds, the ratio to /healthz's median and, for the goal paths, PASS or FAIL. Afterwards the database must hold a
staff-entered SCS response per entry answered 201 and an audited draft save per save answered 200. The goals:

- GET /api/v1/links/{token}/ (the participant's questionnaire page data) >= 0.25;
- PUT /api/v1/links/{token}/ (one SCS answer saved; each save changes the draft, so each writes it and its audit
  event) >= 0.2;
- POST /api/v1/responses/ (staff entry of a complete SCS) >= 0.15;
- GET /api/v1/participants/ (first page) >= 0.2.

Measured with no goal: GET /api/v1/visits/?site=<first site> (a site's visits, first page) and
GET /api/v1/notifications/ (the outbox, first page). The /healthz row also shows how much of one core the load
generator used: near 100% means the generator, not the server, set the ceiling.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PARTICIPANTS = int(os.environ.get("BENCH_REQUESTS_PARTICIPANTS", "500"))
SECONDS = float(os.environ.get("BENCH_REQUESTS_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_REQUESTS_CONNECTIONS", "8"))
WORKERS = int(os.environ.get("BENCH_REQUESTS_WORKERS", "3"))  # docker-compose.yml's web command
ENTRY_TARGETS = int(os.environ.get("BENCH_REQUESTS_ENTRY_TARGETS", "2400"))
BROKER_DB = int(os.environ.get("BENCH_REQUESTS_BROKER_DB", "15"))
ROUNDS = 3
WARM_UP_SECONDS = 1.0
INSTRUMENT = "SCS"
HOST = "127.0.0.1"

# name -> goal (ratio of req/s to /healthz's), or None for a path measured without a goal.
GOALS: dict[str, float | None] = {
    "GET /healthz": None,
    "GET /api/v1/links/{token}/": 0.25,
    "PUT /api/v1/links/{token}/": 0.2,
    "POST /api/v1/responses/": 0.15,
    "GET /api/v1/participants/": 0.2,
    "GET /api/v1/visits/?site=...": None,
    "GET /api/v1/notifications/": None,
}
BASELINE = "GET /healthz"
NO_GOAL_FRACTION = 0.5  # the paths without a goal run half as long


def _bench_db() -> str:
    # Named after the configured database, so that two checkouts sharing a server do not drop each other's.
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    return f"{urlsplit(base).path.lstrip('/') or 'trialsite'}_bench_requests"


BENCH_DB = _bench_db()
STATIC_ROOT = Path(tempfile.gettempdir()) / "trialsite-bench-requests-static"
VAR_DIR = Path(tempfile.gettempdir()) / "trialsite-bench-requests-var"


def _urls() -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def _conninfo(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _broker_url() -> str:
    """A Redis database of the bench's own for the tasks the requests publish (no worker consumes them); without
    Redis, the embedded filesystem broker in a folder of the bench's own."""
    redis = os.environ.get("REDIS_URL")
    if not redis:
        return "filesystem://"
    return urlunsplit(urlsplit(redis)._replace(path=f"/{BROKER_DB}"))


def _env(bench: str) -> dict[str, str]:
    return os.environ | {
        "STATIC_ROOT": str(STATIC_ROOT),  # DEBUG off serves hashed names from collectstatic's manifest
        "TRIALSITE_VAR_DIR": str(VAR_DIR),
        "DATABASE_URL": bench,
        "CELERY_BROKER_URL": _broker_url(),
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + "x" * 50),
        "ALLOWED_HOSTS": HOST,
        "SITE_URL": "https://trialsite.example.org",
        # Production behind a TLS proxy: the redirect to HTTPS stays on; X-Forwarded-Proto says the request is HTTPS.
        "BEHIND_TLS_PROXY": "true",
        "LOG_LEVEL": "WARNING",
        "EMAIL_URL": "locmem://",
        # DEBUG off requires the audit chain's key and a place for its checkpoints (outside the database).
        "AUDIT_KEY": os.environ.get("AUDIT_KEY", "bench-audit-key-" + "x" * 48),
        "AUDIT_CHECKPOINT_DIR": str(Path(tempfile.gettempdir()) / "trialsite-bench-requests-checkpoints"),
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


def _empty_broker() -> None:
    url = _broker_url()
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url).flushdb()


# ------------------------------------------------------------------------------------------------------------ setup


def _setup(out_file: str) -> None:
    """In a process of its own with the server's settings: seed, issue the token and the links, prepare the staff
    entry targets; write what the load needs as JSON."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from accounts.services import token_issue
    from assessments.models import Administration
    from assessments.services import link_issue
    from assessments.windows import SELF, is_open, window_bounds
    from participants.models import Participant
    from scheduling.blinded_view import Lens
    from scheduling.models import Visit
    from scheduling.selectors import visits_for
    from tests.factories import UserFactory, build_study, staff
    from tests.support.seed import seed_participants
    from tests.support.text_packs import install_default_packs
    from trialsite.roles import Role

    started = time.perf_counter()
    study, sites = build_study(
        code="SAM", arms=("immediate", "delayed"), protocol_code="samati-v1", site_codes=("PDX", "NYC")
    )
    install_default_packs()
    admin = UserFactory(username="bench-admin", is_superuser=True)
    coordinator = staff("bench-coordinator", Role.COORDINATOR, *sites.values())
    now = timezone.now()
    seed_participants(study, list(sites.values()), PARTICIPANTS, now=now, by=admin)
    _, token = token_issue(user=coordinator, days=1, by=admin)

    # Links: every visit whose SCS is open for answers now (of an active participant: the seed's randomized ones).
    active = Participant.objects.filter(study=study, status="randomized")
    open_scs = [
        a
        for a in Administration.objects.filter(
            participant__in=active, instrument_code=INSTRUMENT, respondent=SELF, status=Administration.Status.DUE
        ).select_related("visit")
        if is_open(a, now)
    ]
    links = []
    for adm in open_scs:
        _, link_token = link_issue(visit=adm.visit, by=coordinator)
        links.append(link_token)
    linked_visits = {a.visit_id for a in open_scs}

    # Staff entry targets: an SCS with no response per request, at visits with no link that the coordinator's blinded
    # view shows (an arm's own visit answers 404 to a blinded role).
    shown = Lens(coordinator).shown(visits_for(coordinator)).values("id")
    targets = list(
        Administration.objects.filter(
            participant__in=active, instrument_code=INSTRUMENT, response__isnull=True, visit_id__in=shown
        )
        .exclude(visit_id__in=linked_visits)
        .exclude(visit__status=Visit.Status.CANCELLED)
        .order_by("id")
        .values_list("participant__participant_id", "visit_id")
    )
    added = 0
    if len(targets) < ENTRY_TARGETS:
        # Too few in the plans: an SCS added to the other visits the coordinator sees, then to unscheduled visits
        # (UNS1, UNS2, ... of the randomized participants in turn), written in bulk as the seed writes its rows.
        with_scs = Administration.objects.filter(instrument_code=INSTRUMENT).values("visit_id")
        spare = list(
            Visit.objects.filter(participant__in=active, id__in=shown)
            .exclude(id__in=linked_visits)
            .exclude(status=Visit.Status.CANCELLED)
            .exclude(id__in=with_scs)
            .select_related("participant__site")
            .order_by("id")[: ENTRY_TARGETS - len(targets)]
        )
        people = list(active.select_related("site", "schedule__protocol_version").order_by("id"))
        extra = []
        for k in range(ENTRY_TARGETS - len(targets) - len(spare)):
            p = people[k % len(people)]
            extra.append(
                Visit(
                    participant=p,
                    site_id=p.site_id,
                    study_id=p.study_id,
                    protocol_version=p.schedule.protocol_version,
                    code=f"UNS{k // len(people) + 1}",
                    name="Unscheduled assessment visit",
                    kind="assessment",
                    unscheduled=True,
                    duration_minutes=60,
                )
            )
        spare += Visit.objects.bulk_create(extra)
        rows = []
        for visit in spare:
            opens, closes = window_bounds(visit, visit.participant.site.time_zone)
            rows.append(
                Administration(
                    participant=visit.participant,
                    visit=visit,
                    instrument_code=INSTRUMENT,
                    respondent=SELF,
                    order=len(visit.instruments or []),
                    from_protocol=False,
                    status=Administration.Status.DUE,
                    opens_at=opens,
                    closes_at=closes,
                )
            )
        Administration.objects.bulk_create(rows)
        targets += [(r.participant.participant_id, r.visit_id) for r in rows]
        added = len(rows)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    from assessments.library import instrument_get

    result = {
        "seconds_to_seed": time.perf_counter() - started,
        "token": token,
        "links": links,
        "entry_targets": targets,
        "entry_targets_added": added,
        "items": list(instrument_get(INSTRUMENT).item_codes),
        "site": sorted(sites)[0],
        "participants": Participant.objects.filter(study=study).count(),
    }
    Path(out_file).write_text(json.dumps(result))


# ------------------------------------------------------------------------------------------------------------- load

Request = tuple[str, str, bytes | None, dict[str, str], int]  # method, path, body, headers, expected status
# A path's requests: given the connection's index, a function that gives its next request (None: nothing left).
Source = Callable[[int], Callable[[], Request | None]]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _run(port: int, source: Source, seconds: float) -> dict[str, Any]:
    """CONNECTIONS threads, each with its connection, send requests until ``seconds`` pass (or the source runs dry).
    Returns the count, the latencies (ms), the elapsed time, the errors and the generator's CPU time."""
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(CONNECTIONS)]
    errors: list[str] = []
    wrong = [0] * CONNECTIONS  # responses with another status than expected, per connection
    ended: list[float] = [0.0] * CONNECTIONS
    lock = threading.Lock()

    def work(index: int) -> None:
        following = source(index)
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        mine = latencies[index]
        try:
            while time.perf_counter() < deadline:
                request = following()
                if request is None:
                    break
                method, path, body, headers, expected = request
                t0 = time.perf_counter()
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    with lock:
                        errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                    continue
                mine.append((time.perf_counter() - t0) * 1000)
                if response.status != expected:
                    wrong[index] += 1
                    with lock:
                        errors.append(f"{method} {path}: {response.status} {data[:300]!r}")
        finally:
            conn.close()
            ended[index] = time.perf_counter()

    cpu0, t0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(ended) - t0
    samples = [x for per in latencies for x in per]
    return {
        "count": len(samples),
        "ok": len(samples) - sum(wrong),
        "elapsed": elapsed,
        "rps": len(samples) / elapsed if elapsed > 0 else 0.0,
        "latencies": samples,
        "errors": errors,
        "cpu": (time.process_time() - cpu0) / elapsed if elapsed > 0 else 0.0,
        "short": elapsed < seconds * 0.95,
    }


def _sources(setup: dict[str, Any]) -> dict[str, Callable[[int], Source]]:
    """Per path, given the round (0 the warm-up), the source of its requests."""
    base = {"Host": HOST, "X-Forwarded-Proto": "https", "Accept": "application/json"}
    staff = base | {"Authorization": f"Token {setup['token']}"}
    body_headers = {"Content-Type": "application/json"}
    links: list[str] = setup["links"]
    items: list[str] = setup["items"]

    def fixed(path: str, headers: dict[str, str]) -> Callable[[int], Source]:
        def for_round(_round: int) -> Source:
            def for_connection(_index: int) -> Callable[[], Request]:
                return lambda: ("GET", path, None, headers, 200)

            return for_connection

        return for_round

    def link_get(_round: int) -> Source:
        def for_connection(index: int) -> Callable[[], Request]:
            turn = itertools.cycle(links[index::CONNECTIONS])
            return lambda: ("GET", f"/api/v1/links/{next(turn)}/", None, base, 200)

        return for_connection

    # Each connection saves through its own links (no two connections wait on one draft's row lock). Save k of a link
    # answers item k mod 26 with a value that differs from the item's previous save: every save changes the draft.
    saves = [0] * len(links)

    def link_put(_round: int) -> Source:
        def for_connection(index: int) -> Callable[[], Request]:
            mine = itertools.cycle(range(index, len(links), CONNECTIONS))

            def following() -> Request:
                link = next(mine)
                k = saves[link]
                saves[link] += 1
                answer = {INSTRUMENT: {items[k % len(items)]: 1 + (k // len(items)) % 5}}
                body = json.dumps({"answers": answer}).encode()
                return ("PUT", f"/api/v1/links/{links[link]}/", body, base | body_headers, 200)

            return following

        return for_connection

    # The staff entry targets: a share for the warm-up, the rest split between the rounds; one target per request.
    targets = setup["entry_targets"]
    warm = max(CONNECTIONS * 5, len(targets) // 20)
    per_round = (len(targets) - warm) // ROUNDS
    shares = [targets[:warm]] + [targets[warm + r * per_round : warm + (r + 1) * per_round] for r in range(ROUNDS)]
    answers = {item: 1 + i % 5 for i, item in enumerate(items)}

    def entry(round_: int) -> Source:
        pending = list(reversed(shares[round_]))
        lock = threading.Lock()

        def for_connection(_index: int) -> Callable[[], Request | None]:
            def following() -> Request | None:
                with lock:
                    if not pending:
                        return None
                    participant_id, visit_id = pending.pop()
                body = {"participant_id": participant_id, "visit_id": visit_id, "instrument": INSTRUMENT}
                body["answers"] = answers
                return ("POST", "/api/v1/responses/", json.dumps(body).encode(), staff | body_headers, 201)

            return following

        return for_connection

    return {
        "GET /healthz": fixed("/healthz", base),
        "GET /api/v1/links/{token}/": link_get,
        "PUT /api/v1/links/{token}/": link_put,
        "POST /api/v1/responses/": entry,
        "GET /api/v1/participants/": fixed("/api/v1/participants/", staff),
        "GET /api/v1/visits/?site=...": fixed(f"/api/v1/visits/?site={setup['site']}", staff),
        "GET /api/v1/notifications/": fixed("/api/v1/notifications/", staff),
    }


# ----------------------------------------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _start_server(bench: str, port: int, log: Any) -> subprocess.Popen[bytes]:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [
            str(gunicorn),
            "trialsite.wsgi:application",
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            str(WORKERS),
            "--access-logfile",
            "-",
            # gunicorn's control socket has one default path per user: two servers on one machine would share it.
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=_env(bench),
        stdout=subprocess.DEVNULL,  # the access log: written (production writes it), not kept
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2):  # noqa: S310 (loopback)
                return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError("gunicorn did not answer /healthz") from None
            time.sleep(0.2)


# ------------------------------------------------------------------------------------------------------------ parent


def _measure(port: int, setup: dict[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """The rounds' runs per path, and per path the requests answered as expected (the warm-up's included)."""
    sources = _sources(setup)
    answered = dict.fromkeys(sources, 0)
    for name, source in sources.items():  # warm-up: each worker imports, connects, fills its caches
        warm = _run(port, source(0), WARM_UP_SECONDS)
        if warm["errors"]:
            raise RuntimeError(f"{name} during the warm-up: {warm['errors'][0]}")
        answered[name] += warm["ok"]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
    for round_ in range(1, ROUNDS + 1):  # the paths in turn, so that a busy moment of the machine spreads over all
        for name, source in sources.items():
            seconds = SECONDS if GOALS[name] is not None or name == BASELINE else SECONDS * NO_GOAL_FRACTION
            run = _run(port, source(round_), seconds)
            runs[name].append(run)
            answered[name] += run["ok"]
    return runs, answered


def _stored(bench: str) -> tuple[int, int]:
    """What the writes left in the database: staff-entered SCS responses, and audited draft saves."""
    import psycopg

    with psycopg.connect(_conninfo(bench)) as conn:
        responses = conn.execute(
            "SELECT count(*) FROM assessments_response WHERE source = 'staff' AND instrument_code = %s", [INSTRUMENT]
        ).fetchone()
        saves = conn.execute("SELECT count(*) FROM audit_auditevent WHERE entity_type = 'draft_answers'").fetchone()
    assert responses is not None and saves is not None
    return responses[0], saves[0]


def _report(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Print the figures; return the names of the paths that failed (a goal missed, or an error response)."""
    base_rps = statistics.median(r["rps"] for r in runs[BASELINE])
    failed = []
    print(f"   {CONNECTIONS} connections, {ROUNDS} rounds; req/s is the median of the rounds, latency over all rounds:")
    for name, per_round in runs.items():
        rps = statistics.median(r["rps"] for r in per_round)
        samples = [x for r in per_round for x in r["latencies"]]
        count = sum(r["count"] for r in per_round)
        errors = [e for r in per_round for e in r["errors"]]
        line = (
            f"   {name:30} {rps:8.1f} req/s  p50 {statistics.median(samples):7.1f} ms  "
            f"p95 {_percentile(samples, 0.95):7.1f} ms  ({count:,} requests)"
        )
        if name == BASELINE:
            cpu = statistics.median(r["cpu"] for r in per_round)
            line += f"  baseline; the generator used {cpu:.0%} of a core"
        else:
            ratio = rps / base_rps
            goal = GOALS[name]
            if goal is None:
                line += f"  ratio {ratio:5.3f} (measured; no goal)"
            else:
                ok = ratio >= goal
                line += f"  ratio {ratio:5.3f} (goal >= {goal}: {'PASS' if ok else 'FAIL'})"
                if not ok:
                    failed.append(name)
        print(line)
        if any(r["short"] for r in per_round):
            print(f"   {'':30} (ran out of prepared targets before the time was up; req/s over the time it ran)")
        if errors:
            failed.append(f"{name} ({len(errors)} error responses)")
            print(f"   {'':30} FAIL: {len(errors)} error responses; the first: {errors[0]}")
    return failed


def main() -> int:
    started = time.perf_counter()
    VAR_DIR.mkdir(exist_ok=True)
    bench = _create_database()
    server = None
    server_log = tempfile.TemporaryFile(mode="w+")
    try:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "setup", out.name],
                cwd=ROOT,
                env=_env(bench),
                capture_output=True,
                text=True,
            )
            if done.returncode:
                print(done.stdout[-2000:], done.stderr[-4000:], sep="\n")
                return 1
            setup = json.loads(Path(out.name).read_text())
        print(
            f"   setup: {setup['participants']:,} participants seeded in {setup['seconds_to_seed']:.1f} s "
            f"({time.perf_counter() - started:.1f} s with the database); {len(setup['links'])} participant links "
            f"to an open {INSTRUMENT}; {len(setup['entry_targets']):,} staff entry targets (an {INSTRUMENT} with "
            f"no response each, {setup['entry_targets_added']:,} of them added to visits without one, planned or "
            "unscheduled)"
        )
        if len(setup["links"]) < CONNECTIONS:
            print(f"   FAIL: fewer participant links than connections ({len(setup['links'])} < {CONNECTIONS})")
            return 1
        port = _free_port()
        server = _start_server(bench, port, server_log)
        print(
            f"   gunicorn trialsite.wsgi:application, {WORKERS} workers, on {HOST}:{port}; DEBUG off, behind a TLS "
            f"proxy; {SECONDS:g} s per round ({SECONDS * NO_GOAL_FRACTION:g} s for the paths without a goal)"
        )
        runs, answered = _measure(port, setup)
        stored = _stored(bench)
    except Exception:
        server_log.seek(0)
        print(server_log.read()[-4000:])
        raise
    finally:
        server_log.close()
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        _drop_database()
        _empty_broker()
    failed = _report(runs)
    expected = (answered["POST /api/v1/responses/"], answered["PUT /api/v1/links/{token}/"])
    print(
        f"   stored: {stored[0]:,} staff-entered {INSTRUMENT} responses for {expected[0]:,} entries answered 201; "
        f"{stored[1]:,} audited draft saves for {expected[1]:,} saves answered 200"
    )
    if stored != expected:
        failed.append("the database does not hold what the answers said was stored")
    if failed:
        print(f"   FAIL: {', '.join(failed)}")
        return 1
    print("   PASS: every path met its goal")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "setup":
        _setup(sys.argv[2])
    else:
        sys.path.insert(0, str(ROOT))
        sys.exit(main())
