"""docker-compose.yml parses and is coherent with the project (there is no container engine here to run it)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent


def load():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_services_with_health_checks():
    compose = load()
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert services[name]["healthcheck"]["test"], name
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "no"


def test_every_service_command_refers_to_something_that_exists():
    services = load()["services"]
    for name in ("web", "worker", "beat", "migrate"):
        command = services[name]["command"]
        assert services[name]["build"] == "." and (ROOT / "Dockerfile").exists()
        if command[0] == "gunicorn":
            module, attribute = command[1].split(":")
            assert (ROOT / (module.replace(".", "/") + ".py")).exists()
            assert "application =" in (ROOT / (module.replace(".", "/") + ".py")).read_text()
            assert attribute == "application"
        elif command[0] == "celery":
            app_module = command[command.index("-A") + 1]
            assert hasattr(importlib.import_module(app_module), "celery_app")
            if "-Q" in command:
                queues = set(command[command.index("-Q") + 1].split(","))
                assert queues == {"safety", "reminders", "default"}
        elif command[:2] == ["python", "manage.py"]:
            from django.core.management import get_commands

            assert command[2] in get_commands()
        else:
            raise AssertionError(f"{name}: unexpected command {command}")
    # The env file it names exists as an example with every variable the settings need in production.
    example = (ROOT / ".env.example").read_text()
    for variable in (
        "SECRET_KEY",
        "AUDIT_KEY",
        "ALLOWED_HOSTS",
        "REDIS_URL",
        "EMAIL_URL",
        "POSTGRES_PASSWORD",
        "POSTGRES_APP_PASSWORD",
    ):
        assert f"\n{variable}=" in "\n" + example
    assert "redis:6379" in example
    # DATABASE_URL comes from docker-compose.yml (one per role), never from the env file, where it would be ambiguous.
    assert "\nDATABASE_URL=" not in "\n" + example


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME:?error} and ${NAME:+replacement} against ``env``, nested in the
    default or the replacement as Compose allows."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if not value.startswith("${", i):
            out.append(value[i])
            i += 1
            continue
        depth, j = 1, i + 2
        while depth:
            if value.startswith("${", j):
                depth, j = depth + 1, j + 2
            else:
                depth += {"{": 0, "}": -1}.get(value[j], 0)
                j += 1
        inner = value[i + 2 : j - 1]
        match = re.fullmatch(r"(\w+)(?:(:-|:\?|:\+)(.*))?", inner, re.DOTALL)
        assert match, inner
        name, operator, word = match.group(1), match.group(2), match.group(3) or ""
        if operator == ":+":
            out.append(interpolate(word, env) if env.get(name) else "")
        elif env.get(name):
            out.append(env[name])
        elif operator == ":?":
            raise AssertionError(f"{name} unset: {word}")
        else:
            out.append(interpolate(word, env))
        i = j
    return "".join(out)


ENV = {"POSTGRES_PASSWORD": "owner-secret", "POSTGRES_APP_PASSWORD": "app-secret"}


def database_user(url: str) -> str:
    parsed = urlsplit(interpolate(url, ENV))
    assert (parsed.scheme, parsed.hostname, parsed.port, parsed.path) == ("postgres", "postgres", 5432, "/trialsite")
    return unquote(parsed.username or "")


def test_migrations_run_as_the_owner_and_the_application_as_a_role_that_owns_nothing():
    """migrate connects as the owner of the tables (POSTGRES_USER); web, worker and beat as the application role,
    which the postgres container creates on its first start with deploy/postgres/app-role.sql."""
    services = load()["services"]
    postgres = services["postgres"]
    owner = postgres["environment"]["POSTGRES_USER"]
    assert database_user(services["migrate"]["environment"]["DATABASE_URL"]) == owner
    app_users = {database_user(services[name]["environment"]["DATABASE_URL"]) for name in ("web", "worker", "beat")}
    assert app_users == {"trialsite_app"} and owner not in app_users
    assert interpolate(postgres["environment"]["POSTGRES_APP_USER"], ENV) == "trialsite_app"
    app_url = urlsplit(interpolate(services["web"]["environment"]["DATABASE_URL"], ENV))
    assert app_url.password == "app-secret"
    assert interpolate(postgres["environment"]["POSTGRES_APP_PASSWORD"], ENV) == "app-secret"
    assert urlsplit(interpolate(services["migrate"]["environment"]["DATABASE_URL"], ENV)).password == "owner-secret"
    mounts = {target.split(":")[1]: target.split(":")[0] for target in postgres["volumes"] if target.startswith("./")}
    init_script = ROOT / mounts["/docker-entrypoint-initdb.d/10-app-role.sh"]
    sql = ROOT / mounts["/trialsite/app-role.sql"]
    assert init_script.exists() and sql.exists() and "/trialsite/app-role.sql" in init_script.read_text()
    assert init_script.stat().st_mode & 0o111, "the init script must be executable"
    assert 'owner="$POSTGRES_USER"' in init_script.read_text() and "POSTGRES_APP_PASSWORD" in init_script.read_text()
    # The audit checkpoints live on a volume of their own, where AUDIT_CHECKPOINT_DIR points by default.
    for name in ("web", "worker", "beat", "migrate"):
        assert "auditcheckpoints:/app/var/audit-checkpoints" in services[name]["volumes"], name
    assert "auditcheckpoints" in load()["volumes"]


def test_dockerfile_installs_the_lock_file():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements.lock" in dockerfile and (ROOT / "requirements.lock").exists()


# The scale profile's switches, as .env.example shows them (commented out there).
SCALE_ENV = {
    **ENV,
    "DATABASE_HOST": "pgbouncer",
    "DATABASE_PORT": "6432",
    "DATABASE_TRANSACTION_POOLING": "true",
    "DATABASE_REPLICA_HOST": "postgres-replica",
    "POSTGRES_REPLICATION_PASSWORD": "replication-secret",
}
APP_SERVICES = ("web", "worker", "beat", "worker-safety", "worker-reminders")


def test_the_scale_profile_adds_pgbouncer_a_replica_and_workers_per_queue():
    services = load()["services"]
    profiled = {name for name, service in services.items() if "scale" in service.get("profiles", [])}
    assert profiled == {"pgbouncer", "postgres-replica", "worker-safety", "worker-reminders"}
    # Without the profile the deployment is what it was: exactly one beat, never in a profile, never scaled by it.
    assert {name for name, service in services.items() if "profiles" not in service} == {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker",
        "beat",
    }
    assert [name for name, service in services.items() if "beat" in service.get("command", [])] == ["beat"]
    for name in profiled:
        assert services[name]["healthcheck"]["test"], name
    # Workers per queue: each consumes one queue the routing actually uses, with the image the others run.
    from trialsite.beat import BEAT_SCHEDULE, TASK_ROUTES

    routed = {route["queue"] for route in TASK_ROUTES.values()} | {
        entry["options"]["queue"] for entry in BEAT_SCHEDULE.values()
    }
    for name, queue in (("worker-safety", "safety"), ("worker-reminders", "reminders")):
        command = services[name]["command"]
        assert command[:4] == ["celery", "-A", "trialsite", "worker"]
        assert command[command.index("-Q") + 1] == queue and queue in routed
        assert services[name]["image"] == services["worker"]["image"] == "trialsite:latest"
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # The replica runs the primary's image, from its own entrypoint and volume.
    replica = services["postgres-replica"]
    assert replica["image"] == services["postgres"]["image"] == "postgres:16"
    mounts = {target.split(":")[1]: target.split(":")[0] for target in replica["volumes"]}
    assert mounts["/var/lib/postgresql/data"] == "pgreplica" and "pgreplica" in load()["volumes"]
    entrypoint = ROOT / mounts[replica["entrypoint"][0]]
    assert entrypoint.stat().st_mode & 0o111 and "pg_basebackup -h postgres" in entrypoint.read_text()
    assert "-U replicator" in entrypoint.read_text() and "hot_standby_feedback=on" in entrypoint.read_text()
    # The primary creates the replicator role the replica streams as, only when a replication password is set.
    primary_mounts = {t.split(":")[1]: t.split(":")[0] for t in services["postgres"]["volumes"] if t.startswith("./")}
    replication = ROOT / primary_mounts["/docker-entrypoint-initdb.d/20-replication.sh"]
    assert replication.stat().st_mode & 0o111
    assert "CREATE ROLE replicator WITH REPLICATION" in replication.read_text()
    assert "host replication replicator" in replication.read_text()
    assert interpolate(services["postgres"]["environment"]["POSTGRES_REPLICATION_PASSWORD"], ENV) == ""
    assert (
        interpolate(replica["environment"]["POSTGRES_REPLICATION_PASSWORD"], SCALE_ENV)
        == interpolate(services["postgres"]["environment"]["POSTGRES_REPLICATION_PASSWORD"], SCALE_ENV)
        == "replication-secret"
    )


def test_pgbouncer_pools_transactions_in_front_of_the_primary():
    import configparser

    services = load()["services"]
    bouncer = services["pgbouncer"]
    assert bouncer["build"] == "./deploy/pgbouncer"
    folder = ROOT / "deploy" / "pgbouncer"
    dockerfile = (folder / "Dockerfile").read_text()
    assert "apt-get install" in dockerfile and "pgbouncer" in dockerfile
    ini = configparser.ConfigParser()
    ini.read(folder / "pgbouncer.ini")
    assert ini["pgbouncer"]["pool_mode"] == "transaction"
    assert ini["pgbouncer"]["listen_port"] == SCALE_ENV["DATABASE_PORT"]
    assert ini["databases"]["trialsite"].split() == ["host=postgres", "port=5432", "dbname=trialsite"]
    # It admits the application role with the application's password, from the environment, never the image.
    entrypoint = (folder / "entrypoint.sh").read_text()
    assert ini["pgbouncer"]["auth_file"] in entrypoint and "POSTGRES_APP_PASSWORD" in entrypoint
    assert (folder / "entrypoint.sh").stat().st_mode & 0o111
    assert interpolate(bouncer["environment"]["POSTGRES_APP_PASSWORD"], ENV) == "app-secret"
    assert interpolate(bouncer["environment"]["POSTGRES_APP_USER"], ENV) == "trialsite_app"


def test_the_application_goes_through_pgbouncer_and_reads_the_replica_only_when_told():
    services = load()["services"]
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        # Default: PostgreSQL itself, no pooling switch, no replica (settings treat an empty URL as unset).
        direct = urlsplit(interpolate(environment["DATABASE_URL"], ENV))
        assert (direct.hostname, direct.port, direct.username) == ("postgres", 5432, "trialsite_app"), name
        assert interpolate(environment["DATABASE_TRANSACTION_POOLING"], ENV) == "false"
        assert interpolate(environment["DATABASE_REPLICA_URL"], ENV) == ""
        # Scale profile: the primary through PgBouncer in transaction mode, the replica directly, as the app role.
        pooled = urlsplit(interpolate(environment["DATABASE_URL"], SCALE_ENV))
        assert (pooled.hostname, pooled.port, pooled.username, pooled.password) == (
            "pgbouncer",
            6432,
            "trialsite_app",
            "app-secret",
        )
        assert interpolate(environment["DATABASE_TRANSACTION_POOLING"], SCALE_ENV) == "true"
        replica = urlsplit(interpolate(environment["DATABASE_REPLICA_URL"], SCALE_ENV))
        assert (replica.scheme, replica.hostname, replica.port, replica.path) == (
            "postgres",
            "postgres-replica",
            5432,
            "/trialsite",
        )
        assert (replica.username, replica.password) == ("trialsite_app", "app-secret")
    # Migrations never go through the pooler or to the replica: the owner, directly on the primary.
    migrate = urlsplit(interpolate(services["migrate"]["environment"]["DATABASE_URL"], SCALE_ENV))
    assert (migrate.hostname, migrate.port, migrate.username) == ("postgres", 5432, "trialsite")
    # The switches the profile needs are shown, commented out, in the example env file.
    example = (ROOT / ".env.example").read_text()
    for variable in SCALE_ENV.keys() - ENV.keys():
        assert f"\n#{variable}=" in "\n" + example, variable
    assert interpolate(services["web"]["ports"][0], {"WEB_PORTS": "8000-8003"}) == "8000-8003:8000"


def test_the_settings_read_the_scale_switches():
    """What compose passes, settings turn into the pooling flag and the replica alias (in a fresh process)."""
    import os
    import subprocess
    import sys

    code = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['DISABLE_SERVER_SIDE_CURSORS'], sorted(s.DATABASES), "
        "s.DATABASES.get('replica', {}).get('HOST'), s.DATABASES.get('replica', {}).get('TEST', {}).get('MIRROR'), s.DATABASE_ROUTERS)"
    )
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "DEBUG": "true"}

    def run(extra: dict[str, str]) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env={**base, "DATABASE_URL": "postgres://app@pgbouncer:6432/trialsite", **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    assert run({"DATABASE_REPLICA_URL": ""}) == "False ['default'] None None ['trialsite.replica.ReplicaRouter']"
    assert run(
        {
            "DATABASE_TRANSACTION_POOLING": "true",
            "DATABASE_REPLICA_URL": "postgres://app@postgres-replica:5432/trialsite",
        }
    ) == ("True ['default', 'replica'] postgres-replica default ['trialsite.replica.ReplicaRouter']")
