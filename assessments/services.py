"""Every write to assessments: validated, atomic, audited in the same transaction; Celery work only on commit.

Administrations are derived from visits: ``administrations_sync_for_participant`` recomputes them from the current
visits (created, windows moved, cancelled) whenever they are read, so scheduling never has to call assessments.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from assessments import links
from assessments.definitions import (
    Instrument,
    InstrumentError,
    load_instrument_file,
    load_shipped_instruments,
    parse_instrument,
    validate_answers,
    visible_items,
)
from assessments.models import (
    Administration,
    Answer,
    InstrumentVersion,
    ParticipantLink,
    Response,
    SafetyAlert,
    Score,
)
from assessments.scoring import SCORING_VERSION, ScoreResult, score
from audit.models import AuditEvent
from audit.services import audit_participant_record, audit_record
from participants.access import can_acknowledge_alert, roles_at
from participants.models import Participant
from scheduling.models import Visit
from trialsite.errors import Conflict, InvalidTransition, PermissionDeniedError, ServiceError
from trialsite.followups import reconcile_reminders_on_commit
from trialsite.roles import Role

A = Administration.Status
SELF = Administration.Respondent.SELF
DONE = {A.COMPLETED, A.NOT_APPLICABLE}
INACTIVE_PARTICIPANT = {Participant.Status.WITHDRAWN, Participant.Status.SCREEN_FAILED}
# The last instant of a local day: a window that ends on a date stays open through that whole date.
END_OF_DAY = dt.time(23, 59, 59, 999999)


def _audit(*, by, action: str, entity_type: str, entity_id, participant: Participant, changes, reason=None) -> None:
    audit_participant_record(
        participant, by=by, action=action, entity_type=entity_type, entity_id=entity_id, changes=changes, reason=reason
    )


# --- instrument library -------------------------------------------------------------------------------------------


@cache
def shipped_instruments() -> dict[str, Instrument]:
    return load_shipped_instruments()


_parsed_versions: dict[tuple[int, str, str], Instrument] = {}


def _parse_row(row: InstrumentVersion) -> Instrument:
    # Rows are immutable, so the parsed form is cached per row (the key includes code and version so that a pk reused
    # after a rolled-back test transaction cannot serve another definition).
    key = (row.pk, row.code, row.version)
    if key not in _parsed_versions:
        _parsed_versions[key] = parse_instrument(row.definition)
    return _parsed_versions[key]


def instrument_get(code: str, version: str | None = None) -> Instrument:
    """The definition to use for ``code``: the latest loaded version (or exactly ``version``), else the shipped file.
    Raises KeyError when no such instrument exists."""
    rows = InstrumentVersion.objects.filter(code=code)
    if version is not None:
        rows = rows.filter(version=version)
    row = rows.order_by("-loaded_at", "-id").first()
    if row is not None:
        return _parse_row(row)
    shipped = shipped_instruments().get(code)
    if shipped is not None and (version is None or shipped.version == version):
        return shipped
    raise KeyError(code if version is None else f"{code} v{version}")


def instrument_codes() -> list[str]:
    return sorted(set(shipped_instruments()) | set(InstrumentVersion.objects.values_list("code", flat=True)))


def instruments_all() -> list[Instrument]:
    return [instrument_get(code) for code in instrument_codes()]


def _contract_errors(new: Instrument, reference: Instrument) -> list[str]:
    """Codes are a contract with exports: a site-supplied definition may change wording, never codes or values."""
    errors = []
    if new.item_codes != reference.item_codes:
        errors.append(
            f"items: item codes must be exactly those of {reference.code} ({', '.join(reference.item_codes)})"
        )
    else:
        for i, (a, b) in enumerate(zip(new.items, reference.items, strict=True)):
            if a.values != b.values:
                errors.append(f"items[{i}].options: values must stay {list(b.values)}")
    if [s.code for s in new.scales] != [s.code for s in reference.scales]:
        errors.append("scales: scale codes must stay " + ", ".join(s.code for s in reference.scales))
    if new.respondent != reference.respondent:
        errors.append(f"respondent: must stay '{reference.respondent}'")
    return errors


@transaction.atomic
def instrument_version_load(*, path: str | Path, by=None) -> InstrumentVersion:
    """Validate an instrument file and store it as a new version. Raises InstrumentError (with JSON paths, nothing
    stored) when the file is invalid, changes the shipped codes, or reuses a loaded version with other content."""
    path = Path(path)
    instrument = load_instrument_file(path)
    errors: list[str] = []
    shipped = shipped_instruments().get(instrument.code)
    if shipped is not None:
        errors += _contract_errors(instrument, shipped)
    existing = InstrumentVersion.objects.filter(code=instrument.code, version=instrument.version).first()
    if existing is not None:
        if existing.definition == json.loads(json.dumps(instrument.raw)):
            return existing
        errors.append(f"version: {instrument.code} version {instrument.version} is already loaded; bump 'version'")
    if errors:
        raise InstrumentError([f"{path.name}: {e}" for e in errors])
    row = InstrumentVersion.objects.create(
        code=instrument.code,
        version=instrument.version,
        definition=json.loads(json.dumps(instrument.raw)),
        source=path.name,
        loaded_by=by if getattr(by, "pk", None) else None,
    )
    audit_record(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="instrument_version",
        entity_id=row.pk,
        changes=[("code", None, row.code), ("version", None, row.version), ("source", None, row.source)],
    )
    return row


def text_for(item, language: str) -> str:
    return item.texts.get(language) or item.text


def option_label(option, language: str) -> str:
    return option.labels.get(language) or option.label


# --- administrations ----------------------------------------------------------------------------------------------


def window_bounds(visit: Visit, tz_name: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The visit window as instants: 00:00 on window_start to 23:59:59.999999 on window_end, local to the participant
    (a participant in New York and one in Portland both get their whole last day)."""
    if visit.window_start is None or visit.window_end is None:
        return None, None
    tz = zoneinfo.ZoneInfo(tz_name)
    opens = dt.datetime.combine(visit.window_start, dt.time.min, tzinfo=tz)
    closes = dt.datetime.combine(visit.window_end, END_OF_DAY, tzinfo=tz)
    return opens, closes


def _status(adm: Administration, *, visit: Visit, participant: Participant, completed: bool, now) -> str:
    if completed:
        return A.COMPLETED
    if visit.status == Visit.Status.CANCELLED or participant.status in INACTIVE_PARTICIPANT:
        return A.NOT_APPLICABLE
    # Only self-report administrations close with the window; staff may enter a clinician rating late (a deviation is
    # recorded by scheduling, not here).
    if adm.respondent == SELF and adm.closes_at is not None and now > adm.closes_at:
        return A.EXPIRED
    if adm.draft_answers:
        return A.IN_PROGRESS
    return A.DUE


def administrations_sync_for_participant(participant: Participant, *, now: dt.datetime | None = None) -> None:
    """Bring the participant's administrations in line with their visits: one per protocol instrument of each visit,
    windows following the visit, statuses following the clock. Idempotent; safe to call on every read."""
    now = now or timezone.now()
    participant = Participant.objects.select_related("site", "contact").get(pk=participant.pk)
    tz_name = participant.time_zone
    visits = list(Visit.objects.filter(participant=participant))
    existing = {
        (a.visit_id, a.instrument_code): a
        for a in Administration.objects.filter(participant=participant).select_related("response")
    }
    with transaction.atomic():
        created = []
        for visit in visits:
            opens, closes = window_bounds(visit, tz_name)
            for order, due in enumerate(visit.instruments or []):
                key = (visit.pk, due["code"])
                if key not in existing:
                    adm = Administration(
                        participant=participant,
                        visit=visit,
                        instrument_code=due["code"],
                        respondent=due.get("respondent", SELF),
                        order=order,
                        opens_at=opens,
                        closes_at=closes,
                    )
                    adm.status = _status(adm, visit=visit, participant=participant, completed=False, now=now)
                    created.append(adm)
            for adm in existing.values():
                if adm.visit_id != visit.pk:
                    continue
                wanted_open = opens
                if adm.opened_early_at is not None and (wanted_open is None or adm.opened_early_at < wanted_open):
                    wanted_open = adm.opened_early_at
                completed = hasattr(adm, "response")
                status = _status(adm, visit=visit, participant=participant, completed=completed, now=now)
                if (adm.opens_at, adm.closes_at, adm.status) != (wanted_open, closes or adm.closes_at, status):
                    adm.opens_at, adm.closes_at, adm.status = wanted_open, closes or adm.closes_at, status
                    adm.save(update_fields=["opens_at", "closes_at", "status", "updated_at"])
        if created:
            Administration.objects.bulk_create(created, ignore_conflicts=True)
            # One event per sync that created rows: the rows follow from the visit plan, which scheduling audits.
            _audit(
                by=None,
                action=AuditEvent.Action.CREATE,
                entity_type="administrations",
                entity_id=participant.pk,
                participant=participant,
                changes=[("administrations", None, [f"{visit_code(a, visits)}:{a.instrument_code}" for a in created])],
            )


def visit_code(adm: Administration, visits: Iterable[Visit]) -> str:
    return next((v.code for v in visits if v.pk == adm.visit_id), str(adm.visit_id))


@transaction.atomic
def administration_add(*, visit: Visit, instrument_code: str, by, reason: str | None = None) -> Administration:
    """Add an instrument to one visit beyond the protocol's list (e.g. an extra questionnaire the investigator wants)."""
    try:
        instrument = instrument_get(instrument_code)
    except KeyError:
        raise ServiceError(
            "unknown instrument", field_errors={"instrument": [f"no instrument '{instrument_code}'"]}
        ) from None
    participant = Participant.objects.select_related("site", "contact").get(pk=visit.participant_id)
    opens, closes = window_bounds(visit, participant.time_zone)
    order = Administration.objects.filter(visit=visit).count() + len(visit.instruments or [])
    try:
        with transaction.atomic():
            adm = Administration.objects.create(
                participant=participant,
                visit=visit,
                instrument_code=instrument.code,
                respondent=instrument.respondent,
                order=order,
                from_protocol=False,
                opens_at=opens,
                closes_at=closes,
            )
    except IntegrityError:
        raise Conflict("the instrument is already due at this visit") from None
    _audit(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="administration",
        entity_id=adm.pk,
        participant=participant,
        changes=[("instrument_code", None, adm.instrument_code), ("visit", None, visit.code)],
        reason=reason,
    )
    return adm


@transaction.atomic
def administration_open_early(*, administration: Administration, by, reason: str | None = None) -> Administration:
    """A coordinator opens a self-report questionnaire before its window starts (it still closes with the window)."""
    adm = Administration.objects.select_for_update().select_related("participant__site").get(pk=administration.pk)
    now = timezone.now()
    if adm.status in DONE or adm.status == A.EXPIRED:
        raise InvalidTransition(f"cannot open an administration that is {adm.status}")
    if adm.opens_at is not None and adm.opens_at <= now:
        return adm
    old = adm.opens_at
    adm.opens_at = adm.opened_early_at = now
    adm.save(update_fields=["opens_at", "opened_early_at", "updated_at"])
    _audit(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="administration",
        entity_id=adm.pk,
        participant=adm.participant,
        changes=[("opens_at", old, now)],
        reason=reason,
    )
    reconcile_reminders_on_commit(adm.participant_id)
    return adm


def is_open(adm: Administration, now: dt.datetime) -> bool:
    return (
        adm.status not in DONE
        and adm.status != A.EXPIRED
        and adm.opens_at is not None
        and adm.opens_at <= now
        and (adm.closes_at is None or now <= adm.closes_at)
    )


# --- participant links --------------------------------------------------------------------------------------------


@transaction.atomic
def link_issue(*, visit: Visit, by) -> tuple[ParticipantLink, str]:
    """A new link to the visit's self-report questionnaires. Earlier links stay valid (a participant may open an
    older e-mail). Returns the row and the token; the token is never stored and cannot be shown again."""
    participant = Participant.objects.select_related("site", "contact").get(pk=visit.participant_id)
    if participant.status in INACTIVE_PARTICIPANT:
        raise InvalidTransition(f"no link for a participant with status '{participant.status}'")
    administrations_sync_for_participant(participant)
    adms = list(Administration.objects.filter(visit=visit, respondent=SELF))
    if not adms:
        raise ServiceError("this visit has no self-report questionnaires", code="no_self_report")
    pending = [a for a in adms if a.status not in DONE and a.status != A.EXPIRED and a.closes_at is not None]
    if not pending:
        raise InvalidTransition("every self-report questionnaire of this visit is completed, expired or without window")
    expires_at = max(a.closes_at for a in pending)
    token = links.new_token()
    link = ParticipantLink.objects.create(
        token_hash=links.token_hash(token),
        participant=participant,
        visit=visit,
        created_by=by if getattr(by, "pk", None) else None,
        expires_at=expires_at,
    )
    _audit(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="participant_link",
        entity_id=link.pk,
        participant=participant,
        changes=[("visit", None, visit.code), ("expires_at", None, expires_at)],
    )
    return link, token


def link_pending(link: ParticipantLink, now: dt.datetime) -> list[Administration]:
    """The link's self-report administrations that can still be answered now, in visit order."""
    adms = Administration.objects.filter(visit_id=link.visit_id, respondent=SELF).order_by("order", "id")
    return [a for a in adms if is_open(a, now)]


def link_find(token: str, *, now: dt.datetime | None = None) -> ParticipantLink | None:
    """The usable link for ``token``, or None. A pure read (a GET must never consume anything): unknown, revoked,
    expired and fully submitted links all give None, so callers cannot tell them apart."""
    if not token or len(token) > 200:
        return None
    link = (
        ParticipantLink.objects.select_related("participant__site", "participant__contact", "visit")
        .filter(token_hash=links.token_hash(token))
        .first()
    )
    return link if link is not None and link_usable(link, now=now) else None


def link_usable(link: ParticipantLink, *, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    if link.revoked_at is not None or link.participant.status in INACTIVE_PARTICIPANT:
        return False
    administrations_sync_for_participant(link.participant, now=now)
    adms = list(Administration.objects.filter(visit_id=link.visit_id, respondent=SELF))
    live = [a for a in adms if a.status not in DONE and a.status != A.EXPIRED]
    if not live:
        return False
    closes = max(a.closes_at for a in live if a.closes_at is not None)
    return now <= closes


def link_responses(link: ParticipantLink) -> list[Response]:
    return list(Response.objects.filter(visit_id=link.visit_id, administration__respondent=SELF).order_by("id"))


def _clean_partial(instrument: Instrument, answers: Mapping[str, Any]) -> dict[str, list[str]]:
    return validate_answers(instrument, answers, require_complete=False)


@transaction.atomic
def link_save_answers(
    *, link: ParticipantLink, answers_by_instrument: Mapping[str, Mapping[str, Any]], prune_hidden: bool = False
) -> list[Administration]:
    """Save partial answers (merged into what was saved before). Never scored. Invalid answers are refused per item
    and nothing of that request is saved; earlier saved answers are kept.

    A saved answer that a new branching answer hides is dropped. An answer to a hidden item in the request itself is
    refused, unless ``prune_hidden`` (the HTML form, which without JavaScript posts every field) drops it instead."""
    now = timezone.now()
    pending = {a.instrument_code: a for a in link_pending(link, now)}
    errors: dict[str, list[str]] = {}
    updates = []
    for code, answers in answers_by_instrument.items():
        adm = pending.get(code)
        if adm is None:
            errors[code] = ["not open for answers on this link"]
            continue
        if not isinstance(answers, Mapping):
            errors[code] = ["answers must be an object of item codes"]
            continue
        instrument = instrument_get(adm.instrument_code)
        # Merge under the row lock: the page saves each answer as it is chosen, so saves of one questionnaire arrive
        # concurrently, and merging into a draft read before the lock would drop an answer saved in between.
        adm = Administration.objects.select_for_update().get(pk=adm.pk)
        if hasattr(adm, "response"):
            raise Conflict("this questionnaire was already submitted")
        merged = {**adm.draft_answers, **answers}
        merged = {k: v for k, v in merged.items() if v is not None}
        # Drop answers that a changed branching answer now hides, so a draft never carries a hidden item.
        shown = {it.code for it in visible_items(instrument, merged)}
        merged = {
            k: v
            for k, v in merged.items()
            if k in shown or k not in instrument.item_codes or (k in answers and not prune_hidden)
        }
        problems = _clean_partial(instrument, merged)
        if problems:
            errors.update(problems)
            continue
        updates.append((adm, merged))
    if errors:
        raise ServiceError("some answers are not valid", field_errors=errors, code="invalid_answers")
    saved = []
    for adm, merged in updates:
        adm.draft_answers = merged
        adm.draft_saved_at = now
        adm.status = A.IN_PROGRESS if merged else A.DUE
        adm.save(update_fields=["draft_answers", "draft_saved_at", "status", "updated_at"])
        saved.append(adm)
    ParticipantLink.objects.filter(pk=link.pk).update(last_used_at=now)
    return saved


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
        todo = [a for a in adms if a.pk not in done_ids and is_open(a, now)]
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
            _store_response(
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
    return sorted(done + created, key=lambda r: r.pk)


@transaction.atomic
def links_revoke_for_participant(*, participant: Participant, by, reason: str) -> int:
    now = timezone.now()
    ids = list(
        ParticipantLink.objects.filter(participant=participant, revoked_at__isnull=True).values_list("id", flat=True)
    )
    if not ids:
        return 0
    ParticipantLink.objects.filter(id__in=ids).update(revoked_at=now, revoked_reason=reason[:200])
    for link_id in ids:
        _audit(
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity_type="participant_link",
            entity_id=link_id,
            participant=participant,
            changes=[("revoked_at", None, now)],
            reason=reason,
        )
    return len(ids)


def _on_withdrawn(*, participant: Participant, level: str, by, **kwargs) -> None:
    # Runs inside participant_withdraw's transaction: a withdrawal and the revocation of its links commit together.
    links_revoke_for_participant(participant=participant, by=by, reason=f"participant withdrawn ({level})")
    Administration.objects.filter(participant=participant).exclude(status__in=DONE).update(
        status=A.NOT_APPLICABLE, updated_at=timezone.now()
    )


# --- responses and scores -----------------------------------------------------------------------------------------


def _incomplete_error(errors: dict[str, list[str]]) -> ServiceError:
    missing = sorted(code for code, msgs in errors.items() if "required item not answered" in msgs)
    message = "some answers are not valid"
    if missing and len(missing) == len(errors):
        message = "the answers are incomplete; missing: " + ", ".join(missing)
    return ServiceError(message, field_errors=errors, code="incomplete" if missing else "invalid_answers")


def _score_rows(response: Response, result: ScoreResult, now) -> list[Score]:
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


def _store_response(
    *, administration: Administration, answers: Mapping[str, Any], source: str, by, link=None, now
) -> Response:
    instrument = instrument_get(administration.instrument_code)
    errors = validate_answers(instrument, answers, require_complete=True)
    if errors:
        raise _incomplete_error(errors)
    result = score(instrument, answers)
    participant = Participant.objects.select_related("site").get(pk=administration.participant_id)
    try:
        with transaction.atomic():
            response = Response.objects.create(
                administration=administration,
                participant=participant,
                visit_id=administration.visit_id,
                instrument_code=instrument.code,
                instrument_version=instrument.version,
                source=source,
                link=link,
                entered_by=by if getattr(by, "pk", None) else None,
                submitted_at=now,
            )
    except IntegrityError:
        raise Conflict("this questionnaire was already submitted") from None
    shown = {it.code for it in visible_items(instrument, answers)}
    Answer.objects.bulk_create(
        Answer(response=response, item_code=item.code, value=answers.get(item.code) if item.code in shown else None)
        for item in instrument.items
    )
    Score.objects.bulk_create(_score_rows(response, result, now))
    Administration.objects.filter(pk=administration.pk).update(
        status=A.COMPLETED, draft_answers={}, draft_saved_at=None, updated_at=now
    )
    _audit(
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="response",
        entity_id=response.pk,
        participant=participant,
        changes=[("instrument", None, f"{instrument.code} v{instrument.version}"), ("source", None, source)]
        + [(f"answers.{code}", None, answers.get(code)) for code in instrument.item_codes if code in shown],
    )
    _evaluate_safety(response=response, instrument=instrument, result=result, participant=participant, now=now)
    reconcile_reminders_on_commit(participant.pk)
    return response


def _can_enter(user, participant: Participant, instrument: Instrument) -> bool:
    return bool(roles_at(user, participant.site_id) & set(instrument.entry_roles))


@transaction.atomic
def response_create_staff(
    *, participant: Participant, visit: Visit, instrument_code: str, answers: Mapping[str, Any], by
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
    administrations_sync_for_participant(participant)
    adm = Administration.objects.select_for_update().filter(visit=visit, instrument_code=instrument.code).first()
    if adm is None:
        adm = administration_add(visit=visit, instrument_code=instrument.code, by=by, reason="entered by staff")
        adm = Administration.objects.select_for_update().get(pk=adm.pk)
    if hasattr(adm, "response"):
        raise Conflict(
            "a response is already stored for this instrument at this visit; correct it with PATCH",
            field_errors={"response_id": [str(adm.response.pk)]},
        )
    return _store_response(administration=adm, answers=answers, source=Response.Source.STAFF, by=by, now=timezone.now())


def _rescore(response: Response, instrument: Instrument, answers: Mapping[str, Any], *, by, reason, now) -> list:
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
    participant = response.participant
    _audit(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="response_scores",
        entity_id=response.pk,
        participant=participant,
        changes=changes + [("scoring_version", None, SCORING_VERSION)],
        reason=reason,
    )
    return changes


@transaction.atomic
def response_correct(*, response: Response, answers: Mapping[str, Any], reason: str, by) -> Response:
    """Correct answers of a stored response. 21 CFR 11.10(e): a correction must not obscure the earlier value, so
    each changed item's old and new values go to the audit trail with the reason; scores are recomputed."""
    if not (reason and reason.strip()):
        raise ServiceError("a correction needs a reason", field_errors={"reason": ["required"]})
    response = Response.objects.select_for_update().select_related("participant__site").get(pk=response.pk)
    instrument = instrument_get(response.instrument_code, response.instrument_version)
    if not _can_enter(by, response.participant, instrument):
        raise PermissionDeniedError(f"{instrument.code} may be corrected only by: {', '.join(instrument.entry_roles)}")
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
    _audit(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="response",
        entity_id=response.pk,
        participant=response.participant,
        changes=changes,
        reason=reason,
    )
    _rescore(response, instrument, merged, by=by, reason=reason, now=now)
    _evaluate_safety(
        response=response,
        instrument=instrument,
        result=score(instrument, merged),
        participant=response.participant,
        now=now,
    )
    return response


def responses_rescore(*, by=None, reason: str, instrument_code: str | None = None) -> tuple[int, int]:
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


def scores_dict(response: Response) -> dict[str, float | None]:
    return {s.code: s.value for s in response.scores.all() if s.kind == Score.Kind.SCALE}


def flags_dict(response: Response) -> dict[str, Any]:
    return {s.code: (s.text_value or s.value) for s in response.scores.all() if s.kind == Score.Kind.FLAG}


# --- safety -------------------------------------------------------------------------------------------------------


def _baseline_value(response: Response, scale: str) -> float | None:
    """The participant's baseline for an instrument's scale: the BASELINE visit's response if there is one, else the
    first completed response before this one."""
    earlier = Response.objects.filter(
        participant_id=response.participant_id, instrument_code=response.instrument_code
    ).exclude(pk=response.pk)
    baseline = earlier.filter(visit__kind="baseline").order_by("submitted_at", "id").first()
    if baseline is None:
        baseline = earlier.filter(submitted_at__lte=response.submitted_at).order_by("submitted_at", "id").first()
    if baseline is None:
        return None
    row = Score.objects.filter(response=baseline, kind=Score.Kind.SCALE, code=scale).first()
    return None if row is None else row.value


def _evaluate_safety(
    *, response: Response, instrument: Instrument, result: ScoreResult, participant: Participant, now
) -> list[SafetyAlert]:
    alerts = []
    for rule in instrument.safety_rules:
        message = details = None
        if rule["type"] == "flag_equals":
            if result.flags.get(rule["flag"]) == rule["equals"]:
                message = f"{instrument.code} {rule['flag']} = {rule['equals']}"
                details = {"flag": rule["flag"], "value": rule["equals"]}
        elif rule["type"] == "rise_from_baseline":
            current = result.scales[rule["scale"]].value
            baseline = _baseline_value(response, rule["scale"])
            if current is not None and baseline is not None and current - baseline >= rule["gte"]:
                message = f"{instrument.code} {rule['scale']} rose {current - baseline:g} from baseline {baseline:g}"
                details = {"scale": rule["scale"], "baseline": baseline, "current": current, "gte": rule["gte"]}
        if message is None:
            continue
        alert, created = SafetyAlert.objects.get_or_create(
            response=response,
            rule_code=rule["code"],
            defaults={
                "participant": participant,
                "severity": rule["severity"],
                "message": message[:300],
                "details": details,
                "created_at": now,
            },
        )
        if not created:
            continue
        _audit(
            by=None,
            action=AuditEvent.Action.CREATE,
            entity_type="safety_alert",
            entity_id=alert.pk,
            participant=participant,
            changes=[("rule_code", None, alert.rule_code), ("severity", None, alert.severity)],
        )
        if alert.severity == SafetyAlert.Severity.HIGH:
            _enqueue_notify(alert.pk)
        alerts.append(alert)
    return alerts


def _enqueue_notify(alert_id: int) -> None:
    from assessments.tasks import safety_alert_notify

    # After commit only: a worker must never look for an alert that a rollback removed, and the alert row is what
    # the escalation beat falls back on if the broker is down when this runs.
    transaction.on_commit(lambda: safety_alert_notify.apply_async(args=[alert_id], queue="safety", priority=9))


def _site_recipients(participant: Participant, roles: Iterable[str]) -> list[str]:
    from participants.models import StaffMembership

    emails = (
        StaffMembership.objects.filter(site_id=participant.site_id, role__in=list(roles), user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
        .distinct()
    )
    return sorted(set(emails))


def _send_alert_mail(alert: SafetyAlert, recipients: list[str], *, escalation: bool) -> int:
    from django.core.mail import send_mail

    participant = alert.participant
    head = "ESCALATED safety alert" if escalation else "Safety alert"
    # Pseudonymous id only: e-mail leaves our systems, so no name, contact detail or answer text goes in it.
    subject = f"[trialsite] {head} ({alert.severity}) for participant {participant.participant_id}"
    body = (
        f"{head}: {alert.message}\n"
        f"Participant: {participant.participant_id} at site {participant.site.code}\n"
        f"Raised at: {alert.created_at.isoformat()}\n\n"
        f"Review and acknowledge it: {settings.SITE_URL}/api/v1/safety-alerts/{alert.pk}/\n"
    )
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)


def safety_alert_notify(*, alert_id: int) -> bool:
    """E-mail the site's investigators about a new alert, once. The row is claimed with a conditional UPDATE before
    sending (two deliveries of the task cannot both send) and released if sending fails, so a retry sends."""
    now = timezone.now()
    if not SafetyAlert.objects.filter(pk=alert_id, notified_at__isnull=True).update(notified_at=now):
        return False
    alert = SafetyAlert.objects.select_related("participant__site").get(pk=alert_id)
    recipients = _site_recipients(alert.participant, [Role.INVESTIGATOR])
    try:
        if recipients:
            _send_alert_mail(alert, recipients, escalation=False)
    except Exception:
        SafetyAlert.objects.filter(pk=alert_id, notified_at=now).update(notified_at=None)
        raise
    return bool(recipients)


def safety_alert_escalation_notify(*, alert_id: int) -> bool:
    alert = SafetyAlert.objects.select_related("participant__site").get(pk=alert_id)
    if alert.acknowledged_at is not None:
        return False
    recipients = _site_recipients(alert.participant, [Role.INVESTIGATOR, Role.COORDINATOR, Role.ADMIN])
    if recipients:
        _send_alert_mail(alert, recipients, escalation=True)
    return bool(recipients)


def escalate_after() -> dt.timedelta:
    return dt.timedelta(minutes=int(getattr(settings, "SAFETY_ALERT_ESCALATE_AFTER_MINUTES", 60)))


def safety_alerts_escalate_due(now: dt.datetime | None = None) -> list[int]:
    """Escalate alerts left unacknowledged longer than SAFETY_ALERT_ESCALATE_AFTER_MINUTES. Each alert is claimed with
    a conditional UPDATE, so two beats (or an overlapping run) escalate it once."""
    from assessments.tasks import safety_alert_escalation_notify_task

    now = now or timezone.now()
    due = list(
        SafetyAlert.objects.filter(
            acknowledged_at__isnull=True, escalated_at__isnull=True, created_at__lte=now - escalate_after()
        )
        .order_by("created_at")
        .values_list("id", flat=True)
    )
    escalated = []
    for alert_id in due:
        with transaction.atomic():
            claimed = SafetyAlert.objects.filter(
                pk=alert_id, acknowledged_at__isnull=True, escalated_at__isnull=True
            ).update(escalated_at=now)
            if not claimed:
                continue
            alert = SafetyAlert.objects.select_related("participant__site").get(pk=alert_id)
            _audit(
                by=None,
                action=AuditEvent.Action.UPDATE,
                entity_type="safety_alert",
                entity_id=alert_id,
                participant=alert.participant,
                changes=[("escalated_at", None, now)],
                reason=f"unacknowledged after {escalate_after()}",
            )
            transaction.on_commit(
                lambda alert_id=alert_id: safety_alert_escalation_notify_task.apply_async(
                    args=[alert_id], queue="safety", priority=9
                )
            )
        escalated.append(alert_id)
    return escalated


@transaction.atomic
def safety_alert_acknowledge(*, alert: SafetyAlert, note: str, by) -> SafetyAlert:
    if not (note and note.strip()):
        raise ServiceError("an acknowledgement needs a note", field_errors={"note": ["required"]})
    alert = SafetyAlert.objects.select_for_update().select_related("participant__site").get(pk=alert.pk)
    if not can_acknowledge_alert(by, alert.participant.site_id):
        raise PermissionDeniedError("only an investigator at this site can acknowledge a safety alert")
    if alert.acknowledged_at is not None:
        raise Conflict("this alert was already acknowledged")
    now = timezone.now()
    alert.acknowledged_at, alert.acknowledged_by, alert.acknowledgement_note = now, by, note.strip()
    alert.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledgement_note"])
    _audit(
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="safety_alert",
        entity_id=alert.pk,
        participant=alert.participant,
        changes=[("acknowledged_at", None, now), ("acknowledgement_note", "", alert.acknowledgement_note)],
        reason=alert.acknowledgement_note,
    )
    return alert
