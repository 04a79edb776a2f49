"""Unblinding a double-blind study: once, by an investigator or administrator, with a reason."""

from __future__ import annotations

from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_record
from participants import access
from participants.access import Actor
from participants.models import Study
from participants.services.status import _has_reason
from trialsite.errors import InvalidTransition, PermissionDeniedError, ServiceError


@transaction.atomic
def study_unblind(*, study: Study, by: Actor, reason: str) -> Study:
    """Unblind a double-blind study (e.g. after database lock): from now on the unblinded statistician's exports carry
    the arm. Only an investigator or administrator at one of the study's sites may do it; it happens once."""
    if not _has_reason(reason):
        raise ServiceError("unblinding needs a reason", field_errors={"reason": ["required"]})
    study = Study.objects.select_for_update().get(pk=study.pk)
    site_ids = list(study.sites.values_list("id", flat=True))
    if not access.can_unblind(by, site_ids):
        raise PermissionDeniedError("only an investigator or administrator at a site of the study may unblind it")
    if not study.blinded:
        raise InvalidTransition(f"study {study.code} is open-label: there is nothing to unblind")
    if study.unblinded:
        raise InvalidTransition(f"study {study.code} is already unblinded")
    study.unblinded = True
    study.save(update_fields=["unblinded"])
    audit_record(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="study",
        entity_id=study.pk,
        changes=[("unblinded", False, True)],
        reason=reason,
    )
    return study
