"""The shipped protocols, checked against a golden table written out by hand.

The dates below are literal on purpose: computing them with the engine would only test the engine against itself.
Participant: enrolled (consented) 2026-02-02, randomized 2026-03-02, nothing has happened yet.
"""

from datetime import date

import pytest

from scheduling.engine import plan_visits, replan
from scheduling.hooks import known_instrument_codes
from scheduling.protocol import (
    check_shipped_protocols,
    load_shipped_protocols,
    shipped_protocol_paths,
)

DAY0 = {"enrollment": date(2026, 2, 2), "randomization": date(2026, 3, 2)}

# (code, target, window_start, window_end)
SAMATI_IMMEDIATE = [
    ("SCREEN", "2026-02-02", "2026-02-02", "2026-03-02"),
    ("BASELINE", "2026-02-16", "2026-02-09", "2026-03-02"),
    ("PREP1", "2026-03-09", "2026-03-02", "2026-03-16"),
    ("PREP2", "2026-03-16", "2026-03-13", "2026-03-23"),
    ("PREP3", "2026-03-23", "2026-03-20", "2026-03-30"),
    ("DOSE1", "2026-03-30", "2026-03-27", "2026-04-06"),
    ("INT1A", "2026-03-31", "2026-03-31", "2026-03-31"),
    ("INT1B", "2026-04-06", "2026-04-04", "2026-04-08"),
    ("INT1C", "2026-04-20", "2026-04-17", "2026-04-23"),
    ("DOSE2", "2026-04-27", "2026-04-20", "2026-05-04"),
    ("INT2A", "2026-04-28", "2026-04-28", "2026-04-28"),
    ("INT2B", "2026-05-04", "2026-05-02", "2026-05-06"),
    ("INT2C", "2026-05-18", "2026-05-15", "2026-05-21"),
    ("POST", "2026-06-22", "2026-06-15", "2026-07-06"),
    ("FU6M", "2026-12-21", "2026-12-07", "2027-01-04"),
]
SAMATI_DELAYED = [
    ("SCREEN", "2026-02-02", "2026-02-02", "2026-03-02"),
    ("BASELINE", "2026-02-16", "2026-02-09", "2026-03-02"),
    ("WAIT_END", "2026-06-22", "2026-06-15", "2026-06-29"),
    ("PREP1", "2026-06-29", "2026-06-22", "2026-07-06"),
    ("PREP2", "2026-07-06", "2026-07-03", "2026-07-13"),
    ("PREP3", "2026-07-13", "2026-07-10", "2026-07-20"),
    ("DOSE1", "2026-07-20", "2026-07-17", "2026-07-27"),
    ("INT1A", "2026-07-21", "2026-07-21", "2026-07-21"),
    ("INT1B", "2026-07-27", "2026-07-25", "2026-07-29"),
    ("INT1C", "2026-08-10", "2026-08-07", "2026-08-13"),
    ("DOSE2", "2026-08-17", "2026-08-10", "2026-08-24"),
    ("INT2A", "2026-08-18", "2026-08-18", "2026-08-18"),
    ("INT2B", "2026-08-24", "2026-08-22", "2026-08-26"),
    ("INT2C", "2026-09-07", "2026-09-04", "2026-09-10"),
    ("POST", "2026-10-12", "2026-10-05", "2026-10-26"),
    ("FU6M", "2027-04-12", "2027-03-29", "2027-04-26"),
]
MAPP = [
    ("SCREEN", "2026-02-02", "2026-02-02", "2026-03-02"),
    ("BASELINE", "2026-02-16", "2026-02-09", "2026-03-02"),
    ("PREP1", "2026-03-09", "2026-03-02", "2026-03-16"),
    ("PREP2", "2026-03-16", "2026-03-13", "2026-03-23"),
    ("PREP3", "2026-03-23", "2026-03-20", "2026-03-30"),
    ("DOSE1", "2026-03-30", "2026-03-27", "2026-04-06"),
    ("INT1A", "2026-03-31", "2026-03-31", "2026-03-31"),
    ("INT1B", "2026-04-06", "2026-04-04", "2026-04-08"),
    ("INT1C", "2026-04-20", "2026-04-17", "2026-04-23"),
    ("DOSE2", "2026-04-27", "2026-04-20", "2026-05-04"),
    ("INT2A", "2026-04-28", "2026-04-28", "2026-04-28"),
    ("INT2B", "2026-05-04", "2026-05-02", "2026-05-06"),
    ("INT2C", "2026-05-18", "2026-05-15", "2026-05-21"),
    ("DOSE3", "2026-05-25", "2026-05-18", "2026-06-01"),
    ("INT3A", "2026-05-26", "2026-05-26", "2026-05-26"),
    ("INT3B", "2026-06-01", "2026-05-30", "2026-06-03"),
    ("INT3C", "2026-06-15", "2026-06-12", "2026-06-18"),
    ("ENDPOINT", "2026-07-06", "2026-06-29", "2026-07-20"),
    ("FU", "2027-01-04", "2026-12-21", "2027-02-01"),
]

GOLDEN = {
    ("samati-v1", "immediate"): SAMATI_IMMEDIATE,
    ("samati-v1", "delayed"): SAMATI_DELAYED,
    ("mapp-v1", "mdma"): MAPP,
    ("mapp-v1", "placebo"): MAPP,
}


@pytest.fixture(scope="module")
def protocols():
    return load_shipped_protocols()


def test_shipped_protocols_pass_the_startup_check():
    assert check_shipped_protocols() == []
    assert {p.name for p in shipped_protocol_paths()} == {"samati-v1.json", "mapp-v1.json"}


def test_shipped_protocols_are_marked_illustrative(protocols):
    assert set(protocols) == {"samati-v1", "mapp-v1"}
    for p in protocols.values():
        assert p.illustrative is True
        assert "illustrative" in p.note.lower()
        assert p.day0 == "randomization"
        assert p.version == 1


@pytest.mark.parametrize(("protocol_code", "arm_code"), sorted(GOLDEN))
def test_golden_schedule(protocols, protocol_code, arm_code):
    arm = protocols[protocol_code].arms[arm_code]
    plan = plan_visits(arm, DAY0)
    got = [(c, p.target.isoformat(), p.window_start.isoformat(), p.window_end.isoformat()) for c, p in plan.items()]
    assert got == GOLDEN[(protocol_code, arm_code)]


def test_late_first_dosing_moves_its_chain_only(protocols):
    arm = protocols["samati-v1"].arms["immediate"]
    current = plan_visits(arm, DAY0)
    actual = {
        "SCREEN": date(2026, 2, 3),
        "BASELINE": date(2026, 2, 17),
        "PREP1": date(2026, 3, 9),
        "PREP2": date(2026, 3, 16),
        "PREP3": date(2026, 3, 23),
        "DOSE1": date(2026, 4, 2),  # three days after its target of 2026-03-30
    }
    new = replan(arm, DAY0, actual, current, completed=set(actual))
    assert new["DOSE1"] == current["DOSE1"]  # a completed visit keeps its plan
    assert (new["INT1A"].target, new["INT1A"].window_start, new["INT1A"].window_end) == (
        date(2026, 4, 3),
        date(2026, 4, 3),
        date(2026, 4, 3),
    )
    assert new["INT1B"].target == date(2026, 4, 9)
    assert new["INT1C"].target == date(2026, 4, 23)
    assert (new["DOSE2"].target, new["DOSE2"].window_start, new["DOSE2"].window_end) == (
        date(2026, 4, 30),
        date(2026, 4, 23),
        date(2026, 5, 7),
    )
    assert new["INT2A"].target == date(2026, 5, 1)
    assert new["POST"].target == date(2026, 6, 25)
    assert new["FU6M"].target == date(2026, 12, 24)


def test_endpoint_stays_at_18_weeks_when_dosing_slips(protocols):
    arm = protocols["mapp-v1"].arms["mdma"]
    current = plan_visits(arm, DAY0)
    actual = {"DOSE1": date(2026, 4, 6), "DOSE2": date(2026, 5, 11)}
    new = replan(arm, DAY0, actual, current, completed=set(actual))
    assert new["DOSE3"].target == date(2026, 6, 8)
    assert new["ENDPOINT"] == current["ENDPOINT"]  # anchored on randomization: a fixed 126-day endpoint
    assert new["ENDPOINT"].target == date(2026, 7, 6)


def test_dosing_sessions(protocols):
    for p in protocols.values():
        for arm in p.arms.values():
            doses = [v for v in arm.visits if v.kind == "dosing"]
            assert [v.code for v in doses] == [f"DOSE{n}" for n in range(1, len(doses) + 1)]
            assert arm.dosing_numbers() == {v.code: n for n, v in enumerate(doses, start=1)}
            for v in doses:
                assert v.duration_minutes == 480
                assert v.staff_required == 2
                assert v.overnight is (p.code == "mapp-v1")
                assert [(i.code, i.respondent) for i in v.instruments] == [("CSSRS_SCREEN", "clinician")]
    assert len([v for v in protocols["samati-v1"].arms["delayed"].visits if v.is_dosing]) == 2
    assert len([v for v in protocols["mapp-v1"].arms["mdma"].visits if v.is_dosing]) == 3


def _instruments(arm, code):
    return {(i.code, i.respondent) for i in arm.visit(code).instruments}


def test_samati_outcome_instruments(protocols):
    outcome = {("LSAS", "clinician"), ("LSAS_SR", "self"), ("SCS", "self")}
    p = protocols["samati-v1"]
    for arm in p.arms.values():
        for code in ("BASELINE", "POST", "FU6M"):
            assert _instruments(arm, code) == outcome
    assert _instruments(p.arms["delayed"], "WAIT_END") == outcome
    assert "WAIT_END" not in p.arms["immediate"].codes


def test_mapp_outcome_instruments_and_blinding(protocols):
    outcome = {("CAPS5", "clinician"), ("PCL5", "self"), ("SCS", "self")}
    p = protocols["mapp-v1"]
    mdma, placebo = p.arms["mdma"], p.arms["placebo"]
    for code in ("BASELINE", "ENDPOINT", "FU"):
        assert _instruments(mdma, code) == outcome
    # Identical schedules, so nothing about a participant's visits reveals the arm.
    assert mdma.visits == placebo.visits


def test_every_instrument_is_known(protocols):
    for p in protocols.values():
        for arm in p.arms.values():
            for v in arm.visits:
                assert {i.code for i in v.instruments} <= known_instrument_codes()
