"""The codebook: every variable of every dataset the caller would get, with label, type, allowed values, value labels,
unit, instrument and version, and how it is derived. Item- and scale-level rows come from the instrument definitions
(the latest loaded version of each instrument, else the shipped file), so allowed values and value labels are the
instrument's own."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from exports.columns import FLOAT, INT, TEXT, Scope
from exports.datasets import DATASETS, RESPONSES, SCORES
from exports.wide import index_columns, wide_columns

FIELDS = (
    "dataset",
    "variable",
    "code",
    "label",
    "type",
    "allowed_values",
    "value_labels",
    "unit",
    "instrument",
    "instrument_version",
    "derivation",
)


def _labels(values: Mapping[Any, str] | None) -> dict[str, str] | None:
    return {str(k): str(v) for k, v in values.items()} if values else None


def _row(dataset: str, variable: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FIELDS, "")
    row.update(dataset=dataset, variable=variable, value_labels=None)
    row.update({k: v for k, v in kw.items() if v is not None})
    return row


def instruments() -> list[Any]:
    from assessments.library import instruments_all

    return instruments_all()


def codebook_rows(scope: Scope, instrument_defs: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    defs = list(instrument_defs) if instrument_defs is not None else instruments()
    rows: list[dict[str, Any]] = []
    for dataset in DATASETS.values():
        for col in dataset.visible(scope):
            rows.append(
                _row(
                    dataset.name,
                    col.name,
                    label=col.label,
                    type=col.type,
                    allowed_values="|".join(str(k) for k in col.values) if col.values else "",
                    value_labels=_labels(col.values),
                    unit=col.unit,
                    instrument=col.instrument,
                    instrument_version=col.instrument_version,
                    derivation=col.derivation,
                )
            )
        if dataset is RESPONSES:
            rows.extend(_item_rows(defs))
        if dataset is SCORES:
            rows.extend(_scale_rows(defs))
    for col in index_columns(scope):
        rows.append(
            _row("scores_wide", col.name, label=col.label, type=col.type, unit=col.unit, derivation=col.derivation)
        )
    for w in wide_columns(defs):
        rows.append(
            _row(
                "scores_wide",
                w.name,
                code=w.code,
                label=w.label,
                type=w.type,
                allowed_values=w.allowed,
                value_labels=_labels(w.values),
                unit=w.unit,
                instrument=w.instrument,
                instrument_version=w.instrument_version,
                derivation=f"{w.kind} '{w.code}' of the instrument's score at this visit: {w.derivation}",
            )
        )
    return rows


def _item_rows(defs: Sequence[Any]) -> list[dict[str, Any]]:
    rows = []
    for inst in sorted(defs, key=lambda i: i.code):
        for item in inst.items:
            how = "raw answer (value of the chosen option)"
            if item.show_if is not None:
                how += f"; asked only when {item.show_if.item} = {item.show_if.equals}, else empty"
            if not item.required:
                how += "; optional"
            rows.append(
                _row(
                    "responses",
                    "value",
                    code=item.code,
                    label=f"{inst.code} {item.code}: {item.text}",
                    type=INT,
                    allowed_values="|".join(str(o.value) for o in item.options),
                    value_labels={str(o.value): o.label for o in item.options},
                    instrument=inst.code,
                    instrument_version=inst.version,
                    derivation=how,
                )
            )
    return rows


def _scale_rows(defs: Sequence[Any]) -> list[dict[str, Any]]:
    rows = []
    for w in wide_columns(defs):
        rows.append(
            _row(
                "scores",
                "score_text" if w.type == TEXT else "score",
                code=w.code,
                label=w.label,
                type=TEXT if w.type == TEXT else FLOAT,
                allowed_values=w.allowed,
                value_labels=_labels(w.values) if w.kind == "flag" else None,
                unit=w.unit,
                instrument=w.instrument,
                instrument_version=w.instrument_version,
                derivation=f"{w.kind}: {w.derivation}",
            )
        )
    return rows


def as_table(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as tuples in FIELDS order, value labels as a JSON object (for CSV)."""
    out = []
    for row in rows:
        labels = row["value_labels"]
        out.append(
            tuple(
                (json.dumps(labels, ensure_ascii=False) if labels else None)
                if f == "value_labels"
                else (row[f] or None)
                for f in FIELDS
            )
        )
    return out
