"""Randomization: a study's allocation lists (generated or imported) and randomizing a participant."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from participants import access, hooks, randomization
from participants.access import Actor, acting_person
from participants.models import AllocationList, AllocationSlot, Participant, Study
from participants.services.status import _audit_participant, _set_status
from participants.transitions import require_transition
from trialsite.errors import PermissionDeniedError, ServiceError

S = Participant.Status


def _store_slots(allocation_list: AllocationList, slots: list[randomization.Slot]) -> None:
    arms = {arm.code: arm for arm in allocation_list.study.arms.all()}
    AllocationSlot.objects.bulk_create(
        AllocationSlot(
            allocation_list=allocation_list, stratum=s.stratum, sequence=s.sequence, block=s.block, arm=arms[s.arm]
        )
        for s in slots
    )


def _require_list_manager(study: Study, by: Actor) -> None:
    if not access.may_manage_allocation_list(by, study.sites.values_list("id", flat=True)):
        raise PermissionDeniedError(
            "only an administrator or unblinded statistician of the study may generate or import its allocation list"
        )


def _replace_active_list(study: Study, by: Actor, **fields: Any) -> AllocationList:
    previous = AllocationList.objects.select_for_update().filter(study=study, active=True).first()
    if previous is not None:
        if previous.slots.filter(participant__isnull=False).exists():
            raise ServiceError(
                "the active allocation list is already in use; it cannot be replaced",
                field_errors={"allocation_list": ["in use"]},
            )
        previous.active = False
        previous.save(update_fields=["active"])
        audit_record(
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity_type="allocation_list",
            entity_id=previous.pk,
            changes=[("active", True, False)],
            reason="replaced by a new list",
        )
    return AllocationList.objects.create(
        study=study, created_by=acting_person(by, "creating an allocation list"), **fields
    )


@transaction.atomic
def allocation_list_generate(
    *, study: Study, strata: list[str], per_stratum: int, seed: str, by: Actor, block_sizes: list[int] | None = None
) -> AllocationList:
    """Generate the study's list (stratified permuted blocks, seeded). Without ``block_sizes`` each block's size is
    drawn from ``randomization.default_block_sizes`` (e.g. 4 or 6 for two arms). The sizes are kept on the list and
    in its allocation-sensitive audit row, which no site role reads."""
    _require_list_manager(study, by)
    arms = list(study.arms.values_list("code", flat=True))
    if block_sizes is None:
        block_sizes = randomization.default_block_sizes(len(arms))
    try:
        slots = randomization.generate(
            arms=arms, strata=strata, block_sizes=block_sizes, per_stratum=per_stratum, seed=seed
        )
    except randomization.AllocationSpecError as exc:
        raise ServiceError(str(exc), field_errors={"allocation_list": [str(exc)]}) from exc
    allocation_list = _replace_active_list(
        study, by, source=AllocationList.Source.GENERATED, seed=seed, block_sizes=block_sizes
    )
    _store_slots(allocation_list, slots)
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="allocation_list",
        entity_id=allocation_list.pk,
        changes=[
            ("source", None, "generated"),
            ("strata", None, strata),
            ("block_sizes", None, block_sizes),
            ("per_stratum", None, per_stratum),
            ("seed", None, seed),
        ],
        sensitivity=AuditEvent.Sensitivity.ALLOCATION,
    )
    return allocation_list


@transaction.atomic
def allocation_list_import(*, study: Study, csv_text: str, by: Actor) -> AllocationList:
    """Import a statistician's list. The sizes of its numbered blocks (if it numbers them) are kept on the list, for
    the start-up check of predictable blocks."""
    _require_list_manager(study, by)
    arms = list(study.arms.values_list("code", flat=True))
    try:
        slots = randomization.parse_csv(csv_text, arms=arms)
    except randomization.AllocationSpecError as exc:
        raise ServiceError(str(exc), field_errors={"file": [str(exc)]}) from exc
    allocation_list = _replace_active_list(
        study, by, source=AllocationList.Source.IMPORTED, block_sizes=randomization.block_sizes_of(slots)
    )
    _store_slots(allocation_list, slots)
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="allocation_list",
        entity_id=allocation_list.pk,
        changes=[("source", None, "imported"), ("slots", None, len(slots))],
        sensitivity=AuditEvent.Sensitivity.ALLOCATION,
    )
    return allocation_list


@transaction.atomic
def participant_randomize(*, participant: Participant, by: Actor, stratum: str | None = None) -> AllocationSlot:
    """Take the next unused slot of the participant's stratum, in list order.

    The active list's row is locked first: concurrent randomizations in a study queue behind each other, so each
    takes the lowest free sequence and no slot is skipped or shared (SKIP LOCKED would break list order if a
    transaction rolled back)."""
    participant = (
        Participant.objects.select_for_update(of=("self",)).select_related("site", "study").get(pk=participant.pk)
    )
    require_transition(participant, S.RANDOMIZED)
    allocation_list = AllocationList.objects.select_for_update().filter(study=participant.study, active=True).first()
    if allocation_list is None:
        raise ServiceError(
            f"study {participant.study.code} has no active allocation list",
            field_errors={"allocation_list": ["generate or import one first"]},
        )
    stratum = stratum or participant.stratum or participant.site.code
    slot = (
        AllocationSlot.objects.filter(allocation_list=allocation_list, stratum=stratum, participant__isnull=True)
        .order_by("sequence")
        .first()
    )
    if slot is None:
        exists = allocation_list.slots.filter(stratum=stratum).exists()
        message = (
            f"the allocation list has no free slot in stratum '{stratum}'"
            if exists
            else f"the allocation list has no stratum '{stratum}'"
        )
        raise ServiceError(message, field_errors={"stratum": [message]})
    now = timezone.now()
    slot.participant, slot.allocated_at = participant, now
    slot.save(update_fields=["participant", "allocated_at"])
    old_stratum = participant.stratum
    participant.stratum, participant.randomized_at = stratum, now
    participant.save(update_fields=["stratum", "randomized_at", "updated_at"])
    _audit_participant(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        changes=[("randomized_at", None, now)]
        + ([("stratum", old_stratum, stratum)] if old_stratum != stratum else []),
    )
    # The arm itself is audited as allocation-sensitive: blinded roles never read it back from history.
    _audit_participant(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity=("allocation_slot", slot.pk),
        changes=[("arm", None, slot.arm.code), ("slot", None, f"{stratum}#{slot.sequence}")],
        sensitivity=AuditEvent.Sensitivity.ALLOCATION,
    )
    _set_status(participant, S.RANDOMIZED, by=by)
    hooks.run_randomized(participant=participant, by=by)
    return slot
