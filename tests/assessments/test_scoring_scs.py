"""SCS (26 items): subscale means (negatives unreversed), Neff total, cs / ucs, bands, 26-item-mean variant."""

import copy
from fractions import Fraction

import pytest

from assessments.definitions import load_shipped_instruments, parse_instrument
from assessments.scoring import score

SUBSCALES = {
    "self_kindness": [5, 12, 19, 23, 26],
    "self_judgment": [1, 8, 11, 16, 21],
    "common_humanity": [3, 7, 10, 15],
    "isolation": [4, 13, 18, 25],
    "mindfulness": [9, 14, 17, 22],
    "over_identification": [2, 6, 20, 24],
}
NEGATIVE = ("self_judgment", "isolation", "over_identification")

# hand-made answers, listed per subscale in the item order above
EXAMPLE = {
    "self_kindness": [4, 4, 4, 3, 4],  # 19 / 5 = 3.8
    "self_judgment": [2, 2, 3, 2, 2],  # 11 / 5 = 2.2
    "common_humanity": [4, 3, 4, 4],  # 15 / 4 = 3.75
    "isolation": [2, 1, 2, 2],  # 7 / 4 = 1.75
    "mindfulness": [4, 4, 4, 3],  # 15 / 4 = 3.75
    "over_identification": [3, 2, 2, 2],  # 9 / 4 = 2.25
}


@pytest.fixture(scope="module")
def scs():
    return load_shipped_instruments()["SCS"]


def answers(per_subscale):
    a = {}
    for name, values in per_subscale.items():
        for item, value in zip(SUBSCALES[name], values, strict=True):
            a[f"SCS_{item:02d}"] = value
    assert len(a) == 26
    return a


def uniform(positive, negative):
    return answers({n: [negative if n in NEGATIVE else positive] * len(i) for n, i in SUBSCALES.items()})


def test_subscales_are_unreversed_means(scs):
    r = score(scs, answers(EXAMPLE))
    assert r.scales["self_kindness"].value == 3.8
    assert r.scales["self_judgment"].value == 2.2  # higher = more self-judgment (not reversed)
    assert r.scales["common_humanity"].value == 3.75
    assert r.scales["isolation"].value == 1.75
    assert r.scales["mindfulness"].value == 3.75
    assert r.scales["over_identification"].value == 2.25
    assert all(r.scales[name].method == "mean" for name in SUBSCALES)


def test_total_by_neff_method(scs):
    r = score(scs, answers(EXAMPLE))
    # (3.8 + (6 - 2.2) + 3.75 + (6 - 1.75) + 3.75 + (6 - 2.25)) / 6
    # = (3.8 + 3.8 + 3.75 + 4.25 + 3.75 + 3.75) / 6 = 23.1 / 6 = 3.85
    assert r.scales["total"].value == 3.85
    assert r.scales["total"].method == "neff_mean_of_subscale_means"
    assert r.bands == {"total": "high"}  # 3.5 <= 3.85 <= 5


def test_cs_and_ucs(scs):
    r = score(scs, answers(EXAMPLE))
    # cs = (19 + 15 + 15) / 13 = 49 / 13; ucs = (11 + 7 + 9) / 13 = 27 / 13, unreversed
    assert r.scales["cs"].value == 49 / 13
    assert r.scales["ucs"].value == 27 / 13
    assert r.scales["cs"].n_items == r.scales["ucs"].n_items == 13


def scs_with_26_item_mean(scs):
    data = copy.deepcopy(scs.raw)
    total = next(s for s in data["scales"] if s["code"] == "total")
    negative_items = [f"SCS_{i:02d}" for name in NEGATIVE for i in SUBSCALES[name]]
    total.clear()
    total.update(
        code="total",
        label="Mean of the 26 items after reversal",
        method="mean",
        method_name="mean_of_items_after_reversal",
        items=[f"SCS_{i:02d}" for i in range(1, 27)],
        reversed=negative_items,
        range={"min": 1, "max": 5},
    )
    return parse_instrument(data)


def test_neff_total_differs_from_26_item_mean(scs):
    a = answers(EXAMPLE)
    neff = score(scs, a).scales["total"]
    item_mean = score(scs_with_26_item_mean(scs), a).scales["total"]
    # positive item sums 19 + 15 + 15 = 49; reversed negatives: 5 x 6 - 11 = 19, 4 x 6 - 7 = 17, 4 x 6 - 9 = 15
    # (49 + 19 + 17 + 15) / 26 = 100 / 26 = 50 / 13 = 3.8461...
    assert item_mean.value == 50 / 13
    assert item_mean.method == "mean_of_items_after_reversal"
    assert neff.value == 3.85
    assert neff.value != item_mean.value


@pytest.mark.parametrize(
    "positive, negative, total, band",
    [
        (5, 1, 5.0, "high"),  # (5 + 5 + 5 + 5 + 5 + 5) / 6
        (1, 5, 1.0, "low"),  # (1 + 1 + ...) / 6
        (3, 3, 3.0, "moderate"),
        (2, 3, 2.5, "moderate"),  # (2 + 3) x 3 / 6 = 2.5: the lower edge belongs to "moderate"
        (4, 3, 3.5, "high"),  # (4 + 3) x 3 / 6 = 3.5: the lower edge belongs to "high"
        (2, 4, 2.0, "low"),  # (2 + 2) x 3 / 6
    ],
)
def test_total_and_band_edges(scs, positive, negative, total, band):
    r = score(scs, uniform(positive, negative))
    assert r.scales["total"].value == total
    assert r.bands["total"] == band
    assert r.scales["cs"].value == positive
    assert r.scales["ucs"].value == negative  # unreversed


def test_missing_item_blocks_dependent_scores(scs):
    a = answers(EXAMPLE)
    del a["SCS_26"]  # a self-kindness item
    r = score(scs, a)
    assert r.scales["self_kindness"].value is None
    assert r.scales["cs"].value is None
    total = r.scales["total"]
    assert total.value is None and not total.complete and (total.n_items, total.n_missing) == (26, 1)
    assert r.scales["ucs"].value == 27 / 13
    assert r.bands == {"total": None}


def test_full_precision_not_rounded(scs):
    r = score(scs, answers(EXAMPLE))
    assert Fraction(r.scales["cs"].value) == Fraction(49 / 13)
    assert r.scales["cs"].value != round(49 / 13, 2)
