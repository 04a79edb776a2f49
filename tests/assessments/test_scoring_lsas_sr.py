"""LSAS-SR (self-report): same structure and scoring as the clinician version, its own item codes."""

import pytest

from assessments.definitions import load_shipped_instruments
from assessments.scoring import score

PERFORMANCE = {1, 2, 3, 4, 6, 8, 9, 13, 14, 16, 17, 20, 21}


@pytest.fixture(scope="module")
def lsas_sr():
    return load_shipped_instruments()["LSAS_SR"]


def test_codes_and_respondent(lsas_sr):
    assert lsas_sr.respondent == "self"
    assert len(lsas_sr.items) == 48
    assert lsas_sr.item_codes[:2] == ("LSAS_SR_01_FEAR", "LSAS_SR_01_AVOID")
    assert lsas_sr.item("LSAS_SR_24_AVOID").text == "Situation 24 \u2014 avoidance"


def test_example(lsas_sr):
    a = {}
    for k in range(1, 25):
        a[f"LSAS_SR_{k:02d}_FEAR"] = 2 if k in PERFORMANCE else 3
        a[f"LSAS_SR_{k:02d}_AVOID"] = 1 if k in PERFORMANCE else 0
    r = score(lsas_sr, a)
    assert r.scales["performance_fear"].value == 26  # 13 x 2
    assert r.scales["social_fear"].value == 33  # 11 x 3
    assert r.scales["fear"].value == 59  # 26 + 33
    assert r.scales["performance_avoidance"].value == 13  # 13 x 1
    assert r.scales["social_avoidance"].value == 0
    assert r.scales["avoidance"].value == 13
    assert r.scales["total"].value == 72  # 59 + 13
    assert r.flags == {"probable_sad": 1, "generalized_subtype": 1}
    assert r.bands == {"total": "marked"}


def test_low_scores(lsas_sr):
    r = score(lsas_sr, dict.fromkeys(lsas_sr.item_codes, 0))
    assert r.scales["total"].value == 0
    assert r.flags == {"probable_sad": 0, "generalized_subtype": 0}
    assert r.bands == {"total": "none"}
