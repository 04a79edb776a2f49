"""The outbox: one row per message to send (architecture decision 4).

Reminders live here, in PostgreSQL, never in the broker: a beat task claims due rows with a conditional UPDATE and hands
their ids to workers. A Redis outage therefore delays messages but loses none, and the unique ``key`` together with the
claim token keeps a message from being planned twice or sent twice (see docs/operations.md, "Reminders").

No contact detail and no link token is stored here: addresses are read from ContactDetails and links are issued at
send time, so a copy of this table (backup, replica) holds neither PHI nor working links.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Notification(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CLAIMED = "claimed"
        # The attempt has begun talking to the provider; nothing irrevocable has been sent yet (see services).
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Channel(models.TextChoices):
        EMAIL = "email"
        SMS = "sms"

    class RecipientKind(models.TextChoices):
        PARTICIPANT = "participant"
        STAFF = "staff"

    # What the message is about, e.g. "visit:12:48h:2026-03-09T17:00:00Z": the rule, its anchor and the anchor's
    # instant. The planner derives it from state, so re-planning the same state yields the same key (no twin) and a
    # moved visit yields a new one (the old pending row is cancelled).
    key = models.CharField(max_length=200)
    # The participant the message is about (for staff escalations too): scoping and cancellation follow it.
    participant = models.ForeignKey("participants.Participant", on_delete=models.PROTECT, related_name="notifications")
    recipient_kind = models.CharField(max_length=12, choices=RecipientKind.choices)
    recipient_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    template = models.CharField(max_length=60)
    language = models.CharField(max_length=10, default="en")
    # Ids and instants the template needs (visit id, anchor); never contact details, tokens or answers.
    context = models.JSONField(default=dict, blank=True)
    nominal_at = models.DateTimeField(help_text="When the rule asks for it, before quiet hours and dosing days.")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    # A fresh token per claim. An attempt may only move the row on while the row still carries its token, so a
    # redelivered or superseded task can never send a message that a newer claim owns.
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            # One live row per message: re-planning can never create a twin. Cancelled rows are history and do not
            # count, so a visit moved back to its original time gets its reminder again.
            models.UniqueConstraint(
                fields=["key"], condition=~models.Q(status="cancelled"), name="notification_unique_live_key"
            ),
            models.CheckConstraint(
                condition=models.Q(recipient_kind="participant", recipient_user__isnull=True)
                | models.Q(recipient_kind="staff", recipient_user__isnull=False),
                name="notification_recipient_matches_kind",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "claimed", "sending", "sent", "failed", "cancelled"]),
                name="notification_status_valid",
            ),
        ]
        indexes = [
            # Used by notifications_claim_due (the dispatch_due beat task): due pending rows, oldest first.
            models.Index(fields=["due_at"], condition=models.Q(status="pending"), name="notification_pending_due_idx"),
            # Used by notifications_claim_due to take back claims a dead worker left behind.
            models.Index(
                fields=["claimed_at"],
                condition=models.Q(status__in=["claimed", "sending"]),
                name="notification_inflight_idx",
            ),
            # Used by the staff list (notifications_for, GET /api/v1/notifications/): its order, read backwards, so a
            # page and its keyset cursor (notifications/pagination.py) read page_size rows instead of sorting them all.
            models.Index(fields=["due_at", "id"], name="notification_list_order_idx"),
            # The planner's diff and the API's participant filter.
            models.Index(fields=["participant", "status"], name="notification_part_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.template} {self.channel} #{self.pk} ({self.status})"


class ReminderPlan(models.Model):
    """When a participant's reminders were last planned, and from what: the periodic sweep (``reconcile_all``)
    re-plans only participants whose planner inputs differ from ``inputs`` (a digest of everything the planner reads,
    taken before it read them) or whose ``recheck_at`` has come (the next instant at which time alone changes the plan).
    Derived bookkeeping, not a clinical record: it can be dropped at any time and the next sweeps re-plan everyone."""

    participant = models.OneToOneField(
        "participants.Participant", primary_key=True, on_delete=models.CASCADE, related_name="reminder_plan"
    )
    inputs = models.CharField(max_length=64)
    recheck_at = models.DateTimeField(null=True, blank=True)
    planned_at = models.DateTimeField()
    # When the sweep last compared this participant's inputs: it starts each run with those it saw longest ago, so a
    # run cut short by its time budget resumes where it stopped.
    examined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Used by reconcile_all: the plans whose time has come.
            models.Index(fields=["recheck_at"], name="reminder_plan_recheck_idx"),
        ]

    def __str__(self) -> str:
        return f"reminder plan of participant #{self.participant_id}"
