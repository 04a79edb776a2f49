"""Withdrawal: a participant leaves the study at a level that says what may still happen with them."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from audit.models import AuditEvent
from audit.services import diff
from participants import hooks
from participants.access import Actor
from participants.models import Participant
from participants.plausible import require_plausible
from participants.services.status import _audit_participant, _has_reason, _set_status
from participants.transitions import require_transition
from trialsite.errors import ServiceError

S = Participant.Status


@transaction.atomic
def participant_withdraw(*, participant: Participant, level: str, reason: str, date: dt.date, by: Actor) -> Participant:
    """Withdraw a participant; the apps that registered ``hooks.on_withdrawn`` react in the same transaction."""
    participant = (
        Participant.objects.select_for_update(of=("self",)).select_related("site", "study").get(pk=participant.pk)
    )
    if level not in Participant.WithdrawalLevel.values:
        raise ServiceError(
            "unknown withdrawal level",
            field_errors={"level": [f"one of {', '.join(Participant.WithdrawalLevel.values)}"]},
        )
    if not _has_reason(reason):
        raise ServiceError("a withdrawal needs a reason", field_errors={"reason": ["required"]})
    require_plausible(participant, {"date": date})
    require_transition(participant, S.WITHDRAWN)
    changes = diff(participant, {"withdrawal_level": level, "withdrawal_reason": reason, "withdrawal_date": date})
    for name, _, new in changes:
        setattr(participant, name, new)
    participant.save()
    _audit_participant(participant, by=by, action=AuditEvent.Action.UPDATE, changes=changes, reason=reason)
    _set_status(participant, S.WITHDRAWN, by=by, reason=reason)
    hooks.run_withdrawn(participant=participant, level=level, by=by)
    return participant
