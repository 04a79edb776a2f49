"""Bang's and James' blinding indices against hand-computed values and against the published worked table, with
property tests of their ranges."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safety.blinding_index import (
    DONT_KNOW,
    arm_counts,
    bang_index,
    bang_indices,
    james_index,
    pooled_distribution,
)

ARMS = ["mdma", "placebo"]
# Seeded by hand: allocated arm -> guessed option -> count.
SEEDED = {
    "mdma": {"mdma": 6, "placebo": 2, DONT_KNOW: 2},
    "placebo": {"mdma": 3, "placebo": 3, DONT_KNOW: 4},
}
# The disulfiram trial's table as distributed with the reference implementation of both papers: of 382 allocated
# treatment, 48 guessed treatment, 4 placebo, 330 did not know; of 371 allocated placebo, 22, 30 and 319.
DISULFIRAM = {
    "treatment": {"treatment": 48, "placebo": 4, DONT_KNOW: 330},
    "placebo": {"treatment": 22, "placebo": 30, DONT_KNOW: 319},
}


def test_bang_index_per_arm_by_hand():
    mdma = arm_counts(SEEDED, "mdma")
    assert (mdma.correct, mdma.incorrect, mdma.dont_know, mdma.total) == (6, 2, 2, 10)
    found = bang_indices(SEEDED, ARMS)
    # (6 - 2) / 10; variance (0.6*0.4 + 0.2*0.8 + 2*0.6*0.2) / 10 = 0.064.
    assert found["mdma"].value == pytest.approx(0.4)
    assert found["mdma"].se == pytest.approx(math.sqrt(0.064))
    # (3 - 3) / 10; variance (0.21 + 0.21 + 0.18) / 10 = 0.06.
    assert found["placebo"].value == pytest.approx(0.0)
    assert found["placebo"].se == pytest.approx(math.sqrt(0.06))
    assert found["mdma"].lower == pytest.approx(0.4 - 1.959963984540054 * math.sqrt(0.064))


def test_james_index_by_hand():
    # n = 20, P_dk = 6/20. Disagreement (off-diagonal) 5/20 over 0.7; expected 0.45*0.3 + 0.25*0.4 = 0.235 over 0.49.
    # kappa_d = (0.25*0.7 - 0.235) / 0.235 = -12/47; BI = (1.3 - 0.7*12/47) / 2 = 52.7/94.
    found = james_index(SEEDED, ARMS)
    assert found.value == pytest.approx(52.7 / 94)
    assert 0 < found.se < 0.2


def test_the_published_worked_table_is_reproduced():
    arms = ["treatment", "placebo"]
    james = james_index(DISULFIRAM, arms)
    assert round(james.value, 3) == 0.896 and round(james.se, 3) == 0.011
    assert (round(james.lower, 3), round(james.upper, 3)) == (0.875, 0.918)
    bang = bang_indices(DISULFIRAM, arms)
    assert (round(bang["treatment"].value, 3), round(bang["treatment"].se, 3)) == (0.115, 0.018)
    assert (round(bang["placebo"].value, 3), round(bang["placebo"].se, 3)) == (0.022, 0.019)
    assert (round(bang["placebo"].lower, 3), round(bang["placebo"].upper, 3)) == (-0.016, 0.06)


def test_edge_cases():
    assert bang_index(arm_counts({}, "mdma")) is None
    everyone_unsure = {"mdma": {DONT_KNOW: 4}, "placebo": {DONT_KNOW: 3}}
    assert james_index(everyone_unsure, ARMS).value == 1.0 and james_index(everyone_unsure, ARMS).se == 0.0
    assert bang_indices(everyone_unsure, ARMS)["mdma"].value == 0.0
    assert james_index({}, ARMS) is None
    # Three arms: James' index is defined for two only; Bang's counts any other arm as incorrect.
    three = {"a": {"a": 2, "b": 1, "c": 1}}
    assert james_index(three, ["a", "b", "c"]) is None
    assert bang_indices(three, ["a", "b", "c"])["a"].value == pytest.approx(0.0)
    # All correct: complete unblinding, James 0 and Bang 1 in each arm.
    unblinded = {"mdma": {"mdma": 5}, "placebo": {"placebo": 5}}
    assert james_index(unblinded, ARMS).value == pytest.approx(0.0)
    assert bang_indices(unblinded, ARMS)["placebo"].value == 1.0


def test_pooled_distribution_names_no_arm():
    assert pooled_distribution(SEEDED) == {"mdma": 9, "placebo": 5, DONT_KNOW: 6}


counts = st.integers(min_value=0, max_value=60)
tables = st.fixed_dictionaries(
    {arm: st.fixed_dictionaries({"mdma": counts, "placebo": counts, DONT_KNOW: counts}) for arm in ARMS}
)


@given(tables)
def test_bang_stays_within_minus_one_and_one(table):
    for estimate in bang_indices(table, ARMS).values():
        if estimate is not None:
            assert -1 - 1e-12 <= estimate.value <= 1 + 1e-12
            assert estimate.se >= 0


@given(tables)
def test_james_stays_within_zero_and_one(table):
    estimate = james_index(table, ARMS)
    if estimate is not None:
        assert -1e-12 <= estimate.value <= 1 + 1e-12
        assert estimate.se >= 0 and not math.isnan(estimate.se)
