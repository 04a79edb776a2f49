"""The protocol's blinded schedule: neutral timepoints every arm has, and where the blind ends for a role."""

from __future__ import annotations

import copy
import json

import pytest

from scheduling.protocol import (
    SHIPPED_DIR,
    ProtocolError,
    blinded_schedule,
    parse_protocol,
    same_timing,
)


def _data(name: str) -> dict:
    return json.loads((SHIPPED_DIR / f"{name}.json").read_text(encoding="utf-8"))


def test_the_waitlist_protocol_maps_its_primary_endpoint_to_each_arms_visit_and_ends_the_rater_blind_there():
    protocol = parse_protocol(_data("samati-v2"))
    schedule = blinded_schedule(protocol)
    assert schedule.declared
    assert [t.code for t in schedule.timepoints] == ["SCREENING", "BASELINE", "PRIMARY", "FOLLOW_UP"]
    primary = schedule.timepoint("PRIMARY")
    assert primary is not None and primary.endpoint
    assert schedule.timepoint_of("delayed", "WAIT_END") == primary
    assert schedule.timepoint_of("immediate", "POST") == primary
    assert schedule.timepoint_of("immediate", "DOSE1") is None
    assert schedule.blind_ends_after("rater") == primary
    assert schedule.blind_ends_after("coordinator") is None
    # Both arms' endpoint visits are due 112 days after randomization; the follow-ups are not (the delayed arm's
    # comes after its treatment), so their dates would name the arm.
    assert same_timing(protocol, primary)
    assert not same_timing(protocol, schedule.timepoint("FOLLOW_UP"))


def test_a_double_blind_protocol_has_the_same_timing_for_every_timepoint_and_no_blind_end():
    protocol = parse_protocol(_data("mapp-v2"))
    schedule = blinded_schedule(protocol)
    assert all(same_timing(protocol, t) for t in schedule.timepoints)
    assert schedule.blind_ends_after("rater") is None


def test_a_protocol_without_the_declaration_derives_timepoints_from_its_common_visits_and_primary_comparison():
    data = _data("samati-v2")
    del data["blinded_schedule"]
    schedule = blinded_schedule(parse_protocol(data))
    assert not schedule.declared
    assert [t.code for t in schedule.timepoints] == ["SCREEN", "BASELINE", "PRIMARY"]
    assert schedule.timepoint("PRIMARY").visits == {"immediate": "POST", "delayed": "WAIT_END"}
    assert schedule.blind_ends == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["blinded_schedule"]["timepoints"][2]["visits"].pop("delayed"), "arm 'delayed' has no visit for"),
        (lambda d: d["blinded_schedule"]["timepoints"][2]["visits"].update(delayed="NOPE"), "has no visit 'NOPE'"),
        (lambda d: d["blinded_schedule"]["timepoints"][3].update(code="PRIMARY"), "declared twice"),
        (lambda d: d["blinded_schedule"]["blind_ends"][0].update(after="LATER"), "unknown timepoint 'LATER'"),
        (lambda d: d["blinded_schedule"]["timepoints"][0].update(endpoint=True), "only one timepoint"),
    ],
)
def test_a_wrong_declaration_is_refused_with_its_path(change, message):
    data = copy.deepcopy(_data("samati-v2"))
    change(data)
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(data)
    assert any(message in error and "blinded_schedule" in error for error in caught.value.errors)
