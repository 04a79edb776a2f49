"""The read-replica router (trialsite/replica.py): the statistician's reads go to the replica alias when one is
configured, writes and anything inside a transaction stay on the primary, and with no replica nothing changes.

The replica alias here is a second connection to the test database itself (what ``TEST: {"MIRROR": "default"}``
gives when DATABASE_REPLICA_URL is set), so a read that went there sees the rows and is counted on that connection.
The tests are transactional: rows must be committed to be seen from the second connection.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.conf import settings
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from participants import services
from participants.models import Participant
from trialsite.replica import REPLICA, read_alias, statistician_reads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def replica():
    """A ``replica`` alias reading the test database, as settings.py builds it from DATABASE_REPLICA_URL."""
    assert REPLICA not in settings.DATABASES
    alias_settings = {**connections["default"].settings_dict, "TEST": {"MIRROR": "default"}}
    # settings.DATABASES is the dict the connection handler reads its aliases from.
    assert connections.settings is settings.DATABASES
    connections.settings[REPLICA] = alias_settings
    # Connected here: the test case lists only "default" among its databases (the alias did not exist when it was set
    # up), and Django refuses to open a connection to any other alias lazily.
    connections[REPLICA].connect()
    try:
        yield connections[REPLICA]
    finally:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]


def captured(alias: str) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[alias])


def test_without_a_replica_every_read_goes_to_the_primary(make_participant):
    participant = make_participant()
    with statistician_reads(), captured("default") as primary:
        assert read_alias() == "default"
        assert Participant.objects.get(pk=participant.pk).participant_id == participant.participant_id
    assert len(primary.captured_queries) == 1
    assert "replica" not in connections


def test_the_statistician_reads_go_to_the_replica(replica, make_participant):
    participant = make_participant()
    with captured("default") as primary, captured(REPLICA) as on_replica:
        with statistician_reads():
            assert read_alias() == REPLICA
            found = Participant.objects.get(pk=participant.pk)
        # Outside the block the same read is the primary's again.
        again = Participant.objects.get(pk=participant.pk)
    assert found.participant_id == again.participant_id == participant.participant_id
    assert found._state.db == REPLICA and again._state.db == "default"
    assert len(on_replica.captured_queries) == 1
    assert "participants_participant" in on_replica.captured_queries[0]["sql"]
    assert len(primary.captured_queries) == 1


def test_writes_and_the_reads_inside_their_transaction_stay_on_the_primary(replica, alice, study, pdx):
    assert router.db_for_write(Participant) == "default"
    with statistician_reads(), captured("default") as primary, captured(REPLICA) as on_replica:
        # A service opens its own transaction on the primary: its reads (locks, the audit chain) and writes go there.
        participant = services.participant_create(
            study=study, site=pdx, by=alice, contact={"full_name": "Ada Read", "email": "ada@example.org"}
        )
    assert on_replica.captured_queries == []
    assert any(q["sql"].startswith('INSERT INTO "participants_participant"') for q in primary.captured_queries)
    assert Participant.objects.filter(pk=participant.pk).exists()
    assert AuditEvent.objects.filter(entity_type="participant", entity_id=str(participant.pk)).exists()


def test_a_read_inside_an_atomic_block_stays_on_the_primary(replica, make_participant):
    participant = make_participant()
    with statistician_reads(), captured("default") as primary, captured(REPLICA) as on_replica:
        with transaction.atomic():
            assert read_alias() == "default"
            inside = Participant.objects.get(pk=participant.pk)
        outside = Participant.objects.get(pk=participant.pk)
    assert inside._state.db == "default" and outside._state.db == REPLICA
    assert [q["sql"] for q in on_replica.captured_queries if "participants_participant" in q["sql"]] != []
    assert len(on_replica.captured_queries) == 1
    assert sum("participants_participant" in q["sql"] for q in primary.captured_queries) == 1


def test_migrations_are_allowed_only_on_the_primary(replica):
    assert router.allow_migrate("default", "participants") is True
    assert router.allow_migrate(REPLICA, "participants") is False


def test_an_export_streams_from_the_replica_and_audits_on_the_primary(replica, make_participant, personas, api):
    participant = make_participant("randomized")
    statistician = personas["statistician"]
    with captured("default") as primary, captured(REPLICA) as on_replica:
        response = api(statistician).get("/api/v1/export/visits.csv")
        body = b"".join(response.streaming_content).decode("utf-8")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows and {row["participant_id"] for row in rows} == {participant.participant_id}
    # The rows came from the replica: the one COPY of the dataset's SELECT.
    copies = [q["sql"] for q in on_replica.captured_queries if q["sql"].startswith("COPY (")]
    assert len(copies) == 1 and "scheduling_visit" in copies[0]
    assert not any(q["sql"].startswith("COPY (") for q in primary.captured_queries)
    # The audit row, written when the stream ended, is on the primary, with the row count.
    assert not any("INSERT" in q["sql"] for q in on_replica.captured_queries)
    export = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT, entity_id="visits")
    assert export.actor_id == statistician.pk


def test_effect_sizes_read_the_scores_from_the_replica(replica, make_participant, personas, api):
    make_participant("randomized")
    with captured("default") as primary, captured(REPLICA) as on_replica:
        response = api(personas["statistician"]).get("/api/v1/analysis/effect-sizes/")
    assert response.status_code == 200
    assert response.json()["results"] is not None
    assert any("assessments_" in q["sql"] for q in on_replica.captured_queries)
    assert not any("assessments_" in q["sql"] for q in primary.captured_queries)
    # The caller's scope was read from the primary: a role revoked a moment ago is already gone there.
    assert any(
        "participants_staffrole" in q["sql"] or "participants_site" in q["sql"] for q in primary.captured_queries
    )
