"""Demographic form definitions: the baseline covariates a study records (age in years, sex, gender, NIH race and
ethnicity, education), declared as data so a site can load its own categories without a code change.

A definition is a JSON document (``participants/demographic_forms/baseline-v1.json`` is the shipped one; the format
is in docs/coordinators.md): a code, a version, a title, sources, and fields. A field is an ``integer`` (with a range)
or a ``choice`` (options with a stable integer value and a label per language). The integer values are the export
codes: SPSS and Stata get them with their labels as value labels, so they are a contract once data exist.

Everything here is pure (no database): parsing a definition and checking a participant's answers against it, every
problem named by its JSON path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SHIPPED_PATH = Path(__file__).with_name("demographic_forms") / "baseline-v1.json"
FORM_CODE = "DEMOGRAPHICS"
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
_FORM_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
FIELD_TYPES = ("integer", "choice")


class DemographicFormError(ValueError):
    """A definition is invalid; ``errors`` holds every problem, each prefixed by its JSON path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid demographic form:\n" + "\n".join(f"  {e}" for e in errors))


@dataclass(frozen=True)
class Option:
    value: int
    labels: Mapping[str, str]

    def label(self, language: str = "en") -> str:
        return self.labels.get(language) or self.labels["en"]


@dataclass(frozen=True)
class Field:
    code: str
    type: str
    labels: Mapping[str, str]
    options: tuple[Option, ...] = ()
    min: int | None = None
    max: int | None = None
    unit: str = ""

    def label(self, language: str = "en") -> str:
        return self.labels.get(language) or self.labels["en"]

    def value_labels(self, language: str = "en") -> dict[int, str] | None:
        return {o.value: o.label(language) for o in self.options} if self.options else None


@dataclass(frozen=True)
class DemographicForm:
    code: str
    version: str
    titles: Mapping[str, str]
    sources: tuple[str, ...]
    fields: tuple[Field, ...]
    raw: Mapping[str, Any]

    def title(self, language: str = "en") -> str:
        return self.titles.get(language) or self.titles["en"]

    def field(self, code: str) -> Field | None:
        return next((f for f in self.fields if f.code == code), None)


def _labels(value: Any, path: str, errors: list[str]) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        errors.append(f'{path}: an object of labels by language, e.g. {{"en": "..."}}')
        return {}
    if not isinstance(value.get("en"), str) or not value["en"].strip():
        errors.append(f"{path}.en: the English label is required")
    out = {}
    for lang, text in value.items():
        if not isinstance(text, str) or not text.strip():
            errors.append(f"{path}.{lang}: a non-empty text")
        else:
            out[str(lang)] = text
    return out


def _field(raw: Any, path: str, errors: list[str]) -> Field | None:
    if not isinstance(raw, dict):
        errors.append(f"{path}: an object")
        return None
    unknown = sorted(set(raw) - {"code", "type", "label", "options", "min", "max", "unit"})
    if unknown:
        errors.append(f"{path}: unknown keys {', '.join(unknown)}")
    code = raw.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        errors.append(f"{path}.code: lower-case letters, digits and '_' (max 30), starting with a letter")
        code = ""
    type_ = raw.get("type")
    if type_ not in FIELD_TYPES:
        errors.append(f"{path}.type: one of {', '.join(FIELD_TYPES)}")
    labels = _labels(raw.get("label"), f"{path}.label", errors)
    options: list[Option] = []
    low = high = None
    if type_ == "choice":
        if "min" in raw or "max" in raw:
            errors.append(f"{path}: min and max belong to integer fields")
        raw_options = raw.get("options")
        if not isinstance(raw_options, list) or not raw_options:
            errors.append(f"{path}.options: a non-empty list")
            raw_options = []
        seen: set[int] = set()
        for i, opt in enumerate(raw_options):
            opath = f"{path}.options[{i}]"
            if not isinstance(opt, dict):
                errors.append(f"{opath}: an object")
                continue
            value = opt.get("value")
            if not isinstance(value, int) or isinstance(value, bool):
                errors.append(f"{opath}.value: an integer (the export code)")
                continue
            if value in seen:
                errors.append(f"{opath}.value: {value} is used twice")
            seen.add(value)
            options.append(Option(value, _labels(opt.get("label"), f"{opath}.label", errors)))
    elif type_ == "integer":
        if "options" in raw:
            errors.append(f"{path}.options: only choice fields have options")
        low, high = raw.get("min"), raw.get("max")
        for key, bound in (("min", low), ("max", high)):
            if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool)):
                errors.append(f"{path}.{key}: an integer")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            errors.append(f"{path}: min is above max")
    unit = raw.get("unit", "")
    if not isinstance(unit, str):
        errors.append(f"{path}.unit: a text")
        unit = ""
    return Field(code, str(type_), labels, tuple(options), low, high, unit)


def parse_form(data: Any) -> DemographicForm:
    """A checked definition; raises DemographicFormError listing every problem with its JSON path."""
    errors: list[str] = []
    if not isinstance(data, dict):
        raise DemographicFormError(["$: an object"])
    unknown = sorted(set(data) - {"$schema", "code", "version", "title", "sources", "fields"})
    if unknown:
        errors.append(f"$: unknown keys {', '.join(unknown)}")
    code = data.get("code")
    if not isinstance(code, str) or not _FORM_CODE.match(code):
        errors.append("$.code: upper-case letters, digits and '_', starting with a letter")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip() or len(version) > 20:
        errors.append('$.version: a text of at most 20 characters, e.g. "1"')
    titles = _labels(data.get("title"), "$.title", errors)
    sources = data.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        errors.append("$.sources: a list of texts")
        sources = []
    raw_fields = data.get("fields")
    fields: list[Field] = []
    if not isinstance(raw_fields, list) or not raw_fields:
        errors.append("$.fields: a non-empty list")
        raw_fields = []
    codes: set[str] = set()
    for i, raw in enumerate(raw_fields):
        f = _field(raw, f"$.fields[{i}]", errors)
        if f is None:
            continue
        if f.code and f.code in codes:
            errors.append(f"$.fields[{i}].code: {f.code} is used twice")
        codes.add(f.code)
        fields.append(f)
    if errors:
        raise DemographicFormError(errors)
    return DemographicForm(str(code), str(version), titles, tuple(sources), tuple(fields), data)


@cache
def shipped_form() -> DemographicForm:
    return parse_form(json.loads(SHIPPED_PATH.read_text(encoding="utf-8")))


def answer_errors(form: DemographicForm, answers: Mapping[str, Any]) -> dict[str, list[str]]:
    """Problems with ``answers`` (field code -> integer, or None for not recorded), by field code. An unknown field,
    a value outside the range or not among the options is refused; a field may be left out or None."""
    errors: dict[str, list[str]] = {}
    for code, value in answers.items():
        field = form.field(code)
        if field is None:
            errors[code] = [f"not a field of {form.code} v{form.version}"]
            continue
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            errors[code] = ["an integer"]
        elif field.type == "choice" and value not in {o.value for o in field.options}:
            errors[code] = [f"one of {', '.join(str(o.value) for o in field.options)}"]
        elif field.type == "integer" and (
            (field.min is not None and value < field.min) or (field.max is not None and value > field.max)
        ):
            errors[code] = [f"between {field.min} and {field.max}"]
    return errors


def form_as_dict(form: DemographicForm, language: str = "en") -> dict[str, Any]:
    """The form with its labels in ``language`` (English where the file has no such label), for the API and pages."""
    return {
        "code": form.code,
        "version": form.version,
        "title": form.title(language),
        "fields": [
            {
                "code": f.code,
                "type": f.type,
                "label": f.label(language),
                "unit": f.unit,
                "min": f.min,
                "max": f.max,
                "options": [{"value": o.value, "label": o.label(language)} for o in f.options],
            }
            for f in form.fields
        ],
    }
