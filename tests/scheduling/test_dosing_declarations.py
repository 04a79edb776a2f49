"""A protocol declares its dosing sessions' vital-signs timepoints and alert thresholds as data, checked like the rest
of it; the scheduling selector hands a dosing visit the declarations of the protocol it follows."""

import copy
import json

import pytest

from scheduling import selectors
from scheduling.models import ProtocolVersion, Visit
from scheduling.protocol import VitalThreshold, load_shipped_protocols, parse_protocol, shipped_protocol_paths
from tests.scheduling.test_protocol_validation import errors_of, protocol

DOSING = {
    "illustrative": False,
    "vital_sign_timepoints": [
        {"code": "PRE", "label": "Pre-dose", "minutes": -30},
        {"code": "T60", "label": "1 h", "minutes": 60},
        {"code": "DISCHARGE", "label": "Discharge", "minutes": 480},
    ],
    "vital_sign_thresholds": [
        {"code": "SBP_HIGH", "measure": "systolic_bp", "comparison": ">", "value": 160},
        {"code": "TEMP_HIGH", "measure": "temperature_c", "comparison": ">=", "value": 38.0},
    ],
}


def with_dosing(**changes):
    dosing = copy.deepcopy(DOSING)
    dosing.update(changes)
    return protocol(dosing_session=dosing)


def test_a_declaration_parses_into_timepoints_and_thresholds():
    parsed = parse_protocol(with_dosing(), known_instruments=[])
    declared = parsed.dosing_session
    assert declared.timepoint_codes == ("PRE", "T60", "DISCHARGE")
    assert [t.minutes for t in declared.timepoints] == [-30, 60, 480]
    assert declared.thresholds[0] == VitalThreshold(code="SBP_HIGH", measure="systolic_bp", comparison=">", value=160)
    assert declared.illustrative is False


@pytest.mark.parametrize(
    ("comparison", "at", "above", "below"),
    [(">", False, True, False), (">=", True, True, False), ("<", False, False, True), ("<=", True, False, True)],
)
def test_a_threshold_compares_as_declared(comparison, at, above, below):
    rule = VitalThreshold(code="X", measure="heart_rate", comparison=comparison, value=110)
    assert (rule.crossed_by(110), rule.crossed_by(111), rule.crossed_by(109)) == (at, above, below)
    assert rule.crossed_by(None) is False


def test_the_shipped_protocols_declare_their_dosing_sessions_as_illustrative():
    for code, parsed in load_shipped_protocols().items():
        declared = parsed.dosing_session
        assert declared is not None, code
        assert declared.illustrative is parsed.illustrative is True
        assert declared.timepoints[0].minutes < 0 < declared.timepoints[-1].minutes
        assert {(r.measure, r.comparison, r.value) for r in declared.thresholds} == {
            ("systolic_bp", ">", 160),
            ("diastolic_bp", ">", 110),
            ("heart_rate", ">", 110),
            ("temperature_c", ">=", 38.0),
        }


def test_the_declaration_sits_right_after_the_primary_comparison_in_the_files():
    for path in shipped_protocol_paths():
        keys = list(json.loads(path.read_text(encoding="utf-8")))
        before = "primary_comparison" if "primary_comparison" in keys else "day0"
        at = keys.index("dosing_session")
        assert keys[at - 1] in (before, "study_code", "day0"), path.name
        if "primary_comparison" in keys:
            assert keys[at - 1] == "primary_comparison", path.name


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"vital_sign_thresholds": [{"code": "X", "measure": "weight", "comparison": ">", "value": 1}]},
            "dosing_session.vital_sign_thresholds[0].measure",
        ),
        (
            {"vital_sign_thresholds": [{"code": "X", "measure": "heart_rate", "comparison": "==", "value": 1}]},
            "dosing_session.vital_sign_thresholds[0].comparison",
        ),
        (
            {"vital_sign_thresholds": [{"code": "X", "measure": "heart_rate", "comparison": ">", "value": 900}]},
            "dosing_session.vital_sign_thresholds[0].value: 900 is outside the plausible range",
        ),
        (
            {
                "vital_sign_thresholds": [
                    {"code": "X", "measure": "heart_rate", "comparison": ">", "value": 110},
                    {"code": "X", "measure": "systolic_bp", "comparison": ">", "value": 160},
                ]
            },
            "dosing_session.vital_sign_thresholds[1].code: duplicate threshold code 'X'",
        ),
        (
            {
                "vital_sign_timepoints": [
                    {"code": "A", "label": "A", "minutes": 60},
                    {"code": "B", "label": "B", "minutes": 30},
                ]
            },
            "dosing_session.vital_sign_timepoints[1].minutes: 30 is not after the previous timepoint",
        ),
        ({"vital_sign_timepoints": []}, "dosing_session.vital_sign_timepoints"),
        ({"source": "nowhere"}, "dosing_session.source: unknown source 'nowhere'"),
        ({"illustrative": True}, "dosing_session"),  # illustrative values need a note
    ],
)
def test_a_bad_declaration_is_refused_with_its_path(changes, expected):
    errors = errors_of(with_dosing(**changes), known_instruments=[])
    assert any(e.startswith(expected) for e in errors), errors


def test_an_illustrative_protocol_cannot_declare_real_dosing_values():
    data = with_dosing()
    data.update(illustrative=True, note="Illustrative.")
    errors = errors_of(data, known_instruments=[])
    assert "dosing_session.illustrative: the protocol is illustrative, so its dosing values are too" in errors


def test_a_declaration_needs_a_dosing_visit():
    data = with_dosing()
    data["arms"] = {"only": {"label": "Only", "visits": []}}
    errors = errors_of(data, known_instruments=[])
    assert "dosing_session: the protocol has no visit of kind 'dosing' to apply it to" in errors


def test_the_selector_gives_a_dosing_visit_its_protocols_declarations(make_participant):
    participant = make_participant("randomized")
    dosing = Visit.objects.get(participant=participant, code="DOSE1")
    other = Visit.objects.filter(participant=participant).exclude(kind="dosing").first()
    declared = selectors.visit_dosing_declaration(dosing)
    assert declared is not None and "PRE" in declared.timepoint_codes
    assert selectors.visit_dosing_declaration(other) is None


@pytest.mark.django_db
def test_the_stored_shipped_versions_carry_the_declaration():
    rows = list(ProtocolVersion.objects.filter(code__in=["mapp-v1", "mapp-v2", "samati-v1", "samati-v2"]))
    assert rows
    for row in rows:
        assert row.protocol().dosing_session is not None, row
