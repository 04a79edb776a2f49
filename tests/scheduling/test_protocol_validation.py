"""Invalid protocol definitions are rejected as a whole, with every problem named by its JSON path."""

import copy
import json

import pytest

from scheduling.protocol import ProtocolError, dosing_number, load_protocol_file, parse_protocol


def visit(code, anchor="randomization", **extra):
    v = {
        "code": code,
        "name": code.title(),
        "kind": "integration",
        "anchor": anchor,
        "offset_days": 7,
        "window_before_days": 2,
        "window_after_days": 2,
        "duration_minutes": 90,
        "staff_required": 2,
        "overnight": False,
        "instruments": [],
        "optional": False,
    }
    v.update(extra)
    return v


def protocol(**extra):
    data = {
        "code": "test-v1",
        "version": 1,
        "title": "Test protocol",
        "illustrative": False,
        "day0": "randomization",
        "common_visits": [visit("SCREEN", "enrollment", kind="screening", offset_days=0)],
        "arms": {
            "immediate": {
                "label": "Immediate",
                "visits": [
                    visit("PREP1"),
                    visit("DOSE1", "visit:PREP1", kind="dosing", duration_minutes=480),
                    visit("INT1A", "visit:DOSE1", offset_days=1),
                    visit("DOSE2", "visit:DOSE1", kind="dosing", offset_days=28),
                ],
            },
            "delayed": {"label": "Delayed", "visits": [visit("WAIT_END", offset_days=112)]},
        },
    }
    data.update(extra)
    return data


def errors_of(data, **kwargs):
    with pytest.raises(ProtocolError) as info:
        parse_protocol(data, **kwargs)
    return info.value.errors


def test_valid_protocol_parses():
    p = parse_protocol(protocol())
    arm = p.arms["immediate"]
    assert arm.codes == ("SCREEN", "PREP1", "DOSE1", "INT1A", "DOSE2")
    assert p.arms["delayed"].codes == ("SCREEN", "WAIT_END")
    assert arm.visit("INT1A").anchor_visit == "DOSE1"
    assert dosing_number(arm, "DOSE1") == 1
    assert dosing_number(arm, "DOSE2") == 2
    assert dosing_number(arm, "INT1A") is None


def test_parse_does_not_keep_a_reference_to_the_callers_dict():
    data = protocol()
    p = parse_protocol(data)
    data["arms"]["immediate"]["visits"][0]["offset_days"] = -999
    assert p.raw["arms"]["immediate"]["visits"][0]["offset_days"] == 7


def test_unknown_anchor():
    data = protocol()
    data["arms"]["immediate"]["visits"].append(visit("INT3A", "visit:DOSE3"))
    assert errors_of(data) == ["arms.immediate.visits[4].anchor: unknown visit 'DOSE3'"]


def test_common_visit_cannot_anchor_on_an_arm_visit():
    data = protocol()
    data["common_visits"].append(visit("BASELINE", "visit:PREP1", kind="baseline"))
    assert errors_of(data) == ["common_visits[1].anchor: unknown visit 'PREP1'"]


def test_cycle_is_named_with_its_path():
    data = protocol()
    data["arms"]["immediate"]["visits"][1]["anchor"] = "visit:INT1A"  # DOSE1 -> INT1A -> DOSE1
    assert errors_of(data) == ["arms.immediate.visits[1].anchor: cycle DOSE1 -> INT1A -> DOSE1"]


def test_longer_cycle_and_self_anchor():
    data = protocol()
    data["arms"]["immediate"]["visits"][0]["anchor"] = "visit:DOSE2"  # PREP1 -> DOSE2 -> DOSE1 -> PREP1
    data["arms"]["delayed"]["visits"][0]["anchor"] = "visit:WAIT_END"
    errors = errors_of(data)
    assert "arms.immediate.visits[0].anchor: cycle PREP1 -> DOSE2 -> DOSE1 -> PREP1" in errors
    assert "arms.delayed.visits[0].anchor: cycle WAIT_END -> WAIT_END" in errors
    assert len(errors) == 2


def test_negative_window():
    data = protocol()
    data["arms"]["immediate"]["visits"][2]["window_before_days"] = -1
    assert errors_of(data) == ["arms.immediate.visits[2].window_before_days: -1 is less than the minimum of 0"]


def test_missing_field():
    data = protocol()
    del data["arms"]["immediate"]["visits"][2]["kind"]
    assert errors_of(data) == ["arms.immediate.visits[2]: 'kind' is a required property"]


def test_unknown_instrument():
    data = protocol()
    data["arms"]["immediate"]["visits"][1]["instruments"] = [
        {"code": "CSSRS_SCREEN", "respondent": "clinician"},
        {"code": "BDI2", "respondent": "self"},
    ]
    assert errors_of(data) == ["arms.immediate.visits[1].instruments[1].code: unknown instrument 'BDI2'"]


def test_known_instruments_can_be_supplied():
    data = protocol()
    data["arms"]["immediate"]["visits"][1]["instruments"] = [{"code": "BDI2", "respondent": "self"}]
    assert (
        parse_protocol(data, known_instruments={"BDI2"}).arms["immediate"].visit("DOSE1").instruments[0].code == "BDI2"
    )
    assert errors_of(data, known_instruments=set()) == [
        "arms.immediate.visits[1].instruments[0].code: unknown instrument 'BDI2'"
    ]


def test_unknown_kind():
    data = protocol()
    data["arms"]["immediate"]["visits"][0]["kind"] = "party"
    (error,) = errors_of(data)
    assert error.startswith("arms.immediate.visits[0].kind: 'party' is not one of [")


def test_duplicate_visit_codes_including_common_ones():
    data = protocol()
    data["arms"]["immediate"]["visits"].append(visit("PREP1"))
    data["arms"]["delayed"]["visits"].append(visit("SCREEN"))
    assert errors_of(data) == [
        "arms.immediate.visits[4].code: duplicate visit code 'PREP1' (also at arms.immediate.visits[0])",
        "arms.delayed.visits[1].code: duplicate visit code 'SCREEN' (also at common_visits[0])",
    ]


def test_all_errors_are_collected():
    data = protocol()
    visits = data["arms"]["immediate"]["visits"]
    visits[0]["window_after_days"] = -3
    del visits[1]["name"]
    visits[2]["anchor"] = "visit:NOPE"
    visits[3]["instruments"] = [{"code": "XYZ", "respondent": "self"}]
    errors = errors_of(data)
    assert errors == [
        "arms.immediate.visits[0].window_after_days: -3 is less than the minimum of 0",
        "arms.immediate.visits[1]: 'name' is a required property",
        "arms.immediate.visits[3].instruments[0].code: unknown instrument 'XYZ'",
        "arms.immediate.visits[2].anchor: unknown visit 'NOPE'",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"anchor": "visit:dose1"}, "arms.immediate.visits[2].anchor: 'visit:dose1' does not match"),
        ({"code": "int-1a"}, "arms.immediate.visits[2].code: 'int-1a' does not match"),
        ({"duration_minutes": 0}, "arms.immediate.visits[2].duration_minutes: 0 is less than or equal to the minimum"),
        ({"offset_days": 1.5}, "arms.immediate.visits[2].offset_days: 1.5 is not of type 'integer'"),
        ({"overnight": "no"}, "arms.immediate.visits[2].overnight: 'no' is not of type 'boolean'"),
        (
            {"colour": "red"},
            "arms.immediate.visits[2]: Additional properties are not allowed ('colour' was unexpected)",
        ),
    ],
)
def test_field_rules(change, expected):
    data = protocol()
    data["arms"]["immediate"]["visits"][2].update(change)
    (error,) = errors_of(data)
    assert error.startswith(expected)


def test_illustrative_protocol_needs_a_note():
    assert errors_of(protocol(illustrative=True)) == ["(root): 'note' is a required property"]
    assert parse_protocol(protocol(illustrative=True, note="Illustrative only.")).note == "Illustrative only."


def test_enrollment_day0_has_no_randomization():
    data = protocol(day0="enrollment")
    del data["arms"]["delayed"]
    errors = errors_of(data)
    assert errors == [
        "arms.immediate.visits[0].anchor: day0 is 'enrollment', so there is no randomization to anchor on",
    ]
    data["arms"]["immediate"]["visits"][0]["anchor"] = "enrollment"
    assert parse_protocol(data).day0 == "enrollment"


def test_several_arms_need_randomization():
    data = protocol(day0="enrollment")
    for arm in data["arms"].values():
        for v in arm["visits"]:
            if v["anchor"] == "randomization":
                v["anchor"] = "enrollment"
    assert errors_of(data) == ["day0: a protocol with several arms randomizes, so day0 must be 'randomization'"]


def test_not_an_object():
    assert errors_of([]) == ["(root): [] is not of type 'object'"]


def test_load_file_reports_bad_json_and_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"code": ', encoding="utf-8")
    with pytest.raises(ProtocolError) as info:
        load_protocol_file(path)
    assert info.value.errors[0].startswith("(file): invalid JSON at line 1")
    assert str(path) in str(info.value)


def test_load_file_round_trip(tmp_path):
    path = tmp_path / "ok.json"
    data = protocol()
    path.write_text(json.dumps(data), encoding="utf-8")
    p = load_protocol_file(path)
    assert p == parse_protocol(copy.deepcopy(data))
    bad = copy.deepcopy(data)
    bad["arms"]["immediate"]["visits"][2]["anchor"] = "visit:GHOST"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ProtocolError) as info:
        load_protocol_file(path)
    assert info.value.errors == ["arms.immediate.visits[2].anchor: unknown visit 'GHOST'"]
    assert info.value.source == str(path)
