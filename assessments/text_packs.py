"""Instrument text packs: a site's licensed or validated wording of ONE instrument version in ONE language.

A pack (JSON, ``instrument_text_schema.json``) holds the source citation and licence, the title, instructions and
time frame, every item's text by item code, and the option labels of the labelled points only (Neff's SCS labels
just 1 and 5: the other points show their number). ``parse_text_pack`` checks it structurally against the schema and
then against the instrument version it names; every problem is reported with its JSON path, e.g.
``items.SCS_27: unknown item`` or ``option_labels.scs_frequency.7: 7 is not a value of option set 'scs_frequency'``.

The project ships no wording of its own: an instrument whose definition is verbatim (the public-domain PCL-5) or
site-supplied counts as its own English pack (``pack_from_definition``); every other instrument needs a loaded pack
for each language a participant answers in. The demo's stand-in packs (``placeholder_pack_data``) are built from the
neutral labels, marked as placeholders, and never count as validated text.

Pure Python: no database and no Django import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from assessments.definitions import Instrument, Item

SCHEMA_PATH = Path(__file__).with_name("instrument_text_schema.json")
# Item text statuses whose definition carries the wording itself (in English, the reference language).
SELF_TEXT_STATUSES = frozenset({"verbatim", "site_supplied"})
DEFINITION_LANGUAGE = "en"


class TextPackError(ValueError):
    """A text pack is refused. ``errors`` lists every problem, each prefixed with its JSON path."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors) if self.errors else "invalid text pack")


@dataclass(frozen=True)
class TextPack:
    """The wording a participant is shown for one instrument version in one language."""

    instrument: str
    instrument_version: str
    language: str
    version: str
    title: str
    time_frame: str
    instructions: str
    citation: str
    licence: str
    items: Mapping[str, str]
    # {item code: {value: label}}, the labelled points only.
    option_labels: Mapping[str, Mapping[int, str]]
    placeholder: bool = False
    # True for the wording of the instrument definition itself (the shipped PCL-5): no stored row.
    from_definition: bool = False
    pk: int | None = None
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def item_text(self, code: str) -> str:
        return self.items[code]

    def option_label(self, item_code: str, value: int) -> str:
        """The point's label, or its number where the pack labels only some points."""
        return self.option_labels.get(item_code, {}).get(value, str(value))


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _path(parts: Collection[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def decode_pack(content: bytes | str, *, name: str) -> Any:
    """Decode a pack file's bytes. Raises TextPackError when it is not a JSON document."""
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TextPackError([f"(root): {name} is not a JSON document ({exc})"]) from exc


def option_key(instrument: Instrument, item_code: str) -> str:
    """The key of an item's options in ``option_labels``: its option set's name, or the item's own code when the
    item declares its options inline."""
    for raw in instrument.raw.get("items", []):
        if raw.get("code") == item_code:
            spec = raw.get("options")
            return spec if isinstance(spec, str) else item_code
    return item_code


def parse_text_pack(
    data: Any,
    *,
    instrument_lookup: Callable[[str, str | None], Instrument],
    languages: Collection[str],
    allow_placeholder: bool = False,
) -> TextPack:
    """Validate ``data`` (a decoded pack) against the schema and the instrument version it names, and build a
    :class:`TextPack`. ``instrument_lookup(code, version)`` raises KeyError for an unknown instrument or version (``None``: any
    version);
    ``languages`` are the languages the site declares (settings.LANGUAGES). Raises :class:`TextPackError` listing
    every problem with its JSON path."""
    schema_errors = sorted(_validator().iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if schema_errors:
        raise TextPackError([f"{_path(e.absolute_path)}: {e.message}" for e in schema_errors])
    errors: list[str] = []
    if data["language"] not in languages:
        errors.append(
            f"language: '{data['language']}' is not a declared language of this site "
            f"(declared: {', '.join(sorted(languages))})"
        )
    if data.get("placeholder", False) and not allow_placeholder:
        errors.append("placeholder: placeholder wording is accepted only in the demo (DEBUG)")
    try:
        instrument = instrument_lookup(data["instrument"], data["instrument_version"])
    except KeyError:
        try:
            instrument_lookup(data["instrument"], None)
        except KeyError:
            errors.append(f"instrument: unknown instrument '{data['instrument']}'")
        else:
            errors.append(f"instrument_version: {data['instrument']} has no version {data['instrument_version']}")
        raise TextPackError(errors) from None

    known = instrument.item_codes
    for code in data["items"]:
        if code not in known:
            errors.append(f"items.{code}: unknown item (not an item of {instrument.code} v{instrument.version})")
    for code in known:
        if code not in data["items"]:
            errors.append(f"items.{code}: missing (every item of {instrument.code} needs its text)")

    # Which option sets the items use, and their values.
    key_values: dict[str, tuple[int, ...]] = {}
    key_items: dict[str, list[Item]] = {}
    for item in instrument.items:
        key = option_key(instrument, item.code)
        key_values.setdefault(key, item.values)
        key_items.setdefault(key, []).append(item)
    labels_by_key: dict[str, dict[int, str]] = {}
    for key, labels in data["option_labels"].items():
        if key not in key_values:
            errors.append(f"option_labels.{key}: unknown option set (known: {', '.join(key_values)})")
            continue
        parsed: dict[int, str] = {}
        for value_text, label in labels.items():
            value = int(value_text)
            if value not in key_values[key]:
                allowed = ", ".join(str(v) for v in key_values[key])
                errors.append(
                    f"option_labels.{key}.{value_text}: {value} is not a value of option set '{key}' "
                    f"(values: {allowed})"
                )
            parsed[value] = label
        labels_by_key[key] = parsed
    for key in key_values:
        if key not in data["option_labels"]:
            errors.append(
                f"option_labels.{key}: missing (give the labelled points of '{key}', or {{}} if no point is labelled)"
            )
    if errors:
        raise TextPackError(errors)
    source = data["source"]
    return TextPack(
        instrument=instrument.code,
        instrument_version=instrument.version,
        language=data["language"],
        version=data["version"],
        title=data["title"],
        time_frame=data["time_frame"],
        instructions=data.get("instructions", ""),
        citation=source["citation"],
        licence=data["licence"],
        items=dict(data["items"]),
        option_labels={
            item.code: labels_by_key.get(option_key(instrument, item.code), {}) for item in instrument.items
        },
        placeholder=bool(data.get("placeholder", False)),
        raw=data,
    )


def has_own_text(instrument: Instrument) -> bool:
    """Does the definition carry the instrument's wording (verbatim, or supplied by the site that loaded it)?"""
    return instrument.item_text_status in SELF_TEXT_STATUSES


def pack_from_definition(instrument: Instrument) -> TextPack:
    """The English wording a verbatim or site-supplied definition carries, as a pack (nothing is stored for it)."""
    return TextPack(
        instrument=instrument.code,
        instrument_version=instrument.version,
        language=DEFINITION_LANGUAGE,
        version=instrument.version,
        title=instrument.title,
        time_frame=instrument.recall_period,
        instructions=str(instrument.raw.get("instructions", "")),
        citation="; ".join(s["citation"] for s in instrument.sources),
        licence=instrument.licence,
        items={item.code: item.text for item in instrument.items},
        option_labels={
            item.code: {o.value: o.label for o in item.options if o.label != str(o.value)} for item in instrument.items
        },
        from_definition=True,
    )


def placeholder_pack_data(instrument: Instrument, language: str) -> dict[str, Any]:
    """A demo pack built from the neutral labels, marked as a placeholder in every string. It holds no wording."""
    mark = f"[{language} placeholder]"
    labels: dict[str, dict[str, str]] = {}
    for item in instrument.items:
        labels.setdefault(
            option_key(instrument, item.code),
            {str(o.value): f"{mark} {o.label}" for o in item.options if o.label != str(o.value)},
        )
    return {
        "instrument": instrument.code,
        "instrument_version": instrument.version,
        "language": language,
        "version": "0.1",
        "placeholder": True,
        "source": {"citation": "Demo placeholder built from the neutral labels; not the instrument's wording."},
        "licence": "Placeholder for the demo only.",
        "title": f"{mark} {instrument.title}",
        "time_frame": f"{mark} {instrument.recall_period}",
        "items": {item.code: f"{mark} {item.text}" for item in instrument.items},
        "option_labels": labels,
    }
