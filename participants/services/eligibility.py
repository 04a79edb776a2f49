"""Eligibility: a study's criteria (added and retired) and a participant's answers with the computed verdict."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record, diff
from participants import access
from participants.access import Actor
from participants.models import EligibilityAnswer, EligibilityCriterion, Participant, Study
from participants.services._validation import _full_clean
from participants.services.status import _audit_participant, _has_reason, _set_status
from trialsite.errors import Conflict, InvalidTransition, ServiceError

S = Participant.Status


@transaction.atomic
def criterion_create(
    *, study: Study, code: str, kind: str, text: str, by: Actor, order: int | None = None
) -> EligibilityCriterion:
    """Add an inclusion or exclusion criterion. Participants screened earlier keep their verdict; the criterion is
    asked from now on. ``order`` defaults to after the study's last criterion."""
    access.require_configure(by, "add eligibility criteria")
    if EligibilityCriterion.objects.filter(study=study, code=code).exists():
        raise ServiceError(
            f"criterion {code} already exists in study {study.code}",
            field_errors={"code": [f"criterion {code} already exists in study {study.code}"]},
        )
    if order is None:
        last = EligibilityCriterion.objects.filter(study=study).aggregate(last=Max("order"))["last"]
        order = 0 if last is None else last + 1
    criterion = EligibilityCriterion(study=study, code=code, kind=kind, text=text, order=order)
    _full_clean(criterion, "criterion", exclude=["study", "retired_by"])
    criterion.save()
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="eligibility_criterion",
        entity_id=criterion.pk,
        changes=[("study", None, study.code), ("code", None, code), ("kind", None, kind), ("text", None, text)]
        + [("order", None, order)],
    )
    return criterion


@transaction.atomic
def criterion_retire(*, criterion: EligibilityCriterion, by: Actor, reason: str) -> EligibilityCriterion:
    """Stop asking a criterion (e.g. after a protocol amendment). The answers already given stay in the record."""
    access.require_configure(by, "retire eligibility criteria")
    if not _has_reason(reason):
        raise ServiceError("retiring a criterion needs a reason", field_errors={"reason": ["required"]})
    criterion = (
        EligibilityCriterion.objects.select_for_update(of=("self",)).select_related("study").get(pk=criterion.pk)
    )
    if criterion.retired_at is not None:
        raise Conflict(
            f"criterion {criterion.code} was already retired",
            field_errors={"criterion": [f"retired at {criterion.retired_at.isoformat()}"]},
        )
    criterion.retired_at = timezone.now()
    criterion.retired_by = access.acting_user(by)
    criterion.save(update_fields=["retired_at", "retired_by"])
    audit_record(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="eligibility_criterion",
        entity_id=criterion.pk,
        changes=[("retired_at", None, criterion.retired_at)],
        reason=reason,
    )
    return criterion


@transaction.atomic
def eligibility_record(
    *,
    participant: Participant,
    answers: dict[str, bool],
    by: Actor,
    override: bool | None = None,
    reason: str | None = None,
) -> Participant:
    """Record answers, compute the verdict, and move screening -> eligible | screen_failed.

    An override of the computed verdict needs a reason. Changing an answer already given needs a reason too. Only
    the study's current criteria are asked; answers given to a criterion since retired stay in the record."""
    participant = (
        Participant.objects.select_for_update(of=("self",)).select_related("site", "study").get(pk=participant.pk)
    )
    if participant.status not in (S.SCREENING, S.ELIGIBLE, S.SCREEN_FAILED):
        raise InvalidTransition(
            f"eligibility is assessed during screening; current status is '{participant.status}'",
            field_errors={"status": [f"current status is '{participant.status}'"]},
        )
    all_criteria = {c.code: c for c in participant.study.criteria.all()}
    criteria = {code: c for code, c in all_criteria.items() if c.retired_at is None}
    unknown = sorted(set(answers) - set(criteria))
    if unknown:
        raise ServiceError(
            "unknown criteria",
            field_errors={
                code: [
                    "criterion retired: no longer asked" if code in all_criteria else "unknown criterion for this study"
                ]
                for code in unknown
            },
        )
    existing = {
        a.criterion.code: a
        for a in participant.eligibility_answers.select_related("criterion")
        if a.criterion.retired_at is None
    }
    changed_answers = [code for code, value in answers.items() if code in existing and existing[code].answer != value]
    if changed_answers and not _has_reason(reason):
        raise ServiceError(
            "a reason is required to change an answer already recorded",
            field_errors={"reason": [f"required: changing {', '.join(changed_answers)}"]},
        )
    now = timezone.now()
    answered_by = access.acting_person(by, "answering eligibility criteria")
    for code, value in answers.items():
        answer = existing.get(code)
        if answer is None:
            answer = EligibilityAnswer.objects.create(
                participant=participant,
                criterion=criteria[code],
                answer=value,
                answered_at=now,
                answered_by=answered_by,
            )
            _audit_participant(
                participant,
                by=by,
                action=AuditEvent.Action.CREATE,
                changes=[(code, None, value)],
                entity=("eligibility_answer", answer.pk),
            )
        elif answer.answer != value:
            old = answer.answer
            answer.answer, answer.answered_at, answer.answered_by = value, now, answered_by
            answer.save()
            _audit_participant(
                participant,
                by=by,
                action=AuditEvent.Action.UPDATE,
                changes=[(code, old, value)],
                reason=reason,
                entity=("eligibility_answer", answer.pk),
            )
        existing[code] = answer
    missing = sorted(set(criteria) - set(existing))
    verdict = None if missing else all(criteria[c].is_met(existing[c].answer) for c in criteria)
    if override is not None and verdict is not None and override != verdict and not _has_reason(reason):
        raise ServiceError("overriding the computed verdict needs a reason", field_errors={"reason": ["required"]})
    if override is not None and verdict is None:
        raise ServiceError(
            "answer every criterion before overriding the verdict",
            field_errors={"answers": [f"missing: {', '.join(missing)}"]},
        )
    outcome: dict[str, Any] = {
        "eligibility_verdict": verdict,
        "eligibility_override": override if override != verdict else None,
        "eligibility_override_reason": (reason or "") if override is not None and override != verdict else "",
    }
    changes = diff(participant, outcome)
    for name, _, new in changes:
        setattr(participant, name, new)
    if changes:
        participant.save()
        _audit_participant(participant, by=by, action=AuditEvent.Action.UPDATE, changes=changes, reason=reason)
    final = participant.eligibility_override if participant.eligibility_override is not None else verdict
    if final is not None:
        target = S.ELIGIBLE if final else S.SCREEN_FAILED
        if participant.status != target:
            if participant.status != S.SCREENING:
                # A verdict revised after screening ended is a correction of existing data.
                if not _has_reason(reason):
                    raise ServiceError(
                        "a reason is required to revise the eligibility outcome", field_errors={"reason": ["required"]}
                    )
                previous_status = participant.status
                participant.status = target
                participant.save(update_fields=["status", "updated_at"])
                _audit_participant(
                    participant,
                    by=by,
                    action=AuditEvent.Action.TRANSITION,
                    changes=[("status", previous_status, target)],
                    reason=reason,
                )
            else:
                _set_status(participant, target, by=by, reason=reason)
    return participant
