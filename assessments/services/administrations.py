"""Administrations: one per instrument due at a visit. Created and moved when scheduling creates or changes visits
(the ``on_visits_changed`` hook), added by staff, opened early, closed at withdrawal. Every write audited.

Only writes change a stored status: a cancelled visit or a withdrawal makes an administration not applicable, a
saved draft makes it in progress, a response completes it. A closed window is read from the clock
(``assessments.windows.administration_status``), never written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from assessments.library import instrument_get
from assessments.models import Administration
from assessments.selectors import INACTIVE_PARTICIPANT
from assessments.windows import DONE, SELF, administration_status, window_bounds
from audit.models import AuditEvent
from audit.services import audit_participant_record
from participants import selectors as participant_selectors
from participants.access import Actor
from participants.models import Participant
from scheduling.blinded_view import faces_of
from scheduling.models import Visit
from trialsite.errors import Conflict, InvalidTransition, ServiceError
from trialsite.followups import reconcile_reminders_on_commit

A = Administration.Status
FIELDS = ("opens_at", "closes_at", "status")


def _stored_status(adm: Administration, *, visit: Visit, participant: Participant) -> str:
    """The status a write leaves on the row (see the module docstring for what is computed at read time instead)."""
    if adm.status == A.COMPLETED:
        return A.COMPLETED
    if visit.status == Visit.Status.CANCELLED or participant.status in INACTIVE_PARTICIPANT:
        return A.NOT_APPLICABLE
    return A.IN_PROGRESS if adm.draft_answers else A.DUE


@transaction.atomic
def administrations_follow_visits(*, participant: Participant, visits: Sequence[Visit], by: Actor) -> list[str]:
    """Create the protocol administrations of new visits and move existing ones with their visit's window and status.

    Registered with ``scheduling.hooks.on_visits_changed``: it runs inside scheduling's transaction. A constant number
    of queries whatever the number of visits (randomization generates the whole plan at once). Returns the labels
    ("VISIT:INSTRUMENT") of the administrations created or changed."""
    if not visits:
        return []
    tz_name = participant.time_zone
    by_visit: dict[int, dict[str, Administration]] = {}
    for adm in Administration.objects.filter(visit_id__in=[v.pk for v in visits]):
        by_visit.setdefault(adm.visit_id, {})[adm.instrument_code] = adm
    created: list[Administration] = []
    changed: list[Administration] = []
    changes: list[tuple[str, object, object]] = []
    for visit in visits:
        opens, closes = window_bounds(visit, tz_name)
        existing = by_visit.get(visit.pk, {})
        for order, due in enumerate(visit.instruments or []):
            if due["code"] in existing:
                continue
            created.append(_new_administration(participant, visit, order, due, opens, closes))
        for adm in existing.values():
            wanted_open = opens
            # An administration a coordinator opened early stays open from then on.
            if adm.opened_early_at is not None and (wanted_open is None or adm.opened_early_at < wanted_open):
                wanted_open = adm.opened_early_at
            wanted = {
                "opens_at": wanted_open,
                "closes_at": closes or adm.closes_at,
                "status": _stored_status(adm, visit=visit, participant=participant),
            }
            diff = [(name, getattr(adm, name), wanted[name]) for name in FIELDS if getattr(adm, name) != wanted[name]]
            if not diff:
                continue
            for name, _old, new in diff:
                setattr(adm, name, new)
            changes += [(f"{visit.code}:{adm.instrument_code}.{name}", old, new) for name, old, new in diff]
            changed.append(adm)
    now = timezone.now()
    # An event naming a visit that only some arms have tells the arm: blinded readers of the history never get it.
    sensitivity = AuditEvent.Sensitivity.ALLOCATION if _names_an_arm(visits) else ""
    if created:
        Administration.objects.bulk_create(created)
        # One event per change of the plan: the rows follow from the visits, whose own changes scheduling audits.
        audit_participant_record(
            participant,
            by=by,
            action=AuditEvent.Action.CREATE,
            entity_type="administrations",
            entity_id=participant.pk,
            changes=[("administrations", None, [_label(a, visits) for a in created])],
            sensitivity=sensitivity,
        )
    if changed:
        for adm in changed:
            adm.updated_at = now
        Administration.objects.bulk_update(changed, [*FIELDS, "updated_at"])
        audit_participant_record(
            participant,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity_type="administrations",
            entity_id=participant.pk,
            changes=changes,
            reason="the visit changed",
            sensitivity=sensitivity,
        )
    return [_label(a, visits) for a in created + changed]


def _new_administration(
    participant: Participant,
    visit: Visit,
    order: int,
    due: Mapping[str, Any],
    opens: dt.datetime | None,
    closes: dt.datetime | None,
    *,
    as_of: Any = None,
) -> Administration:
    """The unsaved administration of one instrument due at a new visit, with its stored status (``as_of``: the
    participant as they were then, for a bulk writer such as ``manage.py seed_scale``)."""
    adm = Administration(
        participant=participant,
        visit=visit,
        instrument_code=due["code"],
        respondent=due.get("respondent", SELF),
        order=order,
        opens_at=opens,
        closes_at=closes,
    )
    adm.status = _stored_status(adm, visit=visit, participant=as_of if as_of is not None else participant)
    return adm


def _names_an_arm(visits: Sequence[Visit]) -> bool:
    """Is one of the visits one that not every arm has in the same form (``scheduling.blinded_view``: a blinded
    viewer sees it under a neutral name, or not at all)?"""
    planned = [v for v in visits if v.protocol_version_id is not None and not v.unscheduled]
    version = planned[0].protocol_version if planned else None  # one read at most: a participant's visits share it
    if version is None:
        return False
    own = faces_of(version).own_codes()
    return any(v.code not in own for v in planned)


def _label(adm: Administration, visits: Sequence[Visit]) -> str:
    code = next((v.code for v in visits if v.pk == adm.visit_id), str(adm.visit_id))
    return f"{code}:{adm.instrument_code}"


@transaction.atomic
def administrations_close_for_withdrawal(*, participant: Participant, level: str, by: Actor) -> int:
    """Every administration not yet completed becomes not applicable when the participant withdraws (at any level:
    nothing more is asked of them). Runs inside participant_withdraw's transaction; audited per administration."""
    adms = list(
        Administration.objects.select_for_update(of=("self",))
        .select_related("visit")
        .filter(participant=participant)
        .exclude(status__in=DONE)
        .order_by("visit_id", "order", "id")
    )
    if not adms:
        return 0
    now = timezone.now()
    Administration.objects.filter(pk__in=[a.pk for a in adms]).update(status=A.NOT_APPLICABLE, updated_at=now)
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="administrations",
        entity_id=participant.pk,
        changes=[(f"{a.visit.code}:{a.instrument_code}.status", a.status, A.NOT_APPLICABLE) for a in adms],
        reason=f"participant withdrawn ({level})",
    )
    return len(adms)


@transaction.atomic
def administration_add(*, visit: Visit, instrument_code: str, by: Actor, reason: str | None = None) -> Administration:
    """Add an instrument to one visit beyond the protocol's list (e.g. an extra questionnaire the investigator wants)."""
    try:
        instrument = instrument_get(instrument_code)
    except KeyError:
        raise ServiceError(
            "unknown instrument", field_errors={"instrument": [f"no instrument '{instrument_code}'"]}
        ) from None
    participant = participant_selectors.participant_with_contact(visit.participant_id)
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
    audit_participant_record(
        participant,
        by=by,
        action=AuditEvent.Action.CREATE,
        entity_type="administration",
        entity_id=adm.pk,
        changes=[("instrument_code", None, adm.instrument_code), ("visit", None, visit.code)],
        reason=reason,
    )
    return adm


@transaction.atomic
def administration_open_early(
    *, administration: Administration, by: Actor, reason: str | None = None
) -> Administration:
    """A coordinator opens a self-report questionnaire before its window starts (it still closes with the window)."""
    adm = (
        Administration.objects.select_for_update(of=("self",))
        .select_related("participant__site")
        .get(pk=administration.pk)
    )
    now = timezone.now()
    status = administration_status(adm, now)
    if status in DONE or status == A.EXPIRED:
        raise InvalidTransition(f"cannot open an administration that is {status}")
    if adm.opens_at is not None and adm.opens_at <= now:
        return adm
    old: dt.datetime | None = adm.opens_at
    adm.opens_at = adm.opened_early_at = now
    adm.save(update_fields=["opens_at", "opened_early_at", "updated_at"])
    audit_participant_record(
        adm.participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="administration",
        entity_id=adm.pk,
        changes=[("opens_at", old, now)],
        reason=reason,
    )
    reconcile_reminders_on_commit(adm.participant_id)
    return adm
