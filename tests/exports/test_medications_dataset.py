"""The concomitant_medications dataset: rows round-trip through pandas and pyreadstat as the codebook describes them,
no free text leaves (names, indications, free-text doses, notes), and calendar dates only with ?dates=iso."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyreadstat
import pytest

from safety.models import ConcomitantMedication
from scheduling.models import Visit
from tests.exports.conftest import body_of

pytestmark = pytest.mark.django_db

FREE_TEXT = ("sertraline", "Ada", "divorce", "halved weekly", "salbutamol", "puffs", "as needed")


def frame(response) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(body_of(response)), keep_default_na=False, na_values=[""])


def codebook(api, user) -> dict[str, dict]:
    rows = json.loads(body_of(api(user).get("/api/v1/export/codebook.json")))
    return {r["variable"]: r for r in rows if r["dataset"] == "concomitant_medications"}


def test_csv_rows_match_the_database_in_study_days_and_the_codebook(trial, statistician, api):
    p1 = trial[0]
    r = api(statistician).get("/api/v1/export/concomitant_medications.csv")
    assert r.status_code == 200
    raw = body_of(r).decode()
    df = pd.read_csv(io.StringIO(raw), keep_default_na=False, na_values=[""])
    book = codebook(api, statistician)
    assert list(df.columns) == list(book)
    assert list(df.columns) == [
        "participant_id",
        "site",
        "medication_class",
        "dose_amount",
        "dose_unit",
        "route",
        "start_study_day",
        "stop_study_day",
        "ongoing",
    ]
    day0 = p1.schedule.randomization_date
    stored = list(ConcomitantMedication.objects.filter(participant=p1).order_by("start_date", "id"))
    assert len(df) == len(stored) == 2
    for row, med in zip(df.to_dict("records"), stored, strict=True):
        assert row["participant_id"] == p1.participant_id and row["site"] == "PDX"
        assert row["medication_class"] == med.medication_class
        assert row["start_study_day"] == (med.start_date - day0).days
        assert row["ongoing"] == int(med.stop_date is None)
        if med.stop_date is not None:
            assert row["stop_study_day"] == (med.stop_date - day0).days
        else:
            assert pd.isna(row["stop_study_day"])
    taper, other = df.to_dict("records")
    assert (taper["dose_amount"], taper["dose_unit"], taper["route"]) == (37.5, "mg", "oral")
    assert pd.isna(other["dose_amount"]) and pd.isna(other["dose_unit"])
    # Every class value is in the codebook's value labels; no free text leaves.
    assert set(df["medication_class"]) <= set(book["medication_class"]["value_labels"])
    assert book["medication_class"]["value_labels"]["ssri"] == "Selective serotonin reuptake inhibitor"
    for text in FREE_TEXT:
        assert text not in raw, text
    assert "arm" not in df.columns and "start_date" not in df.columns


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_spss_and_stata_files_carry_the_codebook_labels(trial, statistician, api, tmp_path, fmt):
    r = api(statistician).get(f"/api/v1/export/concomitant_medications.{fmt}")
    assert r.status_code == 200
    path = tmp_path / f"meds.{fmt}"
    data = body_of(r)
    path.write_bytes(data)
    df, meta = (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(path))
    book = codebook(api, statistician)
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels == {name: entry["label"] for name, entry in book.items()}
    assert meta.variable_value_labels["ongoing"] == {0: "No", 1: "Yes"}
    assert sorted(df["dose_amount"].dropna().tolist()) == [37.5]
    assert len(df) == ConcomitantMedication.objects.filter(participant__site__code="PDX").count()
    for text in FREE_TEXT:
        assert text.encode() not in data


def test_json_and_dates_only_on_request(trial, unblinded, api):
    from django.contrib.auth.models import Permission

    unblinded.user_permissions.add(Permission.objects.get(codename="export_dates"))
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=unblinded.pk)
    rows = json.loads(body_of(api(user).get("/api/v1/export/concomitant_medications.json")))
    assert rows and "start_date" not in rows[0]
    dated = json.loads(body_of(api(user).get("/api/v1/export/concomitant_medications.json?dates=iso")))
    stored = ConcomitantMedication.objects.filter(participant=trial[0]).order_by("start_date", "id").first()
    assert dated[0]["start_date"] == stored.start_date.isoformat()
    assert Visit.objects.filter(participant=trial[0], code="DOSE1").exists()
