"""Studies, sites, staff memberships and participants.

Contact details (PHI) live in their own table so that no export or blinded read can reach them by accident.
The allocation (a participant's arm) lives in exactly one place: AllocationSlot.participant.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from trialsite.roles import Role

code_validator = RegexValidator(r"^[A-Z][A-Z0-9]{1,9}$", "Use 2-10 capital letters or digits, starting with a letter.")


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a key naming a folder of the database (e.g. "America") fails as IsADirectoryError.
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. America/Los_Angeles).") from None


class Study(models.Model):
    code = models.CharField(max_length=10, unique=True, validators=[code_validator])
    title = models.CharField(max_length=200)
    protocol_reference = models.CharField(max_length=200, blank=True, help_text="Registry id or protocol paper.")
    protocol_code = models.CharField(max_length=40, blank=True, help_text="Protocol definition, e.g. samati-v1.")
    target_enrollment = models.PositiveIntegerField(default=0)
    blinded = models.BooleanField(default=False, help_text="Double-blind: only unblinded roles see the arm.")
    unblinded = models.BooleanField(default=False, help_text="Set when an investigator unblinds the study.")
    # Safety configuration (safety app). The medical monitor receives serious adverse events and AESIs that no
    # investigator reviewed within the reporting clock; it is a contact, not necessarily an account of this system.
    medical_monitor_name = models.CharField(max_length=200, blank=True)
    medical_monitor_email = models.EmailField(blank=True, help_text="Escalations of unreviewed serious events go here.")
    # None follows the study's blinding: a blinded study hides adverse events (and later dosing records and vitals)
    # from its independent raters, since an effect profile can reveal the arm. True/False overrides that.
    safety_hidden_from_raters = models.BooleanField(
        null=True, blank=True, help_text="Hide safety data from independent raters (empty: hidden when blinded)."
    )
    start_date = models.DateField(
        null=True,
        blank=True,
        help_text="The study's first day: no clinical date before it is accepted (empty: CLINICAL_DATES_FROM).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def hides_safety_from_raters(self) -> bool:
        return self.blinded if self.safety_hidden_from_raters is None else self.safety_hidden_from_raters


class Arm(models.Model):
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="arms")
    code = models.SlugField(max_length=30)
    label = models.CharField(max_length=100)

    class Meta:
        ordering = ["study", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "code"], name="arm_unique_code")]

    def __str__(self) -> str:
        return f"{self.study.code}:{self.code}"


class Site(models.Model):
    code = models.CharField(max_length=10, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    studies = models.ManyToManyField(Study, related_name="sites", blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class StaffMembership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=30, choices=Role.choices)
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "site", "role"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} {self.role}@{self.site.code}"


class StaffProfile(models.Model):
    """A member of staff's own settings: the language of the staff pages. One row per user, created when the user
    first changes a setting (until then the defaults apply). Changed only through ``services.staff_language_set``."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile")
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


class ParticipantCounter(models.Model):
    """The last number handed out per study and site. Locked with SELECT ... FOR UPDATE while allocating, so
    concurrent creations get consecutive numbers with no gap and no duplicate (a rolled-back creation rolls the
    counter back with it)."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT)
    site = models.ForeignKey(Site, on_delete=models.PROTECT)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "site"], name="counter_unique_study_site")]

    def __str__(self) -> str:
        return f"{self.study_id}/{self.site_id}: {self.last_number}"


class Participant(models.Model):
    class Status(models.TextChoices):
        SCREENING = "screening"
        ELIGIBLE = "eligible"
        SCREEN_FAILED = "screen_failed"
        CONSENTED = "consented"
        ENROLLED = "enrolled"
        RANDOMIZED = "randomized"
        IN_TREATMENT = "in_treatment"
        COMPLETED = "completed"
        WITHDRAWN = "withdrawn"
        LOST_TO_FOLLOW_UP = "lost_to_follow_up"

    class WithdrawalLevel(models.TextChoices):
        STOP_CONTACT = "stop_contact", "Stop contact (keep follow-up data collection by records)"
        STOP_FOLLOW_UP = "stop_follow_up", "Stop follow-up visits"
        STOP_DATA_USE = "stop_data_use", "Stop all further use of data"

    participant_id = models.CharField(max_length=40, unique=True)
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="participants")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="participants")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCREENING)
    stratum = models.CharField(max_length=40, blank=True)
    eligibility_verdict = models.BooleanField(null=True, blank=True, help_text="Computed from the answers.")
    eligibility_override = models.BooleanField(null=True, blank=True, help_text="Investigator override, with a reason.")
    eligibility_override_reason = models.TextField(blank=True)
    needs_reconsent = models.BooleanField(default=False)
    enrolled_at = models.DateTimeField(null=True, blank=True)
    randomized_at = models.DateTimeField(null=True, blank=True)
    withdrawal_level = models.CharField(max_length=20, choices=WithdrawalLevel.choices, blank=True)
    withdrawal_reason = models.TextField(blank=True)
    withdrawal_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["participant_id"]
        constraints = [models.UniqueConstraint(fields=["study", "site", "number"], name="participant_unique_number")]
        indexes = [models.Index(fields=["site", "status"], name="participant_site_status_idx")]

    def __str__(self) -> str:
        return self.participant_id

    @property
    def time_zone(self) -> str:
        contact = getattr(self, "contact", None)
        return (contact.time_zone if contact and contact.time_zone else "") or self.site.time_zone


class ContactDetails(models.Model):
    """PHI. Never exported, never shown to blinded or analysis roles."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        SMS = "sms"

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="contact")
    full_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    preferred_channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    time_zone = models.CharField(max_length=64, blank=True, validators=[validate_time_zone])
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default="en")

    def __str__(self) -> str:
        return f"contact for {self.participant_id}"


class EligibilityCriterion(models.Model):
    class Kind(models.TextChoices):
        INCLUSION = "inclusion"
        EXCLUSION = "exclusion"

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="criteria")
    code = models.CharField(max_length=30)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    text = models.TextField()
    order = models.PositiveIntegerField(default=0)
    # A retired criterion is no longer asked at eligibility; the answers already given to it are kept.
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["study", "order", "code"]
        constraints = [models.UniqueConstraint(fields=["study", "code"], name="criterion_unique_code")]

    def __str__(self) -> str:
        return f"{self.study.code}:{self.code}"

    def is_met(self, answer: bool) -> bool:
        # An inclusion criterion is met by "yes"; an exclusion criterion by "no".
        return answer if self.kind == self.Kind.INCLUSION else not answer


class EligibilityAnswer(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="eligibility_answers")
    criterion = models.ForeignKey(EligibilityCriterion, on_delete=models.PROTECT)
    answer = models.BooleanField()
    answered_at = models.DateTimeField()
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["participant", "criterion"], name="answer_unique")]

    def __str__(self) -> str:
        return f"{self.participant_id}/{self.criterion_id}={self.answer}"


class ConsentDocument(models.Model):
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="consent_documents")
    version = models.CharField(max_length=20)
    title = models.CharField(max_length=200)
    published_at = models.DateTimeField()
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["study", "published_at", "id"]
        get_latest_by = ["published_at", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "version"], name="consent_unique_version")]

    def __str__(self) -> str:
        return f"{self.study.code} consent v{self.version}"


class ConsentRecord(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="consents")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="records")
    signed_at = models.DateTimeField()
    obtained_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["participant", "signed_at", "id"]

    def __str__(self) -> str:
        return f"consent {self.document_id} by participant {self.participant_id}"


class AllocationList(models.Model):
    """A study's randomization list. Only one list is active per study."""

    class Source(models.TextChoices):
        GENERATED = "generated"
        IMPORTED = "imported"

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="allocation_lists")
    source = models.CharField(max_length=10, choices=Source.choices)
    seed = models.CharField(max_length=64, blank=True)
    block_sizes = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study"], condition=models.Q(active=True), name="allocation_one_active_list_per_study"
            )
        ]

    def __str__(self) -> str:
        return f"allocation list {self.pk} ({self.source})"


class AllocationSlot(models.Model):
    allocation_list = models.ForeignKey(AllocationList, on_delete=models.PROTECT, related_name="slots")
    stratum = models.CharField(max_length=40)
    sequence = models.PositiveIntegerField()
    block = models.PositiveIntegerField(default=0)
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="+")
    participant = models.OneToOneField(
        Participant, null=True, blank=True, on_delete=models.PROTECT, related_name="allocation"
    )
    allocated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["allocation_list", "stratum", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["allocation_list", "stratum", "sequence"], name="slot_unique_sequence")
        ]
        indexes = [
            # Used by participant_randomize: the next unused slot of a stratum.
            models.Index(
                fields=["allocation_list", "stratum", "sequence"],
                condition=models.Q(participant__isnull=True),
                name="slot_unused_idx",
            )
        ]

    def __str__(self) -> str:
        return f"slot {self.stratum}#{self.sequence}"


class DemographicFormVersion(models.Model):
    """A loaded demographic form definition (participants.demographics), exactly as it was checked. Never edited: a
    change of categories is a new version, and answers keep the version they were recorded under."""

    code = models.CharField(max_length=40)
    version = models.CharField(max_length=20)
    definition = models.JSONField()
    source = models.CharField(max_length=300, blank=True, help_text="File the definition was loaded from.")
    loaded_at = models.DateTimeField(auto_now_add=True)
    loaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["code", "loaded_at", "id"]
        constraints = [models.UniqueConstraint(fields=["code", "version"], name="demographic_form_unique_version")]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"


class DemographicRecord(models.Model):
    """A participant's baseline demographics: one row per participant, answers by field code (integers: an age in
    years or an option's export code), stamped with the form version they were checked against. Corrections update
    the row; the audit trail keeps every earlier value with its reason."""

    participant = models.OneToOneField(Participant, on_delete=models.PROTECT, related_name="demographics")
    form_code = models.CharField(max_length=40)
    form_version = models.CharField(max_length=20)
    answers = models.JSONField(default=dict)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"demographics of participant {self.participant_id}"


class UnblindingApproval(models.Model):
    """One person's approval to unblind a study. Two approvals by two different people unblind it: one by an
    investigator (or administrator) and one by a holder of the role the study's protocol names
    (``unblinding.second_approver_role``). An approval is withdrawn, never deleted; once the study is unblinded both
    approvals carry ``unblinded_at`` and no further approval is taken."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="unblinding_approvals")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # What the approver held at one of the study's sites when approving.
    as_investigator = models.BooleanField()
    as_second_approver = models.BooleanField()
    second_approver_role = models.CharField(max_length=30, help_text="The role the protocol named at the time.")
    reason = models.TextField()
    approved_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdrawal_reason = models.TextField(blank=True)
    unblinded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "approved_at", "id"]
        constraints = [
            # A person holds at most one standing approval per study: the two approvals are two people.
            models.UniqueConstraint(
                fields=["study", "approved_by"],
                condition=models.Q(withdrawn_at__isnull=True),
                name="unblinding_one_standing_approval_per_person",
            )
        ]

    def __str__(self) -> str:
        return f"unblinding approval {self.pk} of study {self.study_id}"
