"""Properties of the engine over every shipped instrument (Hypothesis)."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessments.definitions import load_shipped_instruments, parse_instrument, validate_answers, visible_items
from assessments.scoring import SCORING_VERSION, score

INSTRUMENTS = load_shipped_instruments()
CODES = sorted(INSTRUMENTS)
SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def complete_answers(draw, instrument):
    """Answers to every visible item, drawn item by item so branching follows earlier answers."""
    answers = {}
    for item in instrument.items:
        if item.code in {it.code for it in visible_items(instrument, answers)}:
            answers[item.code] = draw(st.sampled_from(item.values))
    return answers


def underlying_items(instrument, scale):
    if scale.method in ("sum", "mean"):
        return set(scale.items)
    out = set()
    for code in scale.scales:
        out |= underlying_items(instrument, instrument.scale(code))
    return out


@pytest.mark.parametrize("code", CODES)
@SETTINGS
@given(data=st.data())
def test_complete_answers_score_within_declared_ranges(code, data):
    instrument = INSTRUMENTS[code]
    answers = data.draw(complete_answers(instrument))
    assert validate_answers(instrument, answers, require_complete=True) == {}
    result = score(instrument, answers)
    assert result.complete
    assert (result.instrument_version, result.scoring_version) == (instrument.version, SCORING_VERSION)
    for scale in instrument.scales:
        s = result.scales[scale.code]
        assert s.complete and not s.prorated and s.n_missing == 0
        assert scale.range_min <= s.value <= scale.range_max
        if instrument.bands_for(scale.code):
            assert result.bands[scale.code] is not None
    for flag in instrument.flags:
        value = result.flags[flag.code]
        if flag.rule["type"] == "cssrs_risk":
            assert value in {"none", "low", "moderate", "high"}
        else:
            assert value in (0, 1)


@pytest.mark.parametrize("code", [c for c in CODES if INSTRUMENTS[c].scales])
@SETTINGS
@given(data=st.data())
def test_incomplete_answers_are_never_scored(code, data):
    instrument = INSTRUMENTS[code]
    answers = data.draw(complete_answers(instrument))
    dropped = set(data.draw(st.lists(st.sampled_from(sorted(answers)), min_size=1, unique=True)))
    partial = {k: v for k, v in answers.items() if k not in dropped}
    result = score(instrument, partial)
    assert not result.complete
    for scale in instrument.scales:
        s = result.scales[scale.code]
        missing = underlying_items(instrument, scale) & dropped
        assert s.n_missing == len(missing)
        if missing:
            assert s.value is None and not s.complete and not s.prorated
        else:
            assert s.value == score(instrument, answers).scales[scale.code].value
    for flag in instrument.flags:
        if flag.rule["type"] == "cutoff":
            depends_on = result.scales[flag.rule["scale"]]
            assert (result.flags[flag.code] is None) == (depends_on.value is None)


@SETTINGS
@given(data=st.data())
def test_prorating_only_when_declared_and_marked(data):
    pcl5 = copy.deepcopy(INSTRUMENTS["PCL5"].raw)
    pcl5["missing_data"] = {"rule": "prorate_mean", "max_missing_fraction": 0.2}
    instrument = parse_instrument(pcl5)
    answers = data.draw(complete_answers(instrument))
    dropped = set(data.draw(st.lists(st.sampled_from(sorted(answers)), min_size=1, max_size=6, unique=True)))
    partial = {k: v for k, v in answers.items() if k not in dropped}
    total = score(instrument, partial).scales["total"]
    assert not total.complete and total.n_missing == len(dropped)
    if len(dropped) <= 4:  # 4 / 20 = 20 %
        answered = [v for k, v in partial.items()]
        assert total.prorated and total.value == pytest.approx(sum(answered) / len(answered) * 20, abs=1e-9)
        assert 0 <= total.value <= 80
    else:
        assert total.value is None and not total.prorated


def reverse_all(answers):
    return {k: 6 - v for k, v in answers.items()}


@SETTINGS
@given(data=st.data())
def test_scs_reversal_symmetry(data):
    scs = INSTRUMENTS["SCS"]
    answers = data.draw(complete_answers(scs))
    r = score(scs, answers)
    flipped = score(scs, reverse_all(answers))
    for code in ("total", "cs", "ucs", "self_kindness", "self_judgment", "isolation"):
        assert flipped.scales[code].value == pytest.approx(6 - r.scales[code].value, abs=1e-12)
    # the uncompassionate items unreversed, flipped, are what the compassionate items were
    cs, ucs = r.scales["cs"].value, r.scales["ucs"].value
    assert flipped.scales["ucs"].value == pytest.approx(6 - ucs, abs=1e-12)
    assert 1 <= cs <= 5 and 1 <= ucs <= 5


@SETTINGS
@given(data=st.data())
def test_scs_sf_total_is_midpoint_of_cs_and_reversed_ucs(data):
    sf = INSTRUMENTS["SCS_SF"]
    answers = data.draw(complete_answers(sf))
    r = score(sf, answers)
    cs, ucs, total = (r.scales[c].value for c in ("cs", "ucs", "total"))
    # 6 positive and 6 negative items: total = (6 cs + 6 (6 - ucs)) / 12
    assert total == pytest.approx((cs + 6 - ucs) / 2, abs=1e-12)
    flipped = score(sf, reverse_all(answers))
    assert flipped.scales["total"].value == pytest.approx(6 - total, abs=1e-12)
    assert (flipped.scales["cs"].value, flipped.scales["ucs"].value) == pytest.approx((6 - cs, 6 - ucs), abs=1e-12)


@SETTINGS
@given(data=st.data())
def test_scs_neff_total_vs_cs_ucs(data):
    scs = INSTRUMENTS["SCS"]
    r = score(scs, data.draw(complete_answers(scs)))
    v = {code: s.value for code, s in r.scales.items()}
    neg = ("self_judgment", "isolation", "over_identification")
    expected = sum(6 - v[c] if c in neg else v[c] for c in (*neg, "self_kindness", "common_humanity", "mindfulness"))
    assert v["total"] == pytest.approx(expected / 6, abs=1e-12)
    # cs and ucs are item-weighted means of their three subscales (5, 4 and 4 items)
    cs = (5 * v["self_kindness"] + 4 * v["common_humanity"] + 4 * v["mindfulness"]) / 13
    ucs = (5 * v["self_judgment"] + 4 * v["isolation"] + 4 * v["over_identification"]) / 13
    assert (v["cs"], v["ucs"]) == pytest.approx((cs, ucs), abs=1e-12)


@pytest.mark.parametrize("code", ["LSAS", "LSAS_SR"])
@SETTINGS
@given(data=st.data())
def test_lsas_parts_add_up(code, data):
    instrument = INSTRUMENTS[code]
    v = {c: s.value for c, s in score(instrument, data.draw(complete_answers(instrument))).scales.items()}
    assert v["total"] == v["fear"] + v["avoidance"]
    assert v["fear"] == v["performance_fear"] + v["social_fear"]
    assert v["avoidance"] == v["performance_avoidance"] + v["social_avoidance"]


@pytest.mark.parametrize("code", ["PCL5", "CAPS5"])
@SETTINGS
@given(data=st.data())
def test_ptsd_clusters_add_up(code, data):
    instrument = INSTRUMENTS[code]
    r = score(instrument, data.draw(complete_answers(instrument)))
    v = {c: s.value for c, s in r.scales.items()}
    assert v["total"] == v["cluster_b"] + v["cluster_c"] + v["cluster_d"] + v["cluster_e"]
    if code == "CAPS5" and r.flags["dissociative_subtype"] == 1:
        assert r.flags["ptsd_diagnosis"] == 1
