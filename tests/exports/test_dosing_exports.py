"""The dosing_sessions and vital_signs datasets: values round-trip through every format as the codebook declares
them, times become minutes and study days, and nothing identifies a person (no kit number, no names, no notes)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyreadstat
import pytest

from tests.exports.conftest import body_of

pytestmark = pytest.mark.django_db

SECRETS = ("KIT-SECRET-9", "Dr Visiting Name", "Ada", "felt fine", "alice", "@example.org")


def zone(participant):
    import zoneinfo

    return zoneinfo.ZoneInfo(participant.time_zone)


def dose_day(participant):
    from scheduling.models import Visit

    return Visit.objects.get(participant=participant, code="DOSE1").target_date


def frame(response) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(body_of(response)), keep_default_na=False, na_values=[""])


def codebook(api, user, dataset) -> dict[str, dict]:
    rows = json.loads(body_of(api(user).get("/api/v1/export/codebook.json")))
    return {r["variable"]: r for r in rows if r["dataset"] == dataset}


def test_dosing_sessions_round_trip_with_the_codebook_and_name_nobody(trial, statistician, open_view, api):
    p1 = trial[0]
    # Blinded: DOSE1 serves no timepoint of the protocol, so its session is left out (in a delayed-treatment design
    # a session before the primary endpoint names the arm); the header is the codebook's.
    blinded = frame(api(statistician).get("/api/v1/export/dosing_sessions.csv"))
    assert blinded.empty and "timepoint" in blinded.columns and "visit_code" not in blinded.columns
    assert list(blinded.columns) == [n for n in codebook(api, statistician, "dosing_sessions") if n != "session_date"]
    statistician = open_view
    r = api(statistician).get("/api/v1/export/dosing_sessions.csv")
    assert r.status_code == 200
    df = frame(r)
    arm_only = ["arm", "initial_dose_mg", "supplemental_dose_mg", "supplemental_dose_minutes", "timepoint"]
    assert df["timepoint"].isna().all()
    assert df.drop(columns=["study_day", "session_hours", *arm_only]).to_dict("records") == [
        {
            "participant_id": p1.participant_id,
            "site": "PDX",
            "visit_code": "DOSE1",
            "dosing_number": 1,
            "initial_dose_minutes": 30.0,
            "present_staff_count": 1,
            "present_others_count": 1,
            "vital_sign_count": 2,
            "closed": 0,
            "missing_timepoints_reason_given": 0,
        }
    ]
    assert pd.isna(df["session_hours"][0])  # not ended yet
    assert df["study_day"][0] == (dose_day(p1) - p1.randomized_at.astimezone(zone(p1)).date()).days
    book = codebook(api, statistician, "dosing_sessions")
    assert list(df.columns) == [name for name in book if name != "session_date"]
    body = body_of(api(statistician).get("/api/v1/export/dosing_sessions.json")).decode()
    for secret in SECRETS:
        assert secret not in body and secret not in df.to_csv()


def test_vital_signs_round_trip_in_every_format(trial, statistician, open_view, api, tmp_path):
    p1 = trial[0]
    # Blinded: measured at DOSE1, which serves no timepoint: left out.
    assert frame(api(statistician).get("/api/v1/export/vital_signs.csv")).empty
    statistician = open_view
    df = frame(api(statistician).get("/api/v1/export/vital_signs.csv"))
    assert df[
        [
            "participant_id",
            "timepoint_code",
            "minutes_from_initial_dose",
            "systolic_bp",
            "diastolic_bp",
            "heart_rate",
            "temperature_c",
        ]
    ].to_dict("records") == [
        {
            "participant_id": p1.participant_id,
            "timepoint_code": "PRE",
            "minutes_from_initial_dose": -15.0,
            "systolic_bp": 128,
            "diastolic_bp": 82,
            "heart_rate": 76,
            "temperature_c": 36.8,
        },
        {
            "participant_id": p1.participant_id,
            "timepoint_code": "T60",
            "minutes_from_initial_dose": 60.0,
            "systolic_bp": 150,
            "diastolic_bp": 95,
            "heart_rate": 104,
            "temperature_c": 37.4,
        },
    ]
    book = codebook(api, statistician, "vital_signs")
    assert list(df.columns) == [name for name in book if name != "measured_date"]
    assert book["temperature_c"]["unit"] == "degrees Celsius" and book["systolic_bp"]["type"] == "integer"
    rows = json.loads(body_of(api(statistician).get("/api/v1/export/vital_signs.json")))
    assert [row["heart_rate"] for row in rows] == [76, 104]
    for fmt, read in (("sav", pyreadstat.read_sav), ("dta", pyreadstat.read_dta)):
        path = tmp_path / f"vital_signs.{fmt}"
        path.write_bytes(body_of(api(statistician).get(f"/api/v1/export/vital_signs.{fmt}")))
        data, meta = read(str(path))
        labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
        assert labels["heart_rate"] == book["heart_rate"]["label"]
        assert data["temperature_c"].tolist() == [36.8, 37.4]
        assert data["timepoint_code"].tolist() == ["PRE", "T60"]
    body = body_of(api(statistician).get("/api/v1/export/vital_signs.csv")).decode()
    for secret in SECRETS:
        assert secret not in body
    # The visit filter applies.
    assert len(frame(api(statistician).get("/api/v1/export/vital_signs.csv?visit_code=DOSE2"))) == 0


def test_doses_travel_with_the_arm(trial, personas, api):
    from participants.models import Study

    Study.objects.filter(code="MAP").update(unblinded=True)
    df = frame(api(personas["unblinded_statistician"]).get("/api/v1/export/dosing_sessions.csv"))
    row = df.to_dict("records")[0]
    assert (row["initial_dose_mg"], row["supplemental_dose_mg"], row["supplemental_dose_minutes"]) == (
        120.0,
        60.0,
        90.0,
    )
    assert row["arm"] in ("mdma", "placebo")
    book = json.loads(body_of(api(personas["unblinded_statistician"]).get("/api/v1/export/codebook.json")))
    units = {r["variable"]: r["unit"] for r in book if r["dataset"] == "dosing_sessions"}
    assert units["initial_dose_mg"] == "mg"
