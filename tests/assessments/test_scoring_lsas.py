"""LSAS (clinician): fear / avoidance, performance / social-interaction split, total, cut-offs, descriptive bands."""

import pytest

from assessments.definitions import load_shipped_instruments
from assessments.scoring import score

PERFORMANCE = [1, 2, 3, 4, 6, 8, 9, 13, 14, 16, 17, 20, 21]
SOCIAL = [5, 7, 10, 11, 12, 15, 18, 19, 22, 23, 24]


@pytest.fixture(scope="module")
def lsas():
    return load_shipped_instruments()["LSAS"]


def answers(fear, avoid):
    """fear, avoid: functions situation number -> rating."""
    a = {}
    for k in range(1, 25):
        a[f"LSAS_{k:02d}_FEAR"] = fear(k)
        a[f"LSAS_{k:02d}_AVOID"] = avoid(k)
    return a


def test_performance_social_split(lsas):
    # fear: 3 in performance situations, 1 in social ones; avoidance: 0 performance, 2 social
    r = score(lsas, answers(lambda k: 3 if k in PERFORMANCE else 1, lambda k: 0 if k in PERFORMANCE else 2))
    values = {code: s.value for code, s in r.scales.items()}
    assert values == {
        "fear": 50,  # 13 x 3 + 11 x 1 = 39 + 11
        "avoidance": 22,  # 13 x 0 + 11 x 2
        "performance_fear": 39,  # 13 x 3
        "performance_avoidance": 0,
        "social_fear": 11,  # 11 x 1
        "social_avoidance": 22,  # 11 x 2
        "total": 72,  # 50 + 22
    }
    assert r.flags == {"probable_sad": 1, "generalized_subtype": 1}  # 72 >= 30, 72 >= 60
    assert r.bands == {"total": "marked"}  # 65 <= 72 < 80
    assert r.scales["total"].method == "sum_of_scales" and r.scales["total"].n_items == 48


def test_scale_item_lists(lsas):
    assert lsas.scale("performance_fear").items == tuple(f"LSAS_{k:02d}_FEAR" for k in PERFORMANCE)
    assert lsas.scale("social_avoidance").items == tuple(f"LSAS_{k:02d}_AVOID" for k in SOCIAL)
    assert lsas.item("LSAS_05_FEAR").text == "Situation 5 \u2014 fear or anxiety"
    assert lsas.respondent == "clinician"


def test_cutoff_edges_29_30_59_60(lsas):
    # all fear 1 (24) + avoidance 1 in situations 1-5 (5) = 29
    r = score(lsas, answers(lambda k: 1, lambda k: 1 if k <= 5 else 0))
    assert r.scales["total"].value == 29
    assert r.flags == {"probable_sad": 0, "generalized_subtype": 0}
    assert r.bands["total"] == "none"
    # one more avoidance point (situation 6): 30
    r = score(lsas, answers(lambda k: 1, lambda k: 1 if k <= 6 else 0))
    assert r.scales["total"].value == 30
    assert r.flags == {"probable_sad": 1, "generalized_subtype": 0}
    assert r.bands["total"] == "mild"
    # fear 2 in situations 1-11, else 1 (35) + all avoidance 1 (24) = 59
    r = score(lsas, answers(lambda k: 2 if k <= 11 else 1, lambda k: 1))
    assert r.scales["total"].value == 59
    assert r.flags == {"probable_sad": 1, "generalized_subtype": 0}
    # fear 2 in situations 1-12 (36) + 24 = 60
    r = score(lsas, answers(lambda k: 2 if k <= 12 else 1, lambda k: 1))
    assert r.scales["total"].value == 60
    assert r.flags == {"probable_sad": 1, "generalized_subtype": 1}
    assert r.bands["total"] == "moderate"  # 50 <= 60 < 65


@pytest.mark.parametrize(
    "total, band",
    [(0, "none"), (49, "mild"), (50, "moderate"), (64, "moderate"), (65, "marked"), (79, "marked"), (80, "severe"),
     (94, "severe"), (95, "very severe"), (144, "very severe")],
)  # fmt: skip
def test_band_edges(lsas, total, band):
    # spread `total` points over the 48 items, 3 at most each
    remaining = total
    a = {}
    for code in lsas.item_codes:
        a[code] = min(3, remaining)
        remaining -= a[code]
    r = score(lsas, a)
    assert r.scales["total"].value == total
    assert r.bands["total"] == band
    assert lsas.bands_for("total").normative is False


def test_missing_avoidance_item(lsas):
    a = answers(lambda k: 1, lambda k: 1)
    del a["LSAS_07_AVOID"]  # a social-interaction situation
    r = score(lsas, a)
    assert r.scales["fear"].value == 24
    assert r.scales["avoidance"].value is None
    assert r.scales["social_avoidance"].value is None
    assert r.scales["performance_avoidance"].value == 13
    total = r.scales["total"]
    assert total.value is None and (total.n_items, total.n_missing) == (48, 1)
    assert r.flags == {"probable_sad": None, "generalized_subtype": None}
    assert r.bands == {"total": None}
