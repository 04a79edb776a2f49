"""Adverse events and what hangs off them: follow-up entries and investigator reviews.

An adverse event is never deleted. A correction changes the row through ``adverse_event_correct`` with a reason, and
the audit trail keeps the earlier value (21 CFR 11.10(e): a correction must not obscure what was recorded before).
Follow-up entries and reviews are append-only children, so the event's history reads in order.

The event carries no arm: the safety summary by arm (later) joins the allocation only for roles that may see it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

SERIOUSNESS_CRITERIA = (
    "serious_death",
    "serious_life_threatening",
    "serious_hospitalisation",
    "serious_disability",
    "serious_congenital_anomaly",
    "serious_important_medical_event",
)

# The audit entity types of safety records: left out of a participant's history for a viewer the study hides safety
# data from (registered with audit by SafetyConfig.ready).
SAFETY_ENTITY_TYPES = (
    "adverse_event",
    "adverse_event_follow_up",
    "adverse_event_review",
    "dosing_session",
    "vital_sign",
    "concomitant_medication",
    "medication_override",
    "treatment_guess",
)


class Relatedness(models.TextChoices):
    """A five-level causality scale, used for the drug and for the therapy alike."""

    NOT_RELATED = "not_related", _("Not related")
    UNLIKELY = "unlikely", _("Unlikely related")
    POSSIBLE = "possible", _("Possibly related")
    PROBABLE = "probable", _("Probably related")
    DEFINITE = "definite", _("Definitely related")


class AdverseEvent(models.Model):
    class Expectedness(models.TextChoices):
        EXPECTED = "expected", _("Expected")
        UNEXPECTED = "unexpected", _("Unexpected")

    class ActionTaken(models.TextChoices):
        # CDISC AEACN terms.
        DOSE_NOT_CHANGED = "dose_not_changed", _("Dose not changed")
        DOSE_REDUCED = "dose_reduced", _("Dose reduced")
        DRUG_INTERRUPTED = "drug_interrupted", _("Drug interrupted")
        DRUG_WITHDRAWN = "drug_withdrawn", _("Drug withdrawn")
        NOT_APPLICABLE = "not_applicable", _("Not applicable")
        UNKNOWN = "unknown", _("Unknown")

    class Outcome(models.TextChoices):
        # CDISC AEOUT terms.
        RECOVERED = "recovered", _("Recovered/resolved")
        RECOVERING = "recovering", _("Recovering/resolving")
        NOT_RECOVERED = "not_recovered", _("Not recovered/not resolved")
        RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae", _("Recovered/resolved with sequelae")
        FATAL = "fatal", _("Fatal")
        UNKNOWN = "unknown", _("Unknown")

    participant = models.ForeignKey("participants.Participant", on_delete=models.PROTECT, related_name="adverse_events")
    # The visit (a dosing session, where there is one) during or after which the event began: same participant only.
    visit = models.ForeignKey(
        "scheduling.Visit", null=True, blank=True, on_delete=models.PROTECT, related_name="adverse_events"
    )
    verbatim_term = models.CharField(max_length=300)
    # Entered by the site from its own MedDRA licence: we ship no dictionary, we keep what they coded.
    coded_term_code = models.CharField(max_length=20, blank=True)
    coded_term_text = models.CharField(max_length=200, blank=True)
    onset_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    severity_grade = models.PositiveSmallIntegerField()
    serious_death = models.BooleanField(default=False)
    serious_life_threatening = models.BooleanField(default=False)
    serious_hospitalisation = models.BooleanField(default=False)
    serious_disability = models.BooleanField(default=False)
    serious_congenital_anomaly = models.BooleanField(default=False)
    serious_important_medical_event = models.BooleanField(default=False)
    # Kept equal to "any criterion" by a check constraint: lists filter and index on it.
    serious = models.BooleanField(default=False)
    relatedness_drug = models.CharField(max_length=12, choices=Relatedness.choices)
    relatedness_therapy = models.CharField(max_length=12, choices=Relatedness.choices)
    expectedness = models.CharField(max_length=12, choices=Expectedness.choices)
    action_taken = models.CharField(max_length=20, choices=ActionTaken.choices)
    outcome = models.CharField(max_length=30, choices=Outcome.choices)
    # Codes from the study's AESI list (safety/aesi/): checked against it when written.
    aesi_categories = models.JSONField(default=list, blank=True)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The 24-hour reporting clock: started when the event is (or becomes) serious or of special interest.
    alert_started_at = models.DateTimeField(null=True, blank=True)
    reporting_due_at = models.DateTimeField(null=True, blank=True)
    # Delivery claims (conditional UPDATEs): the investigators' alert and the medical monitor's escalation mail.
    notified_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_notified_at = models.DateTimeField(null=True, blank=True)
    # The first investigator sign-off stops the clock; every review is kept in AdverseEventReview.
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-onset_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(severity_grade__gte=1, severity_grade__lte=5), name="ae_grade_1_to_5"
            ),
            models.CheckConstraint(
                condition=models.Q(serious=False, **{name: False for name in SERIOUSNESS_CRITERIA})
                | models.Q(
                    models.Q(serious=True),
                    models.Q(*[models.Q(**{name: True}) for name in SERIOUSNESS_CRITERIA], _connector=models.Q.OR),
                ),
                name="ae_serious_is_any_criterion",
            ),
            models.CheckConstraint(
                condition=models.Q(resolved_at__isnull=True) | models.Q(resolved_at__gte=models.F("onset_at")),
                name="ae_resolved_after_onset",
            ),
        ]
        indexes = [
            # Used by adverse_events_escalate_due (the beat task): clocks running, not reviewed, not yet escalated.
            models.Index(
                fields=["reporting_due_at"],
                condition=models.Q(reviewed_at__isnull=True, escalated_at__isnull=True, reporting_due_at__isnull=False),
                name="ae_clock_running_idx",
            ),
            models.Index(fields=["participant", "onset_at"], name="ae_participant_onset_idx"),
        ]

    def __str__(self) -> str:
        return f"AE {self.pk} of participant {self.participant_id} (grade {self.severity_grade})"

    @property
    def is_aesi(self) -> bool:
        return bool(self.aesi_categories)

    @property
    def needs_alert(self) -> bool:
        return self.serious or self.is_aesi


class AdverseEventFollowUp(models.Model):
    """A later entry about the event (new information, a change in outcome). Appended, never changed: the event's
    own outcome and resolution follow the latest entry that set them, through the audited follow-up service."""

    event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="follow_ups")
    note = models.TextField()
    outcome = models.CharField(max_length=30, choices=AdverseEvent.Outcome.choices, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["recorded_at", "id"]

    def __str__(self) -> str:
        return f"follow-up {self.pk} of AE {self.event_id}"


class AdverseEventReview(models.Model):
    """An investigator's causality assessment and sign-off. Appended, never changed; the first one stops the
    reporting clock, and a later one (after new information) is a further sign-off, not an edit."""

    event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="reviews")
    causality_drug = models.CharField(max_length=12, choices=Relatedness.choices)
    causality_therapy = models.CharField(max_length=12, choices=Relatedness.choices)
    note = models.TextField(blank=True)
    reviewed_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["reviewed_at", "id"]

    def __str__(self) -> str:
        return f"review {self.pk} of AE {self.event_id}"


class TreatmentGuess(models.Model):
    """A guess of a participant's arm, asked to assess blinding (Bang, Ni & Davis 2004; James et al. 1996).

    Asked after each dosing session (a visit of kind "dosing") and at the protocol's primary endpoint visit, of three
    respondents: the participant (entered by staff on their behalf), the lead therapist and the independent rater.
    One guess per participant, visit and respondent. A guess is never deleted: a correction (``guess_correct``)
    carries a reason and the audit trail keeps the earlier value.

    The row holds no arm and no "correct" flag: whether a guess was right is worked out at read time, and only for a
    role that may see the allocation (``safety.guess_selectors``).

    ``confidence`` is on a 0-100 scale: 0 = a pure guess, 50 = fairly sure, 100 = certain. A "don't know" answer
    records the confidence the respondent gives, usually 0.
    """

    DONT_KNOW = "dont_know"
    CONFIDENCE_MAX = 100

    class Respondent(models.TextChoices):
        PARTICIPANT = "participant", _("Participant")
        LEAD_THERAPIST = "lead_therapist", _("Lead therapist")
        INDEPENDENT_RATER = "independent_rater", _("Independent rater")

    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="treatment_guesses"
    )
    visit = models.ForeignKey("scheduling.Visit", on_delete=models.PROTECT, related_name="treatment_guesses")
    respondent = models.CharField(max_length=20, choices=Respondent.choices)
    # An arm code of the participant's study, or "dont_know" (checked by the service against the study's arms).
    guess = models.CharField(max_length=30)
    confidence = models.PositiveSmallIntegerField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    corrected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["participant", "visit", "respondent"]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "visit", "respondent"], name="guess_one_per_participant_visit_respondent"
            ),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=100), name="guess_confidence_0_to_100"
            ),
            models.CheckConstraint(
                condition=models.Q(respondent__in=["participant", "lead_therapist", "independent_rater"]),
                name="guess_known_respondent",
            ),
        ]

    def __str__(self) -> str:
        return f"guess {self.pk} by {self.respondent} for participant {self.participant_id} at visit {self.visit_id}"


class ConcomitantMedication(models.Model):
    """A medication a participant takes beside the study treatment. Never deleted: a correction changes the row with a
    reason (the audit keeps the earlier value), and a taper is a stop date with an optional note.

    ``medication_class`` is a code of the class list (``safety.medication_classes``); the protocol names the classes
    that keep a participant from a dosing session while taken and until their washout has passed."""

    class Route(models.TextChoices):
        ORAL = "oral", _("Oral")
        SUBLINGUAL = "sublingual", _("Sublingual")
        TOPICAL = "topical", _("Topical")
        TRANSDERMAL = "transdermal", _("Transdermal")
        INHALED = "inhaled", _("Inhaled")
        INTRANASAL = "intranasal", _("Intranasal")
        INJECTION = "injection", _("Injection")
        OTHER = "other", _("Other")

    class DoseUnit(models.TextChoices):
        # A fixed list, not free text: the unit is exported beside the amount and must carry nothing else.
        MG = "mg", "mg"
        MCG = "mcg", "mcg"
        G = "g", "g"
        ML = "ml", "mL"
        IU = "iu", "IU"
        UNITS = "units", _("units")
        TABLETS = "tablets", _("tablets")
        CAPSULES = "capsules", _("capsules")
        PUFFS = "puffs", _("puffs")
        DROPS = "drops", _("drops")
        PATCHES = "patches", _("patches")

    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="concomitant_medications"
    )
    name = models.CharField(max_length=200)
    medication_class = models.CharField(max_length=40)
    # A dose is an amount with its unit ("20" "mg"), or, when it does not fit that, text ("1-2 puffs").
    dose_amount = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    dose_unit = models.CharField(max_length=20, choices=DoseUnit.choices, blank=True)
    dose_text = models.CharField(max_length=100, blank=True)
    frequency = models.CharField(max_length=100, blank=True)
    route = models.CharField(max_length=20, choices=Route.choices, blank=True)
    indication = models.CharField(max_length=300, blank=True)
    start_date = models.DateField()
    # None while ongoing. A taper ends with the stop date; the washout runs from it.
    stop_date = models.DateField(null=True, blank=True)
    taper_note = models.TextField(blank=True)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-start_date", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(stop_date__isnull=True) | models.Q(stop_date__gte=models.F("start_date")),
                name="conmed_stop_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(dose_amount__isnull=True) | models.Q(dose_amount__gt=0),
                name="conmed_dose_positive",
            ),
        ]
        indexes = [models.Index(fields=["participant", "start_date"], name="conmed_participant_start_idx")]

    def __str__(self) -> str:
        return f"medication {self.pk} of participant {self.participant_id} ({self.medication_class})"

    @property
    def ongoing(self) -> bool:
        return self.stop_date is None


class MedicationOverride(models.Model):
    """An investigator's decision that a dosing session goes ahead despite a prohibited medication or an unfinished
    washout, with the reason. Appended, never changed; booking the visit then proceeds and its audit names this."""

    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="medication_overrides"
    )
    visit = models.ForeignKey("scheduling.Visit", on_delete=models.PROTECT, related_name="medication_overrides")
    reason = models.TextField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["recorded_at", "id"]
        indexes = [models.Index(fields=["visit", "recorded_at"], name="medoverride_visit_idx")]

    def __str__(self) -> str:
        return f"medication override {self.pk} for visit {self.visit_id}"


# --- dosing sessions ------------------------------------------------------------------------------------------------

# Plausible ranges of what a vital-signs row may hold, enforced by check constraints (a typing slip such as 1400 for
# 140 is refused, not stored) and equal to the bounds the protocol parser allows a threshold
# (scheduling.protocol.VITAL_RANGES).
VITAL_LIMITS = {
    "systolic_bp": (40, 300),
    "diastolic_bp": (20, 200),
    "heart_rate": (20, 250),
    "temperature_c": (30, 45),
}
VITAL_MEASURES = tuple(VITAL_LIMITS)
# A dose in milligrams: above zero and below anything a session would give.
DOSE_MG_MAX = 1000


class DosingSession(models.Model):
    """The record of one dosing visit (a ``scheduling.Visit`` of kind "dosing"): the kit, the initial and any
    supplemental dose, when the session ran, who was present, and its vital signs (``VitalSign``). Never deleted;
    values once recorded change only through the services with a reason (the audit keeps the earlier value).

    Closing checks the vital-signs grid against the protocol's declared timepoints: a missing timepoint needs a
    reason, kept here and in the audit."""

    participant = models.ForeignKey(
        "participants.Participant", on_delete=models.PROTECT, related_name="dosing_sessions"
    )
    visit = models.OneToOneField("scheduling.Visit", on_delete=models.PROTECT, related_name="dosing_session")
    kit_identifier = models.CharField(max_length=60, blank=True)
    initial_dose_mg = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    initial_dose_at = models.DateTimeField(null=True, blank=True)
    supplemental_dose_mg = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    supplemental_dose_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Who was in the room: staff with an account, and anyone else by name and role (a visiting monitor, a trainee).
    present_staff = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    present_others = models.JSONField(default=list, blank=True)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Why declared timepoints have no vital signs, given when the session was closed without them.
    missing_timepoints_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(initial_dose_mg__isnull=True)
                | models.Q(initial_dose_mg__gt=0, initial_dose_mg__lte=DOSE_MG_MAX),
                name="dosing_initial_dose_plausible",
            ),
            models.CheckConstraint(
                condition=models.Q(supplemental_dose_mg__isnull=True)
                | models.Q(
                    supplemental_dose_mg__gt=0, supplemental_dose_mg__lte=DOSE_MG_MAX, initial_dose_mg__isnull=False
                ),
                name="dosing_supplemental_after_initial",
            ),
            models.CheckConstraint(
                condition=models.Q(supplemental_dose_at__isnull=True)
                | models.Q(initial_dose_at__isnull=False, supplemental_dose_at__gt=models.F("initial_dose_at")),
                name="dosing_supplemental_later",
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True)
                | models.Q(started_at__isnull=False, ended_at__gt=models.F("started_at")),
                name="dosing_ends_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(closed_at__isnull=True) | models.Q(ended_at__isnull=False),
                name="dosing_closed_has_ended",
            ),
        ]
        indexes = [models.Index(fields=["participant", "started_at"], name="dosing_participant_start_idx")]

    def __str__(self) -> str:
        return f"dosing session {self.pk} of participant {self.participant_id} (visit {self.visit_id})"

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class VitalSign(models.Model):
    """One set of vital signs taken during a dosing session, at a declared timepoint (its code) or unscheduled (no
    code). One row per declared timepoint; a correction changes the row with a reason and the audit keeps the
    earlier values."""

    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="vital_signs")
    timepoint_code = models.CharField(max_length=20, blank=True)
    measured_at = models.DateTimeField()
    systolic_bp = models.PositiveSmallIntegerField(null=True, blank=True)
    diastolic_bp = models.PositiveSmallIntegerField(null=True, blank=True)
    heart_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    temperature_c = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    note = models.TextField(blank=True)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["measured_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "timepoint_code"],
                condition=~models.Q(timepoint_code=""),
                name="vital_one_row_per_timepoint",
            ),
            models.CheckConstraint(
                condition=models.Q(systolic_bp__isnull=False)
                | models.Q(diastolic_bp__isnull=False)
                | models.Q(heart_rate__isnull=False)
                | models.Q(temperature_c__isnull=False),
                name="vital_has_a_measure",
            ),
            *(
                models.CheckConstraint(
                    condition=models.Q(**{f"{name}__isnull": True})
                    | models.Q(**{f"{name}__gte": low, f"{name}__lte": high}),
                    name=f"vital_{name}_plausible",
                )
                for name, (low, high) in VITAL_LIMITS.items()
            ),
            models.CheckConstraint(
                condition=models.Q(systolic_bp__isnull=True)
                | models.Q(diastolic_bp__isnull=True)
                | models.Q(systolic_bp__gt=models.F("diastolic_bp")),
                name="vital_systolic_above_diastolic",
            ),
        ]
        indexes = [models.Index(fields=["session", "measured_at"], name="vital_session_measured_idx")]

    def __str__(self) -> str:
        return f"vital signs {self.pk} of session {self.session_id} ({self.timepoint_code or 'unscheduled'})"
