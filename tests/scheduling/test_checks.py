"""load_protocol (all or nothing, errors name the JSON path) and the start-up system checks."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from scheduling import checks
from scheduling.models import ProtocolVersion
from scheduling.protocol import SHIPPED_DIR


def shipped(code="mapp-v1") -> dict:
    return json.loads((SHIPPED_DIR / f"{code}.json").read_text())


def write(tmp_path, data) -> str:
    path = tmp_path / "site-protocol.json"
    path.write_text(json.dumps(data))
    return str(path)


def site_protocol() -> dict:
    data = shipped()
    data.update(code="site-mapp", version=1, illustrative=False)
    return data


def broken(kind: str) -> tuple[dict, str]:
    data = site_protocol()
    visits = data["arms"]["mdma"]["visits"]
    if kind == "unknown anchor":
        visits[1]["anchor"] = "visit:NOPE"
        return data, "arms.mdma.visits[1].anchor: unknown visit 'NOPE'"
    if kind == "cycle":
        visits[0]["anchor"] = "visit:PREP2"
        return data, "arms.mdma.visits[0].anchor: cycle PREP1 -> PREP2 -> PREP1"
    if kind == "negative window":
        visits[2]["window_before_days"] = -1
        return data, "arms.mdma.visits[2].window_before_days: -1 is less than the minimum of 0"
    if kind == "visit order":
        # v1's endpoint hangs on randomization + 126 days: declared to follow DOSE3, the check finds the late-dosing
        # case where its window opens first.
        visits[15]["follows"] = ["DOSE3"]
        return data, (
            "arms.mdma.visits[15].follows[0]: the window of ENDPOINT can open 7 day(s) before DOSE3: counted from "
            "randomization, DOSE3 may happen as late as day 126 within its windows, while ENDPOINT's window may "
            "open on day 119"
        )
    del visits[3]["kind"]
    return data, "arms.mdma.visits[3]: 'kind' is a required property"


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["unknown anchor", "cycle", "negative window", "missing field", "visit order"])
def test_load_protocol_rejects_invalid_file_and_loads_nothing(tmp_path, kind):
    data, message = broken(kind)
    before = ProtocolVersion.objects.count()

    with pytest.raises(CommandError) as exc:
        call_command("load_protocol", write(tmp_path, data))

    assert message in str(exc.value)
    assert "site-protocol.json" in str(exc.value)
    assert ProtocolVersion.objects.count() == before
    assert not ProtocolVersion.objects.filter(code="site-mapp").exists()


@pytest.mark.django_db
def test_load_protocol_stores_a_valid_file_once(tmp_path, capsys):
    path = write(tmp_path, site_protocol())

    call_command("load_protocol", path)

    row = ProtocolVersion.objects.get(code="site-mapp")
    assert row.version == 1 and row.definition["arms"]["mdma"]["visits"][0]["code"] == "PREP1"
    assert "loaded site-mapp version 1" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already loaded"):
        call_command("load_protocol", path)
    assert ProtocolVersion.objects.filter(code="site-mapp").count() == 1


@pytest.mark.django_db
def test_load_protocol_unreadable_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match=r"\(file\): invalid JSON at line 1"):
        call_command("load_protocol", str(bad))


def test_shipped_protocol_problems_are_system_check_errors(monkeypatch):
    assert checks.check_shipped() == []
    monkeypatch.setattr(
        "scheduling.protocol.check_shipped_protocols", lambda: ["mapp-v1.json: arms.mdma.visits[1].anchor: unknown"]
    )
    errors = checks.check_shipped()
    assert [e.id for e in errors] == ["scheduling.E001"]
    assert "arms.mdma.visits[1].anchor" in errors[0].msg


def test_a_shipped_file_whose_visit_can_open_too_early_fails_the_system_check(monkeypatch, tmp_path):
    data = shipped("mapp-v2")
    # Pull the endpoint to 3 weeks after DOSE3 with a 7-day early window: INT3C (up to 24 days after) may follow it.
    data["arms"]["placebo"]["visits"][15]["offset_days"] = 21
    (tmp_path / "mapp-v2.json").write_text(json.dumps(data))
    monkeypatch.setattr("scheduling.protocol.SHIPPED_DIR", tmp_path)

    errors = checks.check_shipped()

    assert [e.id for e in errors] == ["scheduling.E001"]
    assert errors[0].msg == (
        "mapp-v2.json: arms.placebo.visits[15].follows[1]: the window of ENDPOINT can open 10 day(s) before INT3C: "
        "counted from DOSE3, INT3C may happen as late as day 24 within its windows, while ENDPOINT's window may open "
        "on day 14"
    )


@pytest.mark.django_db
def test_stored_protocol_that_fails_is_a_system_check_error():
    assert checks.check_stored(databases=["default"]) == []
    bad = copy.deepcopy(site_protocol())
    bad["arms"]["mdma"]["visits"][0]["instruments"] = [{"code": "BDI2", "respondent": "self"}]
    ProtocolVersion.objects.create(code="site-mapp", version=1, title="x", definition=bad)

    errors = checks.check_stored(databases=["default"])

    assert [e.id for e in errors] == ["scheduling.E002"]
    assert errors[0].msg == "site-mapp v1: arms.mdma.visits[0].instruments[0].code: unknown instrument 'BDI2'"
    assert checks.check_stored(databases=None) == []  # no database access unless asked for
