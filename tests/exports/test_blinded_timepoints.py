"""Blinded exports align on the protocol's timepoints (issue 13).

Two participants of a blinded SAMATI-style (waitlist: the delayed arm has its own WAIT_END and doses about 16 weeks
later) and of a MAPP-style study (identical arms) are seeded identically, randomized the same day into different
arms, and have every visit through the primary endpoint on its target day. Exported to the blinded statistician, every
dataset holds the same rows for the two once the participant ids and pseudonyms are removed; exported to the
unblinded statistician after unblinding, the same comparison differs (the arm, the visit codes).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math

import pyreadstat
import pytest
import time_machine
from django.db import transaction

from assessments import services as assessments
from audit.models import AuditEvent
from exports.datasets import DATASETS
from participants import services as participant_services
from participants.models import AllocationSlot, Participant, Study
from scheduling import services as scheduling_services
from scheduling.models import Visit
from tests.conftest import advance
from tests.exports.conftest import SCS, body_of, noon, unblind
from tests.factories import build_study

pytestmark = pytest.mark.django_db

START = dt.date(2026, 3, 2)
STYLES = {
    "samati": ("SAM", "samati-v2", ("immediate", "delayed"), {"immediate": "POST", "delayed": "WAIT_END"}),
    "mapp": ("MPP", "mapp-v2", ("mdma", "placebo"), {"mdma": "ENDPOINT", "placebo": "ENDPOINT"}),
}
EXPORTS = [f"{name}.csv" for name in DATASETS] + ["scores.csv?layout=wide"]


def _complete(visit: Visit, participant: Participant, *, by, scs_by=None) -> None:
    with time_machine.travel(noon(visit.target_date, participant.time_zone), tick=True):
        with transaction.atomic():
            scheduling_services.visit_complete(visit=visit, occurred_at=noon(visit.target_date, "UTC"), by=by)
        if scs_by is not None:
            with transaction.atomic():
                assessments.response_create_staff(
                    participant=participant, visit=visit, instrument_code="SCS", answers=SCS, by=scs_by
                )


def _seed(style: str, pdx, alice):
    """Four participants seeded identically (screening and baseline on their target days, SCS at baseline),
    randomized the same day; the first of each arm then has every visit through the primary endpoint on its target
    day and SCS at it. Returns the study and the two (first arm, second arm)."""
    code, protocol, arms, primary = STYLES[style]
    study, _sites = build_study(code=code, arms=arms, protocol_code=protocol, site_codes=("PDX",))
    people = []
    with time_machine.travel(noon(START, pdx.time_zone), tick=True):
        for _ in range(4):
            with transaction.atomic():
                p = participant_services.participant_create(
                    study=study, site=pdx, by=alice, contact={"full_name": "Same Person", "email": "same@example.org"}
                )
            people.append(advance(p, "enrolled", by=alice))
    for p in people:
        for visit in Visit.objects.filter(participant=p).order_by("target_date", "id"):
            _complete(visit, p, by=alice, scs_by=alice if visit.code == "BASELINE" else None)
    day = Visit.objects.get(participant=people[0], code="BASELINE").target_date
    with time_machine.travel(noon(day, pdx.time_zone) + dt.timedelta(hours=2), tick=True):
        for p in people:
            with transaction.atomic():
                participant_services.participant_randomize(participant=p, by=alice)
    arm_of = dict(AllocationSlot.objects.filter(participant__in=people).values_list("participant_id", "arm__code"))
    chosen = [next(p for p in people if arm_of[p.pk] == arm) for arm in arms]
    for p in chosen:
        end = Visit.objects.get(participant=p, code=primary[arm_of[p.pk]])
        while True:
            visit = (
                Visit.objects.filter(participant=p, status=Visit.Status.PLANNED, target_date__lte=end.target_date)
                .order_by("target_date", "id")
                .first()
            )
            if visit is None:
                break
            _complete(visit, p, by=alice, scs_by=alice if visit.pk == end.pk else None)
    return study, [Participant.objects.get(pk=p.pk) for p in chosen]


def _anonymous(row: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A row without the participant id and the pseudonyms (participant, dyad, rater ids)."""
    return tuple((k, v) for k, v in row.items() if k != "participant_id" and not k.endswith("_id"))


def _csv(api, user, url: str, study: Study) -> list[dict[str, str]]:
    sep = "&" if "?" in url else "?"
    r = api(user).get(f"/api/v1/export/{url}{sep}study={study.code}")
    assert r.status_code == 200, (url, r.content[:300])
    return list(csv.DictReader(io.StringIO(body_of(r).decode("utf-8"), newline="")))


def _of(rows: list[dict[str, str]], p: Participant) -> list[tuple[tuple[str, str], ...]]:
    return [_anonymous(row) for row in rows if row["participant_id"] == p.participant_id]


def _differences(api, user, study, a, b) -> dict[str, tuple[list, list]]:
    out = {}
    for url in EXPORTS:
        rows = _csv(api, user, url, study)
        first, second = _of(rows, a), _of(rows, b)
        if first != second:
            out[url] = (first, second)
    return out


def _blinded_rows_are_equal(style, study, a, b, statistician, api) -> None:
    before = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).count()

    assert _differences(api, statistician, study, a, b) == {}

    # The rows are there (the comparison compares something): the timepoints through the primary endpoint, each
    # with its neutral code, and no visit code.
    visits = [r for r in _csv(api, statistician, "visits.csv", study) if r["participant_id"] == a.participant_id]
    assert [r["timepoint"] for r in visits] == ["SCREENING", "BASELINE", "PRIMARY", "FOLLOW_UP"]
    assert "visit_code" not in visits[0] and "arm" not in visits[0]
    assert [r["status"] for r in visits] == ["completed", "completed", "completed", "planned"]
    by_tp = {r["timepoint"]: r for r in visits}
    # The primary endpoint is due on the same day in either arm; the follow-up is not in SAMATI (it hangs on POST,
    # which the delayed arm reaches months later), so its days are left empty there.
    assert by_tp["PRIMARY"]["target_study_day"] != "" and by_tp["PRIMARY"]["occurred_study_day"] != ""
    assert (by_tp["FOLLOW_UP"]["target_study_day"] == "") == (style == "samati")
    scores = [r for r in _csv(api, statistician, "scores.csv", study) if r["participant_id"] == a.participant_id]
    assert {r["timepoint"] for r in scores} == {"BASELINE", "PRIMARY"}
    # Every export was audited, none with the arm.
    events = list(AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT).order_by("id"))[before:]
    assert len(events) == len(EXPORTS) + 2
    assert all(e.new_value["arm"] is False and e.sensitivity == "" for e in events)


def _unblinded_rows_differ(style, study, a, b, unblinded, api) -> None:
    differences = _differences(api, unblinded, study, a, b)
    assert "visits.csv" in differences and "participants.csv" in differences
    visits = _csv(api, unblinded, "visits.csv", study)
    primary = {r["participant_id"]: r["visit_code"] for r in visits if r["timepoint"] == "PRIMARY"}
    arms = dict(STYLES[style][3])
    arm_of = dict(AllocationSlot.objects.filter(participant__in=[a, b]).values_list("participant_id", "arm__code"))
    assert primary[a.participant_id] == arms[arm_of[a.pk]] and primary[b.participant_id] == arms[arm_of[b.pk]]
    # Unblinded rows keep every visit, with the visit code and (for those that serve one) the timepoint.
    own = [r for r in visits if r["participant_id"] == a.participant_id]
    assert len(own) > 4 and any(r["timepoint"] == "" for r in own)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT, new_value__arm=True).count() == len(EXPORTS) + 1


def _binary_rows_are_equal(study, a, b, statistician, api, tmp_path) -> None:
    for fmt in ("dta", "sav"):
        r = api(statistician).get(f"/api/v1/export/visits.{fmt}?study={study.code}")
        assert r.status_code == 200
        path = tmp_path / f"visits.{fmt}"
        path.write_bytes(body_of(r))
        frame, _meta = (pyreadstat.read_dta if fmt == "dta" else pyreadstat.read_sav)(str(path))
        assert "visit_code" not in frame.columns and "timepoint" in frame.columns

        def rows(p, frame=frame):
            own = frame[frame.participant_id == p.participant_id].drop(columns=["participant_id"])
            return [
                tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row)
                for row in own.itertuples(index=False)
            ]

        assert rows(a) == rows(b) and len(rows(a)) == 4


@pytest.mark.parametrize("style", ["samati", "mapp"])
def test_blinded_exports_hold_the_same_rows_for_either_arm_and_unblinded_ones_do_not(
    style, pdx, alice, personas, api, tmp_path
):
    study, (a, b) = _seed(style, pdx, alice)
    _blinded_rows_are_equal(style, study, a, b, personas["statistician"], api)
    if style == "samati":
        _binary_rows_are_equal(study, a, b, personas["statistician"], api, tmp_path)
    unblind(study.code)
    assert Study.objects.get(pk=study.pk).unblinded
    _unblinded_rows_differ(style, study, a, b, personas["unblinded_statistician"], api)
    # The blinded statistician's exports stay aligned on timepoints after unblinding (the arm is never theirs).
    assert _differences(api, personas["statistician"], study, a, b) == {}
