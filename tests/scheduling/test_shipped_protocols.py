"""The shipped protocols, checked against a golden table written out by hand.

The dates below are literal on purpose: computing them with the engine would only test the engine against itself.
Version 1 (kept for the studies pinned to it): enrolled (consented) 2026-02-02, randomized 2026-03-02, nothing has
happened yet. Version 2 randomizes only after baseline: enrolled 2026-02-02, randomized 2026-03-16.

What version 2 corrects, each against its source (the file's ``sources``; docs/protocols.md):
- MAPP1/MAPP2 (Mitchell 2021, 2023): the primary endpoint is about 8 weeks after the last experimental session, so it
  hangs on DOSE3's actual date; psychiatric medications are tapered before baseline (phase TAPER, visit TAPER_END).
- SAMATI (Lear 2023): the arms are compared 16 weeks after randomization, after treatment (immediate) and at the
  end of the delay (delayed), so POST (immediate) and WAIT_END (delayed) are due on the same study day.
- Baseline is measured before randomization (ICH E9) and before the first preparation session in every arm.
"""

from datetime import date

import pytest

from scheduling.engine import plan_visits, replan, topological_order
from scheduling.hooks import known_instrument_codes
from scheduling.protocol import (
    ComparisonVisits,
    check_shipped_protocols,
    load_shipped_protocols,
    primary_comparison,
    shipped_protocol_paths,
)

DAY0 = {"enrollment": date(2026, 2, 2), "randomization": date(2026, 3, 2)}
DAY0_V2 = {"enrollment": date(2026, 2, 2), "randomization": date(2026, 3, 16)}

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

# Version 2. BASELINE closes (2026-03-02) before PREP1 opens in either arm; POST (immediate) and WAIT_END (delayed)
# share day 112 after randomization (2026-07-06) and its window.
SAMATI_V2_IMMEDIATE = [
    ("SCREEN", "2026-02-02", "2026-02-02", "2026-03-02"),
    ("BASELINE", "2026-02-16", "2026-02-02", "2026-03-02"),
    ("PREP1", "2026-03-23", "2026-03-20", "2026-03-26"),
    ("PREP2", "2026-03-30", "2026-03-28", "2026-04-02"),
    ("PREP3", "2026-04-06", "2026-04-04", "2026-04-09"),
    ("DOSE1", "2026-04-13", "2026-04-11", "2026-04-16"),
    ("INT1A", "2026-04-14", "2026-04-14", "2026-04-14"),
    ("INT1B", "2026-04-20", "2026-04-18", "2026-04-22"),
    ("INT1C", "2026-05-04", "2026-05-01", "2026-05-07"),
    ("DOSE2", "2026-05-11", "2026-05-08", "2026-05-18"),
    ("INT2A", "2026-05-12", "2026-05-12", "2026-05-12"),
    ("INT2B", "2026-05-18", "2026-05-16", "2026-05-20"),
    ("INT2C", "2026-06-01", "2026-05-29", "2026-06-04"),
    ("POST", "2026-07-06", "2026-06-29", "2026-07-13"),
    ("FU6M", "2027-01-04", "2026-12-21", "2027-01-18"),
]
SAMATI_V2_DELAYED = [
    ("SCREEN", "2026-02-02", "2026-02-02", "2026-03-02"),
    ("BASELINE", "2026-02-16", "2026-02-02", "2026-03-02"),
    ("WAIT_END", "2026-07-06", "2026-06-29", "2026-07-13"),
    ("PREP1", "2026-07-13", "2026-07-10", "2026-07-16"),
    ("PREP2", "2026-07-20", "2026-07-18", "2026-07-23"),
    ("PREP3", "2026-07-27", "2026-07-25", "2026-07-30"),
    ("DOSE1", "2026-08-03", "2026-08-01", "2026-08-06"),
    ("INT1A", "2026-08-04", "2026-08-04", "2026-08-04"),
    ("INT1B", "2026-08-10", "2026-08-08", "2026-08-12"),
    ("INT1C", "2026-08-24", "2026-08-21", "2026-08-27"),
    ("DOSE2", "2026-08-31", "2026-08-28", "2026-09-07"),
    ("INT2A", "2026-09-01", "2026-09-01", "2026-09-01"),
    ("INT2B", "2026-09-07", "2026-09-05", "2026-09-09"),
    ("INT2C", "2026-09-21", "2026-09-18", "2026-09-24"),
    ("POST", "2026-10-26", "2026-10-19", "2026-11-09"),
    ("FU6M", "2027-04-26", "2027-04-12", "2027-05-10"),
]
# The taper (SCREEN .. TAPER_END, up to 8 weeks) comes before BASELINE; ENDPOINT is 8 weeks after DOSE3.
MAPP_V2 = [
    ("SCREEN", "2026-02-02", "2026-02-02", "2026-03-02"),
    ("TAPER_END", "2026-03-02", "2026-02-02", "2026-03-30"),
    ("BASELINE", "2026-03-09", "2026-03-02", "2026-03-16"),
    ("PREP1", "2026-03-23", "2026-03-20", "2026-03-30"),
    ("PREP2", "2026-03-30", "2026-03-27", "2026-04-06"),
    ("PREP3", "2026-04-06", "2026-04-03", "2026-04-13"),
    ("DOSE1", "2026-04-13", "2026-04-10", "2026-04-20"),
    ("INT1A", "2026-04-14", "2026-04-14", "2026-04-14"),
    ("INT1B", "2026-04-20", "2026-04-18", "2026-04-22"),
    ("INT1C", "2026-05-04", "2026-05-01", "2026-05-07"),
    ("DOSE2", "2026-05-11", "2026-05-08", "2026-05-18"),
    ("INT2A", "2026-05-12", "2026-05-12", "2026-05-12"),
    ("INT2B", "2026-05-18", "2026-05-16", "2026-05-20"),
    ("INT2C", "2026-06-01", "2026-05-29", "2026-06-04"),
    ("DOSE3", "2026-06-08", "2026-06-05", "2026-06-15"),
    ("INT3A", "2026-06-09", "2026-06-09", "2026-06-09"),
    ("INT3B", "2026-06-15", "2026-06-13", "2026-06-17"),
    ("INT3C", "2026-06-29", "2026-06-26", "2026-07-02"),
    ("ENDPOINT", "2026-08-03", "2026-07-27", "2026-08-17"),
    ("FU", "2027-02-01", "2027-01-18", "2027-03-01"),
]

GOLDEN = {
    ("samati-v1", "immediate"): SAMATI_IMMEDIATE,
    ("samati-v1", "delayed"): SAMATI_DELAYED,
    ("mapp-v1", "mdma"): MAPP,
    ("mapp-v1", "placebo"): MAPP,
}
GOLDEN_V2 = {
    ("samati-v2", "immediate"): SAMATI_V2_IMMEDIATE,
    ("samati-v2", "delayed"): SAMATI_V2_DELAYED,
    ("mapp-v2", "mdma"): MAPP_V2,
    ("mapp-v2", "placebo"): MAPP_V2,
}
SHIPPED = {"samati-v1", "mapp-v1", "samati-v2", "mapp-v2"}


@pytest.fixture(scope="module")
def protocols():
    return load_shipped_protocols()


def test_shipped_protocols_pass_the_startup_check():
    assert check_shipped_protocols() == []
    assert {p.name for p in shipped_protocol_paths()} == {f"{code}.json" for code in SHIPPED}


def test_shipped_protocols_are_marked_illustrative(protocols):
    assert set(protocols) == SHIPPED
    for p in protocols.values():
        assert p.illustrative is True
        assert "illustrative" in p.note.lower()
        assert p.day0 == "randomization"
        assert p.version == int(p.code[-1])


def _table(plan):
    return [(c, p.target.isoformat(), p.window_start.isoformat(), p.window_end.isoformat()) for c, p in plan.items()]


@pytest.mark.parametrize(("protocol_code", "arm_code"), sorted(GOLDEN))
def test_golden_schedule(protocols, protocol_code, arm_code):
    arm = protocols[protocol_code].arms[arm_code]
    assert _table(plan_visits(arm, DAY0)) == GOLDEN[(protocol_code, arm_code)]


@pytest.mark.parametrize(("protocol_code", "arm_code"), sorted(GOLDEN_V2))
def test_golden_schedule_v2(protocols, protocol_code, arm_code):
    arm = protocols[protocol_code].arms[arm_code]
    assert _table(plan_visits(arm, DAY0_V2)) == GOLDEN_V2[(protocol_code, arm_code)]


def _all_late(arm, day0, codes):
    """Every visit in ``codes`` happens on the last day of its window (walking the anchors in order, each from the
    actual dates before it): the latest schedule that needs no deviation."""
    actual = {}
    for code in topological_order(arm):
        if code in codes:
            actual[code] = plan_visits(arm, day0, actual)[code].window_end
    return actual, plan_visits(arm, day0, actual)


def test_mapp_v2_endpoint_follows_the_actual_last_dose_even_when_every_session_is_late(protocols):
    arm = protocols["mapp-v2"].arms["mdma"]
    treatment = [c for c in arm.codes if c.startswith(("PREP", "DOSE", "INT"))]
    actual, plan = _all_late(arm, DAY0_V2, treatment)
    # By hand from 2026-03-16: PREP1 2026-03-23 +7 late = 03-30; PREP2 04-13; PREP3 04-27; DOSE1 05-04 +7 = 05-11;
    # DOSE2 06-08 +7 = 06-15; DOSE3 07-13 +7 = 07-20. The endpoint is 56 days after that actual date.
    assert (actual["DOSE1"], actual["DOSE2"], actual["DOSE3"]) == (
        date(2026, 5, 11),
        date(2026, 6, 15),
        date(2026, 7, 20),
    )
    endpoint = plan["ENDPOINT"]
    assert (endpoint.target, endpoint.window_start, endpoint.window_end) == (
        date(2026, 9, 14),
        date(2026, 9, 7),
        date(2026, 9, 28),
    )
    assert endpoint.window_start > actual["DOSE3"] and endpoint.window_start > actual["INT3C"]
    assert arm.visit("ENDPOINT").anchor == "visit:DOSE3" and arm.visit("ENDPOINT").source == "mapp1"


def test_mapp_v1_endpoint_could_open_before_the_last_dose(protocols):
    """What version 2 corrects: in v1 the endpoint hangs on randomization + 126 days, so with every session late but
    in its window, dose 3 (2026-07-06) falls after the endpoint window opened (2026-06-29)."""
    arm = protocols["mapp-v1"].arms["mdma"]
    actual, plan = _all_late(arm, DAY0, [c for c in arm.codes if c.startswith(("PREP", "DOSE", "INT"))])
    assert actual["DOSE3"] == date(2026, 7, 6)
    assert plan["ENDPOINT"].window_start == date(2026, 6, 29) < actual["DOSE3"]


def test_mapp_v2_endpoint_moves_with_a_late_last_dose(protocols):
    arm = protocols["mapp-v2"].arms["placebo"]
    current = plan_visits(arm, DAY0_V2)
    actual = {"DOSE1": date(2026, 4, 20), "DOSE2": date(2026, 5, 25), "DOSE3": date(2026, 6, 29)}
    new = replan(arm, DAY0_V2, actual, current, completed=set(actual))
    assert (new["ENDPOINT"].target, new["ENDPOINT"].window_start) == (date(2026, 8, 24), date(2026, 8, 17))
    assert new["FU"].target == date(2027, 2, 22)


def test_mapp_v2_declares_the_medication_taper_before_baseline(protocols):
    p = protocols["mapp-v2"]
    [taper] = p.phases
    assert (taper.code, taper.kind, taper.from_visit, taper.to_visit, taper.before_visit, taper.source) == (
        "TAPER",
        "washout",
        "SCREEN",
        "TAPER_END",
        "BASELINE",
        "mapp1",
    )
    # The taper's window: from the screening visit up to 8 weeks; baseline hangs on its actual end.
    end = p.arms["mdma"].visit("TAPER_END")
    assert (end.anchor, end.offset_days - end.window_before_days, end.offset_days + end.window_after_days) == (
        "visit:SCREEN",
        0,
        56,
    )
    assert p.arms["mdma"].visit("BASELINE").anchor == "visit:TAPER_END"
    # A taper that runs to its last allowed day still ends before baseline can open.
    arm = p.arms["placebo"]
    actual, plan = _all_late(arm, DAY0_V2, ["SCREEN", "TAPER_END"])
    assert actual["TAPER_END"] == date(2026, 4, 27)  # screened 2026-03-02 (late edge), +56 days
    assert plan["BASELINE"].window_start == date(2026, 4, 27)


@pytest.mark.parametrize("arm_code", ["immediate", "delayed"])
def test_samati_v2_baseline_precedes_the_first_preparation_session(protocols, arm_code):
    p = protocols["samati-v2"]
    table = {row[0]: row for row in GOLDEN_V2[("samati-v2", arm_code)]}
    assert table["BASELINE"][3] < table["PREP1"][2]  # baseline's window closes before PREP1's opens
    assert p.randomization_after == "BASELINE"
    arm = p.arms[arm_code]
    # Baseline on the last day of its window and randomization that very day: PREP1 still opens after it.
    late_baseline = date(2026, 3, 2)
    plan = plan_visits(
        arm, {"enrollment": DAY0_V2["enrollment"], "randomization": late_baseline}, {"BASELINE": late_baseline}
    )
    assert plan["PREP1"].window_start > late_baseline
    assert "BASELINE" in arm.visit("PREP1").follows or arm.visit("PREP1").anchor == "visit:WAIT_END"


def test_samati_v1_immediate_arm_could_hold_baseline_after_the_first_preparation_session():
    """What version 2 corrects: v1's PREP1 window opens on the day BASELINE's closes, and PREP1 hangs on
    randomization, which v1 does not tie to baseline at all."""
    table = {row[0]: row for row in SAMATI_IMMEDIATE}
    assert table["PREP1"][2] <= table["BASELINE"][3]


def test_samati_v2_compares_both_arms_on_the_same_study_day(protocols):
    p = protocols["samati-v2"]
    comparison = primary_comparison(p)
    assert comparison is p.primary_comparison and comparison.declared and comparison.matched_study_day
    assert dict(comparison.arms) == {
        "immediate": ComparisonVisits(baseline="BASELINE", endpoint="POST"),
        "delayed": ComparisonVisits(baseline="BASELINE", endpoint="WAIT_END"),
    }
    immediate = {row[0]: row[1:] for row in SAMATI_V2_IMMEDIATE}
    delayed = {row[0]: row[1:] for row in SAMATI_V2_DELAYED}
    assert immediate["POST"] == delayed["WAIT_END"] == ("2026-07-06", "2026-06-29", "2026-07-13")
    assert (date(2026, 7, 6) - DAY0_V2["randomization"]).days == 112  # 16 weeks, the SAMATI delay
    # Late treatment in the immediate arm does not move its comparison visit off the matched day.
    arm = p.arms["immediate"]
    actual, plan = _all_late(arm, DAY0_V2, [c for c in arm.codes if c.startswith(("PREP", "DOSE", "INT"))])
    assert plan["POST"] == plan_visits(p.arms["delayed"], DAY0_V2)["WAIT_END"]
    assert plan["POST"].window_start > actual["INT2C"]  # and it still comes after the last integration session


def test_samati_v1_compared_the_arms_on_days_that_drift_apart(protocols):
    comparison = primary_comparison(protocols["samati-v1"])
    assert comparison is not None and not comparison.declared and not comparison.matched_study_day
    assert dict(comparison.arms) == {
        "immediate": ComparisonVisits(baseline="BASELINE", endpoint="POST"),
        "delayed": ComparisonVisits(baseline="BASELINE", endpoint="WAIT_END"),
    }
    # v1's immediate POST hangs on the actual date of DOSE2, the delayed WAIT_END on randomization.
    arm = protocols["samati-v1"].arms["immediate"]
    new = replan(arm, DAY0, {"DOSE2": date(2026, 5, 4)}, plan_visits(arm, DAY0), completed={"DOSE2"})
    assert new["POST"].target == date(2026, 6, 29) != date(2026, 6, 22)  # WAIT_END's target


def test_mapp_v2_compares_baseline_with_the_endpoint_in_both_arms(protocols):
    comparison = primary_comparison(protocols["mapp-v2"])
    assert comparison is not None and comparison.declared and comparison.source == "mapp1"
    assert {a: (c.baseline, c.endpoint) for a, c in comparison.arms.items()} == {
        "mdma": ("BASELINE", "ENDPOINT"),
        "placebo": ("BASELINE", "ENDPOINT"),
    }


def test_every_correction_names_a_declared_source(protocols):
    for code in ("mapp-v2", "samati-v2"):
        p = protocols[code]
        ids = {s.id for s in p.sources}
        assert all(s.url and ("https://doi.org/" in s.url or "ich.org" in s.url) for s in p.sources)
        cited = {v.source for arm in p.arms.values() for v in arm.visits if v.source}
        cited |= {ph.source for ph in p.phases} | {p.primary_comparison.source}
        assert cited <= ids and "randomize-after-baseline" in cited
    assert protocols["mapp-v2"].arms["mdma"].visit("ENDPOINT").source == "mapp1"
    assert protocols["samati-v2"].arms["immediate"].visit("POST").source == "matched-comparison"
    assert protocols["samati-v2"].arms["delayed"].visit("WAIT_END").source == "matched-comparison"


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
                assert v.overnight is p.code.startswith("mapp")
                assert [(i.code, i.respondent) for i in v.instruments] == [("CSSRS_SCREEN", "clinician")]
    for version in ("v1", "v2"):
        assert len([v for v in protocols[f"samati-{version}"].arms["delayed"].visits if v.is_dosing]) == 2
        assert len([v for v in protocols[f"mapp-{version}"].arms["mdma"].visits if v.is_dosing]) == 3


def _instruments(arm, code):
    return {(i.code, i.respondent) for i in arm.visit(code).instruments}


@pytest.mark.parametrize("code", ["samati-v1", "samati-v2"])
def test_samati_outcome_instruments(protocols, code):
    outcome = {("LSAS", "clinician"), ("LSAS_SR", "self"), ("SCS", "self")}
    p = protocols[code]
    for arm in p.arms.values():
        for visit in ("BASELINE", "POST", "FU6M"):
            assert _instruments(arm, visit) == outcome
    assert _instruments(p.arms["delayed"], "WAIT_END") == outcome
    assert "WAIT_END" not in p.arms["immediate"].codes


@pytest.mark.parametrize("code", ["mapp-v1", "mapp-v2"])
def test_mapp_outcome_instruments_and_blinding(protocols, code):
    outcome = {("CAPS5", "clinician"), ("PCL5", "self"), ("SCS", "self")}
    p = protocols[code]
    mdma, placebo = p.arms["mdma"], p.arms["placebo"]
    for visit in ("BASELINE", "ENDPOINT", "FU"):
        assert _instruments(mdma, visit) == outcome
    # Identical schedules, so nothing about a participant's visits reveals the arm.
    assert mdma.visits == placebo.visits


@pytest.mark.parametrize("code", ["mapp-v2", "samati-v2"])
def test_pre_randomization_visits_are_arm_neutral(protocols, code):
    """What exists before randomization (created at enrollment) is the common visits, identical in every arm."""
    p = protocols[code]
    common = tuple(v.code for v in p.common_visits)
    assert common[0] == "SCREEN" and "BASELINE" in common
    for arm in p.arms.values():
        assert arm.visits[: len(common)] == p.common_visits
        assert all(v.anchor != "randomization" for v in p.common_visits)


def test_every_instrument_is_known(protocols):
    for p in protocols.values():
        for arm in p.arms.values():
            for v in arm.visits:
                assert {i.code for i in v.instruments} <= known_instrument_codes()
