"""The application's database role (deploy/postgres/app-role.sql, the SQL docker-compose and docs/operations.md use)
owns no table: it writes audit rows but cannot switch the audit table's triggers off, rewrite, delete or truncate."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from psycopg import errors, sql

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "deploy" / "postgres" / "app-role.sql"

pytestmark = pytest.mark.django_db

INSERT = """
INSERT INTO audit_auditevent (occurred_at, actor_username, action, entity_type, entity_id, participant_id, site_code,
    field, old_value, new_value, reason, sensitivity, mac)
VALUES (now(), 'app', 'action', 'probe', '', '', '', '', NULL, NULL, '', '', %s) RETURNING id
"""
# What the sequencer does: give a row its place once (audit/sequencer.py).
CHAIN = (
    "UPDATE audit_auditevent SET seq = {seq}, prev_hash = repeat('0', 64), hash = md5(random()::text) WHERE id = {id}"
)


def statements(variables: dict[str, str], conn: psycopg.Connection) -> list[str]:
    """The psql script with its variables filled in as psql does (:"name" an identifier, :'name' a literal)."""
    text = "\n".join(line for line in SCRIPT.read_text().splitlines() if not line.lstrip().startswith("--"))
    for name, value in variables.items():
        text = text.replace(f':"{name}"', sql.Identifier(value).as_string(conn))
        text = text.replace(f":'{name}'", sql.Literal(value).as_string(conn))
    assert not re.search(r":[\"']\w+[\"']", text), "every psql variable of the script is filled in"
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def connect(user: str) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1", port=5432, user=user, dbname=connection.settings_dict["NAME"], autocommit=user == "postgres"
    )


def drop_role(admin: psycopg.Connection, role: str) -> None:
    if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def app_role() -> Iterator[str]:
    """The role made by the deployment's own script in this test database, the tables' owner (the test database's
    superuser) standing in for the migration role. Roles are cluster-wide: the name carries the database's."""
    role = f"{connection.settings_dict['NAME']}_app"
    with connect("postgres") as admin:
        drop_role(admin, role)
        for statement in statements({"app": role, "app_password": secrets.token_hex(16), "owner": "postgres"}, admin):
            admin.execute(statement)
        yield role
        admin.execute("DROP TABLE IF EXISTS audit_role_probe")
        drop_role(admin, role)


def refused(app: psycopg.Connection, statement: str, params=None) -> str:
    """Run ``statement`` after inserting a fresh audit row in the same transaction; the error text; rolled back."""
    try:
        row_id = app.execute(INSERT, [secrets.token_hex(32)]).fetchone()[0]
        app.execute(statement.format(id=row_id, seq=-row_id), params)
    except errors.InsufficientPrivilege as exc:
        return str(exc)
    finally:
        app.rollback()
    raise AssertionError(f"not refused: {statement}")


def test_the_application_role_cannot_switch_the_audit_triggers_off_nor_rewrite_rows(app_role):
    with connect("postgres") as admin:
        before = admin.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0]
        owner = admin.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_auditevent'").fetchone()[0]
    assert owner != app_role
    with connect(app_role) as app:
        # It writes audit rows.
        row_id = app.execute(INSERT, [secrets.token_hex(32)]).fetchone()[0]
        assert app.execute("SELECT actor_username FROM audit_auditevent WHERE id = %s", [row_id]).fetchone() == ("app",)
        # It gives a row its place in the chain once, as the sequencer does; never twice, never with its content.
        app.execute(CHAIN.format(seq=-row_id, id=row_id))
        assert app.execute("SELECT seq FROM audit_auditevent WHERE id = %s", [row_id]).fetchone() == (-row_id,)
        app.rollback()
        assert "append-only: UPDATE refused" in refused(app, CHAIN + "; " + CHAIN.replace("{seq}", "{seq} - 1"))
        assert "append-only: UPDATE refused" in refused(
            app, CHAIN.replace(", hash = ", ", reason = 'rewritten', hash = ")
        )
        # It cannot disable the triggers, drop them, or bypass them.
        for statement in (
            "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_truncate",
            "DROP TRIGGER audit_event_append_only ON audit_auditevent",
        ):
            assert re.search(r"must be owner of (table|relation) audit_auditevent", refused(app, statement))
        assert "permission denied to set parameter" in refused(app, "SET session_replication_role = replica")
        # Nor change, delete or truncate audit rows.
        assert "append-only: UPDATE refused" in refused(
            app, "UPDATE audit_auditevent SET reason = 'rewritten' WHERE id = {id}"
        )
        assert "append-only: DELETE refused" in refused(app, "DELETE FROM audit_auditevent WHERE id = {id}")
        assert "permission denied for table audit_auditevent" in refused(app, "TRUNCATE audit_auditevent")
        # It still reads and writes the other tables, including ones a later migration creates (default privileges).
        assert app.execute("SELECT count(*) FROM participants_participant").fetchone()[0] >= 0
        app.rollback()
    with connect("postgres") as admin:
        admin.execute("CREATE TABLE audit_role_probe (id integer)")
        assert admin.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == before
    with connect(app_role) as app:
        app.execute("INSERT INTO audit_role_probe VALUES (1)")
        app.commit()
    with connect("postgres") as admin:
        assert admin.execute("SELECT id FROM audit_role_probe").fetchall() == [(1,)]
