"""The audit trail: append-only, hash-chained.

21 CFR 11.10(e): a change must not obscure the earlier value. Each row holds one field's old and new value, who, when
(UTC) and why. PostgreSQL triggers refuse DELETE, TRUNCATE and every UPDATE but one (migrations 0002, 0003, 0006): the
sequencer's, which gives a committed row its place in the chain (``seq``, ``prev_hash``, ``hash``) once and changes
nothing else. Each row carries a keyed MAC of its content from its INSERT on, and once chained the keyed hash of its
id, its content and the previous row's hash, so a row altered, removed or reordered behind the application's back is
caught (``manage.py audit_verify``). audit/sequencer.py explains why rows are chained after commit.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        TRANSITION = "transition"
        DELETE = "delete"
        LOGIN = "login"
        LOGIN_FAILED = "login_failed"
        LOGOUT = "logout"
        ROLE_CHANGE = "role_change"
        EXPORT = "export"
        ACTION = "action"

    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Kept as text too: the row must stay readable even if the account is later renamed.
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    entity_type = models.CharField(max_length=60)
    entity_id = models.CharField(max_length=64, blank=True)
    # Pseudonymous participant id (e.g. SAM-PDX-007) so a participant's history is one indexed read.
    participant_id = models.CharField(max_length=40, blank=True, db_index=True)
    site_code = models.CharField(max_length=20, blank=True)
    field = models.CharField(max_length=80, blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Sensitivity(models.TextChoices):
        NONE = "", "none"
        # Reveals the treatment allocation: never shown to blinded roles.
        ALLOCATION = "allocation"
        # Contact details (PHI): shown only to roles that may contact participants.
        CONTACT = "contact"

    sensitivity = models.CharField(max_length=12, choices=Sensitivity.choices, blank=True, default="")
    # Written by the service with the row: HMAC of the content under the audit key (audit.chain.content_mac).
    mac = models.CharField(max_length=64, blank=True, default="")
    # The row's place in the chain (1, 2, 3, ... in the order the sequencer chained them) and its chain hashes; NULL
    # until the sequencer has chained the committed row (moments after its commit). NULL, not "", because the unique
    # constraints must allow any number of rows waiting for their place.
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    prev_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)  # noqa: DJ001

    # Not stored: set by audit.selectors.participant_history when the viewer may not see this row's values.
    redacted = False

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["entity_type", "entity_id"], name="audit_entity_idx"),
            # The sequencer's queue: the rows still waiting for their place (a handful at any moment), in id order.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="audit_unchained_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%dT%H:%M:%SZ} {self.actor_username} {self.action} {self.entity_type}"
