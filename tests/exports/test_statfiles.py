"""SPSS and Stata files written in chunks (exports.statfiles) hold what a whole-frame pyreadstat write holds: the same
bytes (but the creation time) for inputs spread over many small batches, with value and variable labels, missing
numbers, unicode, SPSS very long strings, Stata strLs and dates; and the export API gives the same file whatever the
batch size."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest

from audit.models import AuditEvent
from exports import statfiles
from exports.statfiles import Column
from tests.exports.conftest import body_of

COLUMNS = [
    Column("participant_id", False, "Participant", None),
    Column("value", True, "Answer value", {0.0: "Not at all", 1.0: "A little bit", 4.0: "Extremely"}),
    Column("study_day", True, "Study day of submission", None),
    Column("score", True, "Score (mean of the items)", None),
    Column("note", False, "Texte libre é", None),
    Column("long_text", False, "A text wider than 255 bytes", None),
    Column("date", False, "Local date (ISO)", None),
]


def _rows(n: int, *, strl: bool = False) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(n):
        long_text = ("ünïcödé ☃ " * (i % 80) + str(i)) if i % 3 else None
        if strl and i % 2:
            long_text = "é" * (1100 + i) + str(i)  # 2,200 bytes and more: a Stata strL
        rows.append(
            (
                f"MAP-PDX-{i:04d}",
                None if i % 7 == 0 else i % 5,
                None if i % 11 == 0 else i - 30,
                None if i % 13 == 0 else i / 7,
                "ñandú «☃»" * (i % 4) if i % 5 else None,
                long_text,
                dt.date(2025, 1, 1) + dt.timedelta(days=i) if i % 4 else None,
            )
        )
    return rows


def _whole_frame(kind: str, rows: list[tuple[Any, ...]], path: Path, label: str) -> None:
    """The file as it was written before: one pandas frame of every row, written by pyreadstat in one call."""
    data = {}
    for i, column in enumerate(COLUMNS):
        values = [row[i] for row in rows]
        if column.numeric:
            data[column.name] = pd.Series(values, dtype="float64")
        else:
            data[column.name] = pd.Series(["" if v is None else str(v) for v in values], dtype=object)
    frame = pd.DataFrame(data, columns=[c.name for c in COLUMNS])
    value_labels = {c.name: c.value_labels for c in COLUMNS if c.value_labels}
    labels: list[str | None] = [c.label[:80] for c in COLUMNS]
    write = pyreadstat.write_sav if kind == "sav" else pyreadstat.write_dta
    write(frame, str(path), file_label=label, column_labels=labels, variable_value_labels=value_labels)


def _without_timestamp(kind: str, data: bytes) -> bytes:
    if kind == "sav":
        return data[:92] + data[109:]  # the header's creation date (9 bytes) and time (8 bytes)
    at = data.index(b"<timestamp>")
    end = data.index(b"</timestamp>")
    return data[:at] + data[end:]


def _read(kind: str, path: Path) -> tuple[pd.DataFrame, Any]:
    return (pyreadstat.read_sav if kind == "sav" else pyreadstat.read_dta)(str(path))


@pytest.mark.parametrize("kind", ["sav", "dta"])
@pytest.mark.parametrize("strl", [False, True], ids=["short", "strl"])
def test_chunked_file_is_the_whole_frame_file(tmp_path, kind, strl):
    rows = _rows(250, strl=strl)
    counts: list[int] = []
    statfiles.write(
        kind,
        COLUMNS,
        iter(rows),
        str(tmp_path / f"new.{kind}"),
        label="trialsite x",
        on_rows=counts.append,
        batch_rows=7,
    )
    _whole_frame(kind, rows, tmp_path / f"old.{kind}", "trialsite x")
    new = (tmp_path / f"new.{kind}").read_bytes()
    old = (tmp_path / f"old.{kind}").read_bytes()
    assert len(new) == len(old)
    assert _without_timestamp(kind, new) == _without_timestamp(kind, old)
    # 36 batches of 7 rows (the last one short); the count is reported as each batch is spooled.
    assert counts[:3] == [7, 14, 21] and counts[-1] == 250

    df, meta = _read(kind, tmp_path / f"new.{kind}")
    assert len(df) == 250 and meta.number_rows == 250
    assert meta.file_label == "trialsite x"
    assert dict(zip(meta.column_names, meta.column_labels, strict=True)) == {c.name: c.label for c in COLUMNS}
    assert meta.variable_value_labels["value"] == {0: "Not at all", 1: "A little bit", 4: "Extremely"}
    assert math.isnan(df["value"][0]) and df["value"][1] == 1 and df["value"][4] == 4
    assert math.isnan(df["study_day"][0]) and df["study_day"][12] == -18
    assert math.isnan(df["score"][13]) and df["score"][20] == pytest.approx(20 / 7)
    assert df["note"][0] == "" and df["note"][3] == "ñandú «☃»" * 3
    assert df["date"][0] == "" and df["date"][1] == "2025-01-02"
    assert df["long_text"][0] == ""
    # Row 239: 79 x 14 bytes in SPSS segments of 255 bytes, or 2,680 bytes in a Stata strL.
    expected_long = "é" * (1100 + 239) + "239" if strl else "ünïcödé ☃ " * 79 + "239"
    assert df["long_text"][239] == expected_long
    assert df["participant_id"].tolist() == [f"MAP-PDX-{i:04d}" for i in range(250)]


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_repeated_strl_texts_read_back_whatever_is_remembered(tmp_path, kind, monkeypatch):
    # Beyond STRL_REMEMBERED distinct texts a repeat gets an entry of its own: the file reads back the same.
    monkeypatch.setattr(statfiles, "STRL_REMEMBERED", 2)
    texts = ["a" * 3000, "b" * 3000, "c" * 3000, ""]
    rows = [(f"P{i}", float(i), 0.0, 0.0, "", texts[i % 4], "") for i in range(40)]
    statfiles.write(
        kind, COLUMNS, iter(rows), str(tmp_path / f"x.{kind}"), label="l", on_rows=lambda n: None, batch_rows=3
    )
    df, meta = _read(kind, tmp_path / f"x.{kind}")
    assert df["long_text"].tolist() == [texts[i % 4] for i in range(40)]
    assert df["value"].tolist() == [float(i) for i in range(40)]


@pytest.mark.parametrize("kind", ["sav", "dta"])
def test_no_rows_gives_the_whole_frame_dictionary(tmp_path, kind):
    statfiles.write(kind, COLUMNS, iter([]), str(tmp_path / f"new.{kind}"), label="empty", on_rows=lambda n: None)
    _whole_frame(kind, [], tmp_path / f"old.{kind}", "empty")
    new = (tmp_path / f"new.{kind}").read_bytes()
    assert _without_timestamp(kind, new) == _without_timestamp(kind, (tmp_path / f"old.{kind}").read_bytes())
    df, meta = _read(kind, tmp_path / f"new.{kind}")
    assert len(df) == 0 and list(df.columns) == [c.name for c in COLUMNS]
    assert meta.variable_value_labels["value"] == {0: "Not at all", 1: "A little bit", 4: "Extremely"}


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_export_in_batches_of_three_rows_reads_back_as_one_batch(
    answered, statistician, api, tmp_path, monkeypatch, fmt
):
    one = tmp_path / f"one.{fmt}"
    one.write_bytes(body_of(api(statistician).get(f"/api/v1/export/responses.{fmt}")))
    monkeypatch.setattr(statfiles, "SPOOL_BATCH", 3)
    many = tmp_path / f"many.{fmt}"
    many.write_bytes(body_of(api(statistician).get(f"/api/v1/export/responses.{fmt}")))
    assert _without_timestamp(fmt, many.read_bytes()) == _without_timestamp(fmt, one.read_bytes())
    df, meta = _read(fmt, many)
    # 20 PCL-5, 26 SCS and 25 CAPS-5 answers: 71 rows, in 24 batches.
    assert len(df) == 71
    assert sorted(df["instrument"].unique()) == ["CAPS5", "PCL5", "SCS"]
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["item"] == "Item code"
    events = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).order_by("id")
    assert [(e.new_value["format"], e.new_value["rows"], e.new_value["complete"]) for e in events] == [
        (fmt, 71, True),
        (fmt, 71, True),
    ]
