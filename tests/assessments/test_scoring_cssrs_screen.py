"""C-SSRS screener: branching (visible items, hidden answers refused) and every risk level."""

import copy

import pytest

from assessments.definitions import load_shipped_instruments, parse_instrument, validate_answers, visible_items
from assessments.scoring import InvalidAnswersError, score


@pytest.fixture(scope="module")
def cssrs():
    return load_shipped_instruments()["CSSRS_SCREEN"]


def visible(cssrs, answers):
    return [it.code for it in visible_items(cssrs, answers)]


def test_branching(cssrs):
    assert visible(cssrs, {}) == ["CSSRS_1", "CSSRS_2", "CSSRS_6"]
    assert visible(cssrs, {"CSSRS_2": 0}) == ["CSSRS_1", "CSSRS_2", "CSSRS_6"]
    assert visible(cssrs, {"CSSRS_2": 1}) == ["CSSRS_1", "CSSRS_2", "CSSRS_3", "CSSRS_4", "CSSRS_5", "CSSRS_6"]
    assert visible(cssrs, {"CSSRS_2": 0, "CSSRS_6": 1}) == ["CSSRS_1", "CSSRS_2", "CSSRS_6", "CSSRS_6_RECENT"]
    assert visible(cssrs, {"CSSRS_2": "1"}) == ["CSSRS_1", "CSSRS_2", "CSSRS_6"]  # a string never opens a branch


def test_hidden_answers_rejected(cssrs):
    answers = {"CSSRS_1": 1, "CSSRS_2": 0, "CSSRS_3": 0, "CSSRS_6": 0, "CSSRS_6_RECENT": 0}
    errors = validate_answers(cssrs, answers, require_complete=True)
    assert set(errors) == {"CSSRS_3", "CSSRS_6_RECENT"}
    assert "hidden by branching" in errors["CSSRS_3"][0]
    with pytest.raises(InvalidAnswersError) as exc:
        score(cssrs, answers)
    assert set(exc.value.errors) == {"CSSRS_3", "CSSRS_6_RECENT"}


def test_required_visible_items(cssrs):
    errors = validate_answers(cssrs, {"CSSRS_1": 1, "CSSRS_2": 1, "CSSRS_6": 1}, require_complete=True)
    assert set(errors) == {"CSSRS_3", "CSSRS_4", "CSSRS_5", "CSSRS_6_RECENT"}
    assert errors["CSSRS_3"] == ["required item not answered"]
    assert validate_answers(cssrs, {"CSSRS_1": 0, "CSSRS_2": 0, "CSSRS_6": 0}, require_complete=True) == {}


def yes_no(**kwargs):
    return {f"CSSRS_{k}": v for k, v in kwargs.items()}


@pytest.mark.parametrize(
    "answers, level",
    [
        (yes_no(**{"1": 0, "2": 0, "6": 0}), "none"),
        (yes_no(**{"1": 1, "2": 0, "6": 0}), "low"),
        (yes_no(**{"1": 0, "2": 1, "3": 0, "4": 0, "5": 0, "6": 0}), "low"),
        (yes_no(**{"1": 1, "2": 1, "3": 1, "4": 0, "5": 0, "6": 0}), "moderate"),
        (yes_no(**{"1": 0, "2": 0, "6": 1, "6_RECENT": 0}), "moderate"),  # behaviour, not recent
        (yes_no(**{"1": 1, "2": 1, "3": 1, "4": 1, "5": 0, "6": 0}), "high"),  # intent
        (yes_no(**{"1": 1, "2": 1, "3": 0, "4": 0, "5": 1, "6": 0}), "high"),  # intent with plan
        (yes_no(**{"1": 0, "2": 0, "6": 1, "6_RECENT": 1}), "high"),  # behaviour in the past 3 months
    ],
)
def test_risk_levels(cssrs, answers, level):
    assert validate_answers(cssrs, answers, require_complete=True) == {}
    assert score(cssrs, answers).flags == {"risk": level}


@pytest.mark.parametrize(
    "answers",
    [
        yes_no(**{"1": 0, "2": 1, "3": 0, "5": 0, "6": 0}),  # 4 is visible and missing
        yes_no(**{"1": 0, "2": 0}),  # 6 missing
        yes_no(**{"1": 0, "2": 0, "6": 1}),  # 6_RECENT missing
    ],
)
def test_missing_visible_item_gives_unknown_risk(cssrs, answers):
    assert score(cssrs, answers).flags == {"risk": None}


def test_mapping_is_configurable(cssrs):
    data = copy.deepcopy(cssrs.raw)
    levels = data["flags"][0]["rule"]["levels"]
    levels[0]["any_yes"].append("CSSRS_6")  # a site treating any lifetime behaviour as high
    levels[1]["any_yes"].remove("CSSRS_6")
    site = parse_instrument(data)
    assert score(site, yes_no(**{"1": 0, "2": 0, "6": 1, "6_RECENT": 0})).flags == {"risk": "high"}


def test_safety_rule_and_licence(cssrs):
    assert cssrs.safety_rules[0] == {
        "code": "cssrs_high_risk",
        "type": "flag_equals",
        "flag": "risk",
        "equals": "high",
        "severity": "high",
        "note": "High risk raises a safety alert at once.",
    }
    assert "licence" in cssrs.licence.lower()
    assert cssrs.item_text_status == "neutral_labels"
    assert "participant" not in cssrs.entry_roles
