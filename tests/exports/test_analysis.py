"""Analysis-ready data: effect sizes equal an independent computation, blinded roles get pooled figures only, the
per_participant dataset round-trips through pandas and pyreadstat with its labels, staff ids are pseudonymous."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from scipy import optimize, stats

from assessments.models import Score
from audit.models import AuditEvent
from exports import services
from participants.models import AllocationSlot, Study
from tests.exports.analysis_seed import seed_trial
from tests.exports.conftest import body_of, unblind
from tests.factories import unblind_by_api

pytestmark = pytest.mark.django_db

URL = "/api/v1/analysis/effect-sizes/"
TOL = 1e-9
SCS_VARIABLES = [
    "SCS_total",
    "SCS_cs",
    "SCS_ucs",
    "SCS_self_kindness",
    "SCS_self_judgment",
    "SCS_common_humanity",
    "SCS_isolation",
    "SCS_mindfulness",
    "SCS_over_identification",
]


@pytest.fixture
def seeded(make_participant, alice, pdx):
    return seed_trial(make_participant, alice, pdx)


def stored(scale: str, visit: str) -> dict[str, float]:
    """Scores straight from the table, by participant id: the independent side of the comparison."""
    instrument, code = ("CAPS5", scale[6:]) if scale.startswith("CAPS5_") else scale.split("_", 1)
    rows = Score.objects.filter(
        kind="scale", code=code, response__instrument_code=instrument, response__visit__code=visit
    ).values_list("response__participant__participant_id", "value")
    return {pid: v for pid, v in rows if v is not None}


def independent(before: list[float], after: list[float]) -> dict[str, float]:
    """d_z, its 95% CI from the noncentral t (solved by bisection, not Brent), and the paired t-test."""
    diff = np.array(after) - np.array(before)
    n = len(diff)
    d = diff.mean() / diff.std(ddof=1)
    t = d * math.sqrt(n)

    def limit(tail: float) -> float:
        res = optimize.root_scalar(
            lambda nc: stats.nct.cdf(t, n - 1, nc) - tail, bracket=[t - 10, t + 10], method="bisect", xtol=1e-14
        )
        return res.root / math.sqrt(n)

    return {
        "n": n,
        "mean_change": diff.mean(),
        "sd_change": diff.std(ddof=1),
        "d_z": d,
        "ci_low": limit(0.975),
        "ci_high": limit(0.025),
        "p_value": stats.ttest_rel(after, before).pvalue,
    }


def check_row(row: dict, participant_ids: set[str] | None = None) -> None:
    base, end = stored(row["scale"], row["from_visit"]), stored(row["scale"], row["to_visit"])
    pids = sorted(set(base) & set(end) & (participant_ids if participant_ids is not None else set(base)))
    truth = independent([base[p] for p in pids], [end[p] for p in pids])
    assert row["n"] == truth["n"] == len(pids)
    for key in ("mean_change", "sd_change", "d_z", "ci_low", "ci_high", "p_value"):
        assert row[key] == pytest.approx(truth[key], abs=TOL, rel=0), (row["scale"], key)
    # The CI's defining property, checked directly on the distribution.
    n, t = row["n"], row["d_z"] * math.sqrt(row["n"])
    assert stats.nct.cdf(t, n - 1, row["ci_low"] * math.sqrt(n)) == pytest.approx(0.975, abs=TOL)
    assert stats.nct.cdf(t, n - 1, row["ci_high"] * math.sqrt(n)) == pytest.approx(0.025, abs=TOL)
    assert row["ci_low"] < row["d_z"] < row["ci_high"]


def test_effect_sizes_equal_an_independent_computation(seeded, personas, api):
    events_before = AuditEvent.objects.count()
    r = api(personas["statistician"]).get(URL)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["ci_method"] == "noncentral t (exact)" and body["confidence"] == 0.95
    rows = {row["scale"]: row for row in body["results"]}
    assert set(rows) == {"CAPS5_total", "PCL5_total", "LSAS_total", "LSAS_SR_total", *SCS_VARIABLES}
    for scale in ["CAPS5_total", "PCL5_total", *SCS_VARIABLES]:
        row = rows[scale]
        assert (row["study"], row["from_visit"], row["to_visit"]) == ("MAP", "BASELINE", "ENDPOINT")
        check_row(row)
    # LSAS is not part of a MAPP-style protocol: no pairs, no figures.
    assert rows["LSAS_total"]["n"] == 0 and rows["LSAS_total"]["d_z"] is None
    # The figures are a read: nothing was written.
    assert AuditEvent.objects.count() == events_before


def test_blinded_roles_never_get_per_arm_figures(seeded, personas, api, capsys):
    def scan(body: bytes, where: str) -> None:
        # Arm codes and labels ("mdma"/"Mdma", "placebo"/"Placebo"), and the key itself.
        lowered = body.lower()
        assert b"mdma" not in lowered and b"placebo" not in lowered and b'"arm"' not in body, where

    blinded = ["statistician", "unblinded_statistician", "investigator", "admin"]
    for role in blinded:
        r = api(personas[role]).get(URL)
        assert r.status_code == 200
        scan(r.content, role)
        assert len(r.json()["results"]) == 13  # one pooled row per scale
    call_command("effect_sizes", "--format", "json")
    scan(capsys.readouterr().out.encode(), "command")
    call_command("effect_sizes", "--user", "unblinded_statistician-pdx")
    out = capsys.readouterr().out.lower()
    assert "mdma" not in out and "placebo" not in out and " arm " not in out

    for role in ["coordinator", "therapist", "rater"]:
        assert api(personas[role]).get(URL).status_code == 403

    r = unblind_by_api(api, "MAP", personas["investigator"], personas["unblinded_statistician"])
    assert r.status_code == 200 and Study.objects.get(code="MAP").unblinded
    for role in ["statistician", "investigator", "admin"]:
        scan(api(personas[role]).get(URL).content, f"{role} after unblinding")

    body = api(personas["unblinded_statistician"]).get(URL).json()
    truth = dict(
        AllocationSlot.objects.filter(participant__isnull=False).values_list("participant__participant_id", "arm__code")
    )
    caps = [row for row in body["results"] if row["scale"] == "CAPS5_total"]
    assert [row["arm"] for row in caps] == [None, *sorted(set(truth.values()))]
    assert sum(row["n"] for row in caps[1:]) == caps[0]["n"] == len(seeded.participants)
    for row in caps[1:]:
        if row["n"] >= 2:
            check_row(row, {pid for pid, arm in truth.items() if arm == row["arm"]})


def test_bad_query_parameters_are_a_400_per_field(seeded, personas, api):
    user = personas["statistician"]
    r = api(user).get(URL, {"scale": "SCS_cs,nope", "from_visit": "BASELINE", "colour": "red"})
    assert r.status_code == 400
    body = r.json()
    assert body["scale"] == [body["scale"][0]] and "nope" in body["scale"][0]
    assert body["to_visit"] == ["give both from_visit and to_visit, or neither"]
    assert "colour" in body
    assert api(user).get(URL, {"from_visit": "BASELINE", "to_visit": "BASELINE"}).json()["to_visit"]
    assert api(user).get(URL, {"from_visit": "BAD CODE!", "to_visit": "ENDPOINT"}).status_code == 400
    assert api(user).get(URL, {"site": "NOPE"}).json()["site"] == ["no site NOPE"]
    assert api(user).get(URL, {"study": "NOPE"}).json()["study"] == ["no study NOPE"]
    assert api(user).get(URL, {"site": "NYC"}).json()["site"] == ["no site NYC"]  # not theirs: as if unknown


def test_another_visit_pair_and_a_scale_filter(seeded, personas, api):
    r = api(personas["statistician"]).get(
        URL, {"scale": "SCS_cs,SCS_ucs", "from_visit": "SCREEN", "to_visit": "BASELINE"}
    )
    assert r.status_code == 200
    rows = r.json()["results"]
    assert [(row["scale"], row["from_visit"], row["to_visit"], row["n"]) for row in rows] == [
        ("SCS_cs", "SCREEN", "BASELINE", 0),
        ("SCS_ucs", "SCREEN", "BASELINE", 0),
    ]
    r = api(personas["statistician"]).get(URL, {"scale": "SCS_cs", "from_visit": "BASELINE", "to_visit": "ENDPOINT"})
    check_row(r.json()["results"][0])


def read_per_participant(api, user, fmt: str, tmp_path):
    body = body_of(api(user).get(f"/api/v1/export/per_participant.{fmt}"))
    if fmt == "csv":
        return pd.read_csv(io.BytesIO(body)), None, body
    path = tmp_path / f"pp.{fmt}"
    path.write_bytes(body)
    frame, meta = (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(path))
    return frame, meta, body


def test_per_participant_round_trips_through_pandas_and_pyreadstat(seeded, personas, api, tmp_path):
    blinded, _meta, _body = read_per_participant(api, personas["statistician"], "csv", tmp_path)
    assert list(blinded.participant_id) == sorted(p.participant_id for p in seeded.participants)
    assert "arm" not in blinded.columns and not any(c.startswith("dose") for c in blinded.columns)
    # The visit codes of the pair can differ by arm (a delayed arm's own endpoint), and so can the dosing sessions
    # received and their dyad before a delayed arm's primary endpoint: they travel with the arm.
    assert not {"baseline_visit", "endpoint_visit", "therapist_dyad_id", "dosing_sessions"} & set(blinded.columns)
    blinded_book = pd.read_csv(io.BytesIO(body_of(api(personas["statistician"]).get("/api/v1/export/codebook.csv"))))
    assert list(blinded_book[blinded_book.dataset == "per_participant"].variable) == list(blinded.columns)
    unblind()
    user = personas["unblinded_statistician"]
    csv, _meta, csv_body = read_per_participant(api, user, "csv", tmp_path)
    assert csv.drop(columns=[c for c in csv.columns if c not in blinded.columns]).equals(blinded)
    for column in ["age_years", "sex", "gender", "race", "ethnicity", "education"]:
        assert column in csv.columns
    for scale in ["CAPS5_total", "PCL5_total", "LSAS_total", *SCS_VARIABLES]:
        assert {f"{scale}_baseline", f"{scale}_endpoint", f"{scale}_change"} <= set(csv.columns)
    base, end = stored("SCS_cs", "BASELINE"), stored("SCS_cs", "ENDPOINT")
    for row in csv.itertuples():
        assert row.SCS_cs_baseline == base[row.participant_id] and row.SCS_cs_endpoint == end[row.participant_id]
        assert row.SCS_cs_change == pytest.approx(end[row.participant_id] - base[row.participant_id], abs=1e-12)
        assert row.dosing_sessions == 1
        assert re.fullmatch(r"D-[0-9a-f]{10}", row.therapist_dyad_id)
        assert re.fullmatch(r"R-[0-9a-f]{10}", row.CAPS5_rater_id_baseline)
    assert csv.LSAS_total_baseline.isna().all()
    # Two dyads and two raters, the same id wherever the same people are; no username in any byte.
    dyads = dict(zip(csv.participant_id, csv.therapist_dyad_id, strict=True))
    assert len(set(dyads.values())) == 2
    for a in seeded.participants:
        for b in seeded.participants:
            same = seeded.dyads[a.participant_id] == seeded.dyads[b.participant_id]
            assert (dyads[a.participant_id] == dyads[b.participant_id]) is same
    raters = dict(zip(csv.participant_id, csv.CAPS5_rater_id_baseline, strict=True))
    for pid, (first, _second) in seeded.raters.items():
        for other, (other_first, _o) in seeded.raters.items():
            assert (raters[pid] == raters[other]) is (first == other_first)
    for name in (b"ther-a", b"ther-c", b"rater-one", b"rater-two"):
        assert name not in csv_body

    for fmt in ("sav", "dta"):
        frame, meta, _body = read_per_participant(api, user, fmt, tmp_path)
        assert list(frame.columns) == list(csv.columns), fmt
        assert meta.column_names_to_labels["race"] == "Race (NIH)"
        assert meta.column_names_to_labels["SCS_cs_baseline"].startswith("SCS: ")
        assert meta.variable_value_labels["race"][6.0] == "More than one race", fmt
        assert meta.variable_value_labels["ethnicity"] == {
            1.0: "Hispanic or Latino",
            2.0: "Not Hispanic or Latino",
            9.0: "Unknown or not reported",
        }
        assert list(frame.race) == list(csv.race.astype(float))
        np.testing.assert_allclose(frame.SCS_cs_change, csv.SCS_cs_change, rtol=0, atol=1e-12)
        assert list(frame.therapist_dyad_id) == list(csv.therapist_dyad_id)

    codebook = pd.read_csv(io.BytesIO(body_of(api(user).get("/api/v1/export/codebook.csv"))))
    rows = codebook[codebook.dataset == "per_participant"]
    assert list(rows.variable) == list(csv.columns)
    race = rows[rows.variable == "race"].iloc[0]
    assert json.loads(race.value_labels)["6"] == "More than one race"
    assert "HMAC" in rows[rows.variable == "therapist_dyad_id"].iloc[0].derivation


def test_dose_columns_travel_with_the_arm_and_are_empty(seeded, personas, api, tmp_path):
    unblind_by_api(api, "MAP", personas["investigator"], personas["unblinded_statistician"])
    frame, _m, _b = read_per_participant(api, personas["unblinded_statistician"], "csv", tmp_path)
    assert ["dose1_mg", "dose2_mg", "dose3_mg"] == [c for c in frame.columns if c.startswith("dose")]
    assert frame[["dose1_mg", "dose2_mg", "dose3_mg"]].isna().all().all()
    truth = dict(
        AllocationSlot.objects.filter(participant__isnull=False).values_list("participant__participant_id", "arm__code")
    )
    assert dict(zip(frame.participant_id, frame.arm, strict=True)) == truth
    assert set(frame.baseline_visit) == {"BASELINE"} and set(frame.endpoint_visit) == {"ENDPOINT"}


def test_postgres_and_python_paths_give_the_same_staff_ids(seeded, personas):
    unblind()  # the dyads travel with the arm
    user = personas["unblinded_statistician"]
    for dataset in ("visits", "responses"):
        pg = b"".join(services.export_open(user=user, dataset=dataset, fmt="csv").chunks)
        py = b"".join(services.export_open(user=user, dataset=dataset, fmt="csv", force_python=True).chunks)
        assert pg == py, dataset
        frame = pd.read_csv(io.BytesIO(pg))
        ids = frame.therapist_dyad_id.dropna()
        assert len(ids) and ids.str.fullmatch(r"D-[0-9a-f]{10}").all(), dataset
    visits = pd.read_csv(io.BytesIO(b"".join(services.export_open(user=user, dataset="visits", fmt="csv").chunks)))
    dosing = visits[visits.visit_code == "DOSE1"]
    assert dosing.therapist_dyad_id.notna().all() and dosing.therapist_dyad_id.nunique() == 2
    assert visits[visits.visit_code == "BASELINE"].therapist_dyad_id.isna().all()
    responses = pd.read_csv(
        io.BytesIO(b"".join(services.export_open(user=user, dataset="responses", fmt="csv").chunks))
    )
    caps = responses[responses.instrument == "CAPS5"]
    assert caps.rater_id.notna().all() and caps.rater_id.nunique() == 2
    assert responses[responses.instrument == "SCS"].rater_id.isna().all()


def count_queries(fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_query_counts_do_not_grow_with_participants(
    make_participant, alice, pdx, personas, api, django_assert_num_queries
):
    seed_trial(make_participant, alice, pdx, n=2)
    user = personas["statistician"]

    def export() -> None:
        body_of(api(user).get("/api/v1/export/per_participant.csv"))

    def sizes() -> None:
        assert api(user).get(URL).status_code == 200

    export(), sizes()  # warm the parsed-protocol cache
    few_export, few_sizes = count_queries(export), count_queries(sizes)
    seed_trial(make_participant, alice, pdx, n=4, start=2)
    with django_assert_num_queries(few_export):
        export()
    with django_assert_num_queries(few_sizes):
        sizes()


def snippet() -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "statisticians.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- effect-size snippet -->\s*```python\n(.*?)```", text, re.S)
    assert match, "the statisticians' guide has lost its pandas snippet"
    return match.group(1)


def test_the_documented_pandas_snippet_reproduces_the_api(seeded, personas, api, tmp_path, monkeypatch):
    user = personas["statistician"]
    (tmp_path / "per_participant.csv").write_bytes(body_of(api(user).get("/api/v1/export/per_participant.csv")))
    monkeypatch.chdir(tmp_path)
    rows = {row["scale"]: row for row in api(user).get(URL).json()["results"]}
    namespace: dict = {}
    exec(compile(snippet(), "docs/statisticians.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    for scale in ["SCS_cs", "SCS_ucs", "CAPS5_total"]:
        result = namespace["effect_size"](namespace["df"], scale)
        for key in ("n", "mean_change", "sd_change", "d_z", "ci_low", "ci_high", "p_value"):
            assert result[key] == pytest.approx(rows[scale][key], abs=TOL, rel=0), (scale, key)


def test_the_endpoint_is_in_the_openapi_schema(personas, api):
    r = api(personas["statistician"]).get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    schema = json.loads(r.content)
    operation = schema["paths"]["/api/v1/analysis/effect-sizes/"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"study", "site", "scale", "from_visit", "to_visit"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][ref]["properties"]) == {"confidence", "ci_method", "method", "results"}
    assert "/api/v1/participants/{participant_id}/demographics/" in schema["paths"]


def test_each_participant_takes_the_pair_of_their_own_visits(alice, pdx):
    """With arms compared at different visits (a delayed arm at the end of its delay), the pair follows each
    participant's own planned visits: the delayed arm's WAIT_END is preferred where it exists."""
    from django.db import transaction

    from exports.analysis.pairs import paired_scores
    from participants.services import participant_create
    from tests.conftest import advance
    from tests.factories import build_study

    sam, _sites = build_study(code="SAM", blinded=False, arms=("immediate", "delayed"), protocol_code="samati-v1")
    people = []
    for _ in range(4):
        with transaction.atomic():
            p = participant_create(study=sam, site=pdx, by=alice, contact={"full_name": "S P", "email": "s@ex.org"})
        people.append(advance(p, "randomized", by=alice))
    arms = dict(AllocationSlot.objects.filter(participant__in=people).values_list("participant_id", "arm__code"))
    assert set(arms.values()) == {"immediate", "delayed"}
    pairs = paired_scores(
        [pdx.pk], [sam.pk], [("SCS", "cs")], lambda protocol: (("BASELINE", "WAIT_END"), ("BASELINE", "POST"))
    )
    for p in people:
        expected = "WAIT_END" if arms[p.pk] == "delayed" else "POST"
        assert (pairs[p.pk].first_visit, pairs[p.pk].second_visit) == ("BASELINE", expected)
