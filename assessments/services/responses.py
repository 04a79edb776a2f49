"""Responses: staff entry, storing a submitted questionnaire, corrections and rescoring. Raw answers are the record;
scores are derived, stamped with the instrument and scoring versions, and every changed value is audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from assessments.definitions import Instrument, validate_answers, visible_items
from assessments.library import instrument_get
from assessments.models import Administration, Answer, ParticipantLink, Response, Score
from assessments.scoring import SCORING_VERSION, ScoreResult, score
from assessments.selectors import may_correct_response
from assessments.services._actors import account_of
from assessments.services.administrations import administration_add
from assessments.services.safety import safety_alerts_raise
from audit.models import AuditEvent
from audit.services import audit_participant_record
from participants import access
from participants import selectors as participant_selectors
from participants.access import Actor
from participants.models import Participant
from scheduling.models import Visit
from trialsite.errors import Conflict, PermissionDeniedError, ServiceError
from trialsite.followups import reconcile_reminders_on_commit

A = Administration.Status


def _incomplete_error(errors: dict[str, list[str]]) -> ServiceError:
    missing = sorted(code for code, msgs in errors.items() if "required item not answered" in msgs)
    message = "some answers are not valid"
    if missing and len(missing) == len(errors):
        message = "the answers are incomplete; missing: " + ", ".join(missing)
    return ServiceError(message, field_errors=errors, code="incomplete" if missing else "invalid_answers")


def _score_rows(response: Response, result: ScoreResult, now: dt.datetime) -> list[Score]:
    rows = [
        Score(
            response=response,
            kind=Score.Kind.SCALE,
            code=s.code,
            value=s.value,
            complete=s.complete,
            prorated=s.prorated,
            method=s.method,
            band=s.band or "",
            instrument_version=result.instrument_version,
            scoring_version=result.scoring_version,
            computed_at=now,
        )
        for s in result.scales.values()
    ]
    for code, value in result.flags.items():
        rows.append(
            Score(
                response=response,
                kind=Score.Kind.FLAG,
                code=code,
                value=float(value) if isinstance(value, int) else None,
                text_value=value if isinstance(value, str) else "",
                complete=value is not None,
                method="flag",
                instrument_version=result.instrument_version,
                scoring_version=result.scoring_version,
                computed_at=now,
            )
        )
    return rows


def response_store(
    *,
    administration: Administration,
    answers: Mapping[str, Any],
    source: str,
    by: Actor,
    link: ParticipantLink | None = None,
    now: dt.datetime,
    instrument: Instrument | None = None,
    participant: Participant | None = None,
) -> Response:
    """Store a complete administration as a response: raw answers, scores, the administration completed, the safety
    rules applied; audited with every answer. Runs inside the caller's transaction (entry or submit). ``instrument``
    and ``participant`` (with its site), when the caller has read them, spare reading them again.

    The response is returned with its participant, answers and scores in place, as ``selectors.response_get`` reads
    them, so that the caller renders it without reading it back."""
    if instrument is None:
        instrument = instrument_get(administration.instrument_code)
    errors = validate_answers(instrument, answers, require_complete=True)
    if errors:
        raise _incomplete_error(errors)
    result = score(instrument, answers)
    if participant is None or participant.pk != administration.participant_id:
        participant = participant_selectors.participant_with_contact(administration.participant_id)
    try:
        # No savepoint: a second response for the administration (a race the row lock lets through only when the
        # first committed while this one waited) fails the whole entry or submit, which is then answered 409.
        with transaction.atomic(savepoint=False):
            response = Response.objects.create(
                administration=administration,
                participant=participant,
                visit_id=administration.visit_id,
                instrument_code=instrument.code,
                instrument_version=instrument.version,
                source=source,
                link=link,
                entered_by=account_of(by),
                # The wording the participant answered under (pinned on the administration when they began).
                text_pack_id=administration.text_pack_id if link is not None else None,
                submitted_at=now,
            )
    except IntegrityError:
        raise Conflict("this questionnaire was already submitted") from None
    shown = {it.code for it in visible_items(instrument, answers)}
    answer_rows = Answer.objects.bulk_create(
        Answer(response=response, item_code=item.code, value=answers.get(item.code) if item.code in shown else None)
        for item in instrument.items
    )
    score_rows = Score.objects.bulk_create(_score_rows(response, result, now))
    # In the order ``selectors.responses_for`` reads them.
    _prefetched(response, "answers", sorted(answer_rows, key=lambda a: a.pk))
    _prefetched(response, "scores", sorted(score_rows, key=lambda s: (s.kind, s.pk)))
    Administration.objects.filter(pk=administration.pk).update(
        status=A.COMPLETED, draft_answers={}, draft_saved_at=None, updated_at=now
    )
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="response",
        entity_id=response.pk,
        changes=[("instrument", None, f"{instrument.code} v{instrument.version}"), ("source", None, source)]
        + ([("text_pack", None, response.text_pack_id)] if response.text_pack_id is not None else [])
        + [(f"answers.{code}", None, answers.get(code)) for code in instrument.item_codes if code in shown],
    )
    safety_alerts_raise(response=response, instrument=instrument, result=result, participant=participant, now=now)
    reconcile_reminders_on_commit(participant.pk)
    return response


def _prefetched(instance: Model, name: str, rows: list[Any]) -> None:
    """Put ``rows`` in place as the prefetched ``name`` of ``instance`` (as ``prefetch_related`` leaves them)."""
    qs = getattr(instance, name).all()
    qs._result_cache = rows
    qs._prefetch_done = True
    cache = getattr(instance, "_prefetched_objects_cache", None)
    if cache is None:
        cache = instance._prefetched_objects_cache = {}  # type: ignore[attr-defined]
    cache[name] = qs


def _can_enter(user: Actor, participant: Participant, instrument: Instrument) -> bool:
    return access.has_role(user, participant.site_id, instrument.entry_roles)


@transaction.atomic
def response_create_staff(
    *, participant: Participant, visit: Visit, instrument_code: str, answers: Mapping[str, Any], by: Actor
) -> Response:
    """Staff entry of a complete administration (a clinician rating, or a paper questionnaire typed in)."""
    if visit.participant_id != participant.pk:
        raise ServiceError("the visit is not this participant's", field_errors={"visit_id": ["not this participant's"]})
    try:
        instrument = instrument_get(instrument_code)
    except KeyError:
        raise ServiceError(
            "unknown instrument", field_errors={"instrument": [f"no instrument '{instrument_code}'"]}
        ) from None
    if not _can_enter(by, participant, instrument):
        raise PermissionDeniedError(
            f"{instrument.code} may be entered only by: {', '.join(instrument.entry_roles)}",
        )
    if not isinstance(answers, Mapping):
        raise ServiceError("answers must be an object", field_errors={"answers": ["an object of item codes"]})
    # Validate before creating anything, so a refused entry leaves no administration behind.
    errors = validate_answers(instrument, answers, require_complete=True)
    if errors:
        raise _incomplete_error(errors)
    adm = (
        Administration.objects.select_for_update(of=("self",))
        .select_related("response")
        .filter(visit=visit, instrument_code=instrument.code)
        .order_by("pk")
        .first()
    )
    if adm is None:
        adm = administration_add(visit=visit, instrument_code=instrument.code, by=by, reason="entered by staff")
        adm = Administration.objects.select_for_update().get(pk=adm.pk)
    stored = _stored_response(adm)
    if stored is not None:
        raise Conflict(
            "a response is already stored for this instrument at this visit; correct it with PATCH",
            field_errors={"response_id": [str(stored.pk)]},
        )
    return response_store(
        administration=adm,
        answers=answers,
        source=Response.Source.STAFF,
        by=by,
        now=timezone.now(),
        instrument=instrument,
        participant=participant,
    )


def _stored_response(adm: Administration) -> Response | None:
    """The response stored for ``adm`` (read with its response, under its row lock), if any. A response committed
    while this transaction waited for the lock is not in the joined row (only the locked row is read again), but it
    completed the administration in the same transaction: then the response is looked for again."""
    try:
        return adm.response
    except Response.DoesNotExist:
        pass
    if adm.status == A.COMPLETED:
        return Response.objects.filter(administration_id=adm.pk).first()
    return None


def _rescore(
    response: Response,
    instrument: Instrument,
    answers: Mapping[str, Any],
    *,
    by: Actor,
    reason: str,
    now: dt.datetime,
) -> list[tuple[str, Any, Any]]:
    """Replace the response's scores with freshly computed ones; audit every value that changes."""
    result = score(instrument, answers)
    old = {(s.kind, s.code): s for s in response.scores.all()}
    new = {(s.kind, s.code): s for s in _score_rows(response, result, now)}
    changes = []
    for key, row in new.items():
        before = old.get(key)
        before_value = None if before is None else (before.text_value or before.value)
        after_value = row.text_value or row.value
        if before is None or (before_value, before.complete, before.scoring_version) != (
            after_value,
            row.complete,
            row.scoring_version,
        ):
            changes.append((f"scores.{key[1]}", before_value, after_value))
    for key in set(old) - set(new):
        changes.append((f"scores.{key[1]}", old[key].text_value or old[key].value, None))
    if not changes:
        return []
    Score.objects.filter(response=response).delete()
    Score.objects.bulk_create(new.values())
    audit_participant_record(
        response.participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="response_scores",
        entity_id=response.pk,
        changes=changes + [("scoring_version", None, SCORING_VERSION)],
        reason=reason,
    )
    return changes


@transaction.atomic
def response_correct(*, response: Response, answers: Mapping[str, Any], reason: str, by: Actor) -> Response:
    """Correct answers of a stored response. 21 CFR 11.10(e): a correction must not obscure the earlier value, so
    each changed item's old and new values go to the audit trail with the reason; scores are recomputed."""
    if not (reason and reason.strip()):
        raise ServiceError("a correction needs a reason", field_errors={"reason": ["required"]})
    response = Response.objects.select_for_update(of=("self",)).select_related("participant__site").get(pk=response.pk)
    instrument = instrument_get(response.instrument_code, response.instrument_version)
    may_correct = may_correct_response(
        by, site_id=response.participant.site_id, entered_by_id=response.entered_by_id, instrument=instrument
    )
    if instrument.respondent != "clinician" and not may_correct:
        raise PermissionDeniedError(f"{instrument.code} may be corrected only by: {', '.join(instrument.entry_roles)}")
    if not may_correct:
        raise PermissionDeniedError(
            f"{instrument.code} is a clinician rating: it may be corrected only by the clinician who entered it or an "
            "investigator of the site"
        )
    if not isinstance(answers, Mapping) or not answers:
        raise ServiceError("nothing to correct", field_errors={"answers": ["give the corrected items"]})
    current = {k: v for k, v in response.answers_dict().items() if v is not None}
    merged = {k: v for k, v in {**current, **answers}.items() if v is not None}
    errors = validate_answers(instrument, merged, require_complete=True)
    unknown = {k: [f"unknown item code '{k}' for {instrument.code}"] for k in answers if k not in instrument.item_codes}
    errors.update(unknown)
    if errors:
        raise _incomplete_error(errors)
    shown = {it.code for it in visible_items(instrument, merged)}
    now = timezone.now()
    changes = []
    for row in response.answers.all():
        new = merged.get(row.item_code) if row.item_code in shown else None
        if new != row.value:
            changes.append((f"answers.{row.item_code}", row.value, new))
            row.value = new
            row.save(update_fields=["value"])
    if not changes:
        return response
    response.save(update_fields=["updated_at"])
    audit_participant_record(
        response.participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="response",
        entity_id=response.pk,
        changes=changes,
        reason=reason,
    )
    _rescore(response, instrument, merged, by=by, reason=reason, now=now)
    safety_alerts_raise(
        response=response,
        instrument=instrument,
        result=score(instrument, merged),
        participant=response.participant,
        now=now,
    )
    return response


def responses_rescore(*, by: Actor = None, reason: str, instrument_code: str | None = None) -> tuple[int, int]:
    """Recompute every stored score from the raw answers (after a scoring fix), with the definition version each
    response was answered under. Returns (responses looked at, responses whose scores changed)."""
    if not (reason and reason.strip()):
        raise ServiceError("a rescore needs a reason", field_errors={"reason": ["required"]})
    qs = Response.objects.select_related("participant__site").prefetch_related("answers", "scores").order_by("id")
    if instrument_code:
        qs = qs.filter(instrument_code=instrument_code)
    seen = changed = 0
    now = timezone.now()
    for response in qs.iterator(chunk_size=200):
        seen += 1
        instrument = instrument_get(response.instrument_code, response.instrument_version)
        answers = {k: v for k, v in response.answers_dict().items() if v is not None}
        with transaction.atomic():
            if _rescore(response, instrument, answers, by=by, reason=reason, now=now):
                changed += 1
    return seen, changed
