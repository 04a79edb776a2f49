"""A seeded small trial for the analysis tests: participants randomized a few days apart, each with baseline and
endpoint CAPS-5 (two raters), PCL-5 and SCS answers drawn from a fixed random stream, a first dosing session held
by one of two therapist dyads, and baseline demographics."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import time_machine
from django.db import transaction

from assessments import services as assessments
from participants.models import Participant
from participants.services import demographics_record
from scheduling.models import Room, Visit
from scheduling.services import room_create, visit_complete, visit_schedule
from tests.factories import staff
from trialsite.roles import Role

T0 = dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC)


def caps5(rng: random.Random, shift: int) -> dict[str, int]:
    items = {f"CAPS5_{i:02d}": max(0, min(4, rng.randint(1, 4) - shift)) for i in range(1, 21)}
    return items | {"CAPS5_CRIT_A": 1, "CAPS5_DUR": 1, "CAPS5_DISTRESS": 1, "CAPS5_DEPERS": 0, "CAPS5_DEREAL": 0}


def pcl5(rng: random.Random, shift: int) -> dict[str, int]:
    return {f"PCL5_{i:02d}": max(0, min(4, rng.randint(0, 4) - shift)) for i in range(1, 21)}


def scs(rng: random.Random, shift: int) -> dict[str, int]:
    # Positive items rise and negative ones fall with ``shift`` (self-compassion improving).
    negative = {1, 8, 11, 16, 21, 4, 13, 18, 25, 2, 6, 20, 24}
    return {
        f"SCS_{i:02d}": max(1, min(5, rng.randint(1, 5) + (-shift if i in negative else shift))) for i in range(1, 27)
    }


@dataclass
class Seeded:
    participants: list[Participant]
    dyads: dict[str, tuple[str, str]] = field(default_factory=dict)  # participant id -> usernames
    raters: dict[str, tuple[str, str]] = field(default_factory=dict)  # participant id -> (baseline, endpoint) rater


def seed_trial(make_participant, alice, pdx, *, n: int = 8, seed: int = 20250401, start: int = 0) -> Seeded:
    """``n`` randomized participants at PDX; ``start`` offsets their numbering (and days) to add more later."""
    rng = random.Random(seed + start)
    for name in ("ther-a", "ther-b", "ther-c", "ther-d"):
        staff(name, Role.THERAPIST, pdx)
    raters = [staff(name, Role.RATER, pdx) for name in ("rater-one", "rater-two")]
    rooms = list(Room.objects.filter(site=pdx, name__startswith="Dosing"))
    if not rooms:
        rooms = [room_create(site=pdx, name=name, by=None) for name in ("Dosing 1", "Dosing 2")]
    dyads = [("ther-a", "ther-b"), ("ther-c", "ther-d")]
    out = Seeded([])
    for i in range(start, start + n):
        with time_machine.travel(T0 + dt.timedelta(days=3 * i), tick=False):
            p = make_participant("randomized")
            with transaction.atomic():
                demographics_record(
                    participant=p,
                    answers={"age_years": 25 + 3 * i, "sex": 1 + i % 2, "race": [5, 3, 2, 6][i % 4], "ethnicity": 2},
                    by=alice,
                )
            baseline = Visit.objects.get(participant=p, code="BASELINE")
            endpoint = Visit.objects.get(participant=p, code="ENDPOINT")
            dose1 = Visit.objects.get(participant=p, code="DOSE1")
            dyad = dyads[i % 2]
            start_at = dt.datetime.combine(dose1.target_date, dt.time(16), tzinfo=dt.UTC)
            visit_schedule(visit=dose1, start=start_at, room=rooms[i % 2], staff=list(dyad), by=alice)
            improvement = rng.randint(0, 2)
            rated = (raters[i % 2], raters[(i + 1) % 2])
            with transaction.atomic():
                for visit, shift, rater in ((baseline, 0, rated[0]), (endpoint, improvement, rated[1])):
                    assessments.response_create_staff(
                        participant=p, visit=visit, instrument_code="CAPS5", answers=caps5(rng, shift), by=rater
                    )
                    for code, answers in (("PCL5", pcl5(rng, shift)), ("SCS", scs(rng, shift))):
                        assessments.response_create_staff(
                            participant=p, visit=visit, instrument_code=code, answers=answers, by=alice
                        )
        with time_machine.travel(start_at + dt.timedelta(hours=10), tick=False):
            visit_complete(visit=Visit.objects.get(pk=dose1.pk), occurred_at=start_at, by=alice)
        out.participants.append(Participant.objects.get(pk=p.pk))
        out.dyads[p.participant_id] = dyad
        out.raters[p.participant_id] = (rated[0].username, rated[1].username)
    return out
