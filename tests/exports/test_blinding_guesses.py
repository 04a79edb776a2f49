"""The blinding_guesses dataset: every guess round-trips through pandas and pyreadstat as the codebook describes it,
de-identified, with the arm only for the unblinded statistician after unblinding."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyreadstat
import pytest
from django.db import transaction

from participants import selectors as participant_selectors
from safety import services as safety_services
from safety.models import TreatmentGuess
from scheduling.models import Visit
from tests.exports.conftest import body_of, unblind
from tests.factories import unblind_by_api

pytestmark = pytest.mark.django_db

ANSWERS = [
    ("DOSE1", "participant", "mdma", 70),
    ("DOSE1", "lead_therapist", "placebo", 40),
    ("ENDPOINT", "participant", "dont_know", 0),
]


@pytest.fixture
def guessed(make_participant, alice, personas):
    people = [make_participant("randomized") for _ in range(2)]
    therapist = personas["therapist"]
    for person in people:
        for code, respondent, guess, confidence in ANSWERS:
            with transaction.atomic():
                safety_services.guess_record(
                    participant=person,
                    visit=Visit.objects.get(participant=person, code=code),
                    respondent=respondent,
                    guess=guess,
                    confidence=confidence,
                    by=therapist if respondent == "lead_therapist" else alice,
                )
    first = TreatmentGuess.objects.filter(participant=people[0], respondent="participant").order_by("id").first()
    with transaction.atomic():
        safety_services.guess_correct(treatment_guess=first, reason="mis-keyed", confidence=75, by=alice)
    return people


def codebook(api, user) -> pd.DataFrame:
    df = pd.read_csv(io.BytesIO(body_of(api(user).get("/api/v1/export/codebook.csv"))), keep_default_na=False)
    return df[df.dataset == "blinding_guesses"]


def expected_rows(blinded: bool = True) -> list[dict]:
    """The guesses as the export should hold them: blinded, those at the primary endpoint only (ENDPOINT serves the
    PRIMARY timepoint; DOSE1 serves none), under the timepoint; unblinded, all of them under their visit code."""
    rows = TreatmentGuess.objects.order_by("participant__participant_id", "recorded_at", "id").values(
        "participant__participant_id", "visit__code", "respondent", "guess", "confidence", "corrected_at"
    )
    if blinded:
        rows = rows.filter(visit__code="ENDPOINT")
    return [
        {
            "participant_id": r["participant__participant_id"],
            ("timepoint" if blinded else "visit_code"): "PRIMARY" if blinded else r["visit__code"],
            "respondent": r["respondent"],
            "guess": r["guess"],
            "confidence": r["confidence"],
            "corrected": int(r["corrected_at"] is not None),
        }
        for r in rows
    ]


def test_csv_and_json_round_trip_and_match_the_codebook(guessed, personas, api):
    statistician = personas["statistician"]
    book = codebook(api, statistician)
    r = api(statistician).get("/api/v1/export/blinding_guesses.csv")
    assert r.status_code == 200, r.content
    df = pd.read_csv(io.BytesIO(body_of(r)), keep_default_na=False, na_values=[""])
    assert list(df.columns) == book["variable"].tolist()
    assert "arm" not in df.columns and "recorded_by" not in df.columns
    assert "visit_code" not in df.columns and "dosing_number" not in df.columns
    keys = ["participant_id", "timepoint", "respondent", "guess", "confidence", "corrected"]
    assert df[keys].to_dict("records") == expected_rows()
    assert len(df) == 2 and df["corrected"].sum() == 0
    rows = json.loads(body_of(api(statistician).get("/api/v1/export/blinding_guesses.json")))
    assert [{k: row[k] for k in keys} for row in rows] == expected_rows()
    # Unblinded: every guess, under its visit code, with the dosing number.
    unblind()
    df = pd.read_csv(
        io.BytesIO(body_of(api(personas["unblinded_statistician"]).get("/api/v1/export/blinding_guesses.csv"))),
        keep_default_na=False,
        na_values=[""],
    )
    keys = ["participant_id", "visit_code", "respondent", "guess", "confidence", "corrected"]
    assert df[keys].to_dict("records") == expected_rows(blinded=False)
    assert len(df) == 6 and df["corrected"].sum() == 1
    assert set(df[df.visit_code == "DOSE1"]["dosing_number"]) == {1}
    assert df[df.visit_code == "ENDPOINT"]["dosing_number"].isna().all()
    assert (
        set(df[df.visit_code == "ENDPOINT"]["timepoint"]) == {"PRIMARY"}
        and df[df.visit_code == "DOSE1"]["timepoint"].isna().all()
    )
    # De-identified: no name, e-mail or username anywhere.
    body = body_of(r)
    assert b"Test Person" not in body and b"alice" not in body and b"@" not in body


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_spss_and_stata_carry_the_codebooks_labels(guessed, personas, api, tmp_path, fmt):
    statistician = personas["statistician"]
    book = codebook(api, statistician)
    path = tmp_path / f"guesses.{fmt}"
    path.write_bytes(body_of(api(statistician).get(f"/api/v1/export/blinding_guesses.{fmt}")))
    df, meta = (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(path))
    assert list(meta.column_names) == book["variable"].tolist()
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels == dict(zip(book["variable"], book["label"], strict=True))
    assert meta.variable_value_labels["corrected"] == {0: "No", 1: "Yes"}
    assert sorted(df["confidence"].astype(int).tolist()) == sorted(r["confidence"] for r in expected_rows())


def test_the_arm_only_for_the_unblinded_statistician_after_unblinding(guessed, personas, api):
    url = "/api/v1/export/blinding_guesses.csv"
    for role in ("statistician", "unblinded_statistician", "investigator", "admin"):
        header = body_of(api(personas[role]).get(url)).split(b"\r\n")[0]
        assert b"arm" not in header.split(b","), role
    r = unblind_by_api(api, "MAP", personas["investigator"], personas["unblinded_statistician"])
    assert r.status_code == 200, r.content
    df = pd.read_csv(io.BytesIO(body_of(api(personas["unblinded_statistician"]).get(url))))
    truth = participant_selectors.arm_codes([p.pk for p in guessed])
    by_id = {p.participant_id: truth[p.pk] for p in guessed}
    assert dict(zip(df.participant_id, df.arm, strict=False)) == by_id
    assert "arm" not in body_of(api(personas["statistician"]).get(url)).split(b"\r\n")[0].decode().split(",")
