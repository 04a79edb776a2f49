"""docker-compose.yml parses and is coherent with the project (there is no container engine here to run it)."""

from __future__ import annotations

import importlib
from pathlib import Path

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
    for variable in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "EMAIL_URL", "POSTGRES_PASSWORD"):
        assert f"\n{variable}=" in "\n" + example
    assert "redis:6379" in example and "postgres:5432" in example


def test_dockerfile_installs_the_lock_file():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements.lock" in dockerfile and (ROOT / "requirements.lock").exists()
