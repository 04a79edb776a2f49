"""No lock-order inversion: 8 OS processes doing mixed audited writes on overlapping participants give no deadlock
and no failed write, every write is audited, and the chain verifies afterwards (issue 14).

The writers (tests/support/audit_load.py) are separate processes with their own connections, so the test's data must
be committed: a transactional test. AUDIT_CONCURRENCY_SECONDS sets how long they write (default 60; CI runs the
default, about a minute of one xdist worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from assessments.models import Response
from audit.models import AuditEvent
from participants.models import ConsentRecord, EligibilityAnswer, Participant
from tests.support.audit_load import prepare

ROOT = Path(__file__).resolve().parent.parent.parent
WRITERS = 8
SITES = ("PDX", "NYC", "SFO", "BOS")
SECONDS = float(os.environ.get("AUDIT_CONCURRENCY_SECONDS", "60"))
ORDER = ["screening", "eligible", "consented", "enrolled", "randomized"]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{quote(db['USER'])}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_eight_processes_writing_at_once_never_deadlock_and_every_write_is_audited(capsys):
    prepare(SITES)
    env = os.environ | {"DATABASE_URL": _database_url(), "AUDIT_KEY": str(settings.AUDIT_KEY), "LOG_LEVEL": "ERROR"}
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.audit_load", str(i), str(SECONDS), SITES[i % len(SITES)], "0.5"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    reports = []
    for writer in writers:
        out, err = writer.communicate(timeout=SECONDS + 120)
        assert writer.returncode == 0, err[-2000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))

    failures = [f for report in reports for f in report["failures"]]
    assert failures == [], "no deadlock, no serialization failure, no error"
    done = sum((Counter(report["done"]) for report in reports), Counter())
    assert all(done[kind] > 0 for kind in ("create", "eligibility", "consent", "enroll", "randomize", "response")), done

    # Every write is audited: each participant created has its create event, each status it went through its
    # transition (in order), each response its create event; schedules were generated with their audit rows.
    participants = list(Participant.objects.values_list("participant_id", "status"))
    assert len(participants) == done["create"]
    created = set(
        AuditEvent.objects.filter(entity_type="participant", action="create", field="participant_id").values_list(
            "participant_id", flat=True
        )
    )
    assert created == {pid for pid, _ in participants}
    transitions: dict[str, list[str]] = {}
    for pid, new in (
        AuditEvent.objects.filter(entity_type="participant", action="transition", field="status")
        .order_by("id")
        .values_list("participant_id", "new_value")
    ):
        transitions.setdefault(pid, []).append(new)
    for pid, status in participants:
        assert transitions.get(pid, []) == ORDER[1 : ORDER.index(status) + 1], pid
    into = Counter(status for path in transitions.values() for status in path)
    assert (into["enrolled"], into["randomized"]) == (done["enroll"], done["randomize"])
    # A second eligibility or consent for a participant another writer had just moved is a real write too (the
    # same answers again change nothing; a consent is recorded again): each record has its audit event.
    for model, entity_type in ((EligibilityAnswer, "eligibility_answer"), (ConsentRecord, "consent_record")):
        audited_ids = AuditEvent.objects.filter(entity_type=entity_type, action="create").values_list("entity_id")
        assert {int(e) for (e,) in audited_ids} == set(model.objects.values_list("pk", flat=True)), entity_type
    assert ConsentRecord.objects.count() == done["consent"]
    responses = set(Response.objects.values_list("pk", flat=True))
    assert len(responses) == done["response"]
    audited = AuditEvent.objects.filter(entity_type="response", action="create", field="instrument")
    assert {int(e) for e in audited.values_list("entity_id", flat=True)} == responses
    scheduled = set(
        AuditEvent.objects.filter(entity_type="participant_schedule", field="visits").values_list(
            "participant_id", flat=True
        )
    )
    assert scheduled == {pid for pid, status in participants if status in ("enrolled", "randomized")}

    # The writers chained their own rows after commit: none waits for a place, and the chain verifies.
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()
    total = AuditEvent.objects.count()
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, total + 1))
    call_command("audit_verify")
    assert f"audit chain intact: {total} events verified" in capsys.readouterr().out
    refused = sum((Counter(report["refused"]) for report in reports), Counter())
    print(f"writes {sum(done.values())} {dict(done)}; refused {dict(refused)}; audit rows {total}")
