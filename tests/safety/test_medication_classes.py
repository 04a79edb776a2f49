"""Medication classes are data, and protocols declare the classes they prohibit before a dosing session."""

from __future__ import annotations

import copy
import importlib
import json

import pytest

from safety import checks, medication_classes
from scheduling import selectors as scheduling_selectors
from scheduling.models import ProtocolVersion
from scheduling.protocol import ProtocolError, load_protocol_file, parse_protocol, shipped_protocol_paths


def _shipped(code: str) -> dict:
    path = next(p for p in shipped_protocol_paths() if p.stem == code)
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_shipped_class_list_holds_the_classes_protocols_prohibit():
    shipped = medication_classes.medication_classes()
    assert {"ssri", "snri", "maoi", "tca", "stimulant", "antipsychotic", "benzodiazepine", "lithium", "other"} <= (
        shipped.codes
    )
    assert shipped.label("maoi") == "Monoamine oxidase inhibitor"
    assert checks.medication_classes_valid() == []


@pytest.mark.parametrize("code", ["mapp-v1", "mapp-v2", "samati-v1", "samati-v2"])
def test_every_shipped_protocol_prohibits_ssris_maois_and_stimulants_with_illustrative_washouts(code):
    data = _shipped(code)
    keys = list(data)
    # Declared right after "phases" where a protocol has phases, else before the primary comparison or the visits.
    if "phases" in keys:
        assert keys[keys.index("phases") + 1] == "prohibited_medications"
    protocol = parse_protocol(data, source=code)
    by_class = {m.medication_class: m for m in protocol.prohibited_medications}
    assert {"ssri", "maoi", "stimulant"} <= set(by_class)
    assert all(m.illustrative and m.washout_days > 0 for m in by_class.values())


def test_the_parser_refuses_a_class_declared_twice_a_bad_washout_and_an_unknown_source():
    data = _shipped("mapp-v2")
    data["prohibited_medications"] = [
        {"class": "ssri", "washout_days": 14},
        {"class": "ssri", "washout_days": 7, "source": "nowhere"},
        {"class": "maoi", "washout_days": -1},
        {"class": "Stimulant!", "washout_days": 7},
    ]
    with pytest.raises(ProtocolError) as exc:
        parse_protocol(data, source="bad")
    errors = "\n".join(exc.value.errors)
    assert "prohibited_medications[2].washout_days" in errors
    assert "prohibited_medications[3].class" in errors
    # Structure first: the semantic checks report once the shape is right.
    data["prohibited_medications"] = data["prohibited_medications"][:2]
    with pytest.raises(ProtocolError) as exc:
        parse_protocol(data, source="bad")
    assert exc.value.errors == [
        "prohibited_medications[1].class: class 'ssri' is declared twice (also at prohibited_medications[0])",
        "prohibited_medications[1].source: unknown source 'nowhere' (declare it in 'sources')",
    ]


def test_a_protocol_without_the_declaration_prohibits_nothing():
    data = _shipped("mapp-v1")
    del data["prohibited_medications"]
    assert parse_protocol(data, source="old").prohibited_medications == ()


def test_the_startup_check_names_a_protocol_class_missing_from_the_list(monkeypatch):
    monkeypatch.setattr(scheduling_selectors, "shipped_prohibited_classes", lambda: {"mapp-v9": ["ssri", "xenon"]})
    [error] = checks.medication_classes_valid()
    assert error.id == "safety.E004"
    assert "mapp-v9" in error.msg and "'xenon'" in error.msg


def test_a_broken_class_list_stops_startup(settings, tmp_path):
    (tmp_path / "default.json").write_text(json.dumps({"version": 1, "classes": []}))
    settings.SAFETY_MEDICATION_CLASSES_DIR = str(tmp_path)
    [error] = checks.medication_classes_valid()
    assert error.id == "safety.E003"


@pytest.mark.django_db
def test_the_selector_reads_the_participants_protocol_version(make_participant):
    participant = make_participant("randomized")
    prohibited = scheduling_selectors.prohibited_medications_of(participant)
    assert {m.medication_class for m in prohibited} >= {"ssri", "maoi", "stimulant"}
    assert participant.schedule.protocol_version.code == "mapp-v1"


@pytest.mark.django_db
def test_the_migration_adds_the_declaration_to_a_stored_shipped_version_only():
    migration = importlib.import_module("scheduling.migrations.0009_declare_prohibited_medications")
    shipped = _shipped("mapp-v2")
    old = copy.deepcopy(shipped)
    del old["prohibited_medications"]
    ProtocolVersion.objects.filter(code="mapp-v2").delete()
    row = ProtocolVersion.objects.create(code="mapp-v2", version=2, title="t", definition=old)
    own = ProtocolVersion.objects.create(code="site-own", version=1, title="t", definition={**old, "code": "site-own"})

    from django.apps import apps

    migration.declare(apps, None)
    row.refresh_from_db()
    own.refresh_from_db()
    assert row.definition == shipped
    assert "prohibited_medications" not in own.definition
    assert load_protocol_file(next(p for p in shipped_protocol_paths() if p.stem == "mapp-v2")).raw == shipped
