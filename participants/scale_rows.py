"""Reads and bulk writes of participants' rows for ``manage.py seed_scale`` (dashboard/scale.py), which writes in
bulk the same rows the participant services write one by one. Only that seeding tool uses these: every other write
goes through participants.services."""

from __future__ import annotations

from collections.abc import Iterable

from participants.models import (
    AllocationList,
    AllocationSlot,
    ConsentDocument,
    EligibilityCriterion,
    Participant,
    ParticipantCounter,
    Site,
    Study,
)


def criteria_of(study: Study) -> dict[str, EligibilityCriterion]:
    return {c.code: c for c in EligibilityCriterion.objects.filter(study=study, retired_at__isnull=True)}


def consent_document(study: Study, version: str) -> ConsentDocument:
    return ConsentDocument.objects.get(study=study, version=version)


def counter_of(study: Study, site: Site) -> ParticipantCounter:
    counter, _ = ParticipantCounter.objects.get_or_create(study=study, site=site)
    return counter


def counters_save(counters: Iterable[ParticipantCounter]) -> None:
    ParticipantCounter.objects.bulk_update(list(counters), ["last_number"])


def free_slots(study: Study) -> list[AllocationSlot]:
    """The unused slots of the study's active allocation list, by stratum and sequence."""
    allocation_list = AllocationList.objects.get(study=study, active=True)
    return list(
        AllocationSlot.objects.select_related("arm")
        .filter(allocation_list=allocation_list, participant__isnull=True)
        .order_by("stratum", "sequence")
    )


def slots_save(slots: Iterable[AllocationSlot], *, batch_size: int) -> None:
    AllocationSlot.objects.bulk_update(list(slots), ["participant", "allocated_at"], batch_size=batch_size)


def participant_by_pk(pk: int) -> Participant:
    return Participant.objects.get(pk=pk)
