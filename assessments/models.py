"""Instrument versions, administrations due per visit, participant links, responses (raw answers), scores and
safety alerts.

Raw answers are the record (one Answer row per item, queryable by item code for exports); scores are derived, stamped
with the instrument and scoring versions, and recomputable (``manage.py rescore``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class InstrumentVersion(models.Model):
    """A validated instrument definition loaded by a site (e.g. with its licensed item text). Never edited in place: a
    change is a new version, because every stored score names the version it was computed with."""

    code = models.CharField(max_length=40)
    version = models.CharField(max_length=20)
    definition = models.JSONField()
    source = models.CharField(max_length=300, blank=True, help_text="File the definition was loaded from.")
    loaded_at = models.DateTimeField(auto_now_add=True)
    loaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["code", "loaded_at", "id"]
        constraints = [models.UniqueConstraint(fields=["code", "version"], name="instrument_unique_code_version")]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"


class InstrumentText(models.Model):
    """A loaded text pack: a site's licensed or validated wording of one instrument version in one language
    (``assessments.text_packs``). Never edited or deleted: new wording is a new ``version`` of the pack, which
    supersedes the earlier one for questionnaires not yet started, while the earlier one stays readable for the
    administrations and responses answered under it."""

    instrument_code = models.CharField(max_length=40)
    instrument_version = models.CharField(max_length=20)
    language = models.CharField(max_length=10)
    version = models.CharField(max_length=20)
    content = models.JSONField(help_text="The pack as loaded (see assessments/instrument_text_schema.json).")
    placeholder = models.BooleanField(default=False, help_text="A demo stand-in built from the neutral labels.")
    source = models.CharField(max_length=300, blank=True, help_text="File the pack was loaded from.")
    loaded_at = models.DateTimeField(auto_now_add=True)
    loaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["instrument_code", "language", "loaded_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instrument_code", "instrument_version", "language", "version"],
                name="instrument_text_unique_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.instrument_code} v{self.instrument_version} {self.language} text v{self.version}"


class Administration(models.Model):
    """One instrument due at one visit. Self-report ones are answered through a participant link between opens_at and
    closes_at (the visit window in the participant's time zone); clinician ones are entered by staff."""

    class Status(models.TextChoices):
        DUE = "due"
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"
        EXPIRED = "expired"
        NOT_APPLICABLE = "not_applicable"

    class Respondent(models.TextChoices):
        SELF = "self"
        CLINICIAN = "clinician"

    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="administrations"
    )
    visit = models.ForeignKey("scheduling.Visit", on_delete=models.PROTECT, related_name="administrations")
    instrument_code = models.CharField(max_length=40)
    respondent = models.CharField(max_length=10, choices=Respondent.choices)
    order = models.PositiveSmallIntegerField(default=0)
    from_protocol = models.BooleanField(default=True, help_text="False when staff added it to the visit.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DUE)
    opens_at = models.DateTimeField(null=True, blank=True)
    closes_at = models.DateTimeField(null=True, blank=True)
    opened_early_at = models.DateTimeField(null=True, blank=True)
    # Partial answers saved as the participant goes (never scored): {item_code: value}.
    draft_answers = models.JSONField(default=dict, blank=True)
    draft_saved_at = models.DateTimeField(null=True, blank=True)
    # The text pack the participant answers under: pinned when the first answer is saved, so the wording never
    # changes under a participant half-way through, and a response can be traced to the words it answered. Null for
    # the wording of the definition itself (the shipped PCL-5) and for staff entry.
    text_pack = models.ForeignKey(
        InstrumentText, null=True, blank=True, on_delete=models.PROTECT, related_name="administrations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["visit", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["visit", "instrument_code"], name="administration_unique_per_visit"),
        ]
        indexes = [
            models.Index(fields=["participant", "status"], name="administration_part_status_idx"),
            # The home page's questionnaire lists: self-report questionnaires not done whose window holds "now".
            models.Index(
                fields=["closes_at", "opens_at"],
                include=["visit"],  # the lists read the visit from the index alone
                condition=models.Q(respondent="self") & ~models.Q(status__in=["completed", "not_applicable"]),
                name="administration_open_self_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_code} at visit {self.visit_id}"


class ParticipantLink(models.Model):
    """A private link to a visit's self-report instruments. Only the SHA-256 of the token is stored: a copy of the
    database (backup, replica, export) cannot be turned into working links."""

    token_hash = models.CharField(max_length=64, unique=True)
    participant = models.ForeignKey("participants.Participant", on_delete=models.PROTECT, related_name="links")
    visit = models.ForeignKey("scheduling.Visit", on_delete=models.PROTECT, related_name="links")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=200, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"link {self.pk} for visit {self.visit_id}"


class Response(models.Model):
    """A submitted (complete) administration. One per administration, enforced by the database, so two concurrent
    submits of the same questionnaire can never both store a response."""

    class Source(models.TextChoices):
        PARTICIPANT_LINK = "participant_link"
        STAFF = "staff"

    administration = models.OneToOneField(Administration, on_delete=models.PROTECT, related_name="response")
    participant = models.ForeignKey("participants.Participant", on_delete=models.PROTECT, related_name="responses")
    visit = models.ForeignKey("scheduling.Visit", on_delete=models.PROTECT, related_name="responses")
    instrument_code = models.CharField(max_length=40)
    instrument_version = models.CharField(max_length=20)
    source = models.CharField(max_length=20, choices=Source.choices)
    link = models.ForeignKey(ParticipantLink, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The text pack the participant was shown (copied from the administration at submit).
    text_pack = models.ForeignKey(InstrumentText, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["submitted_at", "id"]
        indexes = [models.Index(fields=["participant", "instrument_code"], name="response_part_instr_idx")]

    def __str__(self) -> str:
        return f"{self.instrument_code} response {self.pk}"

    def answers_dict(self) -> dict[str, int | None]:
        return {a.item_code: a.value for a in self.answers.all()}


class Answer(models.Model):
    """One item's raw answer; ``value`` is None for an item left unanswered or hidden by branching."""

    response = models.ForeignKey(Response, on_delete=models.PROTECT, related_name="answers")
    item_code = models.CharField(max_length=40)
    value = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["response", "id"]
        constraints = [models.UniqueConstraint(fields=["response", "item_code"], name="answer_unique_item")]
        indexes = [models.Index(fields=["item_code"], name="answer_item_idx")]

    def __str__(self) -> str:
        return f"{self.item_code}={self.value}"


class Score(models.Model):
    """A derived value: a scale (``value``, double precision, never rounded) or a flag (numeric in ``value`` or a
    level such as C-SSRS risk in ``text_value``)."""

    class Kind(models.TextChoices):
        SCALE = "scale"
        FLAG = "flag"

    response = models.ForeignKey(Response, on_delete=models.PROTECT, related_name="scores")
    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.SCALE)
    code = models.CharField(max_length=60)
    value = models.FloatField(null=True, blank=True)
    text_value = models.CharField(max_length=40, blank=True)
    complete = models.BooleanField()
    prorated = models.BooleanField(default=False)
    method = models.CharField(max_length=60, blank=True)
    band = models.CharField(max_length=60, blank=True)
    instrument_version = models.CharField(max_length=20)
    scoring_version = models.CharField(max_length=20)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["response", "kind", "id"]
        constraints = [models.UniqueConstraint(fields=["response", "kind", "code"], name="score_unique_code")]

    def __str__(self) -> str:
        return f"{self.code}={self.value if self.text_value == '' else self.text_value}"


class SafetyAlert(models.Model):
    class Severity(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"

    class Source(models.TextChoices):
        """What raised the alert. Questionnaire alerts come from a response's safety rules; the safety app raises
        the others (a vital sign over a dosing-session threshold, a serious adverse event or an AESI) through
        ``assessments.services.safety_alert_raise_for``, so that every alert joins one list."""

        QUESTIONNAIRE = "questionnaire"
        VITAL_SIGN = "vital_sign"
        ADVERSE_EVENT = "adverse_event"

    participant = models.ForeignKey("participants.Participant", on_delete=models.PROTECT, related_name="safety_alerts")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.QUESTIONNAIRE)
    # The id of the row that raised it in its source's table (the response, the vital sign, the adverse event).
    source_id = models.PositiveBigIntegerField()
    response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.PROTECT, related_name="safety_alerts"
    )
    rule_code = models.CharField(max_length=60)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    message = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class NotifiedTo(models.TextChoices):
        """Who the alert's first mail reached (blank: not sent yet, or never mailed: not high, or self-escalating)."""

        INVESTIGATORS = "investigators"
        # No investigator at the site has an e-mail address: the mail went to the site's coordinators instead.
        COORDINATORS = "coordinators"
        # Nobody at the site could be mailed: the alert waits on the dashboard and is counted by /readyz.
        NOBODY = "nobody"

    notified_at = models.DateTimeField(null=True, blank=True)
    notified_to = models.CharField(max_length=20, choices=NotifiedTo.choices, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledgement_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id", "rule_code"], name="alert_unique_rule_per_source"),
            # A questionnaire alert names its response (and the source id is that response's); no other alert does.
            models.CheckConstraint(
                condition=models.Q(source="questionnaire", response__isnull=False, source_id=models.F("response_id"))
                | (~models.Q(source="questionnaire") & models.Q(response__isnull=True)),
                name="alert_response_iff_questionnaire",
            ),
        ]
        indexes = [
            # Used by safety_alerts_escalate_due (the beat task): open alerts not yet escalated, oldest first.
            models.Index(
                fields=["created_at"],
                condition=models.Q(acknowledged_at__isnull=True, escalated_at__isnull=True),
                name="alert_open_unescalated_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.severity} alert {self.rule_code} for participant {self.participant_id}"
