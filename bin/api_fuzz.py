"""make fuzz: a bounded property-based run of the API against its own OpenAPI schema, as two staff roles.

It builds a fresh PostgreSQL database (FUZZ_DATABASE_URL, default trialsite_fuzz on 127.0.0.1), migrates it, seeds
the demo study, issues an API token for each role, serves the application with production settings (DEBUG off) on
loopback, and runs the schema-driven fuzzer against /api/schema/ once per role with these checks: no server error
(5xx), every status code answered is documented, every body conforms to its documented schema and content type.
It prints a summary and exits non-zero on any failure. The database is dropped afterwards.

Bounds: FUZZ_MAX_EXAMPLES test cases per operation and FUZZ_MAX_SECONDS for each role's run (defaults keep the whole
run near two minutes on two cores). FUZZ_SEED fixes the generated data; FUZZ_KEEP_DB=1 keeps the database and reuses it on the next run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
PY = os.environ.get("PY", sys.executable)
BIN = Path(PY).parent

# (demo login, what it stands for): an unblinded coordinator who writes, and a blinded statistician who reads.
ROLES = [("coordinator", "coordinator, unblinded, writes"), ("statistician", "statistician, blinded, reads")]
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"

DATABASE_URL = os.environ.get("FUZZ_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialsite_fuzz")
# A database of its own on the shared Redis: the tasks the run publishes stay out of the tests' database.
REDIS_URL = os.environ.get("FUZZ_REDIS_URL", "redis://127.0.0.1:6379/13")
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
MAX_SECONDS = int(os.environ.get("FUZZ_MAX_SECONDS", "50"))
SEED = os.environ.get("FUZZ_SEED", "")


def say(message: str) -> None:
    print(f"api fuzz: {message}", flush=True)


def auth_header(token: str) -> str:
    """The request header that authenticates an API token printed by ``manage.py issue_token``."""
    return f"Authorization: Token {token}"


def issue_token(env: dict[str, str], username: str) -> str:
    out = subprocess.run(
        [PY, "manage.py", "issue_token", username], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    # The token is the last non-empty line the command prints (it may say more before it).
    return [line.strip() for line in out.splitlines() if line.strip()][-1].split()[-1]


# Values that name real objects of the seeded database, by path parameter: the fuzzer draws from them part of the time
# (and makes up values otherwise), so operations reach real records, not only their 404. Integer ids of a fresh
# database are small; text ids are read from it.
KNOWN_VALUES = """
import json
from assessments import library
from exports.datasets import DATASETS
from exports.request import FORMATS
from participants.models import Participant, Site, Study
studies = sorted(Study.objects.values_list("code", flat=True))
print(json.dumps({
    "participant_id": sorted(Participant.objects.values_list("participant_id", flat=True)),
    "study_code": studies,
    "site_code": sorted(Site.objects.values_list("code", flat=True)),
    "code": studies + sorted(i.code for i in library.instruments_all()),
    "dataset": sorted(DATASETS),
    "fmt": list(FORMATS),
}))
"""
INTEGER_IDS = list(range(1, 13))
KNOWN_PROBABILITY = 0.6


def fuzz_config(env: dict[str, str], schema: dict[str, Any]) -> str:
    """The fuzzer's configuration (TOML): a dictionary of real values for each path parameter."""
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", KNOWN_VALUES], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    known: dict[str, list[Any]] = json.loads(out.strip().splitlines()[-1])
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if parameter.get("in") == "path" and parameter.get("schema", {}).get("type") == "integer":
                    known.setdefault(parameter["name"], INTEGER_IDS)
    lines = []
    for name, values in sorted(known.items()):
        if values:
            lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for name, values in sorted(known.items()):
        if values:
            lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = {KNOWN_PROBABILITY} }}')
    return "\n".join(lines) + "\n"


def admin_url(url: str) -> tuple[str, str]:
    """The maintenance database URL of the same server, and the fuzz database's name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def recreate_database(url: str, *, drop_only: bool = False, reuse: bool = False) -> bool:
    """Drop and create the database (or only drop it); with ``reuse``, keep one that exists. Whether it is new."""
    import psycopg
    from psycopg import sql

    maintenance, name = admin_url(url)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if reuse and conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback, our own server)
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"api fuzz: the server did not answer {url} within {seconds:.0f} s")
        time.sleep(0.3)


def main() -> int:
    started = time.monotonic()
    base = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "EMAIL_URL": "locmem://",
        "DATABASE_CONN_MAX_AGE": "0",
        # A throwaway key for a keyed audit trail, the same for the seeding and the server.
        "AUDIT_KEY": secrets.token_hex(32),
    }
    setup_env = {**base, "DEBUG": "true"}
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    # Production settings: DEBUG off, a real secret, the loopback host; plain HTTP on loopback, so no HTTPS redirect.
    server_env = {
        **base,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": origin,
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
    }

    keep = os.environ.get("FUZZ_KEEP_DB") == "1"
    fresh = recreate_database(DATABASE_URL, reuse=keep)
    say(f"{'fresh' if fresh else 'kept'} database {admin_url(DATABASE_URL)[1]}")
    server: subprocess.Popen[bytes] | None = None
    results: list[tuple[str, int, float]] = []
    # The schema file, the fuzzer's own cache and the (empty) static root live here, not in the checkout.
    work_dir = Path(tempfile.mkdtemp(prefix="trialsite-fuzz-"))
    (work_dir / "static").mkdir()
    server_env["STATIC_ROOT"] = str(work_dir / "static")
    try:
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=setup_env, check=True)
        if fresh:
            # seed_demo runs only with DEBUG on (its logins have known passwords); this database is thrown away.
            subprocess.run(
                [PY, "manage.py", "seed_demo"], cwd=ROOT, env=setup_env, check=True, stdout=subprocess.DEVNULL
            )
        tokens = {username: issue_token(setup_env, username) for username, _ in ROLES}
        say(f"database ready after {time.monotonic() - started:.0f} s; serving on {origin}")

        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "trialsite.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "2",
                "--timeout",
                "60",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=server_env,
        )
        wait_for(f"{origin}/healthz", 60)
        # The schema as the server serves it, fetched once: both runs read the same file.
        schema_file = work_dir / "openapi.yaml"
        with urllib.request.urlopen(f"{origin}/api/schema/", timeout=60) as response:  # noqa: S310 (loopback)
            schema_file.write_bytes(response.read())
        config_file = work_dir / "fuzz.toml"
        config_file.write_text(fuzz_config(setup_env, yaml.safe_load(schema_file.read_text())))

        # The roles run side by side, each in one process with one worker: the generator is not safe to run in
        # threads on every Python this project supports, and two processes use both cores.
        runs = []
        for username, description in ROLES:
            say(f"as {username} ({description}): up to {MAX_EXAMPLES} cases per operation, {MAX_SECONDS} s")
            output = tempfile.TemporaryFile(mode="w+")
            command = [
                str(BIN / "schemathesis"),
                "--config-file",
                str(config_file),
                "run",
                str(schema_file),
                "--url",
                origin,
                "--header",
                auth_header(tokens[username]),
                "--checks",
                CHECKS,
                "--max-examples",
                str(MAX_EXAMPLES),
                "--max-time",
                str(MAX_SECONDS),
                "--workers",
                "1",
                "--no-shrink",
                "--request-timeout",
                "30",
                "--output-truncate",
                "true",
            ]
            if SEED:
                command += ["--seed", SEED]
            process = subprocess.Popen(
                command, cwd=work_dir, env={**base, "NO_COLOR": "1"}, stdout=output, stderr=output
            )
            runs.append((username, process, output, time.monotonic()))
        for username, process, output, role_started in runs:
            code = process.wait()
            results.append((username, code, time.monotonic() - role_started))
            output.seek(0)
            print(f"\n---- as {username} ----", flush=True)
            print(output.read(), flush=True)
            output.close()
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if not keep:
            recreate_database(DATABASE_URL, drop_only=True)
        shutil.rmtree(work_dir, ignore_errors=True)

    say("summary")
    for username, code, seconds in results:
        say(f"  {username:<14} {'passed' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s")
    failed = [username for username, code, _ in results if code != 0]
    say(
        f"{'FAILED' if failed else 'passed'}: {len(results) - len(failed)} of {len(ROLES)} roles conform; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    return 1 if failed or len(results) != len(ROLES) else 0


if __name__ == "__main__":
    sys.exit(main())
