"""Instrument files: schema and semantic checks with JSON paths, loading, and answer validation."""

import copy
import json

import pytest

from assessments.definitions import (
    InstrumentError,
    check_shipped_instruments,
    load_instrument_file,
    load_shipped_instruments,
    parse_instrument,
    shipped_instrument_paths,
    validate_answers,
)


@pytest.fixture(scope="module")
def shipped():
    return load_shipped_instruments()


@pytest.fixture
def scs_data(shipped):
    return copy.deepcopy(shipped["SCS"].raw)


def errors_of(data):
    with pytest.raises(InstrumentError) as exc:
        parse_instrument(data)
    return exc.value.errors


def test_shipped_files_are_valid(shipped):
    assert check_shipped_instruments() == []
    assert [p.stem for p in shipped_instrument_paths()] == sorted(shipped)
    assert {code: len(inst.items) for code, inst in shipped.items()} == {
        "CAPS5": 25,
        "CSSRS_SCREEN": 7,
        "LSAS": 48,
        "LSAS_SR": 48,
        "PCL5": 20,
        "SCS": 26,
        "SCS_SF": 12,
    }
    for inst in shipped.values():
        # CAPS-5 1.1 added criterion A to the diagnosis: a scoring change is a new version.
        assert inst.version == ("1.1" if inst.code == "CAPS5" else "1.0")
        assert inst.sources and inst.licence
        assert inst.missing_data.rule == "none"


def test_scale_codes_contract(shipped):
    scales = {code: [s.code for s in inst.scales] for code, inst in shipped.items()}
    flags = {code: [f.code for f in inst.flags] for code, inst in shipped.items()}
    assert scales["PCL5"] == ["total", "cluster_b", "cluster_c", "cluster_d", "cluster_e"]
    assert flags["PCL5"] == ["provisional_ptsd", "probable_ptsd_cutoff"]
    assert scales["CAPS5"] == scales["PCL5"]
    assert flags["CAPS5"] == ["ptsd_diagnosis", "dissociative_subtype"]
    lsas = [
        "fear",
        "avoidance",
        "performance_fear",
        "performance_avoidance",
        "social_fear",
        "social_avoidance",
        "total",
    ]
    assert scales["LSAS"] == scales["LSAS_SR"] == lsas
    assert flags["LSAS"] == flags["LSAS_SR"] == ["probable_sad", "generalized_subtype"]
    six = ["self_kindness", "self_judgment", "common_humanity", "isolation", "mindfulness", "over_identification"]
    assert scales["SCS"] == [*six, "total", "cs", "ucs"]
    assert scales["SCS_SF"] == ["total", "cs", "ucs", *six]
    assert flags["CSSRS_SCREEN"] == ["risk"]


def test_unknown_scale_item_names_the_path(scs_data):
    scs_data["scales"][2]["items"][3] = "SCS_27"
    assert errors_of(scs_data) == ["scales[2].items[3]: unknown item 'SCS_27'"]


def test_reversed_must_be_scale_items(scs_data):
    scs_data["scales"][0]["reversed"] = ["SCS_01"]  # self_kindness does not contain item 1
    assert errors_of(scs_data) == ["scales[0].reversed[0]: 'SCS_01' is not one of this scale's items"]


def test_several_errors_reported_together(scs_data):
    scs_data["items"][1]["code"] = "SCS_01"
    scs_data["option_sets"]["scs_frequency"][1]["value"] = 1
    scs_data["bands"][0]["bands"][1]["min"] = 2.4
    errors = errors_of(scs_data)
    assert "items[1].code: duplicate item code 'SCS_01' (first at items[0])" in errors
    assert "option_sets.scs_frequency[1].value: duplicate option value 1" in errors
    assert any(e.startswith("bands[0].bands[1].min: bands must be contiguous") for e in errors)
    assert any(e.startswith("scales[5].items") for e in errors)  # over_identification lists SCS_02, now unknown


def test_schema_errors_name_the_path(scs_data):
    del scs_data["version"]
    scs_data["items"][0]["options"] = 7
    scs_data["scales"][0]["method"] = "median"
    errors = errors_of(scs_data)
    assert any(e.startswith("(root): 'version' is a required property") for e in errors)
    assert any(e.startswith("items[0].options:") for e in errors)
    assert any(e.startswith("scales[0].method:") for e in errors)


def test_declared_range_must_match(scs_data):
    scs_data["scales"][0]["range"] = {"min": 0, "max": 5}
    assert errors_of(scs_data) == ["scales[0].range: declared 0..5 but the items and method give 1..5"]


def test_show_if_must_refer_to_an_earlier_item(shipped):
    data = copy.deepcopy(shipped["CSSRS_SCREEN"].raw)
    data["items"][2]["show_if"] = {"item": "CSSRS_6", "equals": 1}
    data["items"][3]["show_if"] = {"item": "CSSRS_9", "equals": 1}
    data["items"][4]["show_if"] = {"item": "CSSRS_2", "equals": 3}
    assert errors_of(data) == [
        "items[2].show_if.item: must refer to an earlier item",
        "items[3].show_if.item: unknown item 'CSSRS_9'",
        "items[4].show_if.equals: 3 is not an option of 'CSSRS_2'",
    ]


def test_flag_and_safety_references(shipped):
    data = copy.deepcopy(shipped["PCL5"].raw)
    data["flags"][1]["rule"]["scale"] = "totl"
    data["flags"][0]["rule"]["min_counts"]["cluster_c"] = 3
    data["safety_rules"][0]["scale"] = "nope"
    assert errors_of(data) == [
        "flags[0].rule.min_counts.cluster_c: 3 exceeds the scale's 2 items",
        "flags[1].rule.scale: unknown scale 'totl'",
        "safety_rules[0].scale: unknown scale 'nope'",
    ]


def test_clinician_instrument_not_entered_by_participant(shipped):
    data = copy.deepcopy(shipped["CAPS5"].raw)
    data["entry_roles"] = ["participant"]
    assert errors_of(data) == ["entry_roles: a clinician-rated instrument cannot be entered by the participant"]


def test_translations_need_a_declared_language(shipped):
    data = copy.deepcopy(shipped["PCL5"].raw)
    data["items"][0]["texts"] = {"es": "Elemento 1"}
    assert errors_of(data) == ["items[0].texts.es: language not declared in 'languages'"]
    data["languages"] = ["en", "es"]
    assert parse_instrument(data).item("PCL5_01").texts == {"es": "Elemento 1"}


def test_load_files(tmp_path, shipped):
    bad = tmp_path / "BAD.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InstrumentError) as exc:
        load_instrument_file(bad)
    assert exc.value.errors[0].startswith("BAD.json: cannot parse")
    with pytest.raises(InstrumentError):
        load_instrument_file(tmp_path / "missing.json")
    yaml_file = tmp_path / "PCL5.yaml"
    import yaml

    yaml_file.write_text(yaml.safe_dump(shipped["PCL5"].raw), encoding="utf-8")
    assert load_instrument_file(yaml_file).item_codes == shipped["PCL5"].item_codes
    json_file = tmp_path / "PCL5.json"
    json_file.write_text(json.dumps(shipped["PCL5"].raw), encoding="utf-8")
    assert load_instrument_file(json_file).code == "PCL5"


def test_validate_answers(shipped):
    pcl5 = shipped["PCL5"]
    answers = {f"PCL5_{i:02d}": 0 for i in range(1, 21)}
    assert validate_answers(pcl5, answers, require_complete=True) == {}
    answers.update({"PCL5_01": "3", "PCL5_02": 3.0, "PCL5_03": False, "PCL5_04": -1, "PCL5_21": 1, "PCL5_05": None})
    errors = validate_answers(pcl5, answers, require_complete=True)
    assert errors == {
        "PCL5_01": ["wrong type: expected an integer, got str"],
        "PCL5_02": ["wrong type: expected an integer, got float"],
        "PCL5_03": ["wrong type: expected an integer, got bool"],
        "PCL5_04": ["value -1 is not an option (allowed: 0, 1, 2, 3, 4)"],
        "PCL5_21": ["unknown item code 'PCL5_21' for PCL5"],
        "PCL5_05": ["required item not answered"],
    }
    del answers["PCL5_05"]
    assert "PCL5_05" not in validate_answers(pcl5, answers, require_complete=False)


def test_neutral_labels_where_text_is_not_shipped(shipped):
    for code in ("CAPS5", "LSAS", "LSAS_SR", "SCS", "SCS_SF", "CSSRS_SCREEN"):
        inst = shipped[code]
        assert inst.item_text_status == "neutral_labels"
        assert "load_instrument" in inst.raw["item_text"]["note"]
    assert shipped["SCS"].item("SCS_07").text == "Item 7"
    # Neff's form labels only the end points; 2, 3 and 4 carry their number only (both forms).
    for item in (shipped["SCS"].item("SCS_07"), shipped["SCS_SF"].item("SCS_SF_07")):
        assert [(o.value, o.label) for o in item.options] == [
            (1, "Almost never"),
            (2, "2"),
            (3, "3"),
            (4, "4"),
            (5, "Almost always"),
        ]
    assert shipped["PCL5"].item_text_status == "verbatim"
    assert any("camcops" in s.get("url", "") for s in shipped["PCL5"].sources)


def test_superseded_versions_are_checked_and_kept_apart_from_the_current_ones(tmp_path, monkeypatch, shipped):
    from assessments import definitions

    assert [p.name for p in definitions.superseded_instrument_paths()] == ["CAPS5-1.0.json"]
    assert set(definitions.load_superseded_instruments()) == {("CAPS5", "1.0")}
    old = json.loads((definitions.SUPERSEDED_DIR / "CAPS5-1.0.json").read_text(encoding="utf-8"))
    monkeypatch.setattr(definitions, "SUPERSEDED_DIR", tmp_path)
    # Named after another version than its content: refused.
    (tmp_path / "CAPS5-0.9.json").write_text(json.dumps(old), encoding="utf-8")
    assert check_shipped_instruments() == ["superseded/CAPS5-0.9.json: file name must be CAPS5-1.0.json"]
    (tmp_path / "CAPS5-0.9.json").unlink()
    # A superseded version equal to the current file's version: the current file must bump its version.
    (tmp_path / "CAPS5-1.1.json").write_text(json.dumps(old | {"version": "1.1"}), encoding="utf-8")
    assert check_shipped_instruments() == ["CAPS5.json: version 1.1 is also a superseded version; bump 'version'"]
    (tmp_path / "CAPS5-1.1.json").write_text("{", encoding="utf-8")
    assert check_shipped_instruments()[0].startswith("superseded/CAPS5-1.1.json: cannot parse")
