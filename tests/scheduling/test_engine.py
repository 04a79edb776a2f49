"""Properties of the date engine over randomly generated protocols (random anchor DAGs, offsets and windows).

The expected values come from walking each visit's anchor chain directly, not from the engine's own ordering.
"""

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.engine import (
    PlannedDates,
    changed_visits,
    dependents,
    plan_visits,
    replan,
    topological_order,
)
from scheduling.hooks import known_instrument_codes
from scheduling.protocol import VISIT_KINDS, parse_protocol

DAY0_KEYS = ("enrollment", "randomization")
DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2080, 12, 31))


@st.composite
def random_arms(draw):
    """A parsed arm whose visits form a random anchor DAG, listed in a random (not topological) order."""
    n = draw(st.integers(min_value=1, max_value=12))
    visits = []
    for i in range(n):
        choices = list(DAY0_KEYS) + [f"visit:V{j}" for j in range(i)]
        visits.append(
            {
                "code": f"V{i}",
                "name": f"Visit {i}",
                "kind": draw(st.sampled_from(VISIT_KINDS)),
                "anchor": draw(st.sampled_from(choices)),
                "offset_days": draw(st.integers(min_value=-120, max_value=400)),
                "window_before_days": draw(st.integers(min_value=0, max_value=60)),
                "window_after_days": draw(st.integers(min_value=0, max_value=60)),
                "duration_minutes": draw(st.integers(min_value=1, max_value=600)),
                "staff_required": draw(st.integers(min_value=0, max_value=3)),
                "overnight": draw(st.booleans()),
                "instruments": [
                    {"code": c, "respondent": "self"}
                    for c in draw(st.lists(st.sampled_from(sorted(known_instrument_codes())), unique=True, max_size=3))
                ],
                "optional": draw(st.booleans()),
            }
        )
    # The first k generated visits only anchor on each other, so they can be shared as common visits.
    k = draw(st.integers(min_value=0, max_value=n))
    common = draw(st.permutations(visits[:k]))
    own = draw(st.permutations(visits[k:]))
    data = {
        "code": "random-v1",
        "version": 1,
        "title": "Random protocol",
        "illustrative": False,
        "day0": "randomization",
        "common_visits": list(common),
        "arms": {"a": {"label": "A", "visits": list(own)}},
    }
    return parse_protocol(data).arms["a"]


@st.composite
def scenarios(draw):
    """An arm, both day-0 dates, and actual dates for a random set of visits (those visits are the completed ones)."""
    arm = draw(random_arms())
    day0 = {k: draw(DATES) for k in DAY0_KEYS}
    done = draw(st.lists(st.sampled_from(arm.codes), unique=True))
    actual = {c: draw(DATES) for c in done}
    return arm, day0, actual


def chain(arm, code):
    """The anchors followed from ``code``: visit codes, ending in "enrollment" or "randomization"."""
    out = []
    v = arm.visit(code)
    while v.anchor_visit is not None:
        out.append(v.anchor_visit)
        v = arm.visit(v.anchor_visit)
    out.append(v.anchor)
    return out


def expected_anchor_date(arm, code, day0, actual):
    v = arm.visit(code)
    if v.anchor_visit is None:
        return day0[v.anchor]
    if v.anchor_visit in actual:
        return actual[v.anchor_visit]
    return expected_anchor_date(arm, v.anchor_visit, day0, actual) + timedelta(
        days=arm.visit(v.anchor_visit).offset_days
    )


@settings(max_examples=300)
@given(scenarios())
def test_targets_and_windows(scenario):
    arm, day0, actual = scenario
    plan = plan_visits(arm, day0, actual)
    assert list(plan) == list(arm.codes)  # both day-0 dates known: everything is planned, in listed order
    for code, p in plan.items():
        v = arm.visit(code)
        assert p.window_start <= p.target <= p.window_end
        assert p.contains(p.target)
        assert p.target - p.window_start == timedelta(days=v.window_before_days)
        assert p.window_end - p.target == timedelta(days=v.window_after_days)
        assert p.target == expected_anchor_date(arm, code, day0, actual) + timedelta(days=v.offset_days)


@settings(max_examples=300)
@given(scenarios(), st.data())
def test_moving_an_anchor_moves_exactly_its_open_dependents(scenario, data):
    arm, day0, actual = scenario
    completed = set(actual)
    moved = data.draw(st.sampled_from(sorted(actual) + list(DAY0_KEYS)), label="moved")
    days = data.draw(st.integers(min_value=-90, max_value=90).filter(bool), label="days")

    before = replan(arm, day0, actual, plan_visits(arm, day0), completed)
    new_day0, new_actual = dict(day0), dict(actual)
    if moved in DAY0_KEYS:
        new_day0[moved] += timedelta(days=days)
    else:
        new_actual[moved] += timedelta(days=days)
    after = replan(arm, new_day0, new_actual, before, completed)

    for code in arm.codes:
        reaches = False
        if code not in completed:
            for link in chain(arm, code):
                if link == moved:
                    reaches = True
                    break
                if link in new_actual or link in completed:
                    break  # the change stops at a visit that already happened
        if reaches:
            assert after[code] == before[code].shifted(days), code
        else:
            assert after[code] == before[code], code
    expected_moved = [c for c in arm.codes if after[c] != before[c]]
    assert changed_visits(before, after) == expected_moved


@settings(max_examples=300)
@given(random_arms(), st.data())
def test_dependents_are_transitive(arm, data):
    code = data.draw(st.sampled_from(list(arm.codes) + list(DAY0_KEYS)))
    deps = dependents(arm, code)
    assert set(deps) == {c for c in arm.codes if code in chain(arm, c)}
    assert code not in deps
    for d in deps:
        if d != code:
            assert set(dependents(arm, d)) <= set(deps)
    order = topological_order(arm)
    assert deps == [c for c in order if c in set(deps)]


@settings(max_examples=200)
@given(random_arms())
def test_topological_order_puts_anchors_first(arm):
    order = topological_order(arm)
    assert sorted(order) == sorted(arm.codes)
    for c in order:
        parent = arm.visit(c).anchor_visit
        if parent is not None:
            assert order.index(parent) < order.index(c)


@settings(max_examples=200)
@given(scenarios())
def test_replan_without_changes_is_a_no_op(scenario):
    arm, day0, actual = scenario
    plan = plan_visits(arm, day0, actual)
    assert replan(arm, day0, actual, plan, set(actual)) == plan
    assert replan(arm, day0, actual, plan, set()) == plan


@settings(max_examples=200)
@given(scenarios())
def test_completed_visits_keep_their_dates(scenario):
    arm, day0, actual = scenario
    old = {c: PlannedDates(date(1999, 1, 1), date(1999, 1, 1), date(1999, 1, 2)) for c in actual}
    new = replan(arm, day0, actual, old, set(actual))
    for c in actual:
        assert new[c] == old[c]


@settings(max_examples=200)
@given(scenarios())
def test_visits_wait_for_an_unknown_day0(scenario):
    arm, day0, _ = scenario
    plan = plan_visits(arm, {"enrollment": day0["enrollment"]})
    assert set(plan) == {c for c in arm.codes if chain(arm, c)[-1] == "enrollment"}


def two_visit_arm():
    """A at randomization + 10 days, B at A + 10 days, windows of one day each side."""
    visits = [
        {
            "code": code,
            "name": code,
            "kind": "assessment",
            "anchor": anchor,
            "offset_days": 10,
            "window_before_days": 1,
            "window_after_days": 1,
            "duration_minutes": 60,
            "staff_required": 1,
            "overnight": False,
            "instruments": [],
            "optional": False,
        }
        for code, anchor in [("A", "randomization"), ("B", "visit:A")]
    ]
    data = {
        "code": "t",
        "version": 1,
        "title": "t",
        "illustrative": False,
        "day0": "randomization",
        "arms": {"a": {"label": "A", "visits": visits}},
    }
    return parse_protocol(data).arms["a"]


def test_actual_date_replaces_target_for_dependents():
    arm = two_visit_arm()
    day0 = {"randomization": date(2026, 1, 1)}
    plan = plan_visits(arm, day0)
    assert plan["A"] == PlannedDates(date(2026, 1, 11), date(2026, 1, 10), date(2026, 1, 12))
    assert plan["B"] == PlannedDates(date(2026, 1, 21), date(2026, 1, 20), date(2026, 1, 22))
    late = plan_visits(arm, day0, {"A": date(2026, 1, 14)})
    assert late["A"] == plan["A"]
    assert late["B"] == PlannedDates(date(2026, 1, 24), date(2026, 1, 23), date(2026, 1, 25))


def test_missed_completed_visit_anchors_dependents_on_its_kept_target():
    arm = two_visit_arm()
    current = plan_visits(arm, {"randomization": date(2026, 1, 1)})
    # A was missed (completed without an actual date), then randomization is corrected: B stays put.
    new = replan(arm, {"randomization": date(2026, 1, 5)}, {}, current, {"A"})
    assert new == current
    # Not completed: everything follows the corrected randomization date.
    assert replan(arm, {"randomization": date(2026, 1, 5)}, {}, current, set()) == {
        c: p.shifted(4) for c, p in current.items()
    }


def test_unknown_codes_are_refused():
    arm = two_visit_arm()
    with pytest.raises(ValueError, match="unknown visits"):
        plan_visits(arm, {}, {"NOPE": date(2026, 1, 1)})
    with pytest.raises(ValueError, match="unknown visits"):
        replan(arm, {}, {}, {}, {"NOPE"})
    with pytest.raises(KeyError):
        dependents(arm, "NOPE")
