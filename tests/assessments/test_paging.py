"""Screens of a questionnaire (assessments.paging): hand-checked cuts of the shipped instruments, and properties over
generated instruments (Hypothesis): every item once and in order, at most the limit per screen, groups and branching
never split, and no more screens than the limit needs."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assessments.definitions import (
    INSTRUMENTS_DIR,
    InstrumentError,
    Item,
    Option,
    ShowIf,
    load_shipped_instruments,
    parse_instrument,
)
from assessments.paging import (
    MAX_ITEMS_PER_SCREEN,
    _pack,
    answered_of,
    instrument_screens,
    item_units,
    paginate,
    screen_of,
)

INSTRUMENTS = load_shipped_instruments()
OPTIONS = (Option(0, "no"), Option(1, "yes"))


def codes(screens):
    return [[it.code for it in screen] for screen in screens]


def test_lsas_sr_is_six_screens_of_four_whole_situations():
    screens = instrument_screens(INSTRUMENTS["LSAS_SR"])
    assert [len(s) for s in screens] == [8] * 6
    for number, screen in enumerate(screens):
        situations = range(4 * number + 1, 4 * number + 5)
        assert [it.code for it in screen] == [
            f"LSAS_SR_{n:02d}_{kind}" for n in situations for kind in ("FEAR", "AVOID")
        ]
        assert {it.group for it in screen} == {f"situation_{n:02d}" for n in situations}


def test_shipped_instruments_are_cut_evenly():
    sizes = {code: [len(s) for s in instrument_screens(inst)] for code, inst in INSTRUMENTS.items()}
    assert sizes["PCL5"] == [7, 7, 6]  # not 8 + 8 + 4
    assert sizes["SCS"] == [7, 7, 7, 5]  # not 8 + 8 + 8 + 2
    assert sizes["SCS_SF"] == [6, 6]
    assert sizes["CSSRS_SCREEN"] == [7]  # its branching questions stay with the answers they follow
    assert all(max(s) <= MAX_ITEMS_PER_SCREEN for s in sizes.values())


def test_a_situation_is_never_cut_even_where_eight_would_cut_it():
    # Three pairs and then a run of three: filling to eight would cut the run after its second item. Nine items need
    # two screens; balanced to four and five, every pair and the run whole.
    items = [_item(f"A{i}", group=f"g{i // 2}") for i in range(6)] + [_item(f"B{i}", group="run") for i in range(3)]
    assert codes(paginate(items)) == [["A0", "A1", "A2", "A3"], ["A4", "A5", "B0", "B1", "B2"]]


def test_a_group_larger_than_the_limit_has_a_screen_of_its_own():
    items = [_item("X")] + [_item(f"G{i}", group="big") for i in range(10)] + [_item("Y")]
    assert codes(paginate(items)) == [["X"], [f"G{i}" for i in range(10)], ["Y"]]


def test_a_branching_question_stays_with_its_source_and_everything_between():
    items = [_item(f"I{i}") for i in range(6)] + [_item("I6", show_if=ShowIf("I4", 1)), _item("I7"), _item("I8")]
    assert codes(paginate(items, max_items=5)) == [["I0", "I1", "I2", "I3"], ["I4", "I5", "I6", "I7", "I8"]]


def test_screen_of_finds_the_screen_of_an_item():
    screens = instrument_screens(INSTRUMENTS["LSAS_SR"])
    assert screen_of(screens, "LSAS_SR_01_FEAR") == 1
    assert screen_of(screens, "LSAS_SR_05_AVOID") == 2
    assert screen_of(screens, "LSAS_SR_24_AVOID") == 6
    assert screen_of(screens, "NOT_AN_ITEM") == 1


def test_answered_of_counts_only_questions_asked():
    cssrs = INSTRUMENTS["CSSRS_SCREEN"]
    assert answered_of(cssrs, {}) == (0, 3)  # the other four follow a "yes"
    assert answered_of(cssrs, {"CSSRS_1": 1, "CSSRS_2": 1}) == (2, 6)
    assert answered_of(cssrs, {"CSSRS_1": 1, "CSSRS_2": 1}, {"CSSRS_2", "CSSRS_3"}) == (1, 2)


def test_an_empty_list_has_no_screen_and_the_limit_must_be_positive():
    assert paginate([]) == []
    with pytest.raises(ValueError):
        paginate([_item("A")], max_items=0)


def test_a_group_must_be_one_run_of_items():
    data = json.loads((INSTRUMENTS_DIR / "LSAS_SR.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["items"][2]["group"] = "situation_01"  # situation 2's fear rating, after situation 1's pair
    broken["items"][3]["group"] = "situation_01"
    broken["items"][4]["group"] = "situation_02"
    broken["items"][5]["group"] = "situation_01"
    with pytest.raises(InstrumentError) as exc:
        parse_instrument(broken)
    assert exc.value.errors == ["items[5].group: group 'situation_01' must be contiguous (first at items[0])"]
    bad_name = copy.deepcopy(data)
    bad_name["items"][0]["group"] = "Situation 1"
    with pytest.raises(InstrumentError) as exc:
        parse_instrument(bad_name)
    assert exc.value.errors[0].startswith("items[0].group: ")


# ------------------------------------------------------------------------------------------------------ properties


def _item(code: str, *, group: str | None = None, show_if: ShowIf | None = None) -> Item:
    return Item(code=code, text=code, options=OPTIONS, group=group, show_if=show_if)


@st.composite
def item_lists(draw):
    """Items in runs: single items, groups of 1-11 items (sometimes larger than the limit), and branching items that
    follow any earlier item."""
    items: list[Item] = []
    for run in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["single", "group", "branch"]))
        if kind == "group":
            items += [_item(f"R{run}_{k}", group=f"g{run}") for k in range(draw(st.integers(1, 11)))]
        elif kind == "branch" and items:
            source = draw(st.sampled_from(items))
            items.append(_item(f"R{run}", show_if=ShowIf(source.code, 1)))
        else:
            items.append(_item(f"R{run}"))
    return items


@settings(max_examples=300, deadline=None)
@given(items=item_lists(), limit=st.integers(1, 10))
def test_paging_properties(items, limit):
    screens = paginate(items, max_items=limit)
    where = {it.code: n for n, screen in enumerate(screens) for it in screen}
    # Every item exactly once, in order, and no empty screen.
    assert [it.code for screen in screens for it in screen] == [it.code for it in items]
    assert all(screens)
    # At most the limit, except a screen holding one unit that alone is larger (never cut).
    units = item_units(items)
    for screen in screens:
        if len(screen) > limit:
            assert tuple(screen) in units
    # A group is on one screen; a branching item is on the screen of the item it follows.
    for it in items:
        if it.group is not None:
            assert len({where[other.code] for other in items if other.group == it.group}) == 1
        if it.show_if is not None:
            assert where[it.code] == where[it.show_if.item]
    # Balancing never costs a screen: as few as filling each screen up to the limit gives.
    assert len(screens) == len(_pack(units, limit))


@settings(max_examples=100, deadline=None)
@given(items=item_lists())
def test_units_cover_the_items_in_order(items):
    units = item_units(items)
    assert [it for unit in units for it in unit] == list(items)
    for before, after in zip(units, units[1:], strict=False):
        # A new unit never starts inside a group.
        assert before[-1].group is None or before[-1].group != after[0].group
