"""Concomitant medication classes: the codes a medication is filed under, declared as data.

The shipped list is ``safety/medication_classes/default.json``; a site may ship its own beside it in the directory
``SAFETY_MEDICATION_CLASSES_DIR`` names (``default.json`` there wins). Protocols name these codes in their
``prohibited_medications`` declaration; the start-up checks (``safety.checks``) hold both to the list. Labels are
neutral class names, never product names. Pure reads of files, no database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
from django.conf import settings

SHIPPED_DIR = Path(__file__).resolve().parent / "medication_classes"
DEFAULT_FILE = SHIPPED_DIR / "default.json"

SCHEMA = {
    "type": "object",
    "required": ["version", "classes"],
    "additionalProperties": False,
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "title": {"type": "string"},
        "classes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["code", "label"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,39}$"},
                    "label": {"type": "string", "minLength": 1, "maxLength": 200},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class MedicationClass:
    code: str
    label: str


@dataclass(frozen=True)
class MedicationClassList:
    source: str
    version: int
    classes: tuple[MedicationClass, ...]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.classes)

    def label(self, code: str) -> str:
        return next((c.label for c in self.classes if c.code == code), code)


class MedicationClassListError(ValueError):
    pass


def parse(data: object, *, source: str) -> MedicationClassList:
    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise MedicationClassListError(f"{source}: {path}: {exc.message}") from None
    assert isinstance(data, dict)
    codes = [c["code"] for c in data["classes"]]
    if len(codes) != len(set(codes)):
        raise MedicationClassListError(f"{source}: a class code appears twice")
    return MedicationClassList(
        source=source,
        version=data["version"],
        classes=tuple(MedicationClass(code=c["code"], label=c["label"]) for c in data["classes"]),
    )


@cache
def _load(path: Path, mtime: float) -> MedicationClassList:
    # Keyed with the file's mtime: a site that edits its list is read again without a restart.
    return parse(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def list_file() -> Path:
    own = getattr(settings, "SAFETY_MEDICATION_CLASSES_DIR", "")
    if own and (Path(own) / "default.json").is_file():
        return Path(own) / "default.json"
    return DEFAULT_FILE


def medication_classes() -> MedicationClassList:
    path = list_file()
    return _load(path, path.stat().st_mtime)
