"""The hooks other apps plug into scheduling: visits changed (with the right visits, inside the write's transaction)
and instrument catalogues for protocol validation."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection, transaction

from participants import services as participant_services
from scheduling import hooks
from scheduling.models import Visit
from scheduling.protocol import ProtocolError, load_shipped_protocols, parse_protocol
from scheduling.services import (
    room_create,
    visit_add_unscheduled,
    visit_cancel,
    visit_complete,
    visit_miss,
    visit_schedule,
)
from tests.factories import staff
from tests.scheduling.test_protocol_validation import protocol
from trialsite.roles import Role

RANDOMIZED = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 4, 10, 18, 0, tzinfo=dt.UTC)


class Recorder:
    """A visits-changed hook that keeps what it was called with, and whether a transaction was open."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, *, participant, visits, by) -> None:
        self.calls.append(
            {
                "participant": participant.participant_id,
                "visits": sorted(v.code for v in visits),
                "ids": {v.pk for v in visits},
                "statuses": {v.code: v.status for v in visits},
                "by": by,
                "in_transaction": connection.in_atomic_block,
            }
        )

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def recorder():
    fn = Recorder()
    hooks.on_visits_changed(fn)
    hooks.on_visits_changed(fn)  # registering twice has no effect
    yield fn
    hooks.unregister(fn)


@pytest.fixture
def participant(make_participant):
    with time_machine.travel(RANDOMIZED, tick=False):
        return make_participant(to="randomized")


def visit(participant, code) -> Visit:
    return Visit.objects.get(participant=participant, code=code)


def test_generation_reports_every_created_visit(make_participant, alice, recorder):
    with time_machine.travel(RANDOMIZED, tick=False):
        participant = make_participant(to="randomized")

    # Enrollment creates the common (arm-neutral) visits; randomization adds the arm's own. Each write reports what
    # it created, and together they report every visit once.
    at_enrollment, at_randomization = recorder.calls
    created = Visit.objects.filter(participant=participant)
    assert at_enrollment["visits"] == ["BASELINE", "SCREEN"]
    assert len(at_randomization["visits"]) > 10 and not set(at_randomization["visits"]) & {"BASELINE", "SCREEN"}
    assert sorted(at_enrollment["visits"] + at_randomization["visits"]) == sorted(
        created.values_list("code", flat=True)
    )
    assert at_enrollment["ids"] | at_randomization["ids"] == set(created.values_list("id", flat=True))
    for call in (at_enrollment, at_randomization):
        assert call["participant"] == participant.participant_id
        assert call["by"] == alice and call["in_transaction"]


def test_schedule_and_reschedule_report_the_visit(participant, alice, recorder):
    prep1 = visit(participant, "PREP1")
    first = dt.datetime(2026, 3, 9, 17, 0, tzinfo=dt.UTC)
    with time_machine.travel(RANDOMIZED, tick=False), transaction.atomic():
        visit_schedule(visit=prep1, start=first, by=alice)
        visit_schedule(visit=prep1, start=first + dt.timedelta(days=1), by=alice, reason="participant asked")
        # The same slot again changes no date or status: nothing to report.
        visit_schedule(visit=prep1, start=first + dt.timedelta(days=1), by=alice)

    assert [c["visits"] for c in recorder.calls] == [["PREP1"], ["PREP1"]]
    assert [c["statuses"] for c in recorder.calls] == [{"PREP1": "scheduled"}] * 2
    assert all(c["in_transaction"] and c["by"] == alice for c in recorder.calls)


def test_late_dosing_visit_reports_itself_and_every_replanned_visit(participant, alice, pdx, recorder):
    carol, dave = staff("carol", Role.THERAPIST, pdx), staff("dave", Role.THERAPIST, pdx)
    room = room_create(site=pdx, name="Dosing 1", by=None)
    dose1 = visit(participant, "DOSE1")
    with time_machine.travel(LATER, tick=False), transaction.atomic():
        visit_schedule(
            visit=dose1,
            start=dt.datetime(2026, 4, 8, 16, 0, tzinfo=dt.UTC),
            room=room,
            staff=[carol.username, dave.username],
            by=alice,
        )
        before = dict(Visit.objects.filter(participant=participant).values_list("code", "target_date"))
        recorder.clear()
        visit_complete(visit=dose1, occurred_at=dt.datetime(2026, 4, 8, 16, 0, tzinfo=dt.UTC), by=alice)

    after = dict(Visit.objects.filter(participant=participant).values_list("code", "target_date"))
    moved = sorted(code for code in after if after[code] != before[code])
    assert {"INT1A", "INT1B", "DOSE2", "INT2C"} <= set(moved) and "ENDPOINT" not in moved
    [call] = recorder.calls
    assert call["visits"] == sorted(["DOSE1", *moved])
    assert call["statuses"]["DOSE1"] == "completed" and call["in_transaction"]


def test_complete_miss_and_cancel_report_the_visit(participant, alice, recorder):
    with time_machine.travel(dt.datetime(2026, 3, 11, 18, 0, tzinfo=dt.UTC), tick=False), transaction.atomic():
        visit_complete(
            visit=visit(participant, "PREP1"), occurred_at=dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC), by=alice
        )
        visit_miss(visit=visit(participant, "PREP2"), reason="ill", by=alice)
        visit_cancel(visit=visit(participant, "PREP3"), reason="not needed", by=alice)

    completed, missed, cancelled = recorder.calls
    # Completing PREP1 a day early also re-plans what hangs on it (the re-plan test covers those).
    assert completed["statuses"]["PREP1"] == "completed"
    assert set(completed["statuses"].values()) == {"completed", "planned"}
    assert missed["statuses"] == {"PREP2": "missed"}
    assert cancelled["statuses"] == {"PREP3": "cancelled"}


def test_unscheduled_visit_is_reported(participant, alice, recorder):
    with transaction.atomic():
        created = visit_add_unscheduled(participant=participant, kind="assessment", by=alice)

    assert [(c["visits"], c["ids"]) for c in recorder.calls] == [(["UNS1"], {created.pk})]


def test_withdrawal_reports_every_cancelled_visit(participant, alice, recorder):
    open_before = set(Visit.objects.filter(participant=participant, status="planned").values_list("id", flat=True))
    with transaction.atomic():
        participant_services.participant_withdraw(
            participant=participant, level="stop_follow_up", reason="moved away", date=dt.date(2026, 3, 11), by=alice
        )

    [call] = recorder.calls
    assert call["ids"] == open_before
    assert set(call["statuses"].values()) == {"cancelled"} and call["in_transaction"]


def test_stop_contact_changes_no_visit_and_reports_nothing(participant, alice, recorder):
    with transaction.atomic():
        participant_services.participant_withdraw(
            participant=participant, level="stop_contact", reason="no calls", date=dt.date(2026, 3, 11), by=alice
        )
    assert recorder.calls == []


def test_a_failing_hook_rolls_the_write_back(participant, alice):
    def refuse(*, participant, visits, by):
        raise RuntimeError("derived rows could not be written")

    hooks.on_visits_changed(refuse)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            visit_cancel(visit=visit(participant, "PREP1"), reason="not needed", by=alice)
    finally:
        hooks.unregister(refuse)
    assert visit(participant, "PREP1").status == "planned"


# --- instrument catalogues -----------------------------------------------------------------------------------------


def _with_instrument(code: str) -> dict:
    data = protocol()
    data["arms"]["immediate"]["visits"][0]["instruments"] = [{"code": code, "respondent": "self"}]  # PREP1
    return data


@pytest.fixture
def no_catalogues(monkeypatch):
    """As in a pure unit test: nothing registered."""
    monkeypatch.setattr(hooks, "_catalogues", [])


def test_without_a_catalogue_the_shipped_library_codes_are_known(no_catalogues):
    assert {"PCL5", "CAPS5", "CSSRS_SCREEN"} <= hooks.known_instrument_codes()
    assert load_shipped_protocols()  # the shipped protocols name only shipped instruments
    with pytest.raises(ProtocolError, match="unknown instrument 'BDI2'"):
        parse_protocol(_with_instrument("BDI2"))


def test_validation_uses_the_union_of_registered_catalogues(no_catalogues):
    def site_library() -> set[str]:
        return {"BDI2"}

    def other_library() -> set[str]:
        return {"PHQ9"}

    hooks.register_instrument_catalogue(site_library)
    hooks.register_instrument_catalogue(other_library)
    hooks.register_instrument_catalogue(site_library)  # registering twice has no effect

    assert hooks.known_instrument_codes() == {"BDI2", "PHQ9"}
    assert parse_protocol(_with_instrument("BDI2")).arms["immediate"].visit("PREP1").instruments[0].code == "BDI2"
    assert parse_protocol(_with_instrument("PHQ9")).arms["immediate"].visit("PREP1").instruments[0].code == "PHQ9"
    # Once a catalogue is registered the shipped list is no fallback: PCL5 is unknown to these two libraries.
    with pytest.raises(ProtocolError, match="unknown instrument 'PCL5'"):
        parse_protocol(_with_instrument("PCL5"))
    # An explicit list still wins over the catalogues.
    assert parse_protocol(_with_instrument("PCL5"), known_instruments={"PCL5"})

    hooks.unregister(other_library)
    assert hooks.known_instrument_codes() == {"BDI2"}
