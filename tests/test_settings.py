"""Settings come from the environment and fail loudly; the production environment passes check --deploy."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def production_env(tmp_path) -> dict[str, str]:
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(secrets.token_urlsafe(64) + "\n")
    audit_key_file = tmp_path / "audit_key"
    audit_key_file.write_text(secrets.token_hex(32) + "\n")
    return {
        "DEBUG": "false",
        "SECRET_KEY_FILE": str(secret_file),
        "AUDIT_KEY_FILE": str(audit_key_file),
        "ALLOWED_HOSTS": "trialsite.example.org",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.org:587",
        "TRIALSITE_VAR_DIR": str(tmp_path),
    }


def test_debug_maybe_stops_start_up_naming_debug():
    result = manage("check", env={"DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr
    assert "accepted values" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SESSION_INACTIVITY_SECONDS", "soon", "SESSION_INACTIVITY_SECONDS='soon' is not an integer"),
        ("DEFAULT_SITE_TIME_ZONE", "Mars/Base", "is not an IANA time zone"),
        ("EMAIL_URL", "pigeon://coop", "EMAIL_URL scheme 'pigeon' is not accepted"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' is not accepted"),
    ],
)
def test_bad_values_name_the_variable(variable, value, message):
    result = manage("check", env={"DEBUG": "true", variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_secret_key_is_required_without_debug():
    result = manage("check", env={"DEBUG": "false", "ALLOWED_HOSTS": "x.example.org"})
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "AUDIT_KEY is required when DEBUG is off (or set AUDIT_KEY_FILE)"),
        ("short", "AUDIT_KEY must be at least 32 characters"),
    ],
)
def test_the_audit_key_is_required_without_debug(tmp_path, value, message):
    env = production_env(tmp_path)
    del env["AUDIT_KEY_FILE"]
    if value:
        env["AUDIT_KEY"] = value
    result = manage("check", env=env)
    assert result.returncode != 0
    assert message in result.stderr


def test_with_debug_the_audit_key_is_derived_and_the_checkpoints_stay_under_var(tmp_path):
    """`make run` needs no audit key: one is derived from the development SECRET_KEY."""
    code = (
        "from django.conf import settings as s; from audit.keys import audit_key; "
        "print(len(audit_key()) >= 32, audit_key() != s.SECRET_KEY.encode(), s.AUDIT_CHECKPOINT_DIR)"
    )
    result = manage("shell", "-c", code, env={"DEBUG": "true", "TRIALSITE_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["True", "True", str(tmp_path / "audit-checkpoints")]


def test_unreadable_secret_file_names_the_variable(tmp_path):
    result = manage("check", env={"DEBUG": "false", "SECRET_KEY_FILE": str(tmp_path / "missing")})
    assert result.returncode != 0
    assert "SECRET_KEY_FILE: cannot read" in result.stderr


def test_check_deploy_is_clean_under_the_production_environment(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_are_hardened(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_AGE, s.SESSION_ABSOLUTE_SECONDS, s.TIME_ZONE, "
        "s.EMAIL_USE_TLS, s.EMAIL_HOST_PASSWORD, len(s.SECRET_KEY) > 50, "
        "'csp.middleware.CSPMiddleware' in s.MIDDLEWARE)"
    )
    result = manage("shell", "-c", code, env=production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "False",
        "True",
        "True",
        "31536000",
        "True",
        "1800",
        "43200",
        "UTC",
        "True",
        "secret",
        "True",
        "True",
    ]


def test_the_embedded_demo_writes_mail_as_files_under_var(tmp_path):
    code = "from django.conf import settings as s; print(s.EMAIL_BACKEND, s.EMAIL_FILE_PATH)"
    result = manage("shell", "-c", code, env={"DEBUG": "true", "TRIALSITE_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "django.core.mail.backends.filebased.EmailBackend",
        str(tmp_path / "mail"),
    ]
    result = manage("check", env={"DEBUG": "true", "TRIALSITE_VAR_DIR": str(tmp_path), "EMAIL_URL": "file://mail"})
    assert result.returncode != 0
    assert "a file:// URL needs an absolute folder" in result.stderr
