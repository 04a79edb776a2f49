"""Adverse events of special interest (AESI): the categories a study watches, declared as data.

The shipped list is ``safety/aesi/default.json``. A study declares its own list in a file named after its code
(``MAP.json``), either shipped beside the default or in the directory ``SAFETY_AESI_DIR`` names (a site's own
configuration, outside the code); the first found wins. Every file is checked at start-up (``safety.checks``).
Pure reads of files, no database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
from django.conf import settings

SHIPPED_DIR = Path(__file__).resolve().parent / "aesi"
DEFAULT_FILE = SHIPPED_DIR / "default.json"

SCHEMA = {
    "type": "object",
    "required": ["version", "categories"],
    "additionalProperties": False,
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "title": {"type": "string"},
        "categories": {
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
class AesiCategory:
    code: str
    label: str


@dataclass(frozen=True)
class AesiList:
    source: str
    version: int
    categories: tuple[AesiCategory, ...]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.categories)


class AesiListError(ValueError):
    pass


def parse(data: object, *, source: str) -> AesiList:
    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise AesiListError(f"{source}: {path}: {exc.message}") from None
    assert isinstance(data, dict)
    codes = [c["code"] for c in data["categories"]]
    if len(codes) != len(set(codes)):
        raise AesiListError(f"{source}: a category code appears twice")
    return AesiList(
        source=source,
        version=data["version"],
        categories=tuple(AesiCategory(code=c["code"], label=c["label"]) for c in data["categories"]),
    )


@cache
def _load(path: Path, mtime: float) -> AesiList:
    # Keyed with the file's mtime: a site that edits its list is read again without a restart.
    return parse(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def candidate_dirs() -> list[Path]:
    own = getattr(settings, "SAFETY_AESI_DIR", "")
    return [*([Path(own)] if own else []), SHIPPED_DIR]


def list_file_for(study_code: str) -> Path:
    for directory in candidate_dirs():
        path = directory / f"{study_code}.json"
        if path.is_file():
            return path
    return DEFAULT_FILE


def aesi_list_for(study_code: str) -> AesiList:
    path = list_file_for(study_code)
    return _load(path, path.stat().st_mtime)


def every_list_file() -> list[Path]:
    return sorted({p for d in candidate_dirs() if d.is_dir() for p in d.glob("*.json")})
