"""Consent: publishing a study's consent versions and recording a participant's signed consent."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from participants import access
from participants.access import Actor
from participants.models import ConsentDocument, ConsentRecord, Participant, Study
from participants.plausible import require_plausible
from participants.selectors import current_consent_document
from participants.services._validation import _full_clean
from participants.services.status import _audit_participant, _set_status
from participants.transitions import ACTIVE
from trialsite.errors import InvalidTransition, ServiceError

S = Participant.Status


@transaction.atomic
def consent_document_publish(*, study: Study, version: str, title: str, by: Actor) -> ConsentDocument:
    """Publish a new consent version. Everyone consented on an earlier version now needs re-consent."""
    access.require_publish_consent(by, study.sites.values_list("id", flat=True))
    if study.consent_documents.filter(version=version).exists():
        raise ServiceError(f"consent version {version} already exists", field_errors={"version": ["already exists"]})
    document = ConsentDocument(
        study=study, version=version, title=title, published_at=timezone.now(), published_by=access.acting_user(by)
    )
    _full_clean(document, "consent document", exclude=["study", "published_by"])
    document.save()
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="consent_document",
        entity_id=document.pk,
        changes=[("version", None, version), ("title", None, title)],
    )
    affected = (
        Participant.objects.select_related("site")
        .filter(study=study, consents__isnull=False, status__in=ACTIVE | {S.COMPLETED}, needs_reconsent=False)
        .distinct()
    )
    for participant in affected:
        participant.needs_reconsent = True
        participant.save(update_fields=["needs_reconsent", "updated_at"])
        _audit_participant(
            participant,
            by=by,
            action=AuditEvent.Action.UPDATE,
            changes=[("needs_reconsent", False, True)],
            reason=f"consent version {version} published",
        )
    return document


@transaction.atomic
def consent_record(
    *,
    participant: Participant,
    version: str,
    signed_at: dt.datetime,
    by: Actor,
    obtained_by: Actor = None,
) -> ConsentRecord:
    participant = (
        Participant.objects.select_for_update(of=("self",)).select_related("site", "study").get(pk=participant.pk)
    )
    document = participant.study.consent_documents.filter(version=version).first()
    if document is None:
        raise ServiceError(
            f"no consent version {version} for study {participant.study.code}",
            field_errors={"version": ["unknown consent version"]},
        )
    current = current_consent_document(participant.study)
    if current is None or document != current:
        current_version = current.version if current else "(none)"
        raise ServiceError(
            f"consent version {version} is outdated; the current version is {current_version}",
            field_errors={"version": [f"current version is {current_version}"]},
        )
    require_plausible(participant, {"signed_at": signed_at})
    if participant.status not in ACTIVE and participant.status != S.COMPLETED:
        raise InvalidTransition(
            f"cannot record consent for a participant with status '{participant.status}'",
            field_errors={"status": [f"current status is '{participant.status}'"]},
        )
    if participant.status == S.SCREENING:
        raise InvalidTransition(
            "cannot change status from 'screening' to 'consented': eligibility comes first",
            field_errors={"status": ["current status is 'screening'; requested 'consented'"]},
        )
    obtainer = access.acting_person(obtained_by or by, "obtaining consent")
    record = ConsentRecord.objects.create(
        participant=participant, document=document, signed_at=signed_at, obtained_by=obtainer
    )
    _audit_participant(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity=("consent_record", record.pk),
        changes=[
            ("consent_version", None, version),
            ("signed_at", None, signed_at),
            ("obtained_by", None, obtainer.get_username()),
        ],
    )
    if participant.needs_reconsent:
        participant.needs_reconsent = False
        participant.save(update_fields=["needs_reconsent", "updated_at"])
        _audit_participant(
            participant,
            by=by,
            action=AuditEvent.Action.UPDATE,
            changes=[("needs_reconsent", True, False)],
            reason=f"re-consented on version {version}",
        )
    if participant.status == S.ELIGIBLE:
        _set_status(participant, S.CONSENTED, by=by)
    return record
