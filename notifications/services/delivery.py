"""Delivery: one attempt per claimed row (start, check, issue the link, compose, send, mark sent), what a failure
does to the row (backoff or failed), and a staff member's retry of a failed message.

The send path writes no audit row, by design: the attempt start, the sent mark, the failure and backoff, and the
provider id move the outbox's own rows through the delivery protocol (see ``notifications.services``), and each row
records them itself (status, attempts, last_error, sent_at). The participant link a questionnaire reminder carries is
issued through assessments' audited ``link_issue``, and a staff retry is audited.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from assessments import links
from assessments import selectors as assessment_selectors
from assessments.services import link_issue
from audit.models import AuditEvent
from audit.services import audit_participant_record
from notifications import channels, messages, planner
from notifications.backoff import retry_delay
from notifications.models import Notification
from notifications.rules import rules_for
from notifications.selectors import ACTIVE_PARTICIPANT
from participants.access import Actor
from scheduling import selectors as scheduling_selectors
from scheduling.models import Visit
from trialsite.errors import Conflict, ServiceError
from trialsite.followups import send_task_on_commit

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

N = Notification.Status
VISIT_REMINDER = "visit_reminder"
QUESTIONNAIRE_REMINDER = "questionnaire_reminder"
# A link a staff member asked to send now (``services.links``); it carries a link issued at send time, as a reminder.
QUESTIONNAIRE_LINK = "questionnaire_link"
_CARRIES_A_LINK = (QUESTIONNAIRE_REMINDER, QUESTIONNAIRE_LINK)


class NothingToSend(Exception):
    """The message is no longer relevant (the visit moved, the questionnaire was answered, ...)."""


@dataclass(frozen=True)
class _BatchFacts:
    """What the checks of a whole batch read from other apps, once per batch rather than once per row."""

    visits: dict[int, Visit]
    outstanding: dict[int, int]  # administrations not done yet, by visit id (for staff escalations)


@dataclass(frozen=True)
class _Draft:
    """A message that is still wanted: its address, what its template shows, and the zone its times show in."""

    to: str
    context: dict[str, Any]
    time_zone: str | None
    visit: Visit | None


def _batch_facts(rows: dict[int, Notification]) -> _BatchFacts:
    visit_ids = {row.context.get("visit_id") for row in rows.values()} - {None}
    staff_visit_ids = {row.context.get("visit_id") for row in rows.values() if row.recipient_kind == "staff"} - {None}
    return _BatchFacts(
        visits=scheduling_selectors.visits_by_pk(visit_ids) if visit_ids else {},
        outstanding=assessment_selectors.outstanding_counts_by_visit(staff_visit_ids) if staff_visit_ids else {},
    )


def _overtaken(row: Notification, now: dt.datetime) -> bool:
    """A later reminder of the same series is due too."""
    series = row.context.get("series")
    return bool(
        series
        and Notification.objects.filter(
            participant_id=row.participant_id, context__series=series, due_at__gt=row.due_at, due_at__lte=now
        )
        .exclude(status=N.CANCELLED)
        .exists()
    )


def _draft(row: Notification, now: dt.datetime, facts: _BatchFacts) -> _Draft:
    """Recheck that ``row`` is still wanted and gather its address and template context; raises NothingToSend when it
    is not, DeliveryError when it cannot be delivered (no address). Reads only."""
    participant = row.participant
    site = participant.site
    if row.recipient_kind == "staff":
        user = row.recipient_user
        if user is None or not user.email:
            raise channels.DeliveryError("the staff member has no e-mail address")
        outstanding = facts.outstanding.get(row.context.get("visit_id"), 0)
        if not outstanding or participant.status not in ACTIVE_PARTICIPANT:
            raise NothingToSend("no outstanding assessment")
        context: dict[str, Any] = {
            "participant_id": participant.participant_id,
            "site": site.code,
            "visit_code": row.context.get("visit_code", ""),
            "count": outstanding,
            "url": f"{settings.SITE_URL}/api/v1/visits/{row.context.get('visit_id')}/administrations/",
        }
        return _Draft(to=user.email, context=context, time_zone=None, visit=None)
    if participant.status not in ACTIVE_PARTICIPANT:
        raise NothingToSend(f"participant is {participant.status}")
    if _overtaken(row, now):
        # A backlog (an outage, a late plan) must not deliver "ready" and "still waiting" in one burst: the later
        # reminder of the same series, already due too, says it all.
        raise NothingToSend("overtaken by a later reminder")
    contact = getattr(participant, "contact", None)
    to = (contact.phone if row.channel == "sms" else contact.email) if contact else ""
    if not to:
        raise channels.DeliveryError(f"the participant has no {'phone number' if row.channel == 'sms' else 'e-mail'}")
    visit = facts.visits.get(row.context.get("visit_id"))
    context = {"site_name": site.name, "site_phone": site.contact_phone}
    if row.template == VISIT_REMINDER:
        # A reminder for a slot that is no longer the visit's slot is never sent, even before the planner has caught
        # up with the move.
        if (
            visit is None
            or visit.status != Visit.Status.SCHEDULED
            or visit.scheduled_start is None
            or planner.iso(visit.scheduled_start) != row.context.get("starts_at")
            or visit.scheduled_start <= now
        ):
            raise NothingToSend("the visit is no longer booked at that time")
        context["starts_at"] = visit.scheduled_start
    elif row.template in _CARRIES_A_LINK:
        if visit is None:
            raise NothingToSend("the visit is gone")
    else:
        raise NothingToSend(f"unknown template {row.template}")
    return _Draft(to=to, context=context, time_zone=participant.time_zone, visit=visit)


def _issue_link_for(visit: Visit) -> dict[str, Any]:
    """Issue the participant link a questionnaire reminder carries, through assessments' audited ``link_issue``: a
    fresh link per message, issued at send time, so the outbox never stores a token; the token goes into the message
    body only. The link is valid for as long as the questionnaires are."""
    try:
        link, token = link_issue(visit=visit, by=None)
    except ServiceError as exc:
        raise NothingToSend(str(exc)) from exc
    return {"url": links.link_url(token), "closes_at": link.expires_at}


def _record_failure(row: Notification, token: str, error: str, now: dt.datetime) -> str:
    """After a failed attempt: back to pending with exponential backoff, or failed once attempts are exhausted. The
    row may already say "sent" (the provider refused after the point of no return); only this attempt's row moves."""
    error = error[:2000]
    mine = Notification.objects.filter(pk=row.pk, claim_token=token, status__in=[N.SENDING, N.SENT])
    if row.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
        mine.update(status=N.FAILED, last_error=error, sent_at=None, claim_token=None, updated_at=now)
        log.warning("notification %s failed after %d attempts: %s", row.pk, row.attempts, error)
        return N.FAILED
    due = now + retry_delay(row.attempts)
    if row.recipient_kind == "participant":
        tz = zoneinfo.ZoneInfo(row.participant.time_zone)
        due = planner.next_allowed(due, tz, rules_for(row.participant.study.protocol_code).quiet_hours)
    mine.update(status=N.PENDING, last_error=error, due_at=due, sent_at=None, claim_token=None, updated_at=now)
    return N.PENDING


_START_SQL = """
UPDATE notifications_notification
SET status = 'sending', attempts = attempts + 1, claimed_at = %(now)s, updated_at = %(now)s
WHERE status = 'claimed'
  AND (id, claim_token) IN (SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::uuid[]))
RETURNING id
"""


def _start_attempts(claims: list[tuple[int, str]], now: dt.datetime) -> set[int]:
    """claimed -> sending for the rows whose claim is still this batch's; one statement for the whole batch.

    This step need not survive a crash: a row that falls back to "claimed" is handed out again by the dispatcher and
    nothing was sent for it yet. So its commit does not wait for the WAL flush; only the "sent" mark (the point of no
    return, in the channel) does."""
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute(
                _START_SQL,
                {"now": now, "ids": [pk for pk, _ in claims], "tokens": [uuid.UUID(token) for _, token in claims]},
            )
            return {pk for (pk,) in cursor.fetchall()}
    return {
        pk
        for pk, token in claims
        if Notification.objects.filter(pk=pk, status=N.CLAIMED, claim_token=token).update(
            status=N.SENDING, attempts=F("attempts") + 1, claimed_at=now, updated_at=now
        )
    }


def notifications_send_batch(claims: list[tuple[int, str]]) -> dict[str, int]:
    """One delivery attempt for each claimed row of a batch. A row whose claim is no longer this attempt's (a
    redelivered or superseded task) is "skipped": nothing is sent for it. Returns a count per outcome."""
    now = timezone.now()
    started = _start_attempts(claims, now)
    rows = Notification.objects.select_related(
        "participant__site", "participant__study", "participant__contact", "recipient_user"
    ).in_bulk(started)
    facts = _batch_facts(rows)
    outcomes: dict[str, int] = {}
    provider_ids: dict[int, str] = {}
    try:
        for notification_id, claim_token in claims:
            row = rows.get(notification_id)
            outcome = _attempt(row, claim_token, now, facts, provider_ids) if row is not None else "skipped"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        _store_provider_ids(provider_ids)
    return outcomes


def notification_send(*, notification_id: int, claim_token: str) -> str:
    """One delivery attempt of a claimed row. Returns the row's resulting status, or "skipped" when the claim is not
    this attempt's (a redelivered or superseded task): such an attempt sends nothing."""
    outcomes = notifications_send_batch([(notification_id, claim_token)])
    return next(iter(outcomes))


def _attempt(
    row: Notification, claim_token: str, now: dt.datetime, facts: _BatchFacts, provider_ids: dict[int, str]
) -> str:
    try:
        draft = _draft(row, now, facts)
        context = dict(draft.context)
        if row.template in _CARRIES_A_LINK and draft.visit is not None:
            context.update(_issue_link_for(draft.visit))  # only once nothing else stands in the message's way
        message = messages.compose(row, to=draft.to, context=context, time_zone=draft.time_zone)
    except NothingToSend as exc:
        Notification.objects.filter(pk=row.pk, status=N.SENDING, claim_token=claim_token).update(
            status=N.CANCELLED, cancel_reason=str(exc)[:200], claim_token=None, updated_at=now
        )
        return N.CANCELLED
    except channels.DeliveryError as exc:
        return _record_failure(row, claim_token, str(exc), now)

    mark = SentMark(pk=row.pk, claim_token=claim_token)
    try:
        try:
            provider_id = channels.deliver(row.channel, message, mark)
        finally:
            mark.confirm()  # the connection is used again below: read the in-flight COMMIT's answer first
    except channels.Superseded:
        return "skipped"
    except Exception as exc:  # any failure of this attempt is recorded on the row and retried by the outbox
        return _record_failure(row, claim_token, f"{type(exc).__name__}: {exc}", timezone.now())
    if provider_id:
        provider_ids[row.pk] = provider_id[:200]
    return N.SENT


_MARK_SENT_SQL = """
UPDATE notifications_notification
SET status = 'sent', sent_at = now(), last_error = '', updated_at = now()
WHERE id = %s AND status = 'sending' AND claim_token = %s
"""


class SentMark:
    """The point of no return of one delivery attempt (the ``commit`` a channel calls just before the step that makes
    a message irrevocable: SMTP's final ".", the SMS provider request). Returns False when the row is no longer this
    attempt's, and then the channel sends nothing.

    Why the COMMIT is left in flight: the row must be marked sent before the "." (a worker killed after the "." must
    not leave a row that would be sent again), but a worker killed while it waits for a durable COMMIT would leave a
    row marked sent whose "." never went out: a lost message. So the row is updated and locked in a transaction whose
    outcome is already decided (the row is ours), the COMMIT is written to the server without waiting, and the "."
    follows at once; ``confirm`` reads the COMMIT's answer afterwards. What remains is the gap between two socket
    writes. Inside an enclosing transaction (tests) or on SQLite it is a plain conditional UPDATE."""

    def __init__(self, *, pk: int, claim_token: str) -> None:
        self.pk, self.claim_token = pk, claim_token
        self._pending: psycopg.Connection[Any] | None = None

    def __call__(self) -> bool:
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            now = timezone.now()
            return bool(
                Notification.objects.filter(pk=self.pk, status=N.SENDING, claim_token=self.claim_token).update(
                    status=N.SENT, sent_at=now, last_error="", updated_at=now
                )
            )
        from psycopg import generators, waiting

        connection.ensure_connection()
        pg = connection.connection  # Django's own session, in autocommit mode outside atomic blocks
        with pg.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(_MARK_SENT_SQL, [self.pk, uuid.UUID(self.claim_token)])
            if cursor.rowcount != 1:
                cursor.execute("ROLLBACK")
                return False
        pg.pgconn.send_query(b"COMMIT")
        waiting.wait(generators.send(pg.pgconn), pg.pgconn.socket)  # on the wire; the answer is read in confirm()
        self._pending = pg
        return True

    def confirm(self) -> None:
        pg, self._pending = self._pending, None
        if pg is None:
            return
        from psycopg import generators, pq, waiting

        results = waiting.wait(generators.fetch_many(pg.pgconn), pg.pgconn.socket)
        failed = [r for r in results if r.status != pq.ExecStatus.COMMAND_OK]
        if failed:
            message = (failed[0].error_message or b"").decode(errors="replace")
            raise channels.DeliveryError(f"could not record the message as sent: {message}")


def _store_provider_ids(provider_ids: dict[int, str]) -> None:
    """The providers' ids (an SMS sid, the SMTP server's queue reply), one statement per batch. They are for tracing
    only: losing them in a crash harms nothing, so this commit does not wait for the WAL flush."""
    if not provider_ids:
        return
    if connection.vendor != "postgresql":
        for pk, provider_id in provider_ids.items():
            Notification.objects.filter(pk=pk, status=N.SENT).update(provider_message_id=provider_id)
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(
            "UPDATE notifications_notification AS n SET provider_message_id = v.provider_id "
            "FROM unnest(%s::bigint[], %s::text[]) AS v(id, provider_id) WHERE n.id = v.id AND n.status = 'sent'",
            [list(provider_ids), list(provider_ids.values())],
        )


@transaction.atomic
def notification_retry(*, notification: Notification, by: Actor, reason: str | None = None) -> Notification:
    """Send a failed message again: failed -> pending, attempts start over, due now (or when quiet hours end)."""
    row = (
        Notification.objects.select_for_update(of=("self",))
        .select_related("participant__site", "participant__study")
        .get(pk=notification.pk)
    )
    if row.status != N.FAILED:
        raise Conflict(f"only a failed message can be retried; this one is {row.status}")
    now = timezone.now()
    due = now
    if row.recipient_kind == "participant":
        due = planner.next_allowed(
            now,
            zoneinfo.ZoneInfo(row.participant.time_zone),
            rules_for(row.participant.study.protocol_code).quiet_hours,
        )
    old_attempts = row.attempts
    row.status, row.attempts, row.due_at, row.claim_token, row.claimed_at = N.PENDING, 0, due, None, None
    row.save(update_fields=["status", "attempts", "due_at", "claim_token", "claimed_at", "updated_at"])
    audit_participant_record(
        row.participant,
        by=by,
        action=AuditEvent.Action.UPDATE,
        entity_type="notification",
        entity_id=row.pk,
        changes=[("status", N.FAILED, N.PENDING), ("attempts", old_attempts, 0), ("due_at", None, due)],
        reason=reason or "manual retry",
    )
    # Dispatch now rather than at the next beat tick; if the broker is down the row simply waits for the beat.
    send_task_on_commit("notifications.dispatch_due", [])
    return row
