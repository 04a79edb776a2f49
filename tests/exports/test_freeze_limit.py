"""Data freezes are limited per user per UTC day (issue 13, finding 11: a blinded statistician could create
unlimited freezes): beyond EXPORT_FREEZES_PER_DAY a 429 with a clear message, and nothing created."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from audit.models import AuditEvent
from exports.models import ExportFreeze

pytestmark = pytest.mark.django_db

DAY = dt.datetime(2026, 3, 10, 23, 0, tzinfo=dt.UTC)


def freeze(client, label):
    return client.post("/api/v1/export/freezes/", {"label": label}, format="json")


def test_a_blinded_statistician_cannot_create_unlimited_freezes(statistician, investigator, api, settings):
    settings.EXPORT_FREEZES_PER_DAY = 2
    with time_machine.travel(DAY, tick=True):
        assert [freeze(api(statistician), f"interim {n}").status_code for n in (1, 2)] == [201, 201]
        files = sorted(p.name for p in settings.FREEZE_DIR.iterdir())
        audit_rows = AuditEvent.objects.count()
        r = freeze(api(statistician), "one too many")
        assert r.status_code == 429
        assert r.json() == {
            "detail": "you have created 2 data freezes today, the most a user may create in a day; the next may be "
            "created from 2026-03-11T00:00:00Z",
            "code": "throttled",
        }
        assert ExportFreeze.objects.filter(created_by=statistician).count() == 2
        assert sorted(p.name for p in settings.FREEZE_DIR.iterdir()) == files
        assert AuditEvent.objects.count() == audit_rows
        # The limit is each user's own.
        assert freeze(api(investigator), "the investigator's").status_code == 201
    # A new UTC day, a new allowance.
    with time_machine.travel(DAY + dt.timedelta(hours=1), tick=True):
        r = freeze(api(statistician), "next day")
        assert r.status_code == 201, r.content
    assert list(
        ExportFreeze.objects.filter(created_by=statistician).order_by("id").values_list("label", flat=True)
    ) == [
        "interim 1",
        "interim 2",
        "next day",
    ]
