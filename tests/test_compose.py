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
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} against ``env``."""

    def one(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if operator == ":?":
            raise AssertionError(f"{name} unset: {word}")
        return word or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


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
