"""Investigator review: the causality assessment and sign-off of an adverse event, a step of its own.

Only an investigator at the event's site reviews (not an administrator or a superuser: the sign-off names the
clinician responsible). The first review stops the reporting clock; later ones are further sign-offs, each kept.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_participant_record
from participants.access import Actor, acting_person, has_role
from safety.models import AdverseEvent, AdverseEventReview, Relatedness
from trialsite.errors import PermissionDeniedError, ServiceError
from trialsite.roles import Role


@transaction.atomic
def adverse_event_review(
    *, event: AdverseEvent, causality_drug: str, causality_therapy: str, by: Actor, note: str = ""
) -> AdverseEventReview:
    # Locked: a review racing the escalation beat must either stop the clock first or find it already escalated.
    event = AdverseEvent.objects.select_for_update(of=("self",)).select_related("participant__site").get(pk=event.pk)
    if not has_role(by, event.participant.site_id, {Role.INVESTIGATOR}):
        raise PermissionDeniedError("only an investigator at this site can review an adverse event")
    errors = {
        name: ["not one of the allowed values"]
        for name, value in (("causality_drug", causality_drug), ("causality_therapy", causality_therapy))
        if value not in Relatedness.values
    }
    if errors:
        raise ServiceError("the review is not valid", field_errors=errors)
    now = timezone.now()
    review = AdverseEventReview.objects.create(
        event=event,
        causality_drug=causality_drug,
        causality_therapy=causality_therapy,
        note=note.strip(),
        reviewed_at=now,
        reviewed_by=acting_person(by, "a review"),
    )
    changes = [
        ("event", None, event.pk),
        ("causality_drug", None, causality_drug),
        ("causality_therapy", None, causality_therapy),
    ] + ([("note", None, review.note)] if review.note else [])
    audit_participant_record(
        event.participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="adverse_event_review",
        entity_id=review.pk,
        changes=changes,
    )
    if event.reviewed_at is None:
        event.reviewed_at = now
        event.save(update_fields=["reviewed_at"])
        audit_participant_record(
            event.participant,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity_type="adverse_event",
            entity_id=event.pk,
            changes=[("reviewed_at", None, now)],
            reason=f"review {review.pk}",
        )
    return review
