"""Unblinding a double-blind study: two approvals by two different people, each audited with its reason.

The first approval leaves the study blinded; the second, by a different person, unblinds it. One of the two must be
an investigator (or administrator) at one of the study's sites, the other a holder of the role the study's protocol
names (``"unblinding": {"second_approver_role": ...}``; ``DEFAULT_SECOND_APPROVER_ROLE`` when the protocol names
none) at one of its sites. A standing approval can be withdrawn (audited) until the second arrives. Approvals are
rows of ``UnblindingApproval``, never deleted; a study is unblinded once.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from participants import access, hooks
from participants.access import Actor
from participants.models import Study, UnblindingApproval
from participants.services.status import _has_reason
from trialsite.errors import Conflict, InvalidTransition, PermissionDeniedError, ServiceError
from trialsite.roles import Role

# The second approver when the protocol names none: the unblinded statistician, who already sees the allocation for
# the safety board and is independent of the site team.
DEFAULT_SECOND_APPROVER_ROLE = Role.UNBLINDED_STATISTICIAN.value
INVESTIGATOR_LABEL = "investigator"


@dataclass(frozen=True)
class UnblindingState:
    study: Study
    unblinded: bool
    # The standing approvals (not withdrawn), oldest first.
    approvals: list[UnblindingApproval]
    # Who may still give the missing approval ("unblinded_statistician", "investigator or admin", ...); None once
    # the study is unblinded.
    awaiting: str | None


def _second_approver_role(study: Study) -> str:
    """The role the study's protocol names for the second approval, else ``DEFAULT_SECOND_APPROVER_ROLE``."""
    facts = hooks.protocol_facts(study.protocol_code)
    if facts is not None and facts.unblinding_second_approver_role:
        return facts.unblinding_second_approver_role
    return DEFAULT_SECOND_APPROVER_ROLE


def _awaiting(approvals: list[UnblindingApproval], role: str) -> str:
    if not approvals:
        return f"{INVESTIGATOR_LABEL} and {role}" if role != INVESTIGATOR_LABEL else "two investigators"
    first = approvals[0]
    if first.as_investigator and first.as_second_approver:
        return INVESTIGATOR_LABEL if role == INVESTIGATOR_LABEL else f"{INVESTIGATOR_LABEL} or {role}"
    return role if first.as_investigator else INVESTIGATOR_LABEL


def _standing(study: Study) -> list[UnblindingApproval]:
    return list(study.unblinding_approvals.filter(withdrawn_at__isnull=True).order_by("approved_at", "id"))


def _check_blinded(study: Study) -> None:
    if not study.blinded:
        raise InvalidTransition(f"study {study.code} is open-label: there is nothing to unblind")
    # Once is once: a study whose approvals unblinded it is not unblinded again, even if its flag were reset.
    if study.unblinded or study.unblinding_approvals.filter(unblinded_at__isnull=False).exists():
        raise InvalidTransition(f"study {study.code} is already unblinded")


def _unblinding_state(study: Study) -> UnblindingState:
    approvals = _standing(study) if not study.unblinded else []
    awaiting = None if study.unblinded else _awaiting(approvals, _second_approver_role(study))
    return UnblindingState(study=study, unblinded=study.unblinded, approvals=approvals, awaiting=awaiting)


@transaction.atomic
def study_unblind(*, study: Study, by: Actor, reason: str) -> UnblindingState:
    """Approve unblinding a double-blind study (e.g. after database lock). The first approval is recorded and the
    study stays blinded; the second, by a different person such that one is an investigator (or administrator) and
    the other holds the protocol's second-approver role, unblinds it: from then on the unblinded statistician's
    exports carry the arm. Each approval is its own audit row with its reason; the unblinding is another."""
    if not _has_reason(reason):
        raise ServiceError("unblinding needs a reason", field_errors={"reason": ["required"]})
    study = Study.objects.select_for_update().get(pk=study.pk)
    person = access.acting_person(by, "approving unblinding")
    site_ids = list(study.sites.values_list("id", flat=True))
    role = _second_approver_role(study)
    as_investigator = access.can_unblind(by, site_ids)
    as_second = any(role in access.roles_at(by, sid) for sid in site_ids)
    if not (as_investigator or as_second):
        raise PermissionDeniedError(
            f"only an investigator or administrator, or a {role}, at a site of the study may approve unblinding it"
        )
    _check_blinded(study)
    approvals = _standing(study)
    if any(a.approved_by_id == person.pk for a in approvals):
        raise Conflict(
            "you have already approved unblinding this study: the second approval must come from another person",
            field_errors={"approval": [f"awaiting approval by {_awaiting(approvals, role)}"]},
        )
    if approvals:
        first = approvals[0]
        completes = (first.as_investigator and as_second) or (first.as_second_approver and as_investigator)
        if not completes:
            awaiting = _awaiting(approvals, role)
            raise PermissionDeniedError(
                f"the second approval must come from a different person who is {awaiting}",
                field_errors={"approval": [f"awaiting approval by {awaiting}"]},
            )
    now = timezone.now()
    approval = UnblindingApproval.objects.create(
        study=study,
        approved_by=person,
        as_investigator=as_investigator,
        as_second_approver=as_second,
        second_approver_role=role,
        reason=reason,
        approved_at=now,
    )
    capacities = [label for label, held in ((INVESTIGATOR_LABEL, as_investigator), (role, as_second)) if held]
    audit_record(
        by=by,
        action=AuditEvent.Action.ACTION,
        entity_type="unblinding_approval",
        entity_id=approval.pk,
        changes=[("approval", None, {"study": study.code, "as": capacities, "number": len(approvals) + 1})],
        reason=reason,
    )
    if not approvals:
        return UnblindingState(study=study, unblinded=False, approvals=[approval], awaiting=_awaiting([approval], role))
    both = [approvals[0], approval]
    UnblindingApproval.objects.filter(pk__in=[a.pk for a in both]).update(unblinded_at=now)
    study.unblinded = True
    study.save(update_fields=["unblinded"])
    audit_record(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="study",
        entity_id=study.pk,
        changes=[("unblinded", False, True)],
        reason=f"approved by {approvals[0].approved_by.get_username()} and {person.get_username()}: {reason}",
    )
    return UnblindingState(study=study, unblinded=True, approvals=both, awaiting=None)


@transaction.atomic
def study_unblind_withdraw(*, study: Study, by: Actor, reason: str) -> UnblindingState:
    """Withdraw one's own standing approval before the second arrives (audited, with a reason; the row is kept)."""
    if not _has_reason(reason):
        raise ServiceError("withdrawing an approval needs a reason", field_errors={"reason": ["required"]})
    study = Study.objects.select_for_update().get(pk=study.pk)
    person = access.acting_person(by, "withdrawing an unblinding approval")
    _check_blinded(study)
    approval = study.unblinding_approvals.filter(approved_by=person, withdrawn_at__isnull=True).first()
    if approval is None:
        raise Conflict(
            "you have no standing approval to unblind this study",
            field_errors={"approval": ["nothing to withdraw"]},
        )
    approval.withdrawn_at, approval.withdrawn_by, approval.withdrawal_reason = timezone.now(), person, reason
    approval.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawal_reason"])
    audit_record(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="unblinding_approval",
        entity_id=approval.pk,
        changes=[("withdrawn_at", None, approval.withdrawn_at)],
        reason=reason,
    )
    return _unblinding_state(study)
