"""Creating a participant (numbered per study and site), editing one, and enrolling one."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import diff
from participants import hooks
from participants.access import Actor
from participants.models import ContactDetails, Participant, ParticipantCounter, Site, Study
from participants.selectors import current_consent_document, latest_consent
from participants.services.status import _audit_participant, _has_reason, _set_status
from participants.transitions import TRANSITIONS, require_transition
from trialsite.errors import InvalidTransition, ServiceError

S = Participant.Status
CONTACT_FIELDS = ("full_name", "email", "phone", "preferred_channel", "time_zone", "language")


def _next_number(study: Study, site: Site) -> int:
    # get_or_create can race on the very first participant of a site: the unique constraint decides, and the loser
    # reads the winner's row. The row lock then serializes allocation until this transaction ends.
    try:
        with transaction.atomic():
            ParticipantCounter.objects.get_or_create(study=study, site=site)
    except IntegrityError:
        pass
    counter = ParticipantCounter.objects.select_for_update().get(study=study, site=site)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


@transaction.atomic
def participant_create(
    *, study: Study, site: Site, by: Actor, contact: dict[str, Any] | None = None, stratum: str = ""
) -> Participant:
    if not site.studies.filter(pk=study.pk).exists():
        raise ServiceError(
            f"site {site.code} does not take part in study {study.code}",
            field_errors={"site": [f"site {site.code} is not a site of study {study.code}"]},
        )
    number = _next_number(study, site)
    participant = Participant.objects.create(
        participant_id=f"{study.code}-{site.code}-{number:03d}", study=study, site=site, number=number, stratum=stratum
    )
    _audit_participant(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        changes=[("participant_id", None, participant.participant_id), ("status", None, participant.status)]
        + ([("stratum", None, stratum)] if stratum else []),
    )
    contact_values = {k: v for k, v in (contact or {}).items() if k in CONTACT_FIELDS}
    details = ContactDetails(participant=participant, **contact_values)
    details.full_clean(exclude=["participant"])
    details.save()
    changes = [(k, None, v) for k, v in contact_values.items() if v not in ("", None)]
    if changes:
        _audit_participant(
            participant,
            by=by,
            action=AuditEvent.Action.CREATE,
            changes=changes,
            sensitivity=AuditEvent.Sensitivity.CONTACT,
            entity=("contact_details", details.pk),
        )
    return participant


@transaction.atomic
def participant_update(
    *,
    participant: Participant,
    by: Actor,
    reason: str | None,
    contact: dict[str, Any] | None = None,
    stratum: str | None = None,
    status: str | None = None,
) -> Participant:
    participant = (
        Participant.objects.select_for_update(of=("self",)).select_related("site", "study").get(pk=participant.pk)
    )
    changed_existing = False
    if stratum is not None and stratum != participant.stratum:
        if hasattr(participant, "allocation"):
            raise ServiceError(
                "the stratum cannot change after randomization",
                field_errors={"stratum": ["already randomized in stratum " + participant.stratum]},
            )
        changed_existing = changed_existing or bool(participant.stratum)
    contact_changes: list[tuple[str, Any, Any]] = []
    details = None
    if contact:
        details, _ = ContactDetails.objects.get_or_create(participant=participant)
        values = {k: v for k, v in contact.items() if k in CONTACT_FIELDS}
        contact_changes = diff(details, values)
        changed_existing = changed_existing or any(old not in ("", None) for _, old, _ in contact_changes)
    if (changed_existing or status) and not _has_reason(reason):
        raise ServiceError("a reason is required to change existing data", field_errors={"reason": ["required"]})
    if stratum is not None and stratum != participant.stratum:
        old = participant.stratum
        participant.stratum = stratum
        participant.save(update_fields=["stratum", "updated_at"])
        _audit_participant(
            participant, by=by, action=AuditEvent.Action.UPDATE, changes=[("stratum", old, stratum)], reason=reason
        )
    if contact_changes and details is not None:
        for name, _, new in contact_changes:
            setattr(details, name, new)
        details.full_clean(exclude=["participant"])
        details.save()
        _audit_participant(
            participant,
            by=by,
            action=AuditEvent.Action.UPDATE,
            changes=contact_changes,
            reason=reason,
            sensitivity=AuditEvent.Sensitivity.CONTACT,
            entity=("contact_details", details.pk),
        )
    if status and status != participant.status:
        dedicated: dict[str, str] = {
            S.ELIGIBLE: "eligibility",
            S.SCREEN_FAILED: "eligibility",
            S.CONSENTED: "consent",
            S.ENROLLED: "enroll",
            S.RANDOMIZED: "randomize",
            S.WITHDRAWN: "withdraw",
        }
        if status in TRANSITIONS.get(participant.status, frozenset()) and status in dedicated:
            raise InvalidTransition(
                f"status '{status}' is set through the {dedicated[status]}/ endpoint, not by editing",
                field_errors={"status": [f"use POST .../{dedicated[status]}/"]},
            )
        _set_status(participant, status, by=by, reason=reason)
    return participant


@transaction.atomic
def participant_enroll(*, participant: Participant, by: Actor) -> Participant:
    participant = (
        Participant.objects.select_for_update(of=("self",)).select_related("site", "study").get(pk=participant.pk)
    )
    require_transition(participant, S.ENROLLED)
    record = latest_consent(participant)
    current = current_consent_document(participant.study)
    if record is None:
        raise ServiceError("cannot enroll without a signed consent", field_errors={"consent": ["no consent recorded"]})
    if current is None or record.document_id != current.pk or participant.needs_reconsent:
        raise ServiceError(
            f"cannot enroll: consent is on version {record.document.version}, the current version is "
            f"{current.version if current else '(none)'}",
            field_errors={"consent": ["re-consent on the current version first"]},
        )
    participant.enrolled_at = timezone.now()
    participant.save(update_fields=["enrolled_at", "updated_at"])
    _audit_participant(
        participant, by=by, action=AuditEvent.Action.UPDATE, changes=[("enrolled_at", None, participant.enrolled_at)]
    )
    _set_status(participant, S.ENROLLED, by=by)
    # Other apps react in this transaction (scheduling creates the screening and baseline visits), so a failure there
    # leaves the participant unenrolled rather than enrolled without a plan.
    hooks.run_enrolled(participant=participant, by=by)
    return participant
