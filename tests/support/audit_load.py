"""Concurrent audited writers, as separate OS processes: the concurrency test (tests/audit/test_concurrent_writers.py)
and the audited-write benchmark (bench/bench_audit.py) both run them.

``prepare`` builds a study with S sites and a coordinator of all of them in a committed database. Each writer process
(``python -m tests.support.audit_load WORKER SECONDS SITE OVERLAP``, with the database in DATABASE_URL) then loops for
SECONDS: it takes a participant one step further through the real services (create, eligibility, consent, enroll,
which generates the schedule, randomize, which plans the rest of it, and staff-entered questionnaires), either one of
its own site's or, with probability OVERLAP, any participant of the study another writer may be moving at the same
moment. It prints one JSON line: the writes done per kind, the refusals (another writer moved the participant first:
the service answered "invalid transition" or "already stored", as it would to a coordinator), and every failure
(deadlock, serialization or any other error), which must be none.

With ``AUDIT_OFF=1`` in its environment a writer stores no audit rows: the benchmark's baseline, never the service's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sys
import time
import traceback
from collections import Counter
from typing import Any

STUDY = "LOAD"
INSTRUMENTS = ("PCL5", "SCS")


def prepare(site_codes: tuple[str, ...], *, per_stratum: int = 2000) -> None:
    """The study, its sites and the coordinator ``load`` (committed: call outside a test transaction)."""
    from tests.factories import build_study, staff
    from trialsite.roles import Role

    _study, sites = build_study(code=STUDY, site_codes=site_codes, per_stratum=per_stratum)
    staff("load", Role.COORDINATOR, *sites.values())


def _answers(rng: random.Random, code: str) -> dict[str, int]:
    if code == "PCL5":
        return {f"PCL5_{i:02d}": rng.randint(0, 4) for i in range(1, 21)}
    return {f"SCS_{i:02d}": rng.randint(1, 5) for i in range(1, 27)}


def _step(participant_pk: int, by: Any, rng: random.Random) -> str:
    """One audited write taking the participant one step further; its kind ("done" when nothing is left to do)."""
    from django.db import transaction
    from django.utils import timezone

    from assessments import services as assessments
    from assessments.models import Response
    from participants import services
    from participants.models import Participant
    from scheduling.models import Visit

    S = Participant.Status
    participant = Participant.objects.select_related("site", "study").get(pk=participant_pk)
    with transaction.atomic():
        if participant.status == S.SCREENING:
            services.eligibility_record(participant=participant, answers={"INC_AGE": True, "EXC_PREG": False}, by=by)
            return "eligibility"
        if participant.status == S.ELIGIBLE:
            signed = timezone.now() - dt.timedelta(hours=1)
            services.consent_record(participant=participant, version="1.0", by=by, signed_at=signed)
            return "consent"
        if participant.status == S.CONSENTED:
            services.participant_enroll(participant=participant, by=by)
            return "enroll"
        if participant.status == S.ENROLLED:
            services.participant_randomize(participant=participant, by=by)
            return "randomize"
        answered = set(Response.objects.filter(participant=participant).values_list("instrument_code", flat=True))
        todo = [code for code in INSTRUMENTS if code not in answered]
        if participant.status != S.RANDOMIZED or not todo:
            return "done"
        visit = Visit.objects.get(participant=participant, code="BASELINE")
        code = todo[0]
        assessments.response_create_staff(
            participant=participant, visit=visit, instrument_code=code, answers=_answers(rng, code), by=by
        )
        return "response"


def _create(site: Any, study: Any, by: Any) -> int:
    from django.db import transaction

    from participants import services

    with transaction.atomic():
        participant = services.participant_create(study=study, site=site, by=by, contact={"full_name": "Load Test"})
    return participant.pk


def run_writer(worker: int, seconds: float, site_code: str, overlap: float) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError

    from participants.models import Participant, Site, Study
    from trialsite.errors import ServiceError

    rng = random.Random(worker)
    by = get_user_model().objects.get(username="load")
    study = Study.objects.get(code=STUDY)
    site = Site.objects.get(code=site_code)
    done: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    failures: list[str] = []
    mine: list[int] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if rng.random() < overlap:
                # Someone else's participant, maybe being moved by another writer right now.
                others = list(
                    Participant.objects.filter(study=study)
                    .exclude(pk__in=mine)
                    .order_by("-id")
                    .values_list("pk", flat=True)[:16]
                )
                target = rng.choice(others) if others else None
            else:
                target = mine[-1] if mine else None
            kind = _step(target, by, rng) if target is not None else "done"
            if kind == "done":
                mine.append(_create(site, study, by))
                kind = "create"
            done[kind] += 1
        except ServiceError as exc:
            refused[type(exc).__name__] += 1
        except DatabaseError as exc:
            failures.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
        except Exception:  # noqa: BLE001 - every failure is reported, none is hidden
            failures.append(traceback.format_exc(limit=3).splitlines()[-1])
    return {"worker": worker, "done": dict(done), "refused": dict(refused), "failures": failures}


def _audit_off() -> None:
    """The benchmark's baseline: the same writes, no audit rows (never used by the service)."""
    import audit.services

    audit.services._insert = lambda events: events  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialsite.settings")
    django.setup()
    if os.environ.get("AUDIT_OFF") == "1":
        _audit_off()
    worker, seconds, site_code, overlap = int(argv[1]), float(argv[2]), argv[3], float(argv[4])
    print(json.dumps(run_writer(worker, seconds, site_code, overlap)), flush=True)


if __name__ == "__main__":
    main(sys.argv)
