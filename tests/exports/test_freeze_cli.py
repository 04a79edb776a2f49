"""Data freezes (zip + manifest + checksums, immutable, scoped) and the command line export."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from io import StringIO

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, InternalError, ProgrammingError, transaction

from audit.models import AuditEvent
from exports.freeze_storage import freeze_dir
from exports.models import ExportFreeze
from tests.exports.conftest import body_of
from tests.factories import unblind_by_api

pytestmark = pytest.mark.django_db


def test_freeze_snapshots_every_dataset_with_a_manifest(trial, statistician, api):
    r = api(statistician).post("/api/v1/export/freezes/", {"label": "interim 1"}, format="json")
    assert r.status_code == 201, r.content
    freeze = ExportFreeze.objects.get(pk=r.json()["id"])
    assert freeze.site_codes == ["PDX"] and freeze.includes_arm is False and freeze.label == "interim 1"
    assert (freeze_dir() / freeze.file_name).exists()
    download = api(statistician).get(f"/api/v1/export/freezes/{freeze.pk}.zip")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    data = body_of(download)
    assert hashlib.sha256(data).hexdigest() == freeze.sha256 == r.json()["sha256"]
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = set(zf.namelist())
    assert names == {
        "participants.csv",
        "blinding_guesses.csv",
        "visits.csv",
        "responses.csv",
        "scores.csv",
        "deviations.csv",
        "safety_alerts.csv",
        "concomitant_medications.csv",
        "adverse_events.csv",
        "dosing_sessions.csv",
        "vital_signs.csv",
        "per_participant.csv",
        "scores_wide.csv",
        "codebook.csv",
        "codebook.json",
        "manifest.json",
    }
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest == freeze.manifest
    for name, entry in manifest["files"].items():
        content = zf.read(name)
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], name
        if name.endswith(".csv"):
            assert len(pd.read_csv(io.BytesIO(content))) == entry["rows"], name
    # The snapshot equals a live export taken at the same moment.
    live = body_of(api(statistician).get("/api/v1/export/responses.csv"))
    assert zf.read("responses.csv") == live
    assert manifest["files"]["participants.csv"]["rows"] == 2
    listed = api(statistician).get("/api/v1/export/freezes/").json()
    assert [f["id"] for f in listed] == [freeze.pk]
    assert AuditEvent.objects.filter(entity_type="export_freeze", entity_id=str(freeze.pk)).count() == 2


def test_freeze_is_immutable_and_checked_before_download(trial, statistician, api):
    freeze_id = api(statistician).post("/api/v1/export/freezes/", {}, format="json").json()["id"]
    freeze = ExportFreeze.objects.get(pk=freeze_id)
    freeze.label = "changed"
    with pytest.raises(ValueError, match="immutable"):
        freeze.save()
    with pytest.raises((InternalError, ProgrammingError, IntegrityError)), transaction.atomic():
        ExportFreeze.objects.filter(pk=freeze_id).update(sha256="0" * 64)
    path = freeze_dir() / freeze.file_name
    path.write_bytes(path.read_bytes() + b"tampered")
    r = api(statistician).get(f"/api/v1/export/freezes/{freeze_id}.zip")
    assert r.status_code == 400 and r.json()["code"] == "freeze_corrupt"


def test_freeze_with_arms_is_for_the_unblinded_statistician_only(trial, personas, api):
    unblind_by_api(api, "MAP", personas["investigator"], personas["unblinded_statistician"])
    unblinded = personas["unblinded_statistician"]
    r = api(unblinded).post("/api/v1/export/freezes/", {}, format="json")
    assert r.status_code == 201 and r.json()["includes_arm"] is True
    freeze_id = r.json()["id"]
    assert api(unblinded).get(f"/api/v1/export/freezes/{freeze_id}.zip").status_code == 200
    statistician = personas["statistician"]
    assert api(statistician).get("/api/v1/export/freezes/").json() == []
    assert api(statistician).get(f"/api/v1/export/freezes/{freeze_id}.zip").status_code == 404
    assert api(personas["coordinator"]).get(f"/api/v1/export/freezes/{freeze_id}.zip").status_code == 403


def test_cli_default_is_the_blinded_view_of_every_site(trial, tmp_path):
    from django.core.management import call_command as cc

    cc("export", "participants", "--format", "csv", "--out", str(tmp_path / "x.csv"), stderr=StringIO())
    df = pd.read_csv(tmp_path / "x.csv")
    assert set(df.site) == {"PDX", "NYC"} and "arm" not in df.columns
    event = AuditEvent.objects.filter(entity_type="export").last()
    assert event.actor_username == "manage.py export" and event.new_value["rows"] == 3


def test_cli_with_a_user_applies_scope_and_blinding_and_draws_progress(trial, personas, tmp_path):
    from participants.models import Study

    Study.objects.filter(code="MAP").update(unblinded=True)
    err = StringIO()
    out = tmp_path / "r.csv"
    call_command(
        "export",
        "responses",
        "--format",
        "csv",
        "--out",
        str(out),
        "--user",
        "unblinded_statistician-pdx",
        "--instrument",
        "PCL5",
        stderr=err,
    )
    df = pd.read_csv(out)
    assert set(df.site) == {"PDX"} and set(df.instrument) == {"PCL5"} and "arm" in df.columns
    assert "100.0%" in err.getvalue() and "20/20 rows" in err.getvalue()
    call_command(
        "export", "scores", "--format", "sav", "--out", str(tmp_path / "s.sav"), "--layout", "wide", stderr=StringIO()
    )
    import pyreadstat

    frame, meta = pyreadstat.read_sav(str(tmp_path / "s.sav"))
    assert "SCS_cs" in frame.columns and meta.column_names_to_labels["PCL5_total"].startswith("PCL5")
    with pytest.raises(CommandError, match="instrument"):
        call_command("export", "responses", "--out", str(out), "--instrument", "NOPE", stderr=StringIO())
    with pytest.raises(CommandError, match="no user"):
        call_command("export", "responses", "--out", str(out), "--user", "nobody", stderr=StringIO())
