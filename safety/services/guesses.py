"""Recording treatment guesses (the blinding assessment) and correcting them with a reason.

A guess is asked after each dosing session and at the protocol's primary endpoint, of the participant, the lead
therapist and the independent rater; who may enter whose guess is ``safety.guess_selectors.may_record_guess``. One
guess per participant, visit and respondent (a second is a 409: correct the first). Never deleted: a correction
keeps the earlier value in the audit trail (21 CFR 11.10(e)).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_participant_record, diff
from participants import selectors as participant_selectors
from participants.access import Actor, acting_user
from participants.models import Participant
from safety.guess_selectors import is_guess_visit, may_record_guess
from safety.models import TreatmentGuess
from scheduling.models import Visit
from trialsite.errors import Conflict, PermissionDeniedError, ServiceError

ENTITY = "treatment_guess"
CORRECTABLE = ("guess", "confidence")


def _require_recorder(by: Actor, participant: Participant, respondent: str) -> None:
    if respondent not in TreatmentGuess.Respondent.values:
        raise ServiceError("unknown respondent", field_errors={"respondent": ["not one of the allowed values"]})
    if not may_record_guess(by, site_id=participant.site_id, respondent=respondent):
        raise PermissionDeniedError(f"your role at this site cannot record the {respondent.replace('_', ' ')}'s guess")


def _check_values(participant: Participant, values: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    options = [*participant_selectors.study_arm_codes(participant.study_id), TreatmentGuess.DONT_KNOW]
    if values.get("guess") not in options:
        errors["guess"] = [f"one of: {', '.join(options)}"]
    confidence = values.get("confidence")
    if (
        not isinstance(confidence, int)
        or isinstance(confidence, bool)
        or not 0 <= confidence <= TreatmentGuess.CONFIDENCE_MAX
    ):
        errors["confidence"] = [f"a whole number from 0 to {TreatmentGuess.CONFIDENCE_MAX}"]
    if errors:
        raise ServiceError("the guess is not valid", field_errors=errors)


def _check_visit(participant: Participant, visit: Visit) -> None:
    if visit.participant_id != participant.pk:
        raise ServiceError("unknown visit", field_errors={"visit": ["not a visit of this participant"]})
    if not is_guess_visit(visit, participant.study):
        raise ServiceError(
            "guesses are asked after a dosing session or at the primary endpoint",
            field_errors={"visit": ["not a dosing session nor the primary endpoint visit"]},
        )
    if visit.status in (Visit.Status.CANCELLED, Visit.Status.MISSED):
        raise ServiceError("the visit did not take place", field_errors={"visit": [f"the visit is {visit.status}"]})


@transaction.atomic
def guess_record(
    *, participant: Participant, visit: Visit, respondent: str, guess: str, confidence: int, by: Actor
) -> TreatmentGuess:
    """Record one respondent's guess of the participant's arm at a visit: an arm code of the study or "dont_know",
    with a confidence from 0 to 100."""
    participant = participant_selectors.participant_locked(participant)
    _require_recorder(by, participant, respondent)
    _check_visit(participant, visit)
    values = {"guess": guess, "confidence": confidence}
    _check_values(participant, values)
    if participant_selectors.arm_code_of(participant) is None:
        raise ServiceError("the participant is not randomized", field_errors={"participant_id": ["not randomized"]})
    # The participant row is locked above, so two entries of the same guess queue here; the second finds the first.
    if TreatmentGuess.objects.filter(participant=participant, visit=visit, respondent=respondent).exists():
        raise Conflict(
            f"the {respondent.replace('_', ' ')}'s guess at this visit is already recorded: correct it instead"
        )
    try:
        with transaction.atomic():
            entry = TreatmentGuess.objects.create(
                participant=participant,
                visit=visit,
                respondent=respondent,
                recorded_at=timezone.now(),
                recorded_by=acting_user(by),
                **values,
            )
    except IntegrityError:
        raise Conflict("this guess is already recorded: correct it instead") from None
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type=ENTITY,
        entity_id=entry.pk,
        changes=[("visit", None, visit.pk), ("respondent", None, respondent)]
        + [(name, None, value) for name, value in values.items()],
    )
    return entry


@transaction.atomic
def guess_correct(*, treatment_guess: TreatmentGuess, reason: str, by: Actor, **changes: Any) -> TreatmentGuess:
    """Correct the answer or the confidence of a recorded guess, with a reason; the audit keeps each old value.
    Whoever may record that respondent's guess may correct it."""
    entry = (
        TreatmentGuess.objects.select_for_update(of=("self",))
        .select_related("participant__site", "participant__study")
        .get(pk=treatment_guess.pk)
    )
    participant = entry.participant
    _require_recorder(by, participant, entry.respondent)
    refused = sorted(set(changes) - set(CORRECTABLE))
    if refused:
        raise ServiceError(
            "these fields cannot be corrected", field_errors={name: ["not correctable"] for name in refused}
        )
    if not (reason and reason.strip()):
        raise ServiceError("a correction needs a reason", field_errors={"reason": ["required"]})
    values = {name: getattr(entry, name) for name in CORRECTABLE} | changes
    _check_values(participant, values)
    found = diff(entry, changes)
    if not found:
        raise ServiceError("nothing to correct", field_errors={"guess": ["no value changes"]})
    for name, _old, new in found:
        setattr(entry, name, new)
    entry.corrected_at = timezone.now()
    entry.save(update_fields=sorted(name for name, _o, _n in found) + ["corrected_at"])
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type=ENTITY,
        entity_id=entry.pk,
        changes=found,
        reason=reason.strip(),
    )
    return entry
