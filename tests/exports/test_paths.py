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
    ("visits", {"visit_code": "BASELINE,PRIMARY"}),
    ("scores", {"layout": "wide", "visit_code": "BASELINE"}),
    ("deviations", {"visit_code": "INT1A"}),
]
# Blinded, these hold no row: the trial's deviation, alert, dosing session and its vital signs are at visits that serve
# no timepoint (INT1A, DOSE1), and an arm's visit code names no timepoint.
BLINDED_EMPTY = {
    ("deviations", ()),
    ("safety_alerts", ()),
    ("safety_alerts", (("dates", "iso"),)),
    ("dosing_sessions", ()),
    ("vital_signs", ()),
    ("vital_signs", (("dates", "iso"), ("visit_code", "DOSE1"))),
    ("adverse_events", (("dates", "iso"), ("visit_code", "DOSE1"))),
    ("visits", (("visit_code", "DOSE1,INT1A"),)),
    ("deviations", (("visit_code", "INT1A"),)),
}
# Unblinded, ?visit_code names visit codes: PRIMARY is none (BASELINE is both).
UNBLINDED_EMPTY: set[tuple[str, tuple]] = set()
NO_VISIT = {"participants", "concomitant_medications", "per_participant"}


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
                empty = (dataset, tuple(sorted(params.items()))) in (UNBLINDED_EMPTY if unblinded else BLINDED_EMPTY)
                assert bool(pg) is not empty, (dataset, params)
                if pg:
                    assert ("arm" in pg[0]) is unblinded
                    assert ("visit_code" in pg[0]) is (unblinded and dataset not in NO_VISIT)
                    assert ("timepoint" in pg[0]) is (dataset not in NO_VISIT)
            assert pg == py, (dataset, fmt, params)
