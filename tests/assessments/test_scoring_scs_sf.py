"""SCS-SF (12 items): total after reversing SJ, IS, OI; cs / ucs unreversed; subscales flagged not recommended."""

import pytest

from assessments.definitions import load_shipped_instruments
from assessments.scoring import score


@pytest.fixture(scope="module")
def sf():
    return load_shipped_instruments()["SCS_SF"]


def answers(values):
    assert len(values) == 12
    return {f"SCS_SF_{i:02d}": v for i, v in enumerate(values, start=1)}


#         1  2  3  4  5  6  7  8  9 10 11 12
EXAMPLE = [2, 4, 4, 1, 3, 5, 4, 2, 3, 4, 2, 1]


def test_example(sf):
    r = score(sf, answers(EXAMPLE))
    # negative items 1, 4, 8, 9, 11, 12 raw: 2, 1, 2, 3, 2, 1 (sum 11); reversed 4, 5, 4, 3, 4, 5 (sum 25)
    # positive items 2, 3, 5, 6, 7, 10: 4, 4, 3, 5, 4, 4 (sum 24)
    assert r.scales["total"].value == 49 / 12  # (24 + 25) / 12
    assert r.scales["total"].method == "mean_after_reversal"
    assert r.scales["cs"].value == 4.0  # 24 / 6
    assert r.scales["ucs"].value == 11 / 6  # unreversed
    assert r.scales["self_kindness"].value == 4.5  # items 2, 6: (4 + 5) / 2
    assert r.scales["self_judgment"].value == 1.5  # items 11, 12: (2 + 1) / 2
    assert r.scales["common_humanity"].value == 3.5  # items 5, 10: (3 + 4) / 2
    assert r.scales["isolation"].value == 1.5  # items 4, 8: (1 + 2) / 2
    assert r.scales["mindfulness"].value == 4.0  # items 3, 7: (4 + 4) / 2
    assert r.scales["over_identification"].value == 2.5  # items 1, 9: (2 + 3) / 2


def test_total_eleven_thirds_exactly(sf):
    # all 3, except positive items 2, 3, 5, 6 at 5: 36 + 4 x 2 = 44; 44 / 12 = 11 / 3
    values = [3] * 12
    for i in (2, 3, 5, 6):
        values[i - 1] = 5
    r = score(sf, answers(values))
    assert r.scales["total"].value == 11 / 3
    assert r.scales["cs"].value == 13 / 3  # (5 + 5 + 5 + 5 + 3 + 3) / 6 = 26 / 6
    assert r.scales["ucs"].value == 3.0


def test_subscales_not_recommended(sf):
    r = score(sf, answers(EXAMPLE))
    for code in (
        "self_kindness",
        "self_judgment",
        "common_humanity",
        "isolation",
        "mindfulness",
        "over_identification",
    ):
        assert r.scales[code].recommended is False
        assert "advise against" in sf.scale(code).note
    for code in ("total", "cs", "ucs"):
        assert r.scales[code].recommended is True


def test_reversed_items(sf):
    assert sf.scale("total").reversed == frozenset(
        {"SCS_SF_01", "SCS_SF_04", "SCS_SF_08", "SCS_SF_09", "SCS_SF_11", "SCS_SF_12"}
    )
    # every negative item at 5, every positive at 1: the least self-compassionate profile
    r = score(sf, answers([5, 1, 1, 5, 1, 1, 1, 5, 5, 1, 5, 5]))
    assert r.scales["total"].value == 1.0
    assert (r.scales["cs"].value, r.scales["ucs"].value) == (1.0, 5.0)


def test_missing_item(sf):
    a = answers(EXAMPLE)
    del a["SCS_SF_04"]
    r = score(sf, a)
    assert r.scales["total"].value is None
    assert r.scales["ucs"].value is None and r.scales["isolation"].value is None
    assert r.scales["cs"].value == 4.0
