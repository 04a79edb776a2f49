"""Every write to the outbox: reconcile (plan), claim (dispatch), send, retry, cancel.

Delivery protocol of one row (see docs/operations.md, "Reminders: delivery guarantees"):

    pending --claim (dispatcher, conditional UPDATE, fresh token T)--> claimed(T)
    claimed(T) --send task begins (conditional on T)--> sending(T)
    sending(T) --channel's point of no return (conditional on T)--> sent
    sent --provider refused after all--> pending (backoff) | failed (attempts exhausted)
    claimed | sending, older than NOTIFICATIONS_CLAIM_TIMEOUT_SECONDS --dispatcher--> claimed(T') (re-claimed)

Every transition is a conditional UPDATE that checks the row count, so two dispatchers, a redelivered task and a
re-claimed row can never both send: only the attempt whose token is still on the row can mark it sent, and channels
mark it sent before the step that makes a message irrevocable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from assessments.models import Administration
from audit.models import AuditEvent
from audit.services import audit_participant_record
from notifications import channels, planner
from notifications.models import Notification
from notifications.rules import rules_for
from participants.models import ContactDetails, Participant, StaffMembership
from scheduling.models import Visit
from trialsite.errors import Conflict
from trialsite.followups import send_task_on_commit

log = logging.getLogger(__name__)

N = Notification.Status
REPLACEABLE = [N.PENDING, N.CLAIMED]
ACTIVE_PARTICIPANT = {
    Participant.Status.SCREENING,
    Participant.Status.ELIGIBLE,
    Participant.Status.CONSENTED,
    Participant.Status.ENROLLED,
    Participant.Status.RANDOMIZED,
    Participant.Status.IN_TREATMENT,
}
A = Administration.Status
OUTSTANDING = [A.DUE, A.IN_PROGRESS, A.EXPIRED]
_LOCK_NAMESPACE = 748_215_501  # advisory lock class: "reconciling one participant's reminders"


# --- planning -----------------------------------------------------------------------------------------------------


def choose_channel(contact: ContactDetails | None) -> str | None:
    """The preferred channel when it has an address, else the other one; None when the participant has neither."""
    if contact is None:
        return None
    addresses = {"email": bool(contact.email), "sms": bool(contact.phone)}
    preferred = contact.preferred_channel or "email"
    if addresses.get(preferred):
        return preferred
    return next((c for c in ("email", "sms") if addresses[c]), None)


def participant_state(participant: Participant, now: dt.datetime) -> planner.ParticipantState:
    contact = getattr(participant, "contact", None)
    rules = rules_for(participant.study.protocol_code)
    visits = list(
        Visit.objects.filter(participant=participant).values(
            "id", "code", "kind", "status", "target_date", "scheduled_start", "occurred_at"
        )
    )
    by_id = {v["id"]: v for v in visits}
    questionnaires: dict[int, list] = {}
    overdue: dict[int, int] = {}
    adms = Administration.objects.filter(participant=participant, status__in=OUTSTANDING).values(
        "visit_id", "respondent", "status", "opens_at", "closes_at"
    )
    for a in adms:
        if (
            a["respondent"] == Administration.Respondent.SELF
            and a["status"] in (A.DUE, A.IN_PROGRESS)
            and a["opens_at"] is not None
            and a["closes_at"] is not None
        ):
            questionnaires.setdefault(a["visit_id"], []).append(a)
        overdue[a["visit_id"]] = overdue.get(a["visit_id"], 0) + 1
    coordinators: tuple[int, ...] = ()
    if rules.escalation_overdue_days is not None and overdue:
        coordinators = tuple(
            StaffMembership.objects.filter(
                site_id=participant.site_id, role__in=rules.escalation_roles, user__is_active=True
            )
            .exclude(user__email="")
            .order_by("user_id")
            .values_list("user_id", flat=True)
            .distinct()
        )
    return planner.ParticipantState(
        participant_id=participant.pk,
        active=participant.status in ACTIVE_PARTICIPANT,
        time_zone=participant.time_zone,
        site_time_zone=participant.site.time_zone,
        channel=choose_channel(contact),
        language=(contact.language if contact else "") or settings.LANGUAGE_CODE,
        visits=tuple(
            planner.VisitState(
                id=v["id"],
                code=v["code"],
                kind=v["kind"],
                status=v["status"],
                target_date=v["target_date"],
                scheduled_start=v["scheduled_start"],
                occurred_at=v["occurred_at"],
            )
            for v in visits
        ),
        questionnaires=tuple(
            planner.QuestionnaireGroup(
                visit_id=visit_id,
                opens_at=min(a["opens_at"] for a in group),
                closes_at=max(a["closes_at"] for a in group),
            )
            for visit_id, group in sorted(questionnaires.items())
            if by_id.get(visit_id, {}).get("status") not in (Visit.Status.CANCELLED, Visit.Status.MISSED)
        ),
        overdue=tuple(
            planner.OverdueGroup(
                visit_id=visit_id,
                visit_code=by_id[visit_id]["code"],
                target_date=by_id[visit_id]["target_date"],
                count=n,
            )
            for visit_id, n in sorted(overdue.items())
            if visit_id in by_id and by_id[visit_id]["target_date"] is not None
        ),
        coordinators=coordinators,
    )


@dataclass(frozen=True)
class ReconcileResult:
    created: int
    cancelled: int


def _lock_participant(participant_id: int) -> None:
    # Two reconciles of one participant (a hook and the periodic sweep) run one after the other, so each diffs against
    # what the other wrote. The unique key would stop a twin anyway; the lock keeps the loser from cancelling a row it
    # never saw.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, participant_id])


def _differs(row: Notification, w: planner.Wanted) -> bool:
    return (row.due_at, row.channel, row.language, row.template, row.recipient_user_id) != (
        w.due_at,
        w.channel,
        w.language,
        w.template,
        w.recipient_user_id,
    )


def notifications_reconcile(*, participant_id: int, now: dt.datetime | None = None) -> ReconcileResult:
    """Bring the participant's outbox in line with the messages their current state calls for: create the missing
    ones, cancel pending ones that are no longer wanted (or wanted at another time or on another channel). Rows that
    are sending or done are history and never touched. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_participant(participant_id)
        participant = Participant.objects.select_related("site", "study", "contact").get(pk=participant_id)
        rules = rules_for(participant.study.protocol_code)
        wanted = {w.key: w for w in planner.plan(participant_state(participant, now), rules, now)}
        rows = {
            r.key: r
            for r in Notification.objects.filter(participant_id=participant_id)
            .exclude(status=N.CANCELLED)
            .filter(Q(status__in=REPLACEABLE) | Q(key__in=list(wanted)))
        }
        stale = [
            r.pk for k, r in rows.items() if r.status in REPLACEABLE and (k not in wanted or _differs(r, wanted[k]))
        ]
        cancelled = 0
        if stale:
            cancelled = Notification.objects.filter(pk__in=stale, status__in=REPLACEABLE).update(
                status=N.CANCELLED, cancel_reason="re-planned", claim_token=None, updated_at=now
            )
        stale_set = set(stale)
        new = [
            Notification(
                key=w.key,
                participant_id=participant_id,
                recipient_kind="staff" if w.recipient_user_id else "participant",
                recipient_user_id=w.recipient_user_id,
                channel=w.channel,
                template=w.template,
                language=w.language,
                context=w.context,
                nominal_at=w.nominal_at,
                due_at=w.due_at,
            )
            for k, w in wanted.items()
            if k not in rows or rows[k].pk in stale_set
        ]
        # ignore_conflicts: a row that moved on to "sending" between the read and the cancel keeps its key; the
        # unique constraint then refuses the replacement, which is right (that message is going out).
        created = Notification.objects.bulk_create(new, ignore_conflicts=True)
    return ReconcileResult(created=len(created), cancelled=cancelled)


def participant_ids_to_reconcile() -> list[int]:
    """Participants the periodic sweep looks at: the active ones, and any with messages still to go."""
    active = set(Participant.objects.filter(status__in=ACTIVE_PARTICIPANT).values_list("id", flat=True))
    waiting = set(Notification.objects.filter(status__in=REPLACEABLE).values_list("participant_id", flat=True))
    return sorted(active | waiting)


def notifications_cancel_for_participant(*, participant: Participant, reason: str, by=None) -> int:
    """Cancel every message not yet on its way (withdrawal). Runs inside the caller's transaction."""
    count = Notification.objects.filter(participant=participant, status__in=REPLACEABLE).update(
        status=N.CANCELLED, cancel_reason=reason[:200], claim_token=None, updated_at=timezone.now()
    )
    if count:
        audit_participant_record(
            participant,
            by=by,
            action=AuditEvent.Action.UPDATE,
            entity_type="notifications",
            entity_id=participant.pk,
            changes=[("cancelled", None, count)],
            reason=reason,
        )
    return count


def _on_withdrawn(*, participant: Participant, level: str, by, **kwargs) -> None:
    # Registered in NotificationsConfig.ready(); runs inside participant_withdraw's transaction, so the withdrawal and
    # the cancellation commit together and no reminder can slip out in between. Every level stops messages to the
    # participant (stop_contact is the one that demands it; the others cancel the visits the messages were about).
    notifications_cancel_for_participant(participant=participant, reason=f"participant withdrawn ({level})", by=by)


# --- dispatch -----------------------------------------------------------------------------------------------------

_CLAIM_DUE_SQL = """
UPDATE notifications_notification
SET status = 'claimed', claimed_at = %(now)s, claim_token = gen_random_uuid(), updated_at = %(now)s
WHERE id IN (
    SELECT id FROM notifications_notification
    WHERE status = 'pending' AND due_at <= %(now)s
    ORDER BY due_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AND status = 'pending'
RETURNING id, claim_token
"""

# A claim whose send task has not started within the timeout: its message may be lost (Redis restarted without
# persistence, or a killed worker holds it unacknowledged until the broker's visibility timeout). The row is handed out
# again with the SAME token, so whichever copy of the task runs first sends and the other finds the row taken. Minting a
# new token here would starve a backlog: every queued copy would be stale by the time a worker reached it.
_REPUBLISH_SQL = """
UPDATE notifications_notification
SET claimed_at = %(now)s, updated_at = %(now)s
WHERE id IN (
    SELECT id FROM notifications_notification
    WHERE status = 'claimed' AND claimed_at < %(stale)s
    ORDER BY claimed_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AND status = 'claimed'
RETURNING id, claim_token
"""

# An attempt that began sending and never finished: its worker died (or hangs). A new token takes the row from it, so
# even if that attempt is still alive it can no longer mark the row sent, and therefore never sends.
_RECLAIM_SQL = """
UPDATE notifications_notification
SET status = 'claimed', claimed_at = %(now)s, claim_token = gen_random_uuid(), updated_at = %(now)s
WHERE id IN (
    SELECT id FROM notifications_notification
    WHERE status = 'sending' AND claimed_at < %(stale)s
    ORDER BY claimed_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AND status = 'sending'
RETURNING id, claim_token
"""


def notifications_claim_due(*, now: dt.datetime | None = None, limit: int | None = None) -> list[tuple[int, str]]:
    """Claim due rows, each with a fresh token, and hand out again claims that a lost message or a dead worker left
    behind. Returns ``[(id, token)]`` to enqueue. Two dispatchers at once claim disjoint rows: SKIP LOCKED passes over rows the other is
    claiming, and the status condition is re-checked on the row's latest version."""
    now = now or timezone.now()
    limit = limit or settings.NOTIFICATIONS_DISPATCH_BATCH
    stale = now - dt.timedelta(seconds=settings.NOTIFICATIONS_CLAIM_TIMEOUT_SECONDS)
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            # Re-claiming a "sending" row is safe: a row still in "sending" never passed its channel's point of no
            # return (that step marks it sent), so nothing was delivered for it.
            cursor.execute(_REPUBLISH_SQL, {"now": now, "stale": stale, "limit": limit})
            claimed = cursor.fetchall()
            cursor.execute(_RECLAIM_SQL, {"now": now, "stale": stale, "limit": limit})
            claimed += cursor.fetchall()
            cursor.execute(_CLAIM_DUE_SQL, {"now": now, "limit": limit})
            claimed += cursor.fetchall()
        return [(pk, str(token)) for pk, token in claimed]
    # Other databases (the embedded SQLite demo): row by row; the conditional UPDATE's count decides.
    claimed = []
    for pk, token in Notification.objects.filter(status=N.CLAIMED, claimed_at__lt=stale).values_list(
        "pk", "claim_token"
    )[:limit]:
        if Notification.objects.filter(pk=pk, status=N.CLAIMED, claim_token=token).update(claimed_at=now):
            claimed.append((pk, str(token)))
    for status, extra in ((N.SENDING, {"claimed_at__lt": stale}), (N.PENDING, {"due_at__lte": now})):
        for (pk,) in (
            Notification.objects.filter(status=status, **extra).order_by("due_at", "id").values_list("pk")[:limit]
        ):
            token = uuid.uuid4()
            if Notification.objects.filter(pk=pk, status=status, **extra).update(
                status=N.CLAIMED, claimed_at=now, claim_token=token, updated_at=now
            ):
                claimed.append((pk, str(token)))
    return claimed


def enqueue_sends(claims: list[tuple[int, str]]) -> int:
    """Hand claimed rows to workers (task ``notifications.send_batch`` by name, routed to the ``reminders`` queue). When the
    broker is unreachable the unpublished claims are released at once, so the next dispatch picks them up."""
    from celery import current_app

    # Rows travel in small batches: one task (and one SMTP connection) per batch instead of per row, which is what
    # makes the pipeline keep up with a plain SMTP loop. Each row keeps its own claim token, so a batch redelivered
    # after a worker died re-sends only the rows that never reached their point of no return.
    size = max(1, settings.NOTIFICATIONS_SEND_BATCH)
    published = 0
    try:
        with current_app.producer_or_acquire() as producer:
            for start in range(0, len(claims), size):
                batch = [[pk, token] for pk, token in claims[start : start + size]]
                current_app.send_task("notifications.send_batch", args=[batch], producer=producer)
                published += len(batch)
    except Exception:
        log.exception(
            "broker unreachable: %d claimed reminder(s) released to wait in the outbox", len(claims) - published
        )
        for pk, token in claims[published:]:
            Notification.objects.filter(pk=pk, status=N.CLAIMED, claim_token=token).update(
                status=N.PENDING, claim_token=None, claimed_at=None
            )
    return published


# --- sending ------------------------------------------------------------------------------------------------------


class NothingToSend(Exception):
    """The message is no longer relevant (the visit moved, the questionnaire was answered, ...)."""


def _message_id(row: Notification) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ") or "trialsite.invalid"
    digest = hashlib.sha256(row.key.encode()).hexdigest()[:20]
    return f"<notification-{row.pk}-{digest}@{domain}>"


def _render(row: Notification, name: str, context: dict) -> str:
    with translation.override(row.language):
        return render_to_string(f"notifications/{row.language}/{name}", context).strip()


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def compose(row: Notification, now: dt.datetime, visits: dict[int, Visit] | None = None) -> channels.Outgoing:
    """The message for ``row``, rechecking that it is still wanted. Participant messages say only what the participant
    needs: no visit name, no instrument name, nothing clinical (they may be read on a lock screen)."""
    participant = row.participant
    site = participant.site
    if row.recipient_kind == "staff":
        user = row.recipient_user
        if not user.email:
            raise channels.DeliveryError("the staff member has no e-mail address")
        outstanding = Administration.objects.filter(
            visit_id=row.context.get("visit_id"), status__in=OUTSTANDING
        ).count()
        if not outstanding or participant.status not in ACTIVE_PARTICIPANT:
            raise NothingToSend("no outstanding assessment")
        context = {
            "participant_id": participant.participant_id,
            "site": site.code,
            "visit_code": row.context.get("visit_code", ""),
            "count": outstanding,
            "url": f"{settings.SITE_URL}/api/v1/visits/{row.context.get('visit_id')}/administrations/",
        }
        return channels.Outgoing(
            to=user.email,
            subject=_render(row, f"{row.template}_subject.txt", context),
            body=_render(row, f"{row.template}.txt", context),
            message_id=_message_id(row),
        )
    if participant.status not in ACTIVE_PARTICIPANT:
        raise NothingToSend(f"participant is {participant.status}")
    series = row.context.get("series")
    if (
        series
        and Notification.objects.filter(
            participant=participant, context__series=series, due_at__gt=row.due_at, due_at__lte=now
        )
        .exclude(status=N.CANCELLED)
        .exists()
    ):
        # A backlog (an outage, a late plan) must not deliver "ready" and "still waiting" in one burst: the later
        # reminder of the same series, already due too, says it all.
        raise NothingToSend("overtaken by a later reminder")
    contact = getattr(participant, "contact", None)
    to = (contact.phone if row.channel == "sms" else contact.email) if contact else ""
    if not to:
        raise channels.DeliveryError(f"the participant has no {'phone number' if row.channel == 'sms' else 'e-mail'}")
    tz = zoneinfo.ZoneInfo(participant.time_zone)
    visit_id = row.context.get("visit_id")
    visit = visits.get(visit_id) if visits is not None else Visit.objects.filter(pk=visit_id).first()
    context = {"site_name": site.name, "site_phone": site.contact_phone}
    if row.template == "visit_reminder":
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
    elif row.template == "questionnaire_reminder":
        from assessments import links
        from assessments.services import link_issue
        from trialsite.errors import ServiceError

        if visit is None:
            raise NothingToSend("the visit is gone")
        try:
            # A fresh link per message, issued now: the outbox never stores a token, and the link is valid for as long
            # as the questionnaires are.
            link, token = link_issue(visit=visit, by=None)
        except ServiceError as exc:
            raise NothingToSend(str(exc)) from exc
        context["url"] = links.link_url(token)
        context["closes_at"] = link.expires_at
    else:
        raise NothingToSend(f"unknown template {row.template}")
    with timezone.override(tz):
        body_name = f"{row.template}.sms.txt" if row.channel == "sms" else f"{row.template}.txt"
        return channels.Outgoing(
            to=to,
            subject=_render(row, f"{row.template}_subject.txt", context),
            body=_render(row, body_name, context),
            message_id=_message_id(row),
        )


def _backoff(attempts: int) -> dt.timedelta:
    seconds = settings.NOTIFICATIONS_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, settings.NOTIFICATIONS_RETRY_BACKOFF_MAX_SECONDS))


def _record_failure(row: Notification, token: str, error: str, now: dt.datetime) -> str:
    """After a failed attempt: back to pending with exponential backoff, or failed once attempts are exhausted. The
    row may already say "sent" (the provider refused after the point of no return); only this attempt's row moves."""
    error = error[:2000]
    mine = Notification.objects.filter(pk=row.pk, claim_token=token, status__in=[N.SENDING, N.SENT])
    if row.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
        mine.update(status=N.FAILED, last_error=error, sent_at=None, claim_token=None, updated_at=now)
        log.warning("notification %s failed after %d attempts: %s", row.pk, row.attempts, error)
        return N.FAILED
    due = now + _backoff(row.attempts)
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
    visit_ids = {row.context.get("visit_id") for row in rows.values()} - {None}
    visits = Visit.objects.in_bulk(visit_ids)
    outcomes: dict[str, int] = {}
    provider_ids: dict[int, str] = {}
    try:
        for notification_id, claim_token in claims:
            row = rows.get(notification_id)
            outcome = _attempt(row, claim_token, now, visits, provider_ids) if row is not None else "skipped"
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
    row: Notification, claim_token: str, now: dt.datetime, visits: dict[int, Visit], provider_ids: dict[int, str]
) -> str:
    try:
        message = compose(row, now, visits)
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
        self._pending = None

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


# --- staff actions ------------------------------------------------------------------------------------------------


@transaction.atomic
def notification_retry(*, notification: Notification, by, reason: str | None = None) -> Notification:
    """Send a failed message again: failed -> pending, attempts start over, due now (or when quiet hours end)."""
    row = (
        Notification.objects.select_for_update()
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
