"""Reads never write: looking up a protocol version stores nothing; storing a shipped protocol on first use is an
audited write done by the writers that need it (visit generation)."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import AuditEvent
from scheduling import selectors
from scheduling.models import ProtocolVersion, Visit
from scheduling.services import protocol_version_ensure

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh():
    """A database where no protocol version is stored yet (the migration stores the shipped ones)."""
    ProtocolVersion.objects.all().delete()


def test_the_latest_version_lookup_is_a_pure_read(fresh):
    assert selectors.protocol_version_latest("mapp-v1") is None
    assert not ProtocolVersion.objects.exists()
    assert not AuditEvent.objects.exists()


def test_ensure_stores_a_shipped_protocol_once_with_an_audit_row(fresh, alice):
    with transaction.atomic():
        row = protocol_version_ensure(code="mapp-v1", by=alice)
        again = protocol_version_ensure(code="mapp-v1", by=alice)

    assert row is not None and again == row
    assert (row.code, row.version, row.source, row.loaded_by) == ("mapp-v1", 1, "mapp-v1.json", alice)
    events = AuditEvent.objects.filter(entity_type="protocol_version", entity_id=str(row.pk))
    assert [(e.action, e.field, e.new_value, e.reason) for e in events.order_by("id")] == [
        ("create", "code", "mapp-v1", "shipped protocol stored on first use"),
        ("create", "version", 1, "shipped protocol stored on first use"),
        ("create", "source", "mapp-v1.json", "shipped protocol stored on first use"),
    ]
    assert selectors.protocol_version_latest("mapp-v1") == row


def test_ensure_of_an_unknown_code_stores_nothing(fresh):
    with transaction.atomic():
        assert protocol_version_ensure(code="no-such-protocol", by=None) is None
    assert not ProtocolVersion.objects.exists() and not AuditEvent.objects.exists()


def test_generation_on_a_fresh_database_stores_the_version_it_uses(fresh, make_participant):
    participant = make_participant(to="randomized")

    row = ProtocolVersion.objects.get(code="mapp-v1")
    assert set(Visit.objects.filter(participant=participant).values_list("protocol_version", flat=True)) == {row.pk}
    assert AuditEvent.objects.filter(entity_type="protocol_version", entity_id=str(row.pk), field="code").exists()
