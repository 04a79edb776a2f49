"""The instrument library, read: the shipped definitions plus the versions a site loaded (writes:
``assessments.services.library``). Nothing here writes."""

from __future__ import annotations

from functools import cache

from assessments.definitions import (
    Instrument,
    Item,
    Option,
    load_shipped_instruments,
    load_superseded_instruments,
    parse_instrument,
)
from assessments.models import InstrumentVersion


@cache
def shipped_instruments() -> dict[str, Instrument]:
    return load_shipped_instruments()


@cache
def superseded_instruments() -> dict[tuple[str, str], Instrument]:
    """Earlier shipped versions by (code, version): read only for responses stored under them."""
    return load_superseded_instruments()


_parsed_versions: dict[tuple[int, str, str], Instrument] = {}


def _parse_row(row: InstrumentVersion) -> Instrument:
    # Rows are immutable, so the parsed form is cached per row (the key includes code and version so that a pk reused
    # after a rolled-back test transaction cannot serve another definition).
    key = (row.pk, row.code, row.version)
    if key not in _parsed_versions:
        _parsed_versions[key] = parse_instrument(row.definition)
    return _parsed_versions[key]


def instrument_get(code: str, version: str | None = None) -> Instrument:
    """The definition to use for ``code``: the latest loaded version (or exactly ``version``), else the shipped file
    (for an exact ``version``, also an earlier shipped version kept under ``instruments/superseded/``, so a stored
    response is corrected and rescored with the definition it was answered under). Raises KeyError when no such
    instrument exists."""
    rows = InstrumentVersion.objects.filter(code=code)
    if version is not None:
        rows = rows.filter(version=version)
    row = rows.order_by("-loaded_at", "-id").first()
    if row is not None:
        return _parse_row(row)
    shipped = shipped_instruments().get(code)
    if shipped is not None and (version is None or shipped.version == version):
        return shipped
    if version is not None and (code, version) in superseded_instruments():
        return superseded_instruments()[(code, version)]
    raise KeyError(code if version is None else f"{code} v{version}")


def instrument_codes() -> list[str]:
    return sorted(set(shipped_instruments()) | set(InstrumentVersion.objects.values_list("code", flat=True)))


def instrument_catalogue() -> set[str]:
    """The shipped library's codes: a protocol may always name these (registered with scheduling; reads files only)."""
    return set(shipped_instruments())


def stored_instrument_catalogue() -> set[str]:
    """Every code in the library, a site's own instruments included (registered with scheduling as the catalogue
    that reads the database)."""
    return set(instrument_codes())


def instruments_all() -> list[Instrument]:
    """Every instrument in its current definition (the latest loaded version, else the shipped file), in one query."""
    latest: dict[str, InstrumentVersion] = {}
    for row in InstrumentVersion.objects.order_by("code", "-loaded_at", "-id"):
        latest.setdefault(row.code, row)
    shipped = shipped_instruments()
    return [
        _parse_row(latest[code]) if code in latest else shipped[code] for code in sorted(set(shipped) | set(latest))
    ]


def contract_errors(new: Instrument, reference: Instrument) -> list[str]:
    """Codes are a contract with exports: a site-supplied definition may change wording, never codes or values."""
    errors = []
    if new.item_codes != reference.item_codes:
        errors.append(
            f"items: item codes must be exactly those of {reference.code} ({', '.join(reference.item_codes)})"
        )
    else:
        for i, (a, b) in enumerate(zip(new.items, reference.items, strict=True)):
            if a.values != b.values:
                errors.append(f"items[{i}].options: values must stay {list(b.values)}")
    if [s.code for s in new.scales] != [s.code for s in reference.scales]:
        errors.append("scales: scale codes must stay " + ", ".join(s.code for s in reference.scales))
    if new.respondent != reference.respondent:
        errors.append(f"respondent: must stay '{reference.respondent}'")
    return errors


def text_for(item: Item, language: str) -> str:
    return item.texts.get(language) or item.text


def option_label(option: Option, language: str) -> str:
    return option.labels.get(language) or option.label
