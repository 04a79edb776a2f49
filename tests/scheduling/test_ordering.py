"""The static visit-order check (scheduling/ordering.py) and the declarations it reads: follows, phases, the primary
comparison, randomization_after and sources.

The property tests compare the static verdict with the engine itself: when the check accepts a rule, no schedule with
every visit inside its window lets the later visit's window open before the earlier visit; when it refuses one, the
schedule it describes (the earlier branch as late as allowed, the later branch as early as allowed) really does.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.engine import plan_visits, topological_order
from scheduling.ordering import OrderRule, anchor_bounds, order_errors
from scheduling.protocol import parse_protocol
from tests.scheduling.test_protocol_validation import errors_of, protocol, visit

# --- declarations -----------------------------------------------------------------------------------------------


def with_baseline(**extra):
    """The validation tests' protocol with a baseline visit and a source to refer to."""
    data = protocol(**extra)
    data["common_visits"].append(visit("BASELINE", "visit:SCREEN", kind="baseline", offset_days=14))
    data.setdefault("sources", [{"id": "paper", "citation": "A paper", "supports": "the design"}])
    return data


def test_follows_is_checked_with_the_predecessor_at_the_late_edge_of_its_window():
    data = with_baseline()
    # INT1A: DOSE1 + 1 (-2/+2). DOSE2: DOSE1 + 28 (-2/+2). DOSE2 following INT1A is fine (day 26 >= day 3); INT1A
    # following DOSE2 is not: both hang on DOSE1, DOSE2 may happen on day 30 and INT1A's window opens on day -1.
    data["arms"]["immediate"]["visits"][3]["follows"] = ["INT1A"]
    assert parse_protocol(data).arms["immediate"].visit("DOSE2").follows == ("INT1A",)
    data["arms"]["immediate"]["visits"][2]["follows"] = ["DOSE2"]
    assert errors_of(data) == [
        "arms.immediate.visits[2].follows[0]: the window of INT1A can open 31 day(s) before DOSE2: counted from "
        "DOSE1, DOSE2 may happen as late as day 30 within its windows, while INT1A's window may open on day -1"
    ]


def test_same_day_as_the_predecessor_is_allowed():
    data = with_baseline()
    data["arms"]["immediate"]["visits"][2].update(offset_days=2, window_before_days=2, follows=["DOSE1"])
    assert parse_protocol(data).arms["immediate"].visit("INT1A").follows == ("DOSE1",)
    data["arms"]["immediate"]["visits"][2]["window_before_days"] = 3
    assert errors_of(data)[0].startswith("arms.immediate.visits[2].follows[0]: the window of INT1A can open 1 day(s)")


def test_nothing_hanging_on_randomization_is_proven_to_come_after_a_pre_randomization_visit():
    data = with_baseline()
    data["arms"]["immediate"]["visits"][0]["follows"] = ["BASELINE"]
    [error] = errors_of(data)
    assert error.startswith("arms.immediate.visits[0].follows[0]: the window of PREP1 can open 13 day(s) before")
    # Declaring that randomization waits for baseline ties the two together.
    data["randomization_after"] = "BASELINE"
    assert parse_protocol(data).randomization_after == "BASELINE"


def test_a_visit_hanging_on_randomization_cannot_be_proven_to_precede_anything_else():
    data = with_baseline()
    data["common_visits"][1]["follows"] = []
    data["arms"]["delayed"]["visits"].append(visit("LATE", "visit:BASELINE", offset_days=300, follows=["WAIT_END"]))
    [error] = errors_of(data)
    assert error.startswith("arms.delayed.visits[1].follows[0]: the window of LATE can open before WAIT_END: WAIT_END")
    assert "hangs on randomization" in error


def test_follows_references_are_checked():
    data = with_baseline()
    data["common_visits"][1]["follows"] = ["PREP1", "BASELINE"]  # an arm visit, and itself
    data["arms"]["immediate"]["visits"][1]["follows"] = ["NOPE"]
    data["arms"]["immediate"]["visits"][1]["source"] = "nowhere"
    data["arms"]["delayed"]["visits"][0]["follows"] = ["SCREEN", "SCREEN"]
    assert errors_of(data) == [
        "arms.delayed.visits[0].follows: ['SCREEN', 'SCREEN'] has non-unique elements",
        "common_visits[1].follows[0]: unknown visit 'PREP1'",
        "common_visits[1].follows[1]: a visit cannot follow itself",
        "arms.immediate.visits[1].source: unknown source 'nowhere' (declare it in 'sources')",
        "arms.immediate.visits[1].follows[0]: unknown visit 'NOPE'",
    ]


def test_a_visit_cannot_follow_a_visit_anchored_on_it():
    data = with_baseline()
    data["arms"]["immediate"]["visits"][0]["follows"] = ["INT1A"]
    assert errors_of(data) == [
        "arms.immediate.visits[0].follows[0]: PREP1 cannot follow INT1A, which is anchored on it"
    ]


def test_duplicate_source_ids():
    data = with_baseline()
    data["sources"].append({"id": "paper", "citation": "Another", "supports": "x"})
    assert errors_of(data) == ["sources[1].id: duplicate source id 'paper' (also at sources[0])"]


def test_randomization_after_must_be_a_common_visit_before_randomization():
    data = with_baseline(randomization_after="PREP1")
    assert errors_of(data) == [
        "randomization_after: 'PREP1' is not a common visit (only those exist before randomization)"
    ]
    data = with_baseline(randomization_after="BASELINE")
    data["common_visits"][0]["anchor"] = "randomization"
    assert errors_of(data) == ["randomization_after: 'BASELINE' hangs on randomization, so it cannot come before it"]
    solo = with_baseline(randomization_after="BASELINE", day0="enrollment")
    del solo["arms"]["delayed"]
    for v in solo["arms"]["immediate"]["visits"]:
        if v["anchor"] == "randomization":
            v["anchor"] = "enrollment"
    assert errors_of(solo) == ["randomization_after: day0 is not 'randomization'"]


def taper(**extra):
    phase = {
        "code": "TAPER",
        "name": "Medication taper",
        "kind": "washout",
        "from_visit": "SCREEN",
        "to_visit": "TAPER_END",
        "before_visit": "BASELINE",
        "source": "paper",
    }
    phase.update(extra)
    return phase


def tapered():
    data = with_baseline(phases=[taper()])
    data["common_visits"].insert(
        1, visit("TAPER_END", "visit:SCREEN", kind="screening", offset_days=28, window_before_days=28)
    )
    data["common_visits"][2]["anchor"] = "visit:TAPER_END"
    return data


def test_a_washout_phase_is_parsed():
    p = parse_protocol(tapered())
    [phase] = p.phases
    assert (phase.code, phase.kind, phase.from_visit, phase.to_visit, phase.before_visit) == (
        "TAPER",
        "washout",
        "SCREEN",
        "TAPER_END",
        "BASELINE",
    )


def test_phase_errors():
    data = tapered()
    data["phases"] = [
        taper(from_visit="PREP1", source="nowhere"),
        taper(to_visit="SCREEN", from_visit="BASELINE"),
        taper(kind="holiday"),
    ]
    assert errors_of(data) == [
        "phases[2].kind: 'holiday' is not one of ['washout']",
        "phases[0].from_visit: 'PREP1' is not a common visit",
        "phases[0].source: unknown source 'nowhere' (declare it in 'sources')",
        "phases[1].code: duplicate phase code 'TAPER'",
        "phases[1].to_visit: 'SCREEN' is not anchored on 'BASELINE', so the phase has no window",
        "phases[2].code: duplicate phase code 'TAPER'",
    ]


def test_a_phase_must_end_before_the_visit_it_precedes():
    data = tapered()
    data["common_visits"][2]["offset_days"] = 1  # BASELINE may now open 1 day after TAPER_END's earliest, before it
    data["common_visits"][2]["window_before_days"] = 2
    assert errors_of(data) == [
        "phases[0].before_visit: the window of BASELINE can open 1 day(s) before TAPER_END, which it hangs on: "
        "counted from TAPER_END, BASELINE's window may open on day -1"
    ]


def comparison(**extra):
    data = {
        "label": "Week 16",
        "matched_study_day": True,
        "arms": {
            "immediate": {"baseline": "BASELINE", "endpoint": "POST"},
            "delayed": {"baseline": "BASELINE", "endpoint": "WAIT_END"},
        },
        "source": "paper",
    }
    data.update(extra)
    return data


def compared():
    data = with_baseline(primary_comparison=comparison())
    data["arms"]["immediate"]["visits"].append(visit("POST", offset_days=112))
    return data


def test_a_matched_primary_comparison_is_parsed():
    c = parse_protocol(compared()).primary_comparison
    assert c is not None and c.matched_study_day and c.declared and c.source == "paper"
    assert {a: (p.baseline, p.endpoint) for a, p in c.arms.items()} == {
        "immediate": ("BASELINE", "POST"),
        "delayed": ("BASELINE", "WAIT_END"),
    }


def test_primary_comparison_references():
    data = compared()
    data["primary_comparison"]["arms"] = {
        "immediate": {"baseline": "BASELINE", "endpoint": "WAIT_END"},
        "other": {"baseline": "BASELINE", "endpoint": "POST"},
    }
    data["primary_comparison"]["source"] = "nowhere"
    assert errors_of(data) == [
        "primary_comparison.arms: arm 'delayed' has no comparison visits",
        "primary_comparison.arms.immediate.endpoint: arm 'immediate' has no visit 'WAIT_END'",
        "primary_comparison.arms.other: unknown arm 'other'",
        "primary_comparison.source: unknown source 'nowhere' (declare it in 'sources')",
    ]


def test_matched_study_day_needs_the_same_day_and_window_in_every_arm():
    data = compared()
    data["arms"]["immediate"]["visits"][-1]["window_after_days"] = 14
    assert errors_of(data) == [
        "primary_comparison.matched_study_day: the arms' endpoints are due on different study days "
        "(arm immediate: day 112 (-2/+14); arm delayed: day 112 (-2/+2))"
    ]
    data = compared()
    data["arms"]["immediate"]["visits"][-1]["anchor"] = "visit:DOSE2"
    data["arms"]["immediate"]["visits"][-1]["offset_days"] = 56
    assert errors_of(data) == [
        "primary_comparison.arms.immediate.endpoint: POST hangs on 'visit:DOSE2'; a matched study day needs the "
        "endpoint anchored on 'randomization'"
    ]
    data["primary_comparison"]["matched_study_day"] = False
    assert parse_protocol(data).primary_comparison.matched_study_day is False


def test_the_endpoint_must_follow_the_baseline():
    data = compared()
    data["primary_comparison"]["arms"]["immediate"] = {"baseline": "POST", "endpoint": "PREP1"}
    data["primary_comparison"]["matched_study_day"] = False
    [error] = errors_of(data)
    assert error.startswith("primary_comparison.arms.immediate: the window of PREP1 can open 109 day(s) before POST")


def test_a_protocol_without_the_new_declarations_still_parses():
    """Stored v1 definitions (and site files written before) declare none of this and stay valid."""
    p = parse_protocol(protocol())
    assert (p.sources, p.phases, p.primary_comparison, p.randomization_after) == ((), (), None, None)
    assert all(v.follows == () and v.source is None for arm in p.arms.values() for v in arm.visits)


# --- properties against the engine -------------------------------------------------------------------------------

DAY0 = date(2026, 1, 5)


@st.composite
def graphs(draw):
    """A random arm (anchor tree under enrollment and randomization), an optional randomization_after, and rules."""
    n = draw(st.integers(min_value=2, max_value=9))
    visits, rooted_on_randomization = [], set()
    for i in range(n):
        anchor = draw(st.sampled_from(["enrollment", "randomization", *(f"visit:V{j}" for j in range(i))]))
        parent = anchor.split(":", 1)[-1]
        if anchor == "randomization" or parent in rooted_on_randomization:
            rooted_on_randomization.add(f"V{i}")
        visits.append(
            visit(
                f"V{i}",
                anchor,
                offset_days=draw(st.integers(min_value=-30, max_value=60)),
                window_before_days=draw(st.integers(min_value=0, max_value=10)),
                window_after_days=draw(st.integers(min_value=0, max_value=10)),
            )
        )
    data = {
        "code": "prop-v1",
        "version": 1,
        "title": "Property protocol",
        "illustrative": False,
        "day0": "randomization",
        "arms": {"a": {"label": "A", "visits": visits}},
    }
    arm = parse_protocol(data).arms["a"]
    candidates = sorted({v.code for v in arm.visits} - rooted_on_randomization)
    after = draw(st.one_of(st.none(), st.sampled_from(candidates))) if candidates else None
    codes = [v.code for v in arm.visits]
    rules = draw(
        st.lists(
            st.tuples(st.sampled_from(codes), st.sampled_from(codes)).filter(lambda r: r[0] != r[1]),
            min_size=1,
            max_size=4,
        )
    )
    return arm, after, [OrderRule(later=b, earlier=a, path=f"rule {b} after {a}") for b, a in rules]


def simulate(arm, after, lateness, randomization_delay):
    """Actual dates with each visit ``lateness[code]`` days off its target (inside its window), randomization
    ``randomization_delay`` days after enrollment or after the ``after`` visit; and the final plan."""
    actual: dict[str, date] = {}
    day0 = {"enrollment": DAY0}
    if after is None:
        day0["randomization"] = DAY0 + timedelta(days=randomization_delay)
    for code in topological_order(arm):
        plan = plan_visits(arm, day0, actual)
        if code in plan:
            actual[code] = plan[code].target + timedelta(days=lateness[code])
        if code == after:
            day0["randomization"] = actual[code] + timedelta(days=randomization_delay)
    # Visits hanging on randomization through the ``after`` visit: plan again now that every date is known.
    for code in topological_order(arm):
        if code not in actual:
            plan = plan_visits(arm, day0, actual)
            actual[code] = plan[code].target + timedelta(days=lateness[code])
    return actual, plan_visits(arm, day0, actual)


@settings(max_examples=150, deadline=None)
@given(graphs(), st.data())
def test_an_accepted_rule_holds_for_every_schedule_inside_the_windows(case, data):
    arm, after, rules = case
    bounds = anchor_bounds(arm.visits, randomization_after=after)
    accepted = [r for r in rules if not order_errors(bounds, [r])]
    lateness = {
        v.code: data.draw(st.integers(min_value=-v.window_before_days, max_value=v.window_after_days))
        for v in arm.visits
    }
    actual, plan = simulate(arm, after, lateness, data.draw(st.integers(min_value=0, max_value=400)))
    for rule in accepted:
        assert plan[rule.later].window_start >= actual[rule.earlier], rule


def _chain(arm, after, code):
    out = [code]
    while True:
        node = out[-1]
        if node == "enrollment":
            return out
        if node == "randomization":
            out.append(after or "enrollment")
            continue
        v = arm.visit(node)
        out.append(v.anchor_visit or v.anchor)


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_a_refused_rule_has_a_schedule_inside_the_windows_that_breaks_it(case):
    arm, after, rules = case
    bounds = anchor_bounds(arm.visits, randomization_after=after)
    for rule in rules:
        if order_errors(bounds, [rule]):
            earlier_chain = _chain(arm, after, rule.earlier)
            if rule.later in earlier_chain:
                continue  # refused for a plain structural reason: the earlier visit hangs on the later one
            later_chain = _chain(arm, after, arm.visit(rule.later).anchor_visit or arm.visit(rule.later).anchor)
            common = next(n for n in earlier_chain if n in later_chain)
            late_branch = set(earlier_chain[: earlier_chain.index(common)])
            early_branch = set(later_chain[: later_chain.index(common)])
            # The earlier branch as late as its windows allow, the later branch as early as they allow.
            lateness = {
                v.code: v.window_after_days
                if v.code in late_branch
                else -v.window_before_days
                if v.code in early_branch
                else 0
                for v in arm.visits
            }
            delay = 1000 if "randomization" in late_branch else 0
            actual, plan = simulate(arm, after, lateness, delay)
            assert plan[rule.later].window_start < actual[rule.earlier], rule


def test_the_shipped_v2_files_pass_and_v1_would_fail_with_the_same_declarations():
    import json

    from scheduling.protocol import SHIPPED_DIR, ProtocolError

    v1 = json.loads((SHIPPED_DIR / "mapp-v1.json").read_text())
    v2 = json.loads((SHIPPED_DIR / "mapp-v2.json").read_text())
    parse_protocol(v2)
    # Give v1's visits the follows lists of v2 (same codes): its endpoint and its dosing sessions fail.
    declared = {v["code"]: v.get("follows", []) for v in v2["arms"]["mdma"]["visits"]}
    broken = copy.deepcopy(v1)
    for arm in broken["arms"].values():
        for v in arm["visits"]:
            v["follows"] = [c for c in declared.get(v["code"], []) if c != "BASELINE"]
    with pytest.raises(ProtocolError) as info:
        parse_protocol(broken)
    failing = sorted({e.split(":")[0] for e in info.value.errors})
    assert failing == [
        "arms.mdma.visits[11].follows[0]",  # DOSE3 may open before INT2C
        "arms.mdma.visits[15].follows[0]",  # ENDPOINT before DOSE3
        "arms.mdma.visits[15].follows[1]",  # ENDPOINT before INT3C
        "arms.mdma.visits[7].follows[0]",  # DOSE2 before INT1C
        "arms.placebo.visits[11].follows[0]",
        "arms.placebo.visits[15].follows[0]",
        "arms.placebo.visits[15].follows[1]",
        "arms.placebo.visits[7].follows[0]",
    ]
