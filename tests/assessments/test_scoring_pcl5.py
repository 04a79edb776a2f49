"""PCL-5: hand-computed totals, clusters, provisional diagnosis edges and the cut-off edge."""

import pytest

from assessments.definitions import load_shipped_instruments, validate_answers
from assessments.scoring import SCORING_VERSION, InvalidAnswersError, change_categories, score


@pytest.fixture(scope="module")
def pcl5():
    return load_shipped_instruments()["PCL5"]


def answers(values):
    """values: list of 20 ratings for items 1..20."""
    assert len(values) == 20
    return {f"PCL5_{i:02d}": v for i, v in enumerate(values, start=1)}


def test_mixed_example(pcl5):
    #          B: 1  2  3  4  5 | C: 6  7 | D: 8  9 10 11 12 13 14 | E: 15 16 17 18 19 20
    values = [1, 2, 3, 4, 0, 2, 1, 0, 1, 2, 3, 4, 0, 1, 2, 2, 0, 1, 3, 4]
    r = score(pcl5, answers(values))
    # B = 1+2+3+4+0 = 10; C = 2+1 = 3; D = 0+1+2+3+4+0+1 = 11; E = 2+2+0+1+3+4 = 12; total = 36
    assert r.scales["cluster_b"].value == 10
    assert r.scales["cluster_c"].value == 3
    assert r.scales["cluster_d"].value == 11
    assert r.scales["cluster_e"].value == 12
    assert r.scales["total"].value == 36
    # endorsed (>= 2): B items 2,3,4 (3); C item 6 (1); D items 10,11,12 (3); E items 15,16,19,20 (4) -> met
    assert r.flags["provisional_ptsd"] == 1
    assert r.flags["probable_ptsd_cutoff"] == 1  # 36 >= 33
    total = r.scales["total"]
    assert (total.method, total.n_items, total.n_missing, total.complete, total.prorated) == ("sum", 20, 0, True, False)
    assert r.instrument_version == "1.0" and r.scoring_version == SCORING_VERSION
    assert r.bands == {}  # no empirical severity bands exist for the PCL-5


def test_all_zero(pcl5):
    r = score(pcl5, answers([0] * 20))
    assert r.scales["total"].value == 0
    assert r.flags == {"provisional_ptsd": 0, "probable_ptsd_cutoff": 0}


# exactly the minimum: one B (item 1), one C (item 6), two D (items 8, 9), two E (items 15, 16) rated 2, rest 1
MINIMUM = [2, 1, 1, 1, 1, 2, 1, 2, 2, 1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1]


def test_provisional_exactly_at_minimum_counts(pcl5):
    r = score(pcl5, answers(MINIMUM))
    assert r.flags["provisional_ptsd"] == 1
    # total = 6 x 2 + 14 x 1 = 26: below the cut-off although the cluster rule is met
    assert r.scales["total"].value == 26
    assert r.flags["probable_ptsd_cutoff"] == 0


@pytest.mark.parametrize(
    "item, cluster",
    [(1, "B"), (6, "C"), (9, "D"), (16, "E")],
)
def test_provisional_one_short_in_any_cluster(pcl5, item, cluster):
    values = list(MINIMUM)
    values[item - 1] = 1  # rated 1 ("A little bit") does not count as endorsed
    r = score(pcl5, answers(values))
    assert r.flags["provisional_ptsd"] == 0, cluster


def test_items_rated_one_never_count(pcl5):
    r = score(pcl5, answers([1] * 20))
    assert r.scales["total"].value == 20  # 20 x 1
    assert r.flags["provisional_ptsd"] == 0


def test_cutoff_edge_32_33(pcl5):
    values = [4] * 8 + [0] * 12  # 8 x 4 = 32
    r = score(pcl5, answers(values))
    assert r.scales["total"].value == 32
    assert r.flags["probable_ptsd_cutoff"] == 0
    values[8] = 1  # 32 + 1 = 33
    r = score(pcl5, answers(values))
    assert r.scales["total"].value == 33
    assert r.flags["probable_ptsd_cutoff"] == 1


def test_missing_item_means_no_total_and_unknown_flags(pcl5):
    a = answers(MINIMUM)
    del a["PCL5_20"]
    r = score(pcl5, a)
    total = r.scales["total"]
    assert total.value is None and not total.complete and not total.prorated
    assert (total.n_items, total.n_missing) == (20, 1)
    assert r.scales["cluster_e"].value is None
    assert r.scales["cluster_b"].value == 6  # 2+1+1+1+1, unaffected
    assert r.flags == {"provisional_ptsd": None, "probable_ptsd_cutoff": None}
    assert not r.complete


def test_change_thresholds_from_file(pcl5):
    assert change_categories(pcl5, "total", 40, 36) == []  # drop of 4
    assert change_categories(pcl5, "total", 40, 35) == ["response"]  # drop of 5
    assert change_categories(pcl5, "total", 40, 30) == ["response", "clinically_meaningful"]  # drop of 10
    assert change_categories(pcl5, "total", 30, 40) == []  # a rise is not an improvement


def test_safety_rule_declared(pcl5):
    assert pcl5.safety_rules == (
        {
            "code": "pcl5_rise_from_baseline",
            "type": "rise_from_baseline",
            "scale": "total",
            "gte": 10,
            "severity": "medium",
            "note": "Total 10 or more points above the participant's baseline.",
        },
    )


def test_invalid_answers_rejected(pcl5):
    a = answers([0] * 20)
    a.update({"PCL5_01": "3", "PCL5_02": 5, "PCL5_03": 2.0, "PCL5_04": True})
    errors = validate_answers(pcl5, a, require_complete=True)
    assert set(errors) == {"PCL5_01", "PCL5_02", "PCL5_03", "PCL5_04"}
    assert "wrong type" in errors["PCL5_01"][0]
    assert "not an option" in errors["PCL5_02"][0]
    with pytest.raises(InvalidAnswersError):
        score(pcl5, a)


def test_item_text_is_the_public_domain_wording(pcl5):
    assert pcl5.item_text_status == "verbatim"
    assert pcl5.item("PCL5_01").text == "Repeated, disturbing, and unwanted memories of the stressful experience?"
    assert pcl5.item("PCL5_20").text == "Trouble falling or staying asleep?"
    assert [o.label for o in pcl5.item("PCL5_07").options] == [
        "Not at all",
        "A little bit",
        "Moderately",
        "Quite a bit",
        "Extremely",
    ]
