"""Datasets: answers and scores round-trip unchanged, readers get labels, the wide layout, study days and the visit
columns, and every filter (with a 400 naming the parameter for a bad value)."""

from __future__ import annotations

import datetime as dt
import io
import json
import zoneinfo

import pandas as pd
import pyreadstat
import pytest
import time_machine

from assessments.definitions import load_shipped_instruments
from assessments.models import Answer, Response, Score
from assessments.scoring import score
from scheduling.models import ParticipantSchedule, Visit
from tests.exports.conftest import CAPS5, PCL5, SCS, answer_baseline, body_of, read_csv

pytestmark = pytest.mark.django_db
SHIPPED = load_shipped_instruments()


def frame(response) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(body_of(response)), keep_default_na=False, na_values=[""])


def test_answers_from_links_and_staff_entry_round_trip_unchanged(answered, statistician, api):
    r = api(statistician).get("/api/v1/export/responses.csv")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv; charset=utf-8")
    df = frame(r)
    got = {(row.instrument, row.item): int(row.value) for row in df.itertuples()}
    assert got == {("PCL5", k): v for k, v in PCL5.items()} | {("SCS", k): v for k, v in SCS.items()} | {
        ("CAPS5", k): v for k, v in CAPS5.items()
    }
    stored = dict(Answer.objects.values_list("item_code", "value"))
    assert {item: value for (_, item), value in got.items()} == stored
    sources = df.groupby("instrument")["source"].unique().to_dict()
    assert list(sources["PCL5"]) == ["participant_link"] and list(sources["CAPS5"]) == ["staff"]
    assert set(df["respondent"]) == {"self", "clinician"}
    assert set(df["participant_id"]) == {answered.participant_id}
    versions = df.groupby("instrument")["instrument_version"].unique().to_dict()
    assert {k: [str(x) for x in v] for k, v in versions.items()} == {"PCL5": ["1.0"], "SCS": ["1.0"], "CAPS5": ["1.1"]}
    assert got[("CAPS5", "CAPS5_CRIT_A")] == 1


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_scores_equal_the_scoring_engine_at_full_precision(answered, statistician, api, fmt):
    r = api(statistician).get(f"/api/v1/export/scores.{fmt}")
    rows = frame(r).to_dict("records") if fmt == "csv" else json.loads(body_of(r))
    got = {(row["instrument"], row["scale"]): row["score"] for row in rows if row["kind"] == "scale"}
    for code, answers in (("PCL5", PCL5), ("SCS", SCS), ("CAPS5", CAPS5)):
        result = score(SHIPPED[code], answers)
        for scale, value in result.scales.items():
            assert got[(code, scale)] == value.value, (code, scale)  # exact float equality
    stored = {(s.response.instrument_code, s.code): s.value for s in Score.objects.filter(kind="scale")}
    assert got == stored
    # 11 subscale-mean combinations such as SCS cs = 37/13 have no short decimal: the full repr must come through.
    assert got[("SCS", "cs")] == score(SHIPPED["SCS"], SCS).scales["cs"].value
    assert len(repr(got[("SCS", "cs")])) > 10
    flags = {(row["instrument"], row["scale"]): row["score"] for row in rows if row["kind"] == "flag"}
    assert flags[("CAPS5", "ptsd_diagnosis")] == 1


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_spss_and_stata_files_carry_variable_and_value_labels(answered, statistician, api, tmp_path, fmt):
    r = api(statistician).get(f"/api/v1/export/scores.{fmt}")
    assert r.status_code == 200
    path = tmp_path / f"scores.{fmt}"
    path.write_bytes(body_of(r))
    df, meta = (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(path))
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["score"] == "Score"
    assert labels["study_day"] == "Study day of submission"
    assert meta.variable_value_labels["complete"] == {0: "No", 1: "Yes"}
    scs = df[(df.instrument == "SCS") & (df.scale == "total")]
    assert scs["score"].tolist() == [score(SHIPPED["SCS"], SCS).scales["total"].value]
    assert "arm" not in df.columns
    r = api(statistician).get(f"/api/v1/export/visits.{fmt}")
    path.write_bytes(body_of(r))
    df, meta = (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(path))
    assert meta.variable_value_labels["in_window"] == {0: "No", 1: "Yes"}
    # Blinded: the visits that serve the protocol's timepoints, under their neutral codes.
    assert df["timepoint"].tolist() == ["SCREENING", "BASELINE", "PRIMARY", "FOLLOW_UP"]
    assert "visit_code" not in df.columns
    assert (
        len(df) == Visit.objects.filter(participant=answered, code__in=["SCREEN", "BASELINE", "ENDPOINT", "FU"]).count()
    )


def test_wide_layout_one_row_per_participant_visit_with_codebook_columns(trial, statistician, open_view, api):
    # Blinded: the timepoints only (DOSE1 serves none), as its codebook says.
    blinded = frame(api(statistician).get("/api/v1/export/scores.csv?layout=wide"))
    codebook = frame(api(statistician).get("/api/v1/export/codebook.csv"))
    assert list(blinded.columns) == codebook[codebook.dataset == "scores_wide"]["variable"].tolist()
    assert blinded["timepoint"].tolist() == ["BASELINE"] and "visit_code" not in blinded.columns
    r = api(open_view).get("/api/v1/export/scores.csv?layout=wide")
    assert r.status_code == 200
    df = frame(r)
    codebook = frame(api(open_view).get("/api/v1/export/codebook.csv"))
    assert list(df.columns) == codebook[codebook.dataset == "scores_wide"]["variable"].tolist()
    p1 = trial[0]
    expected = set(
        Response.objects.filter(participant__site__code="PDX").values_list("participant__participant_id", "visit__code")
    )
    assert len(df) == len(expected) == 2  # P1 at BASELINE and DOSE1
    assert set(zip(df.participant_id, df.visit_code, strict=True)) == expected
    base = df[df.visit_code == "BASELINE"].iloc[0]
    assert base["SCS_cs"] == score(SHIPPED["SCS"], SCS).scales["cs"].value
    assert base["PCL5_total"] == sum(PCL5.values())
    assert base["CAPS5_total"] == 40
    dose = df[df.visit_code == "DOSE1"].iloc[0]
    assert dose["CSSRS_SCREEN_risk"] == "high"
    assert pd.isna(dose["PCL5_total"])
    assert base.participant_id == p1.participant_id and base["timepoint"] == "BASELINE" and pd.isna(dose["timepoint"])
    # Restricting to an instrument keeps only its columns (and rows with its data).
    df = frame(api(open_view).get("/api/v1/export/scores.csv?layout=wide&instrument=SCS"))
    assert [c for c in df.columns if "_" in c and c.split("_")[0].isupper()] == [
        f"SCS_{s.code}" for s in SHIPPED["SCS"].scales
    ]
    assert len(df) == 1


def test_study_days_come_from_local_dates(make_participant, alice, statistician, api):
    """Randomized at 23:30 in Portland (07:30 UTC the next day): day 0 is the Portland date; an answer at 00:30 local
    two days later is study day 2 although UTC would say 1 or 2 depending on the hour."""
    tz = zoneinfo.ZoneInfo("America/Los_Angeles")
    evening = dt.datetime(2030, 3, 4, 23, 30, tzinfo=tz)
    with time_machine.travel(evening, tick=False):
        p = make_participant("randomized")
    schedule = ParticipantSchedule.objects.get(participant=p)
    assert schedule.randomization_date == dt.date(2030, 3, 4)
    baseline = Visit.objects.get(participant=p, code="BASELINE")
    with time_machine.travel(dt.datetime.combine(baseline.window_start, dt.time(0, 30), tzinfo=tz), tick=True):
        from assessments import services as assessments

        link, _ = assessments.link_issue(visit=baseline, by=alice)
        assessments.link_save_answers(link=link, answers_by_instrument={"PCL5": PCL5, "SCS": SCS})
        assessments.link_submit(link=link)
    participants = frame(api(statistician).get("/api/v1/export/participants.csv"))
    assert participants.loc[0, "randomized_study_day"] == 0
    responses = frame(api(statistician).get("/api/v1/export/responses.csv"))
    assert set(responses["study_day"]) == {(baseline.window_start - dt.date(2030, 3, 4)).days}
    visits = frame(api(statistician).get("/api/v1/export/visits.csv")).set_index("timepoint")
    assert visits.loc["BASELINE", "target_study_day"] == (baseline.target_date - dt.date(2030, 3, 4)).days


def test_visit_columns_in_window_dosing_and_days_since_dosing(trial, open_view, api):
    statistician = open_view  # every visit, with the arm: dosing numbers and days since dosing travel with it
    df = frame(api(statistician).get("/api/v1/export/visits.csv?visit_code=DOSE1,INT1A,DOSE2"))
    p1 = df[df.participant_id == trial[0].participant_id].set_index("visit_code")
    dose1 = Visit.objects.get(participant=trial[0], code="DOSE1")
    int1a = Visit.objects.get(participant=trial[0], code="INT1A")
    tz = zoneinfo.ZoneInfo(trial[0].time_zone)
    assert p1.loc["DOSE1", "in_window"] == 1 and p1.loc["DOSE1", "dosing_number"] == 1
    assert p1.loc["INT1A", "in_window"] == 0
    assert (
        p1.loc["INT1A", "days_since_last_dosing"]
        == (int1a.occurred_at.astimezone(tz).date() - dose1.occurred_at.astimezone(tz).date()).days
    )
    assert pd.isna(p1.loc["DOSE1", "days_since_last_dosing"])
    assert pd.isna(p1.loc["DOSE2", "occurred_study_day"]) and p1.loc["DOSE2", "dosing_number"] == 2
    assert p1.loc["INT1A", "occurred_study_day"] == p1.loc["INT1A", "window_end_study_day"] + 2
    deviations = frame(api(statistician).get("/api/v1/export/deviations.csv"))
    assert deviations["timepoint"].isna().all()  # INT1A serves no timepoint
    assert deviations.drop(columns=["timepoint", "arm"]).to_dict("records") == [
        {
            "participant_id": trial[0].participant_id,
            "site": "PDX",
            "visit_code": "INT1A",
            "deviation_type": "out_of_window",
            "days_outside": 2,
            "recorded_study_day": p1.loc["INT1A", "occurred_study_day"],
        }
    ]
    alerts = frame(api(statistician).get("/api/v1/export/safety_alerts.csv"))
    assert alerts[["visit_code", "instrument", "rule_code", "severity", "acknowledged"]].to_dict("records") == [
        {
            "visit_code": "DOSE1",
            "instrument": "CSSRS_SCREEN",
            "rule_code": "cssrs_high_risk",
            "severity": "high",
            "acknowledged": 1,
        }
    ]
    assert alerts.loc[0, "hours_to_acknowledge"] >= 0


def test_rows_limited_to_the_users_sites_and_filters_apply(trial, statistician, api, personas):
    p1, p2, p3 = trial
    df = frame(api(statistician).get("/api/v1/export/participants.csv"))
    assert df["participant_id"].tolist() == [p1.participant_id, p2.participant_id]
    assert df.set_index("participant_id").loc[p2.participant_id, "withdrawal_level"] == "stop_follow_up"
    df = frame(api(statistician).get("/api/v1/export/responses.csv?instrument=CAPS5&site=PDX&study=MAP"))
    assert set(df["instrument"]) == {"CAPS5"} and len(df) == len(CAPS5)
    # Blinded, ?visit_code names timepoints: an arm's visit code (DOSE1) matches none.
    df = frame(api(statistician).get("/api/v1/export/scores.csv?visit_code=BASELINE"))
    assert set(df["timepoint"]) == {"BASELINE"} and len(df) > 0
    assert frame(api(statistician).get("/api/v1/export/scores.csv?visit_code=DOSE1")).empty
    # NYC is not the PDX statistician's: asking for it is refused as an unknown site (no existence oracle), not
    # silently emptied.
    refused = api(statistician).get("/api/v1/export/responses.csv?site=NYC")
    assert refused.status_code == 400 and refused.json()["site"] == ["no site NYC"]
    admin = personas["admin"]
    assert api(admin).get("/api/v1/export/responses.csv?site=PDX").status_code == 200


def test_changed_since_gives_only_rows_whose_source_changed(make_participant, alice, personas, statistician, api):
    first = make_participant("randomized")
    answer_baseline(first, by=alice, rater=personas["rater"])
    cut = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    second = make_participant("randomized")
    baseline = Visit.objects.get(participant=second, code="BASELINE")
    with time_machine.travel(cut + dt.timedelta(hours=1), tick=True):
        Visit.objects.filter(pk=baseline.pk).update(window_start=baseline.window_start)  # no-op, keeps updated_at
        from django.db import transaction

        from assessments import services as assessments

        with transaction.atomic():
            assessments.response_create_staff(
                participant=second, visit=baseline, instrument_code="PCL5", answers=PCL5, by=alice
            )
    since = cut.isoformat().replace("+00:00", "Z")
    df = frame(api(statistician).get("/api/v1/export/responses.csv", {"changed_since": since}))
    assert set(df["participant_id"]) == {second.participant_id} and set(df["instrument"]) == {"PCL5"}
    df = frame(api(statistician).get("/api/v1/export/scores.csv", {"changed_since": since, "layout": "wide"}))
    assert df["participant_id"].tolist() == [second.participant_id]
    everything = frame(api(statistician).get("/api/v1/export/responses.csv"))
    assert set(everything["participant_id"]) == {first.participant_id, second.participant_id}


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("responses.csv?changed_since=yesterday", "changed_since"),
        ("responses.csv?changed_since=2025-01-01T00:00:00", "changed_since"),
        ("responses.csv?instrument=NOPE", "instrument"),
        ("responses.csv?site=QQQ", "site"),
        ("responses.csv?study=NOPE", "study"),
        ("responses.csv?visit_code=a%20b", "visit_code"),
        ("scores.csv?layout=tall", "layout"),
        ("scores.csv?dates=us", "dates"),
        ("participants.csv?instrument=PCL5", "instrument"),
        ("participants.csv?visit_code=BASELINE", "visit_code"),
        ("visits.csv?layout=wide", "layout"),
        ("visits.csv?sitee=PDX", "sitee"),
        ("visits.xlsx", "format"),
        ("codebook.sav", "format"),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_parameter(statistician, api, url, param):
    r = api(statistician).get(f"/api/v1/export/{url}")
    assert r.status_code == 400, r.content
    assert param in r.json()


def test_unknown_dataset_is_404(statistician, api):
    assert api(statistician).get("/api/v1/export/contacts.csv").status_code == 404


def test_csv_is_rfc4180_crlf_utf8(answered, statistician, api):
    body = body_of(api(statistician).get("/api/v1/export/visits.csv"))
    lines = body.split(b"\r\n")
    assert lines[-1] == b"" and all(b"\n" not in line for line in lines)
    assert lines[0].startswith(b"participant_id,site,timepoint,visit_kind")
    body.decode("utf-8")
    assert read_csv(api(statistician).get("/api/v1/export/visits.csv"))[0]["participant_id"] == answered.participant_id


def test_codebook_lists_caps5_criterion_a_and_the_scs_end_point_labels(statistician, api):
    rows = json.loads(body_of(api(statistician).get("/api/v1/export/codebook.json")))
    items = {r["code"]: r for r in rows if r["dataset"] == "responses" and r.get("code")}
    crit_a = items["CAPS5_CRIT_A"]
    assert (crit_a["instrument"], crit_a["instrument_version"], crit_a["allowed_values"]) == ("CAPS5", "1.1", "0|1")
    assert crit_a["value_labels"] == {"0": "No", "1": "Yes"}
    assert "criterion A" in crit_a["label"]
    for code in ("SCS_01", "SCS_SF_12"):
        assert items[code]["value_labels"] == {"1": "Almost never", "2": "2", "3": "3", "4": "4", "5": "Almost always"}
