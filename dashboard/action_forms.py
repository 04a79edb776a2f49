"""Forms of the participant page's actions. They parse input only; the services decide what is allowed.

Times are typed as the site's wall-clock time (an ``<input type="datetime-local">``) and turned into an aware instant
in the SITE's time zone here, whatever the browser's or the server's zone: staff book a session at "10:00 in Portland".
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Iterable, Sequence
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from participants.models import ContactDetails, Participant, validate_time_zone

PHONE = r"^\+?[0-9 ()\-]{5,40}$"
LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


def _reason(*, required: bool, help_text: Any = "") -> forms.CharField:
    return forms.CharField(
        label=_("Reason"),
        required=required,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=help_text,
        error_messages={"required": _("Give a reason: it is kept in the audit trail.")},
    )


def _confirm(label: Any) -> forms.BooleanField:
    return forms.BooleanField(
        label=label, required=True, error_messages={"required": _("Tick the box to confirm: this cannot be undone.")}
    )


class SiteLocalDateTimeField(forms.DateTimeField):
    """A wall-clock time at the site, read in the site's zone. A time the clocks skip (spring forward) is refused
    rather than silently moved by an hour."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, *, zone: zoneinfo.ZoneInfo, **kwargs: Any) -> None:
        self.zone = zone
        kwargs.setdefault("help_text", _("Site time (%(zone)s).") % {"zone": zone.key})
        super().__init__(input_formats=LOCAL_FORMATS, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        return value

    def to_python(self, value: Any) -> dt.datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            naive = value.replace(tzinfo=None)
        else:
            text = str(value).strip()
            for fmt in LOCAL_FORMATS:
                try:
                    naive = dt.datetime.strptime(text, fmt)  # noqa: DTZ007 - a wall-clock time, given its zone below
                    break
                except ValueError:
                    continue
            else:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
        aware = naive.replace(tzinfo=self.zone)
        if aware.astimezone(dt.UTC).astimezone(self.zone).replace(tzinfo=None) != naive:
            raise ValidationError(
                _("%(time)s does not exist in %(zone)s: the clocks change then.")
                % {"time": naive.strftime("%Y-%m-%d %H:%M"), "zone": self.zone.key},
                code="nonexistent",
            )
        return aware


class ParticipantCreateForm(forms.Form):
    stratum = forms.CharField(
        label=_("Stratum"), max_length=40, required=False, help_text=_("Leave empty to randomize within the site.")
    )

    def __init__(self, *args: Any, sites: Sequence[Any], contact: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        studies = sorted({study.code for s in sites for study in s.studies.all()})
        self.fields["site"] = forms.ChoiceField(
            label=_("Site"), choices=[(s.code, f"{s.code} · {s.name}") for s in sites]
        )
        self.fields["study"] = forms.ChoiceField(label=_("Study"), choices=[(code, code) for code in studies])
        if contact:
            self.fields["full_name"] = forms.CharField(label=_("Name"), max_length=200, required=False)
            self.fields["email"] = forms.EmailField(label=_("E-mail"), required=False)
            self.fields["phone"] = forms.RegexField(
                PHONE,
                label=_("Phone"),
                required=False,
                error_messages={"invalid": _("Enter a phone number: digits, spaces, + ( ) -.")},
            )
            self.fields["preferred_channel"] = forms.ChoiceField(
                label=_("Preferred channel"), choices=ContactDetails.Channel.choices, initial="email"
            )
            self.fields["time_zone"] = forms.CharField(
                label=_("Time zone"),
                max_length=64,
                required=False,
                help_text=_("e.g. America/New_York; empty: the site's time zone."),
            )
            self.fields["language"] = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES, initial="en")

    def clean_time_zone(self) -> str:
        value: str = self.cleaned_data.get("time_zone", "").strip()
        if value:
            validate_time_zone(value)
        return value

    def contact(self) -> dict[str, Any] | None:
        names = ("full_name", "email", "phone", "preferred_channel", "time_zone", "language")
        if "full_name" not in self.fields:
            return None
        return {name: self.cleaned_data[name] for name in names}


ANSWER_CHOICES = [("", _("Not answered")), ("yes", _("Yes")), ("no", _("No"))]
OVERRIDE_CHOICES = [
    ("", _("Keep the computed verdict")),
    ("eligible", _("Eligible")),
    ("ineligible", _("Not eligible")),
]


class EligibilityForm(forms.Form):
    """One question per current criterion; answering only some of them is allowed (the verdict waits)."""

    def __init__(self, *args: Any, criteria: Iterable[Any], answers: dict[str, bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.codes: list[str] = []
        for criterion in criteria:
            name = f"criterion_{criterion.code}"
            self.codes.append(criterion.code)
            given = answers.get(criterion.code)
            self.fields[name] = forms.ChoiceField(
                label=f"{criterion.text} ({criterion.code})",
                choices=ANSWER_CHOICES,
                required=False,
                initial="" if given is None else ("yes" if given else "no"),
            )
        self.fields["override"] = forms.ChoiceField(
            label=_("Override the verdict"),
            choices=OVERRIDE_CHOICES,
            required=False,
            help_text=_("An investigator's decision against the computed verdict needs a reason."),
        )
        self.fields["reason"] = _reason(
            required=False, help_text=_("Required to change an answer already recorded or to override the verdict.")
        )

    def answers(self) -> dict[str, bool]:
        return {
            code: self.cleaned_data[f"criterion_{code}"] == "yes"
            for code in self.codes
            if self.cleaned_data.get(f"criterion_{code}")
        }

    def override(self) -> bool | None:
        value = self.cleaned_data.get("override")
        return None if not value else value == "eligible"

    def field_for(self, key: str) -> str | None:
        if key in self.codes:
            return f"criterion_{key}"
        return {"reason": "reason", "override": "override"}.get(key)


class ConsentForm(forms.Form):
    def __init__(self, *args: Any, versions: Sequence[str], zone: zoneinfo.ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"] = forms.ChoiceField(
            label=_("Consent version"),
            choices=[(v, v) for v in versions],
            initial=versions[-1] if versions else None,
            help_text=_("The last published version is the current one."),
        )
        self.fields["signed_at"] = SiteLocalDateTimeField(label=_("Signed at"), zone=zone)


class EnrollForm(forms.Form):
    pass


class RandomizeForm(forms.Form):
    stratum = forms.CharField(
        label=_("Stratum"),
        max_length=40,
        required=False,
        help_text=_("Leave empty for the participant's stratum (or the site's)."),
    )
    confirm = _confirm(_("I confirm the randomization: an allocation cannot be undone."))


class WithdrawForm(forms.Form):
    level = forms.ChoiceField(
        label=_("Level"),
        choices=[
            (Participant.WithdrawalLevel.STOP_CONTACT, _("Stop contact")),
            (Participant.WithdrawalLevel.STOP_FOLLOW_UP, _("Stop follow-up visits")),
            (Participant.WithdrawalLevel.STOP_DATA_USE, _("Stop all further use of data")),
        ],
        widget=forms.RadioSelect,
    )
    date = forms.DateField(label=_("Date of withdrawal"), widget=forms.DateInput(attrs={"type": "date"}))
    reason = _reason(required=True)
    confirm = _confirm(_("I confirm the withdrawal: it cannot be undone."))


class ScheduleForm(forms.Form):
    def __init__(
        self,
        *args: Any,
        zone: zoneinfo.ZoneInfo,
        rooms: Sequence[str],
        staff: Sequence[tuple[str, str]],
        reschedule: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["start"] = SiteLocalDateTimeField(label=_("Start"), zone=zone)
        self.fields["end"] = SiteLocalDateTimeField(
            label=_("End"),
            zone=zone,
            required=False,
            help_text=_("Site time (%(zone)s). Empty: the visit's usual duration.") % {"zone": zone.key},
        )
        self.fields["room"] = forms.ChoiceField(
            label=_("Room"), choices=[("", _("No room"))] + [(r, r) for r in rooms], required=False
        )
        self.fields["staff"] = forms.MultipleChoiceField(
            label=_("Staff"), choices=list(staff), required=False, widget=forms.CheckboxSelectMultiple
        )
        # Moving a booked visit changes existing data: the reason goes to the audit trail.
        self.fields["reason"] = _reason(required=reschedule)


class CompleteForm(forms.Form):
    def __init__(self, *args: Any, zone: zoneinfo.ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["occurred_at"] = SiteLocalDateTimeField(label=_("Took place at"), zone=zone)
        self.fields["reason"] = _reason(required=False)


class MissForm(forms.Form):
    reason = _reason(required=True)
    confirm = _confirm(_("I confirm the visit did not take place: this cannot be undone."))


class CancelForm(forms.Form):
    reason = _reason(required=True)
    confirm = _confirm(_("I confirm the cancellation: this cannot be undone."))


class OpenEarlyForm(forms.Form):
    reason = _reason(required=True)


def answer_value(text: str) -> Any:
    """A typed answer as the API would receive it in JSON: 3 is a number, true a boolean, anything else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class CorrectForm(forms.Form):
    def __init__(self, *args: Any, items: Sequence[tuple[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["item"] = forms.ChoiceField(
            label=_("Item"),
            choices=[(code, f"{code} = {'—' if value is None else value}") for code, value in items],
            help_text=_("The item code and the value stored now."),
        )
        self.fields["value"] = forms.CharField(label=_("Corrected value"), max_length=2000, strip=True)
        self.fields["reason"] = _reason(required=True)

    def answers(self) -> dict[str, Any]:
        return {self.cleaned_data["item"]: answer_value(self.cleaned_data["value"])}


class DemographicsForm(forms.Form):
    """The demographic form's fields (data, not code), labelled in the viewer's language; each may stay unrecorded."""

    def __init__(self, *args: Any, fields: Sequence[dict[str, Any]], answers: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for f in fields:
            name = f"field_{f['code']}"
            initial = answers.get(f["code"])
            if f["type"] == "integer":
                self.fields[name] = forms.IntegerField(
                    label=f["label"], required=False, min_value=f["min"], max_value=f["max"], initial=initial
                )
            else:
                choices = [("", _("Not recorded"))] + [(str(o["value"]), o["label"]) for o in f["options"]]
                self.fields[name] = forms.TypedChoiceField(
                    label=f["label"], required=False, choices=choices, coerce=int, empty_value=None, initial=initial
                )
        self.fields["reason"] = _reason(required=False, help_text=_("Needed to change a value already recorded."))

    def answers(self) -> dict[str, int | None]:
        return {name.removeprefix("field_"): v for name, v in self.cleaned_data.items() if name.startswith("field_")}
