"""Administrations follow the visits (the scheduling hook, audited) and reads never write: opening a link, the link
JSON, a visit's administrations and a stored response change no row and add no audit event, even after a window
closed (the API then says "expired" while the stored row stays as it was)."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest
import time_machine
from django.db import connection
from django.test import Client

from assessments import library, services
from assessments.definitions import INSTRUMENTS_DIR
from assessments.models import Administration, ParticipantLink
from audit.models import AuditEvent
from participants.services import participant_withdraw
from scheduling import hooks
from scheduling.models import Visit
from scheduling.services import visit_cancel, visit_complete, visit_schedule

pytestmark = pytest.mark.django_db

CAPS5 = {f"CAPS5_{i:02d}": 0 for i in range(1, 21)} | {
    "CAPS5_CRIT_A": 1,
    "CAPS5_DUR": 1,
    "CAPS5_DISTRESS": 1,
    "CAPS5_DEPERS": 0,
    "CAPS5_DEREAL": 0,
}
CSSRS_NO_RISK = {"CSSRS_1": 0, "CSSRS_2": 0, "CSSRS_6": 0}


def _table_fingerprints() -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every row of every table. Sessions are left out: opening a link stores the link
    id in the browser's session by design, and that is not trial data."""
    fingerprints = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' AND table_name <> 'django_session'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{table}\" t"  # noqa: S608
            )
            fingerprints[table] = cursor.fetchone()
    return fingerprints


def _events(entity_type: str, **filters) -> list[tuple[str, str, object, object, str]]:
    rows = AuditEvent.objects.filter(entity_type=entity_type, **filters).order_by("id")
    return [(e.action, e.field, e.old_value, e.new_value, e.reason) for e in rows]


def _statuses(visit: Visit) -> dict[str, str]:
    return dict(Administration.objects.filter(visit=visit).values_list("instrument_code", "status"))


def test_enrollment_and_randomization_each_create_their_administrations_with_one_audit_event(participant, baseline):
    with_instruments = Visit.objects.filter(participant=participant).exclude(instruments=[])
    expected = sorted(f"{v.code}:{i['code']}" for v in with_instruments for i in v.instruments)
    stored = Administration.objects.filter(participant=participant).select_related("visit")
    assert sorted(f"{a.visit.code}:{a.instrument_code}" for a in stored) == expected
    assert {a.status for a in stored} == {"due"}
    assert _statuses(baseline) == {"CAPS5": "due", "PCL5": "due", "SCS": "due"}
    # Enrollment created the common visits (screening, baseline) and their administrations; randomization the rest.
    at_enrollment, at_randomization = _events("administrations", participant_id=participant.participant_id)
    for action, field, old, _new, _reason in (at_enrollment, at_randomization):
        assert (action, field, old) == ("create", "administrations", None)
    common = [a for a in expected if a.startswith(("SCREEN:", "BASELINE:"))]
    assert sorted(at_enrollment[3]) == common
    assert sorted(at_enrollment[3] + at_randomization[3]) == expected


def test_the_library_is_the_instrument_catalogue_of_protocols():
    # Pure parsing knows the shipped library (read from files); with the database, every stored instrument too.
    assert hooks.known_instrument_codes() == set(library.shipped_instruments())
    assert hooks.known_instrument_codes(stored=True) == set(library.instrument_codes())
    assert {"PCL5", "CAPS5", "SCS", "CSSRS_SCREEN", "LSAS", "LSAS_SR", "SCS_SF"} <= hooks.known_instrument_codes()


@pytest.mark.parametrize("shipped", ["mapp-v1", "mapp-v2"])
def test_a_site_instrument_can_be_named_by_a_site_protocol(db, tmp_path, shipped):
    from django.core.management import CommandError, call_command

    from scheduling.models import ProtocolVersion
    from scheduling.protocol import SHIPPED_DIR

    instrument = json.loads((INSTRUMENTS_DIR / "PCL5.json").read_text(encoding="utf-8"))
    instrument["code"] = "SITE_PCL"
    (tmp_path / "SITE_PCL.json").write_text(json.dumps(instrument), encoding="utf-8")
    protocol = json.loads((SHIPPED_DIR / f"{shipped}.json").read_text(encoding="utf-8"))
    protocol["code"] = "site-mapp"
    protocol["common_visits"][0]["instruments"].append({"code": "SITE_PCL", "respondent": "self"})
    (tmp_path / "site-mapp.json").write_text(json.dumps(protocol), encoding="utf-8")

    # Before the site's instrument is loaded, the protocol is refused, naming the instrument; nothing is stored.
    with pytest.raises(CommandError, match="unknown instrument 'SITE_PCL'"):
        call_command("load_protocol", str(tmp_path / "site-mapp.json"))
    assert not ProtocolVersion.objects.filter(code="site-mapp").exists()

    call_command("load_instrument", str(tmp_path / "SITE_PCL.json"))
    call_command("load_protocol", str(tmp_path / "site-mapp.json"))
    stored = ProtocolVersion.objects.get(code="site-mapp")
    assert "SITE_PCL" in [i.code for i in next(iter(stored.protocol().arms.values())).visits[0].instruments]


def test_replanned_visit_moves_its_administrations_with_an_audit_event(participant, baseline, alice):
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    tz = zoneinfo.ZoneInfo(participant.time_zone)
    pcl = Administration.objects.get(visit=baseline, instrument_code="PCL5")
    old_opens, old_closes = pcl.opens_at, pcl.closes_at
    # SCREEN happens three days after its target: BASELINE (anchored on SCREEN's actual date) moves three days.
    late = dt.datetime.combine(screen.target_date + dt.timedelta(days=3), dt.time(12), tzinfo=tz)
    with time_machine.travel(late, tick=False):
        visit_complete(visit=screen, occurred_at=late, by=alice)
    pcl.refresh_from_db()
    assert (pcl.opens_at - old_opens, pcl.closes_at - old_closes) == (dt.timedelta(days=3), dt.timedelta(days=3))
    assert pcl.opens_at.astimezone(tz).time() == dt.time(0, 0)
    moved = _events("administrations", action="update")
    assert (
        "update",
        "BASELINE:PCL5.opens_at",
        old_opens.isoformat(),
        pcl.opens_at.isoformat(),
        "the visit changed",
    ) in moved
    assert (
        "update",
        "BASELINE:PCL5.closes_at",
        old_closes.isoformat(),
        pcl.closes_at.isoformat(),
        "the visit changed",
    ) in moved
    assert {field.split(".")[0] for _, field, *_ in moved} == {"BASELINE:CAPS5", "BASELINE:PCL5", "BASELINE:SCS"}


def test_booking_a_slot_leaves_administrations_alone(participant, alice):
    endpoint = Visit.objects.get(participant=participant, code="ENDPOINT")
    before = list(Administration.objects.filter(visit=endpoint).values_list("id", "status", "opens_at", "closes_at"))
    start = dt.datetime.combine(endpoint.target_date, dt.time(10), tzinfo=zoneinfo.ZoneInfo("America/Los_Angeles"))
    visit_schedule(visit=endpoint, start=start, by=alice)
    after = list(Administration.objects.filter(visit=endpoint).values_list("id", "status", "opens_at", "closes_at"))
    assert after == before
    assert _events("administrations", action="update") == []


def test_cancelled_visit_makes_its_administrations_not_applicable_with_audit_events(participant, alice):
    endpoint = Visit.objects.get(participant=participant, code="ENDPOINT")
    visit_cancel(visit=endpoint, reason="participant moved away", by=alice)
    assert _statuses(endpoint) == {"CAPS5": "not_applicable", "PCL5": "not_applicable", "SCS": "not_applicable"}
    assert sorted(_events("administrations", action="update")) == [
        ("update", f"ENDPOINT:{code}.status", "due", "not_applicable", "the visit changed")
        for code in ("CAPS5", "PCL5", "SCS")
    ]
    assert (
        AuditEvent.objects.filter(entity_type="administrations", action="update", actor_username="alice").count() == 3
    )


def test_withdrawal_closes_what_is_due_and_audits_each_administration(participant, baseline, alice, in_window):
    services.link_issue(visit=baseline, by=alice)
    screen = Visit.objects.get(participant=participant, code="SCREEN")
    services.response_create_staff(
        participant=participant, visit=screen, instrument_code="CSSRS_SCREEN", answers=CSSRS_NO_RISK, by=alice
    )
    open_before = set(
        Administration.objects.filter(participant=participant)
        .exclude(status="completed")
        .values_list("visit__code", "instrument_code")
    )
    participant_withdraw(
        participant=participant,
        level="stop_contact",
        reason="moved away",
        date=dt.datetime.now(dt.UTC).date(),
        by=alice,
    )
    assert _statuses(screen) == {"CSSRS_SCREEN": "completed", "CAPS5": "not_applicable"}
    assert set(Administration.objects.filter(participant=participant).values_list("status", flat=True)) == {
        "completed",
        "not_applicable",
    }
    closed = _events("administrations", action="update")
    assert sorted(field for _, field, *_ in closed) == sorted(f"{v}:{i}.status" for v, i in open_before)
    assert {(old, new, reason) for _, _, old, new, reason in closed} == {
        ("due", "not_applicable", "participant withdrawn (stop_contact)")
    }
    assert ParticipantLink.objects.get().revoked_at is not None
    assert _events("participant_link", action="update")[0][:2] == ("update", "revoked_at")


def test_reads_change_no_row_and_write_no_audit_event(participant, baseline, alice, personas, api):
    tz = zoneinfo.ZoneInfo(participant.time_zone)
    noon = dt.datetime.combine(baseline.window_start, dt.time(12), tzinfo=tz)
    with time_machine.travel(noon, tick=True):
        _, token = services.link_issue(visit=baseline, by=alice)
        api().put(f"/api/v1/links/{token}/", {"answers": {"PCL5": {"PCL5_01": 2}}}, format="json")
        response = services.response_create_staff(
            participant=participant, visit=baseline, instrument_code="CAPS5", answers=CAPS5, by=personas["rater"]
        )
    before = _table_fingerprints()
    events = AuditEvent.objects.count()

    with time_machine.travel(noon + dt.timedelta(hours=1), tick=True):
        client = Client()
        assert client.head(f"/l/{token}/").status_code == 302
        assert client.get(f"/l/{token}/").status_code == 302
        assert client.get("/l/").status_code == 302
        assert client.get("/l/q/1/").status_code == 200
        assert client.get("/l/q/2/").status_code == 200
        assert client.get("/l/review/").status_code == 200
        body = api().get(f"/api/v1/links/{token}/").json()
        assert [(a["instrument"], a["status"]) for a in body["administrations"]] == [
            ("PCL5", "in_progress"),
            ("SCS", "due"),
        ]
        staff = api(alice)
        listed = staff.get(f"/api/v1/visits/{baseline.pk}/administrations/").json()
        assert {a["instrument"]: a["status"] for a in listed} == {
            "CAPS5": "completed",
            "PCL5": "in_progress",
            "SCS": "due",
        }
        assert staff.get(f"/api/v1/responses/{response.pk}/").status_code == 200
        assert staff.get("/api/v1/instruments/").status_code == 200
        assert staff.get("/api/v1/safety-alerts/").status_code == 200

    # After the window: the answers show expired questionnaires and refuse the link, and still write nothing.
    pcl = Administration.objects.get(visit=baseline, instrument_code="PCL5")
    with time_machine.travel(pcl.closes_at + dt.timedelta(seconds=1), tick=False):
        listed = api(alice).get(f"/api/v1/visits/{baseline.pk}/administrations/").json()
        assert {a["instrument"]: a["status"] for a in listed} == {
            "CAPS5": "completed",
            "PCL5": "expired",
            "SCS": "expired",
        }
        assert api().get(f"/api/v1/links/{token}/").status_code == 404
        assert Client().get(f"/l/{token}/").status_code == 404
        assert client.get("/l/q/1/").status_code == 404

    assert AuditEvent.objects.count() == events
    after = _table_fingerprints()
    assert {table for table in before if before[table] != after.get(table)} == set()
    assert _statuses(baseline) == {"CAPS5": "completed", "PCL5": "in_progress", "SCS": "due"}
