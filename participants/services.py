"""Every write to participants goes through here: validated, atomic, audited in the same transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_participant_record, audit_record, diff
from participants import randomization
from participants.models import (
    AllocationList,
    AllocationSlot,
    ConsentDocument,
    ConsentRecord,
    ContactDetails,
    EligibilityAnswer,
    Participant,
    ParticipantCounter,
    Site,
    StaffMembership,
    Study,
)
from participants.selectors import current_consent_document
from trialsite.errors import InvalidTransition, ServiceError

S = Participant.Status
ACTIVE = {S.SCREENING, S.ELIGIBLE, S.CONSENTED, S.ENROLLED, S.RANDOMIZED, S.IN_TREATMENT}
TRANSITIONS: dict[str, set[str]] = {
    S.SCREENING: {S.ELIGIBLE, S.SCREEN_FAILED},
    S.ELIGIBLE: {S.CONSENTED},
    S.CONSENTED: {S.ENROLLED},
    S.ENROLLED: {S.RANDOMIZED},
    S.RANDOMIZED: {S.IN_TREATMENT},
    S.IN_TREATMENT: {S.COMPLETED},
    S.COMPLETED: set(),
    S.SCREEN_FAILED: set(),
    S.WITHDRAWN: set(),
    S.LOST_TO_FOLLOW_UP: set(),
}
for _status in ACTIVE:
    TRANSITIONS[_status] |= {S.WITHDRAWN, S.LOST_TO_FOLLOW_UP}

# Hooks other apps register to react after a participant changes (e.g. scheduling generates visits on
# randomization). Participants never imports them; they register themselves in their AppConfig.ready().
_after_randomize: list[Callable[..., None]] = []
_after_withdraw: list[Callable[..., None]] = []


def on_randomized(hook: Callable[..., None]) -> Callable[..., None]:
    _after_randomize.append(hook)
    return hook


def on_withdrawn(hook: Callable[..., None]) -> Callable[..., None]:
    _after_withdraw.append(hook)
    return hook


def _audit_participant(participant: Participant, *, by, action: str, changes, reason=None, sensitivity="", entity=None):
    entity_type, entity_id = entity or ("participant", participant.pk)
    audit_participant_record(
        participant,
        by=by,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        changes=changes,
        reason=reason,
        sensitivity=sensitivity,
    )


def _require_transition(participant: Participant, new_status: str) -> None:
    """Refuse a status change the state machine does not allow, naming the current and the requested status."""
    if new_status not in TRANSITIONS.get(participant.status, set()):
        raise InvalidTransition(
            f"cannot change status from '{participant.status}' to '{new_status}'",
            field_errors={
                "status": [f"current status is '{participant.status}'; requested '{new_status}' is not allowed"]
            },
        )


def _set_status(participant: Participant, new_status: str, *, by, reason: str | None = None) -> None:
    _require_transition(participant, new_status)
    old = participant.status
    participant.status = new_status
    participant.save(update_fields=["status", "updated_at"])
    _audit_participant(
        participant, by=by, action=AuditEvent.Action.TRANSITION, changes=[("status", old, new_status)], reason=reason
    )


# --- creation --------------------------------------------------------------------------------------------------


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


CONTACT_FIELDS = ("full_name", "email", "phone", "preferred_channel", "time_zone", "language")


@transaction.atomic
def participant_create(
    *, study: Study, site: Site, by, contact: dict[str, Any] | None = None, stratum: str = ""
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
    by,
    reason: str | None,
    contact: dict[str, Any] | None = None,
    stratum: str | None = None,
    status: str | None = None,
) -> Participant:
    participant = Participant.objects.select_for_update().select_related("site", "study").get(pk=participant.pk)
    changed_existing = False
    if stratum is not None and stratum != participant.stratum:
        if hasattr(participant, "allocation"):
            raise ServiceError(
                "the stratum cannot change after randomization",
                field_errors={"stratum": ["already randomized in stratum " + participant.stratum]},
            )
        changed_existing = changed_existing or bool(participant.stratum)
    contact_changes: list = []
    details = None
    if contact:
        details, _ = ContactDetails.objects.get_or_create(participant=participant)
        values = {k: v for k, v in contact.items() if k in CONTACT_FIELDS}
        contact_changes = diff(details, values)
        changed_existing = changed_existing or any(old not in ("", None) for _, old, _ in contact_changes)
    if (changed_existing or status) and not (reason and reason.strip()):
        raise ServiceError("a reason is required to change existing data", field_errors={"reason": ["required"]})
    if stratum is not None and stratum != participant.stratum:
        old = participant.stratum
        participant.stratum = stratum
        participant.save(update_fields=["stratum", "updated_at"])
        _audit_participant(
            participant, by=by, action=AuditEvent.Action.UPDATE, changes=[("stratum", old, stratum)], reason=reason
        )
    if contact_changes:
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
        dedicated = {
            S.ELIGIBLE: "eligibility",
            S.SCREEN_FAILED: "eligibility",
            S.CONSENTED: "consent",
            S.ENROLLED: "enroll",
            S.RANDOMIZED: "randomize",
            S.WITHDRAWN: "withdraw",
        }
        if status in TRANSITIONS.get(participant.status, set()) and status in dedicated:
            raise InvalidTransition(
                f"status '{status}' is set through the {dedicated[status]}/ endpoint, not by editing",
                field_errors={"status": [f"use POST .../{dedicated[status]}/"]},
            )
        _set_status(participant, status, by=by, reason=reason)
    return participant


# --- eligibility --------------------------------------------------------------------------------------------------


@transaction.atomic
def eligibility_record(
    *, participant: Participant, answers: dict[str, bool], by, override: bool | None = None, reason: str | None = None
) -> Participant:
    """Record answers, compute the verdict, and move screening -> eligible | screen_failed.

    An override of the computed verdict needs a reason. Changing an answer already given needs a reason too."""
    participant = Participant.objects.select_for_update().select_related("site", "study").get(pk=participant.pk)
    if participant.status not in (S.SCREENING, S.ELIGIBLE, S.SCREEN_FAILED):
        raise InvalidTransition(
            f"eligibility is assessed during screening; current status is '{participant.status}'",
            field_errors={"status": [f"current status is '{participant.status}'"]},
        )
    criteria = {c.code: c for c in participant.study.criteria.all()}
    unknown = sorted(set(answers) - set(criteria))
    if unknown:
        raise ServiceError(
            "unknown criteria", field_errors={code: ["unknown criterion for this study"] for code in unknown}
        )
    existing = {a.criterion.code: a for a in participant.eligibility_answers.select_related("criterion")}
    changed_answers = [code for code, value in answers.items() if code in existing and existing[code].answer != value]
    if changed_answers and not (reason and reason.strip()):
        raise ServiceError(
            "a reason is required to change an answer already recorded",
            field_errors={"reason": [f"required: changing {', '.join(changed_answers)}"]},
        )
    now = timezone.now()
    for code, value in answers.items():
        answer = existing.get(code)
        if answer is None:
            answer = EligibilityAnswer.objects.create(
                participant=participant, criterion=criteria[code], answer=value, answered_at=now, answered_by=by
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
            answer.answer, answer.answered_at, answer.answered_by = value, now, by
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
    if override is not None and verdict is not None and override != verdict and not (reason and reason.strip()):
        raise ServiceError("overriding the computed verdict needs a reason", field_errors={"reason": ["required"]})
    if override is not None and verdict is None:
        raise ServiceError(
            "answer every criterion before overriding the verdict",
            field_errors={"answers": [f"missing: {', '.join(missing)}"]},
        )
    changes = diff(
        participant,
        {
            "eligibility_verdict": verdict,
            "eligibility_override": override if override != verdict else None,
            "eligibility_override_reason": (reason or "") if override is not None and override != verdict else "",
        },
    )
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
                if not (reason and reason.strip()):
                    raise ServiceError(
                        "a reason is required to revise the eligibility outcome", field_errors={"reason": ["required"]}
                    )
                old = participant.status
                participant.status = target
                participant.save(update_fields=["status", "updated_at"])
                _audit_participant(
                    participant,
                    by=by,
                    action=AuditEvent.Action.TRANSITION,
                    changes=[("status", old, target)],
                    reason=reason,
                )
            else:
                _set_status(participant, target, by=by, reason=reason)
    return participant


# --- consent ------------------------------------------------------------------------------------------------------


@transaction.atomic
def consent_document_publish(*, study: Study, version: str, title: str, by) -> ConsentDocument:
    """Publish a new consent version. Everyone consented on an earlier version now needs re-consent."""
    if study.consent_documents.filter(version=version).exists():
        raise ServiceError(f"consent version {version} already exists", field_errors={"version": ["already exists"]})
    document = ConsentDocument.objects.create(
        study=study, version=version, title=title, published_at=timezone.now(), published_by=by
    )
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
    *, participant: Participant, version: str, signed_at: dt.datetime, by, obtained_by=None
) -> ConsentRecord:
    participant = Participant.objects.select_for_update().select_related("site", "study").get(pk=participant.pk)
    document = participant.study.consent_documents.filter(version=version).first()
    if document is None:
        raise ServiceError(
            f"no consent version {version} for study {participant.study.code}",
            field_errors={"version": ["unknown consent version"]},
        )
    current = current_consent_document(participant.study)
    if document != current:
        raise ServiceError(
            f"consent version {version} is outdated; the current version is {current.version}",
            field_errors={"version": [f"current version is {current.version}"]},
        )
    if signed_at > timezone.now() + dt.timedelta(minutes=5):
        raise ServiceError("signed_at lies in the future", field_errors={"signed_at": ["must not be in the future"]})
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
    record = ConsentRecord.objects.create(
        participant=participant, document=document, signed_at=signed_at, obtained_by=obtained_by or by
    )
    _audit_participant(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity=("consent_record", record.pk),
        changes=[
            ("consent_version", None, version),
            ("signed_at", None, signed_at),
            ("obtained_by", None, (obtained_by or by).get_username()),
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


def latest_consent(participant: Participant) -> ConsentRecord | None:
    return participant.consents.select_related("document").order_by("-id").first()


@transaction.atomic
def participant_enroll(*, participant: Participant, by) -> Participant:
    participant = Participant.objects.select_for_update().select_related("site", "study").get(pk=participant.pk)
    _require_transition(participant, S.ENROLLED)
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
    return participant


# --- randomization ---------------------------------------------------------------------------------------------------


def _store_slots(allocation_list: AllocationList, slots: list[randomization.Slot]) -> None:
    arms = {arm.code: arm for arm in allocation_list.study.arms.all()}
    AllocationSlot.objects.bulk_create(
        AllocationSlot(
            allocation_list=allocation_list, stratum=s.stratum, sequence=s.sequence, block=s.block, arm=arms[s.arm]
        )
        for s in slots
    )


def _replace_active_list(study: Study, by, **fields) -> AllocationList:
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
    return AllocationList.objects.create(study=study, created_by=by, **fields)


@transaction.atomic
def allocation_list_generate(
    *, study: Study, strata: list[str], block_sizes: list[int], per_stratum: int, seed: str, by
) -> AllocationList:
    arms = list(study.arms.values_list("code", flat=True))
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
def allocation_list_import(*, study: Study, csv_text: str, by) -> AllocationList:
    arms = list(study.arms.values_list("code", flat=True))
    try:
        slots = randomization.parse_csv(csv_text, arms=arms)
    except randomization.AllocationSpecError as exc:
        raise ServiceError(str(exc), field_errors={"file": [str(exc)]}) from exc
    allocation_list = _replace_active_list(study, by, source=AllocationList.Source.IMPORTED)
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
def participant_randomize(*, participant: Participant, by, stratum: str | None = None) -> AllocationSlot:
    """Take the next unused slot of the participant's stratum, in list order.

    The active list's row is locked first: concurrent randomizations in a study queue behind each other, so each
    takes the lowest free sequence and no slot is skipped or shared (SKIP LOCKED would break list order if a
    transaction rolled back)."""
    participant = Participant.objects.select_for_update().select_related("site", "study").get(pk=participant.pk)
    _require_transition(participant, S.RANDOMIZED)
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
    for hook in _after_randomize:
        hook(participant=participant, by=by)
    return slot


# --- withdrawal -------------------------------------------------------------------------------------------------------


@transaction.atomic
def participant_withdraw(*, participant: Participant, level: str, reason: str, date: dt.date, by) -> Participant:
    participant = Participant.objects.select_for_update().select_related("site", "study").get(pk=participant.pk)
    if level not in Participant.WithdrawalLevel.values:
        raise ServiceError(
            "unknown withdrawal level",
            field_errors={"level": [f"one of {', '.join(Participant.WithdrawalLevel.values)}"]},
        )
    if not (reason and reason.strip()):
        raise ServiceError("a withdrawal needs a reason", field_errors={"reason": ["required"]})
    _require_transition(participant, S.WITHDRAWN)
    changes = diff(participant, {"withdrawal_level": level, "withdrawal_reason": reason, "withdrawal_date": date})
    for name, _, new in changes:
        setattr(participant, name, new)
    participant.save()
    _audit_participant(participant, by=by, action=AuditEvent.Action.UPDATE, changes=changes, reason=reason)
    _set_status(participant, S.WITHDRAWN, by=by, reason=reason)
    for hook in _after_withdraw:
        hook(participant=participant, level=level, by=by)
    return participant


# --- staff roles ----------------------------------------------------------------------------------------------------


@transaction.atomic
def membership_grant(*, user, site: Site, role: str, by) -> StaffMembership:
    membership, created = StaffMembership.objects.get_or_create(user=user, site=site, role=role)
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    if created:
        audit_record(
            by=by,
            action=AuditEvent.Action.ROLE_CHANGE,
            entity_type="user",
            entity_id=user.pk,
            site_code=site.code,
            changes=[("role", None, f"{role}@{site.code}")],
        )
    return membership


@transaction.atomic
def membership_revoke(*, user, site: Site, role: str, by, reason: str) -> None:
    deleted, _ = StaffMembership.objects.filter(user=user, site=site, role=role).delete()
    if deleted:
        if not StaffMembership.objects.filter(user=user, role=role).exists():
            user.groups.remove(*Group.objects.filter(name=role))
        audit_record(
            by=by,
            action=AuditEvent.Action.ROLE_CHANGE,
            entity_type="user",
            entity_id=user.pk,
            site_code=site.code,
            changes=[("role", f"{role}@{site.code}", None)],
            reason=reason,
        )


# --- unblinding -------------------------------------------------------------------------------------------------------


@transaction.atomic
def study_unblind(*, study: Study, by, reason: str) -> Study:
    """Unblind a double-blind study (e.g. after database lock): from now on the unblinded statistician's exports carry
    the arm. Only an investigator or administrator at one of the study's sites may do it; it happens once."""
    # Imported here so that this addition leaves the module's import block untouched.
    from participants.access import can_unblind
    from trialsite.errors import PermissionDeniedError

    if not (reason and reason.strip()):
        raise ServiceError("unblinding needs a reason", field_errors={"reason": ["required"]})
    study = Study.objects.select_for_update().get(pk=study.pk)
    site_ids = list(study.sites.values_list("id", flat=True))
    if not can_unblind(by, site_ids):
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
