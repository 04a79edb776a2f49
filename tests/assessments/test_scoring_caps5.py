"""CAPS-5: totals, clusters, DSM-5 diagnosis (criterion A + severity-2 rule + duration + distress) and dissociative
subtype. Every case is computed by hand: each criterion on both sides of its threshold, all others met."""

import pytest

from assessments.definitions import load_shipped_instruments, load_superseded_instruments
from assessments.scoring import score


@pytest.fixture(scope="module")
def caps5():
    return load_shipped_instruments()["CAPS5"]


def answers(severities, crit_a=1, dur=1, distress=1, depers=0, dereal=0):
    assert len(severities) == 20
    a = {f"CAPS5_{i:02d}": v for i, v in enumerate(severities, start=1)}
    a.update(
        {
            "CAPS5_CRIT_A": crit_a,
            "CAPS5_DUR": dur,
            "CAPS5_DISTRESS": distress,
            "CAPS5_DEPERS": depers,
            "CAPS5_DEREAL": dereal,
        }
    )
    return a


# severity 2 on items 1 (B), 6 (C), 8, 9 (D), 15, 16 (E); everything else 0: exactly the minimum counts
MINIMUM = [2, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]
CLUSTER_ITEMS = {"B": range(1, 6), "C": range(6, 8), "D": range(8, 15), "E": range(15, 21)}


def test_diagnosis_at_minimum(caps5):
    r = score(caps5, answers(MINIMUM, dereal=1))
    # total = 6 x 2 = 12; B = 2; C = 2; D = 2+2 = 4; E = 2+2 = 4
    assert {k: s.value for k, s in r.scales.items()} == {
        "total": 12,
        "cluster_b": 2,
        "cluster_c": 2,
        "cluster_d": 4,
        "cluster_e": 4,
    }
    assert r.flags == {"ptsd_diagnosis": 1, "dissociative_subtype": 0}  # DEREAL 1 is below 2


def test_total_is_items_1_to_20_only(caps5):
    r = score(caps5, answers([4] * 20, depers=4, dereal=4))
    assert r.scales["total"].value == 80  # 20 x 4; CRIT_A / DEPERS / DEREAL / DUR / DISTRESS are not summed
    assert r.scales["total"].n_items == 20


# --- criterion A ---------------------------------------------------------------------------------------------------


def test_criterion_a_is_an_item_of_its_own(caps5):
    item = caps5.item("CAPS5_CRIT_A")
    assert item.required and item.values == (0, 1)
    assert caps5.version == "1.1"


@pytest.mark.parametrize("crit_a, expected", [(1, 1), (0, 0)])
def test_criterion_a_decides_at_the_minimum(caps5, crit_a, expected):
    r = score(caps5, answers(MINIMUM, crit_a=crit_a, depers=3))
    assert r.flags == {"ptsd_diagnosis": expected, "dissociative_subtype": expected}


def test_no_diagnosis_without_criterion_a_even_at_maximum_severity(caps5):
    r = score(caps5, answers([4] * 20, crit_a=0, depers=4, dereal=4))
    assert r.scales["total"].value == 80  # the scales do not depend on criterion A
    assert r.flags == {"ptsd_diagnosis": 0, "dissociative_subtype": 0}


def test_unanswered_criterion_a_leaves_the_diagnosis_unknown(caps5):
    a = answers(MINIMUM)
    del a["CAPS5_CRIT_A"]
    r = score(caps5, a)
    assert r.scales["total"].value == 12
    assert r.flags == {"ptsd_diagnosis": None, "dissociative_subtype": None}


# --- symptom clusters: each count one short and at its minimum (B 1, C 1, D 2, E 2) ---------------------------------


@pytest.mark.parametrize("item", [1, 6, 9, 16])
def test_one_symptom_short(caps5, item):
    severities = list(MINIMUM)
    severities[item - 1] = 1  # severity 1 (mild / subthreshold) does not count
    r = score(caps5, answers(severities, depers=4))
    assert r.flags == {"ptsd_diagnosis": 0, "dissociative_subtype": 0}


@pytest.mark.parametrize(
    "cluster, endorsed, expected",
    [
        ("B", [], 0),
        ("B", [5], 1),
        ("C", [], 0),
        ("C", [7], 1),
        ("D", [14], 0),
        ("D", [11, 14], 1),
        ("E", [20], 0),
        ("E", [18, 20], 1),
    ],
)
def test_each_cluster_count_on_both_sides(caps5, cluster, endorsed, expected):
    """The other clusters at their minimum; this cluster's items at 0 except ``endorsed`` (at severity 2)."""
    severities = list(MINIMUM)
    for i in CLUSTER_ITEMS[cluster]:
        severities[i - 1] = 2 if i in endorsed else 0
    r = score(caps5, answers(severities))
    assert r.flags["ptsd_diagnosis"] == expected


def test_a_full_cluster_does_not_make_up_for_an_empty_one(caps5):
    # B, D, E at 4 throughout (total 72); C at 0: counts B 5, C 0, D 7, E 6.
    severities = [4] * 20
    severities[5] = severities[6] = 0
    r = score(caps5, answers(severities))
    assert (r.scales["total"].value, r.scales["cluster_c"].value) == (72, 0)
    assert r.flags["ptsd_diagnosis"] == 0


@pytest.mark.parametrize("value, expected", [(1, 0), (2, 1), (3, 1), (4, 1)])
def test_severity_two_is_the_threshold(caps5, value, expected):
    # Item 15 carries the second E symptom: E counts 1 + (value >= 2).
    severities = list(MINIMUM)
    severities[14] = value
    assert score(caps5, answers(severities)).flags["ptsd_diagnosis"] == expected


# --- duration (criterion F) and distress (criterion G) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "dur, distress, expected", [(1, 1, 1), (0, 1, 0), (1, 0, 0), (0, 0, 0)], ids=["both", "dur0", "distress0", "none"]
)
def test_duration_and_distress_required(caps5, dur, distress, expected):
    r = score(caps5, answers(MINIMUM, dur=dur, distress=distress, depers=4, dereal=4))
    assert r.flags == {"ptsd_diagnosis": expected, "dissociative_subtype": expected}  # no diagnosis, no subtype


# --- dissociative subtype -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("depers, dereal, expected", [(2, 0, 1), (0, 2, 1), (3, 4, 1), (1, 1, 0), (0, 0, 0), (1, 2, 1)])
def test_dissociative_subtype(caps5, depers, dereal, expected):
    r = score(caps5, answers(MINIMUM, depers=depers, dereal=dereal))
    assert r.flags["ptsd_diagnosis"] == 1
    assert r.flags["dissociative_subtype"] == expected


@pytest.mark.parametrize("crit_a, dur, distress", [(0, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_dissociative_subtype_follows_the_diagnosis(caps5, crit_a, dur, distress):
    r = score(caps5, answers(MINIMUM, crit_a=crit_a, dur=dur, distress=distress, depers=4, dereal=4))
    assert r.flags == {"ptsd_diagnosis": 0, "dissociative_subtype": 0}


def test_missing_dissociation_item_leaves_subtype_unknown(caps5):
    a = answers(MINIMUM)
    del a["CAPS5_DEPERS"]
    r = score(caps5, a)
    assert r.flags == {"ptsd_diagnosis": 1, "dissociative_subtype": None}


def test_missing_symptom_item(caps5):
    a = answers(MINIMUM)
    del a["CAPS5_03"]
    r = score(caps5, a)
    assert r.scales["total"].value is None and r.scales["total"].n_missing == 1
    assert r.scales["cluster_b"].value is None
    assert r.scales["cluster_d"].value == 4
    assert r.flags == {"ptsd_diagnosis": None, "dissociative_subtype": None}


# --- version 1.0 stays as it was ------------------------------------------------------------------------------------


def test_version_1_0_is_kept_unchanged_for_responses_stored_under_it(caps5):
    old = load_superseded_instruments()[("CAPS5", "1.0")]
    assert "CAPS5_CRIT_A" not in old.item_codes and caps5.item_codes == ("CAPS5_CRIT_A", *old.item_codes)
    a = answers(MINIMUM, depers=2)
    del a["CAPS5_CRIT_A"]
    # 1.0 omitted criterion A: the answers it stored keep the diagnosis it gave.
    assert score(old, a).flags == {"ptsd_diagnosis": 1, "dissociative_subtype": 1}
    assert score(old, a).instrument_version == "1.0"


def test_codes_only_no_prompt_text(caps5):
    assert caps5.item_text_status == "neutral_labels"
    assert caps5.respondent == "clinician" and "participant" not in caps5.entry_roles
    assert caps5.item("CAPS5_07").text == "CAPS-5 item 7 severity"
    assert caps5.item_codes[0] == "CAPS5_CRIT_A"
    assert caps5.item_codes[-4:] == ("CAPS5_DUR", "CAPS5_DISTRESS", "CAPS5_DEPERS", "CAPS5_DEREAL")
