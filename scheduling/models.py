"""Protocol versions, participant schedules, visits, dosing-session bookings, rooms and protocol deviations.

Dates of the plan (target, window) are local calendar dates in the participant's time zone; instants (scheduled
slot, occurred_at, bookings) are aware datetimes stored in UTC.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models

from scheduling import hooks
from scheduling.protocol import VISIT_KINDS, Protocol, parse_protocol

_parsed: dict[tuple[int, str], Protocol] = {}


class ProtocolVersion(models.Model):
    """A validated protocol definition, exactly as it was checked. Never edited in place: a change is a new version,
    because participants stay on the version they started under (an ethics committee approved it)."""

    code = models.CharField(max_length=60)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=300)
    definition = models.JSONField()
    source = models.CharField(max_length=300, blank=True, help_text="File the definition was loaded from.")
    loaded_at = models.DateTimeField(auto_now_add=True)
    loaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["code", "version"]
        get_latest_by = "version"
        constraints = [models.UniqueConstraint(fields=["code", "version"], name="protocol_unique_code_version")]

    def __str__(self) -> str:
        return f"{self.code} v{self.version}"

    def protocol(self) -> Protocol:
        # Versions are immutable, so the parsed form can be cached per row (keyed with the code so that a reused pk in
        # a rolled-back test transaction cannot serve another protocol).
        key = (self.pk, self.code)
        if self.pk is None or key not in _parsed:
            # A stored version was checked against the whole library (site instruments included) when it was loaded.
            parsed = parse_protocol(
                self.definition, known_instruments=hooks.known_instrument_codes(stored=True), source=str(self)
            )
            if self.pk is None:
                return parsed
            _parsed[key] = parsed
        return _parsed[key]


class Room(models.Model):
    """A room of a site that dosing sessions book. Retired rooms stay (bookings and visits point at them) but take no
    new bookings; ``active`` = False takes a room out of use for a while."""

    NAME_MAX_LENGTH = 100

    site = models.ForeignKey("participants.Site", on_delete=models.PROTECT, related_name="rooms")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    overnight_capable = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["site", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="room_unique_name_per_site")]

    def __str__(self) -> str:
        return f"{self.site.code}:{self.name}"


class ParticipantSchedule(models.Model):
    """Which protocol version a participant follows and their day-0 dates (local). The arm is NOT stored here: the
    allocation lives in one place only (AllocationSlot), so a blinded read of schedules can never reveal it."""

    participant = models.OneToOneField("participants.Participant", on_delete=models.PROTECT, related_name="schedule")
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="schedules")
    enrollment_date = models.DateField(null=True, blank=True)
    randomization_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"schedule of participant {self.participant_id}"

    def day0_dates(self) -> dict[str, dt.date]:
        out: dict[str, dt.date] = {}
        if self.enrollment_date:
            out["enrollment"] = self.enrollment_date
        if self.randomization_date:
            out["randomization"] = self.randomization_date
        return out


class Visit(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned"
        SCHEDULED = "scheduled"
        COMPLETED = "completed"
        MISSED = "missed"
        CANCELLED = "cancelled"

    KIND_CHOICES = [(k, k.replace("_", " ")) for k in VISIT_KINDS]

    participant = models.ForeignKey("participants.Participant", on_delete=models.PROTECT, related_name="visits")
    # The participant's site and study, copied when the visit is created (a participant never changes either): the
    # home page's worklists scope, count and hide visits from the visit table and its indexes alone, without joining
    # every candidate row to its participant. tests/scheduling/test_visit_scope_copy.py holds them to the participant's.
    site = models.ForeignKey("participants.Site", on_delete=models.PROTECT, related_name="+", db_index=False)
    study = models.ForeignKey("participants.Study", on_delete=models.PROTECT, related_name="+", db_index=False)
    protocol_version = models.ForeignKey(
        ProtocolVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="visits"
    )
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    unscheduled = models.BooleanField(default=False, help_text="Added outside the protocol plan; has no window.")
    dosing_number = models.PositiveSmallIntegerField(null=True, blank=True)
    optional = models.BooleanField(default=False)
    instruments = models.JSONField(default=list, blank=True)
    duration_minutes = models.PositiveIntegerField(default=60)
    staff_required = models.PositiveSmallIntegerField(default=0)
    overnight = models.BooleanField(default=False)
    target_date = models.DateField(null=True, blank=True)
    window_start = models.DateField(null=True, blank=True)
    window_end = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLANNED)
    scheduled_start = models.DateTimeField(null=True, blank=True)
    scheduled_end = models.DateTimeField(null=True, blank=True)
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.PROTECT, related_name="visits")
    staff = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="scheduled_visits")
    occurred_at = models.DateTimeField(null=True, blank=True)
    missed_reason = models.TextField(blank=True)
    cancel_reason = models.TextField(blank=True)
    needs_reschedule = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["participant", "target_date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "code"], condition=models.Q(unscheduled=False), name="visit_unique_code"
            ),
            models.CheckConstraint(
                condition=models.Q(scheduled_start__isnull=True)
                | models.Q(scheduled_end__isnull=True)
                | models.Q(scheduled_end__gt=models.F("scheduled_start")),
                name="visit_slot_ends_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(unscheduled=True)
                | models.Q(window_start__lte=models.F("target_date"), window_end__gte=models.F("target_date")),
                name="visit_target_inside_window",
            ),
        ]
        indexes = [
            # The site visit list filters by status and orders by date.
            models.Index(fields=["status", "target_date"], name="visit_status_target_idx"),
            models.Index(fields=["scheduled_start"], name="visit_scheduled_start_idx"),
            # A site's visit list (GET /visits/?site=): read in its order (target date, then id), a page at a time;
            # its count and the blinded view's filter (code, study, version, participant) from the index alone.
            models.Index(
                fields=["site", "target_date", "id"],
                include=["code", "study", "protocol_version", "unscheduled", "participant"],
                name="visit_site_target_idx",
            ),
            # The home page's closing and overdue worklists: visits not yet done, by the end of their window (the page's
            # rows, read in this order until the page is full).
            models.Index(
                fields=["window_end"],
                condition=models.Q(status__in=["planned", "scheduled"]),
                name="visit_open_window_end_idx",
            ),
            # The same lists' counts, per site, from the index alone (the code and study decide the blinded views'
            # arm-only visits; see scheduling.selectors.arm_only_visits_hidden).
            models.Index(
                fields=["site", "window_end"],
                include=["code", "study"],
                condition=models.Q(status__in=["planned", "scheduled"]),
                name="visit_open_site_window_end_idx",
            ),
            # The visits-today and dosing lists' counts, per site, by start.
            models.Index(
                fields=["site", "scheduled_start"],
                include=["status", "kind", "code", "study"],
                condition=models.Q(scheduled_start__isnull=False),
                name="visit_site_start_idx",
            ),
            # The home page's "visits that need rescheduling": a handful of flagged visits among all.
            models.Index(
                fields=["target_date"],
                condition=models.Q(needs_reschedule=True, status__in=["planned", "scheduled"]),
                name="visit_needs_reschedule_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id}:{self.code}"


class Booking(models.Model):
    """A therapist or room held for a visit's slot. On PostgreSQL an exclusion constraint (migration 0002) refuses two
    overlapping bookings of one resource, so two coordinators booking the same therapist at once cannot both win:
    the check in the service gives the friendly message, the constraint closes the race."""

    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="bookings")
    resource = models.CharField(max_length=40, help_text="'room:<id>' or 'user:<id>'")
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.PROTECT, related_name="bookings")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="bookings"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="booking_positive"),
        ]
        indexes = [models.Index(fields=["resource", "starts_at"], name="booking_resource_start_idx")]

    def __str__(self) -> str:
        return f"{self.resource} {self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%H:%M}"


class ProtocolDeviation(models.Model):
    class Type(models.TextChoices):
        OUT_OF_WINDOW = "out_of_window"
        MISSED_VISIT = "missed_visit"
        PROCEDURE = "procedure"
        ELIGIBILITY = "eligibility"
        OTHER = "other"

    participant = models.ForeignKey("participants.Participant", on_delete=models.PROTECT, related_name="deviations")
    visit = models.ForeignKey(Visit, null=True, blank=True, on_delete=models.PROTECT, related_name="deviations")
    type = models.CharField(max_length=20, choices=Type.choices)
    description = models.TextField()
    days_outside = models.IntegerField(
        null=True, blank=True, help_text="Out of window: negative = early, positive = late, in local days."
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        ordering = ["recorded_at", "id"]

    def __str__(self) -> str:
        return f"{self.type} for participant {self.participant_id}"
