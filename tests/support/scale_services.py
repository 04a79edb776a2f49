"""A seed_scale plan played through the services, one step at a time at the time it happened: what the bulk path of
``dashboard.scale`` must match row for row (tests/dashboard/test_scale.py), and the baseline of
bench/bench_seed_scale.py (the cost per participant of the services' path)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import time_machine

from dashboard import scale as seeding
from participants import services
from participants.models import Participant

S = Participant.Status


def through_services(scale: seeding.Scale) -> None:
    """The plans of ``scale``, each step through its service at the time it happened."""
    by = scale.coordinator
    steps: list[tuple[dt.datetime, Any]] = []
    for plan in scale.plans:

        def create(plan: seeding.Plan = plan) -> None:
            plan.participant = services.participant_create(
                study=scale.study, site=plan.site, by=by, contact=plan.contact
            )

        steps.append((plan.started, create))
        if plan.final == S.SCREENING:
            continue
        steps.append(
            (
                plan.at(seeding.ELIGIBILITY_AFTER),
                lambda plan=plan: services.eligibility_record(
                    participant=plan.participant, answers=plan.answers, by=by
                ),
            )
        )
        if plan.reaches(S.CONSENTED):
            steps.append(
                (
                    plan.at(seeding.CONSENT_AFTER),
                    lambda plan=plan: services.consent_record(
                        participant=plan.participant,
                        version=seeding.CONSENT_VERSION,
                        signed_at=plan.at(seeding.SIGNED_AFTER),
                        by=by,
                    ),
                )
            )
        if plan.reaches(S.ENROLLED):
            steps.append(
                (
                    plan.at(seeding.ENROLL_AFTER),
                    lambda plan=plan: services.participant_enroll(participant=plan.participant, by=by),
                )
            )
        if plan.reaches(S.RANDOMIZED):
            steps.append(
                (
                    plan.at(seeding.RANDOMIZE_AFTER),
                    lambda plan=plan: services.participant_randomize(participant=plan.participant, by=by),
                )
            )
    for when, step in sorted(steps, key=lambda s: s[0]):
        with time_machine.travel(when, tick=False):
            step()
