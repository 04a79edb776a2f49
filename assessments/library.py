"""The instrument library, read: the shipped definitions plus the versions a site loaded (writes:
``assessments.services.library``). Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from django.db.models import Case, F, JSONField, QuerySet, Value, When

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


def _definition_of(pk: int, code: str, version: str) -> Instrument:
    # Rows are immutable, so the parsed form is cached per row and the definition (a large JSON document) is read from
    # the database once per process (the key includes code and version so that a pk reused after a rolled-back test
    # transaction cannot serve another definition).
    key = (pk, code, version)
    parsed = _parsed_versions.get(key)
    if parsed is None:
        definition = InstrumentVersion.objects.values_list("definition", flat=True).get(pk=pk)
        parsed = _parsed_versions[key] = parse_instrument(definition)
    return parsed


def unless_read(column: str, read_pks: Iterable[int]) -> F | Case:
    """``column`` of a row, or NULL for the rows whose ``column`` this process has read already (their pks): a query
    of an immutable table's rows carries a large document only the first time a process meets the row."""
    known = sorted(set(read_pks))
    if not known:
        return F(column)
    return Case(
        When(pk__in=known, then=Value(None, output_field=JSONField())), default=F(column), output_field=JSONField()
    )


def _remember(rows: Iterable[tuple[int, str, str, Any]]) -> list[tuple[int, str, str]]:
    """The (pk, code, version) of these rows, each parsed now if it came with its definition (met for the first time)."""
    out = []
    for pk, code, version, definition in rows:
        key = (pk, code, version)
        if definition is not None and key not in _parsed_versions:
            _parsed_versions[key] = parse_instrument(definition)
        out.append(key)
    return out


def _parsed_versions_pks() -> list[int]:
    return [key[0] for key in _parsed_versions]


def _rows(qs: QuerySet[InstrumentVersion]) -> list[tuple[int, str, str]]:
    # One query: each row's pk, code and version, with its definition only when this process has not parsed it.
    new_definition = unless_read("definition", _parsed_versions_pks())
    return _remember(qs.annotate(new_definition=new_definition).values_list("pk", "code", "version", "new_definition"))


def _resolve(code: str, version: str | None, row: tuple[int, str, str] | None) -> Instrument:
    if row is not None:
        return _definition_of(*row)
    shipped = shipped_instruments().get(code)
    if shipped is not None and (version is None or shipped.version == version):
        return shipped
    if version is not None and (code, version) in superseded_instruments():
        return superseded_instruments()[(code, version)]
    raise KeyError(code if version is None else f"{code} v{version}")


def instrument_get(code: str, version: str | None = None) -> Instrument:
    """The definition to use for ``code``: the latest loaded version (or exactly ``version``), else the shipped file
        (for an exact ``version``, also an earlier shipped version kept under ``instruments/superseded/``, so a stored
        response is corrected and rescored with the definition it was answered under). Raises KeyError when no such
        instrument exists. One query, which carries a version's definition only the first time this process meets it (the
    parsed definition is kept per version: versions are immutable)."""
    rows = InstrumentVersion.objects.filter(code=code)
    if version is not None:
        rows = rows.filter(version=version)
    found = _rows(rows.order_by("-loaded_at", "-id")[:1])
    return _resolve(code, version, found[0] if found else None)


class Library:
    """The library as it stands, read once (one query, a definition read only the first time a process meets it): the versions loaded, resolved to their
    parsed definitions from the per-process cache. For a request that needs several instruments (a participant's
    link), so that each costs no query; read a new one for each request (a site may load a version at any time)."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[int, str, str]] = {}
        self._exact: dict[tuple[str, str], tuple[int, str, str]] = {}
        for pk, code, version in _rows(InstrumentVersion.objects.order_by("code", "-loaded_at", "-id")):
            self._latest.setdefault(code, (pk, code, version))
            self._exact[(code, version)] = (pk, code, version)

    def instrument(self, code: str, version: str | None = None) -> Instrument:
        """As ``instrument_get``, without a query."""
        row = self._latest.get(code) if version is None else self._exact.get((code, version))
        return _resolve(code, version, row)

    def instruments(self) -> list[Instrument]:
        """As ``instruments_all``."""
        shipped = shipped_instruments()
        return [
            _definition_of(*self._latest[code]) if code in self._latest else shipped[code]
            for code in sorted(set(shipped) | set(self._latest))
        ]


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
    return Library().instruments()


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
