"""CAPS-5: totals, clusters, DSM-5 diagnosis (severity-2 rule + duration + distress) and dissociative subtype."""

import pytest

from assessments.definitions import load_shipped_instruments
from assessments.scoring import score


@pytest.fixture(scope="module")
def caps5():
    return load_shipped_instruments()["CAPS5"]


def answers(severities, dur=1, distress=1, depers=0, dereal=0):
    assert len(severities) == 20
    a = {f"CAPS5_{i:02d}": v for i, v in enumerate(severities, start=1)}
    a.update({"CAPS5_DUR": dur, "CAPS5_DISTRESS": distress, "CAPS5_DEPERS": depers, "CAPS5_DEREAL": dereal})
    return a


# severity 2 on items 1 (B), 6 (C), 8, 9 (D), 15, 16 (E); everything else 0: exactly the minimum counts
MINIMUM = [2, 0, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0]


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
    assert r.scales["total"].value == 80  # 20 x 4; DEPERS / DEREAL / DUR / DISTRESS are not summed
    assert r.scales["total"].n_items == 20


@pytest.mark.parametrize("depers, dereal, expected", [(2, 0, 1), (0, 2, 1), (3, 4, 1), (1, 1, 0), (0, 0, 0)])
def test_dissociative_subtype(caps5, depers, dereal, expected):
    r = score(caps5, answers(MINIMUM, depers=depers, dereal=dereal))
    assert r.flags["ptsd_diagnosis"] == 1
    assert r.flags["dissociative_subtype"] == expected


@pytest.mark.parametrize("dur, distress", [(0, 1), (1, 0), (0, 0)])
def test_duration_and_distress_required(caps5, dur, distress):
    r = score(caps5, answers(MINIMUM, dur=dur, distress=distress, depers=4, dereal=4))
    assert r.flags == {"ptsd_diagnosis": 0, "dissociative_subtype": 0}  # no diagnosis, so no subtype


@pytest.mark.parametrize("item", [1, 6, 9, 16])
def test_one_symptom_short(caps5, item):
    severities = list(MINIMUM)
    severities[item - 1] = 1  # severity 1 (mild / subthreshold) does not count
    r = score(caps5, answers(severities))
    assert r.flags["ptsd_diagnosis"] == 0


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


def test_codes_only_no_prompt_text(caps5):
    assert caps5.item_text_status == "neutral_labels"
    assert caps5.respondent == "clinician" and "participant" not in caps5.entry_roles
    assert caps5.item("CAPS5_07").text == "CAPS-5 item 7 severity"
    assert caps5.item_codes[-4:] == ("CAPS5_DUR", "CAPS5_DISTRESS", "CAPS5_DEPERS", "CAPS5_DEREAL")
