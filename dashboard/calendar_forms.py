"""Forms of the dosing calendar (/calendar/). They parse input only: whether a session may be booked, a room created
or retired is the scheduling services' answer (and participants.access's, which they ask)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dashboard.forms import LongSelect
from scheduling.models import Room, Visit

# What a datetime-local input sends (browsers leave the seconds out unless a step asks for them).
LOCAL_INPUT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")


def site_instant(naive: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """The instant a wall-clock time names in ``zone``; None when the clock skips it (the spring change). A time the
    autumn change repeats is read as its first occurrence (``fold=0``)."""
    aware = naive.replace(tzinfo=zone)
    if aware.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != naive:
        return None
    return aware


class BookingForm(forms.Form):
    """A dosing session: which visit, room, therapists and the local start. The end follows from the visit's
    duration in the protocol (the service sets it)."""

    # A site's dosing visits waiting to be booked run to thousands in a large study.
    visit = forms.ChoiceField(label=gettext_lazy("Dosing visit"), widget=LongSelect)
    room = forms.ChoiceField(label=gettext_lazy("Room"))
    therapists = forms.MultipleChoiceField(
        label=gettext_lazy("Therapists"), widget=forms.CheckboxSelectMultiple, required=False
    )
    start = forms.CharField(
        label=gettext_lazy("Start (site time)"),
        max_length=19,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 40}),
        help_text=gettext_lazy("Required to move a session that is already booked."),
    )
    outside_window = forms.BooleanField(label=gettext_lazy("Book outside the window"), required=False)

    def __init__(
        self,
        data: object = None,
        *,
        visits: Sequence[Visit],
        rooms: Sequence[Room],
        therapists: Sequence[str],
        zone: zoneinfo.ZoneInfo,
        visit_labels: dict[int, str],
    ) -> None:
        super().__init__(data)  # type: ignore[arg-type]
        self.zone = zone
        self.visits = {str(v.pk): v for v in visits}
        self.rooms = {str(r.pk): r for r in rooms}
        self._choose("visit", [("", _("Choose a visit")), *((str(v.pk), visit_labels[v.pk]) for v in visits)])
        self._choose("room", [("", _("Choose a room")), *((str(r.pk), r.name) for r in rooms)])
        self._choose("therapists", [(name, name) for name in therapists])

    def _choose(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean_start(self) -> dt.datetime:
        text = self.cleaned_data["start"].strip()
        for fmt in LOCAL_INPUT_FORMATS:
            try:
                naive = dt.datetime.strptime(text, fmt)  # noqa: DTZ007  (a wall-clock time of the site, zoned below)
            except ValueError:
                continue
            instant = site_instant(naive, self.zone)
            if instant is None:
                raise forms.ValidationError(
                    _("This time does not exist in %(zone)s: the clocks change then.") % {"zone": self.zone.key}
                )
            return instant
        raise forms.ValidationError(_("Enter a date and time, such as 2026-03-30T09:00."))

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        visit = self.chosen_visit()
        if visit is not None and visit.status == Visit.Status.SCHEDULED and not (data.get("reason") or "").strip():
            self.add_error("reason", _("Give a reason for moving a booked session."))
        return data

    def chosen_visit(self) -> Visit | None:
        return self.visits.get(str(self.cleaned_data.get("visit", "")))

    def chosen_room(self) -> Room | None:
        return self.rooms.get(str(self.cleaned_data.get("room", "")))


class RoomCreateForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Room name"), max_length=Room.NAME_MAX_LENGTH)
    overnight_capable = forms.BooleanField(label=gettext_lazy("Takes overnight stays"), required=False)


class RoomRetireForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason for retiring"), max_length=500, widget=forms.Textarea(attrs={"rows": 2, "cols": 30})
    )
    confirm = forms.BooleanField(
        label=gettext_lazy("I understand the room takes no new bookings once retired"),
        error_messages={"required": gettext_lazy("Confirm that the room is to be retired.")},
    )
