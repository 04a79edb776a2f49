"""Participant links: issuing one, saving answers through it, submitting them, revoking links. The reads of a link
(find, usable, pending) are selectors: opening a link changes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from assessments import links, texts
from assessments.definitions import validate_answers, visible_items
from assessments.library import instrument_get
from assessments.models import Administration, ParticipantLink, Response
from assessments.selectors import (
    INACTIVE_PARTICIPANT,
    administrations_offered,
    link_forget_reads,
    link_pending,
    link_wording,
)
from assessments.services._actors import account_of
from assessments.services.responses import response_store
from assessments.windows import ANSWERABLE, SELF, administration_status, is_open
from audit.models import AuditEvent
from audit.services import audit_participant_record, audit_participant_records, audit_record
from participants import selectors as participant_selectors
from participants.access import Actor, can_manage
from participants.models import Participant
from scheduling.models import Visit
from trialsite.errors import Conflict, InvalidTransition, PermissionDeniedError, ServiceError

A = Administration.Status
# The actor named on the audit rows of a participant's own saves through a link (the link's id is the entity).
LINK_ACTOR = "participant-link"


@transaction.atomic
def link_issue(*, visit: Visit, by: Actor) -> tuple[ParticipantLink, str]:
    """Issue a new link to the visit's self-report questionnaires. Earlier links stay valid (a participant may open an
    older e-mail). Returns the row and the token; the token is never stored and cannot be shown again."""
    participant = participant_selectors.participant_with_contact(visit.participant_id)
    if participant.status in INACTIVE_PARTICIPANT:
        raise InvalidTransition(f"no link for a participant with status '{participant.status}'")
    adms = list(Administration.objects.filter(visit=visit, respondent=SELF))
    if not adms:
        raise ServiceError("this visit has no self-report questionnaires", code="no_self_report")
    now = timezone.now()
    answerable = [a for a in adms if administration_status(a, now) in ANSWERABLE and a.closes_at is not None]
    if not answerable:
        raise InvalidTransition("every self-report questionnaire of this visit is completed, expired or without window")
    # A questionnaire without wording in the participant's language is held: never offered, so never linked to.
    offered = administrations_offered(participant, answerable)
    if not offered:
        held = ", ".join(sorted({a.instrument_code for a in answerable}))
        raise ServiceError(
            f"validated text missing: no text pack for {held} in the participant's language "
            f"({texts.language_of(participant)}); no link is issued until one is loaded",
            code=texts.HOLD_REASON,
        )
    closes = [a.closes_at for a in offered if a.closes_at is not None]
    expires_at = max(closes)
    token = links.new_token()
    link = ParticipantLink.objects.create(
        token_hash=links.token_hash(token),
        participant=participant,
        visit=visit,
        created_by=account_of(by),
        expires_at=expires_at,
    )
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="participant_link",
        entity_id=link.pk,
        changes=[("visit", None, visit.code), ("expires_at", None, expires_at)],
    )
    return link, token


@transaction.atomic
def link_issue_in_clinic(*, visit: Visit, by: Actor) -> tuple[ParticipantLink, str]:
    """A link for the participant to open now, in the clinic (shown to them as a QR code): issued by a member of staff
    who manages the participant's site, only while a self-report questionnaire of the visit can be answered now (an
    unopened window would give a link that shows nothing yet). Otherwise as ``link_issue``."""
    participant = participant_selectors.participant_with_contact(visit.participant_id)
    if not can_manage(by, participant.site_id):
        raise PermissionDeniedError("your role at this site cannot issue participant links")
    now = timezone.now()
    adms = Administration.objects.filter(visit=visit, respondent=SELF)
    open_now = [a for a in adms if is_open(a, now)]
    if (
        participant.status not in INACTIVE_PARTICIPANT
        and open_now
        and not administrations_offered(participant, open_now)
    ):
        held = ", ".join(sorted({a.instrument_code for a in open_now}))
        raise ServiceError(
            f"validated text missing: no text pack for {held} in the participant's language "
            f"({texts.language_of(participant)}); no link is issued until one is loaded",
            code=texts.HOLD_REASON,
        )
    if participant.status not in INACTIVE_PARTICIPANT and not open_now:
        raise ServiceError(
            f"visit {visit.code} has no self-report questionnaire that can be answered now", code="no_self_report"
        )
    return link_issue(visit=visit, by=by)


@transaction.atomic
def link_save_answers(
    *, link: ParticipantLink, answers_by_instrument: Mapping[str, Any], prune_hidden: bool = False
) -> list[Administration]:
    """Save partial answers (merged into what was saved before). Never scored. Invalid answers are refused per item
    and nothing of that request is saved; earlier saved answers are kept.

    A saved answer that a new branching answer hides is dropped. An answer to a hidden item in the request itself is
    refused, unless ``prune_hidden`` (the HTML form, which without JavaScript posts every field) drops it instead.

    Audited as one event per save (one row, whatever the number of answers: the page saves as each answer is chosen,
    so a save stays cheap), actor ``participant-link``, naming the link's id (never its token) and each answer that
    changed, old and new. The submitted answers are audited again as the response (``link_submit``)."""
    now = timezone.now()
    pending = {a.instrument_code: a for a in link_pending(link, now)}
    wording = link_wording(link)
    errors: dict[str, list[str]] = {}
    updates: list[tuple[Administration, dict[str, Any]]] = []
    asked = [pending[code] for code, answers in answers_by_instrument.items() if code in pending]
    # Merge under the row locks (one query for the questionnaires of this save): the page saves each answer as it is
    # chosen, so saves of one questionnaire arrive concurrently, and merging into a draft read before the lock would
    # drop an answer saved in between.
    locked = (
        {
            a.pk: a
            for a in Administration.objects.select_for_update(of=("self",))
            .select_related("response")
            .filter(pk__in=[a.pk for a in asked])
            .order_by("pk")
        }
        if asked
        else {}
    )
    for code, answers in answers_by_instrument.items():
        pending_adm = pending.get(code)
        if pending_adm is None:
            errors[code] = ["not open for answers on this link"]
            continue
        if not isinstance(answers, Mapping):
            errors[code] = ["answers must be an object of item codes"]
            continue
        instrument = wording.library.instrument(pending_adm.instrument_code)
        adm = locked[pending_adm.pk]
        if _submitted(adm):
            raise Conflict("this questionnaire was already submitted")
        if adm.text_pack_id is None:
            # Pin the wording the participant began under (see assessments.texts): later packs serve new ones.
            pack = wording.pack_for(adm, texts.language_of(link.participant))
            adm.text_pack_id = pack.pk if pack is not None else None
        merged = {**adm.draft_answers, **answers}
        merged = {k: v for k, v in merged.items() if v is not None}
        # Drop answers that a changed branching answer now hides, so a draft never carries a hidden item.
        shown = {it.code for it in visible_items(instrument, merged)}
        merged = {
            k: v
            for k, v in merged.items()
            if k in shown or k not in instrument.item_codes or (k in answers and not prune_hidden)
        }
        problems = validate_answers(instrument, merged, require_complete=False)
        if problems:
            errors.update(problems)
            continue
        updates.append((adm, merged))
    if errors:
        raise ServiceError("some answers are not valid", field_errors=errors, code="invalid_answers")
    saved = []
    before: dict[str, dict[str, Any]] = {}
    after: dict[str, dict[str, Any]] = {}
    for adm, merged in updates:
        for item in sorted(set(adm.draft_answers) | set(merged)):
            if adm.draft_answers.get(item) != merged.get(item):
                before.setdefault(adm.instrument_code, {})[item] = adm.draft_answers.get(item)
                after.setdefault(adm.instrument_code, {})[item] = merged.get(item)
        adm.draft_answers = merged
        adm.draft_saved_at = now
        adm.status = A.IN_PROGRESS if merged else A.DUE
        saved.append(adm)
    if saved:
        # One UPDATE for every questionnaire of the save.
        written = timezone.now()
        for adm in saved:
            adm.updated_at = written
        Administration.objects.bulk_update(
            saved, ["draft_answers", "draft_saved_at", "status", "text_pack", "updated_at"]
        )
    if after:
        participant = link.participant
        audit_record(
            by=None,
            actor_username=LINK_ACTOR,
            action=AuditEvent.Action.UPDATE,
            entity_type="draft_answers",
            entity_id=link.pk,
            participant_id=participant.participant_id,
            site_code=participant.site.code,
            changes=[("draft_answers", before, after)],
        )
    ParticipantLink.objects.filter(pk=link.pk).update(last_used_at=now)
    link_forget_reads(link)
    return saved


def _submitted(adm: Administration) -> bool:
    """Has a response been stored for ``adm`` (read with its response, under its row lock)? A response committed while
    this transaction waited for the lock is not in the joined row (only the locked row is read again), but it
    completed the administration in the same transaction: then the response is looked for again."""
    if hasattr(adm, "response"):
        return True
    if adm.status == A.COMPLETED:
        return Response.objects.filter(administration_id=adm.pk).exists()
    return False


def link_submit(*, link: ParticipantLink) -> list[Response]:
    """Submit every open questionnaire of the link from its saved answers. All or nothing: if any required item is
    missing, nothing is submitted and the error lists each item (the saved answers stay).

    Idempotent: the administrations are locked (SELECT ... FOR UPDATE) and a response is unique per administration,
    so a double submit (two tabs, a retry) stores one response and the second call returns the same responses."""
    now = timezone.now()
    with transaction.atomic():
        adms = list(
            Administration.objects.select_for_update()
            .filter(visit_id=link.visit_id, respondent=SELF)
            .order_by("order", "id")
        )
        done = list(Response.objects.filter(administration__in=adms).order_by("id"))
        done_ids = {r.administration_id for r in done}
        todo = [a for a in administrations_offered(link.participant, adms) if a.pk not in done_ids and is_open(a, now)]
        if not todo:
            if done:
                return done
            raise InvalidTransition("nothing to submit on this link")
        errors: dict[str, list[str]] = {}
        for adm in todo:
            errors.update(
                validate_answers(instrument_get(adm.instrument_code), adm.draft_answers, require_complete=True)
            )
        if errors:
            raise ServiceError("some required questions are not answered yet", field_errors=errors, code="incomplete")
        created = [
            response_store(
                administration=adm,
                answers=adm.draft_answers,
                source=Response.Source.PARTICIPANT_LINK,
                by=None,
                link=link,
                now=now,
            )
            for adm in todo
        ]
        ParticipantLink.objects.filter(pk=link.pk).update(last_used_at=now)
    link_forget_reads(link)
    return sorted(done + created, key=lambda r: r.pk)


@transaction.atomic
def links_revoke_for_participant(*, participant: Participant, by: Actor, reason: str) -> int:
    now = timezone.now()
    ids = list(
        ParticipantLink.objects.filter(participant=participant, revoked_at__isnull=True).values_list("id", flat=True)
    )
    if not ids:
        return 0
    ParticipantLink.objects.filter(id__in=ids).update(revoked_at=now, revoked_reason=reason[:200])
    audit_participant_records(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="participant_link",
        entries=[(link_id, [("revoked_at", None, now)]) for link_id in ids],
        reason=reason,
    )
    return len(ids)
