"""The PostgreSQL path (COPY and the server-side row stream) and the portable Python path (ORM, used on SQLite)
produce the same files from the one column list."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission

from exports import services
from participants.models import Study

pytestmark = pytest.mark.django_db

EXPORTS = [
    ("participants", {}),
    ("visits", {}),
    ("responses", {}),
    ("scores", {}),
    ("deviations", {}),
    ("safety_alerts", {}),
    ("dosing_sessions", {}),
    ("vital_signs", {}),
    ("vital_signs", {"visit_code": "DOSE1", "dates": "iso"}),
    ("concomitant_medications", {}),
    ("concomitant_medications", {"dates": "iso"}),
    ("adverse_events", {}),
    ("adverse_events", {"dates": "iso", "visit_code": "DOSE1"}),
    ("per_participant", {}),
    ("scores", {"layout": "wide"}),
    ("visits", {"visit_code": "DOSE1,INT1A"}),
    ("responses", {"instrument": "SCS"}),
    ("scores", {"layout": "wide", "instrument": "PCL5,CSSRS_SCREEN"}),
    ("visits", {"dates": "iso"}),
    ("responses", {"dates": "iso"}),
    ("participants", {"dates": "iso"}),
    ("safety_alerts", {"dates": "iso"}),
    ("changed_since_everything", {}),
]


def _read(user, dataset, fmt, params, force_python):
    if dataset == "changed_since_everything":
        dataset, params = "scores", {"changed_since": "2000-01-01T00:00:00Z", "layout": "wide"}
    export = services.export_open(user=user, dataset=dataset, fmt=fmt, params=params, force_python=force_python)
    return b"".join(export.chunks)


@pytest.mark.parametrize("unblinded", [False, True])
def test_postgres_and_python_paths_give_identical_files(trial, personas, unblinded):
    user = personas["unblinded_statistician"]
    user.user_permissions.add(Permission.objects.get(codename="export_dates"))
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=user.pk)
    if unblinded:
        Study.objects.filter(code="MAP").update(unblinded=True)
    for dataset, params in EXPORTS:
        for fmt in ("csv", "json"):
            pg = _read(user, dataset, fmt, params, False)
            py = _read(user, dataset, fmt, params, True)
            if fmt == "json":
                pg, py = json.loads(pg), json.loads(py)
                assert pg, (dataset, params)
                assert ("arm" in pg[0]) is unblinded
            assert pg == py, (dataset, fmt, params)
