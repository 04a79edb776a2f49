"""The forms of the dosing-day page: open the session, record the doses, record a vital sign at a timepoint,
correct one with a reason, and close the session. Shapes only: the dosing services validate the session as a whole
and their field messages land on these fields."""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from dashboard.action_forms import SiteLocalDateTimeField
from safety.models import DOSE_MG_MAX, VITAL_LIMITS

_NUMBER = {"inputmode": "numeric"}
_DECIMAL = {"inputmode": "decimal"}


def _measure(label: Any, name: str) -> forms.IntegerField:
    low, high = VITAL_LIMITS[name]
    return forms.IntegerField(
        label=label, required=False, min_value=low, max_value=high, widget=forms.NumberInput(attrs=_NUMBER)
    )


class OpenForm(forms.Form):
    kit_identifier = forms.CharField(label=_("Kit identifier"), max_length=60, required=False)
    present_staff = forms.MultipleChoiceField(
        label=_("Staff present"), required=False, widget=forms.CheckboxSelectMultiple, choices=()
    )
    present_others = forms.CharField(
        label=_("Others present"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One person a line: name, role (a visiting monitor, a trainee)."),
    )

    def __init__(self, *args: Any, zone: zoneinfo.ZoneInfo, staff: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["present_staff"].choices = list(staff)  # type: ignore[attr-defined]
        self.fields["started_at"] = SiteLocalDateTimeField(label=_("Session started"), zone=zone, required=False)
        self.order_fields(["kit_identifier", "started_at", "present_staff", "present_others"])

    def clean_present_others(self) -> list[dict[str, str]]:
        people = []
        for line in (self.cleaned_data.get("present_others") or "").splitlines():
            if not line.strip():
                continue
            name, _sep, role = line.partition(",")
            if not name.strip() or not role.strip():
                raise forms.ValidationError(_("Give each person as: name, role."))
            people.append({"name": name.strip(), "role": role.strip()})
        return people


class DosesForm(forms.Form):
    initial_dose_mg = forms.DecimalField(
        label=_("Initial dose (mg)"), required=False, min_value=0, max_value=DOSE_MG_MAX, decimal_places=2,
        widget=forms.NumberInput(attrs=_DECIMAL),
    )  # fmt: skip
    supplemental_dose_mg = forms.DecimalField(
        label=_("Supplemental dose (mg)"), required=False, min_value=0, max_value=DOSE_MG_MAX, decimal_places=2,
        widget=forms.NumberInput(attrs=_DECIMAL),
    )  # fmt: skip
    reason = forms.CharField(
        label=_("Reason for a change"),
        required=False,
        max_length=2000,
        help_text=_("Needed only to change a dose already recorded."),
    )

    def __init__(self, *args: Any, zone: zoneinfo.ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["initial_dose_at"] = SiteLocalDateTimeField(
            label=_("Initial dose given"), zone=zone, required=False
        )
        self.fields["supplemental_dose_at"] = SiteLocalDateTimeField(
            label=_("Supplemental dose given"), zone=zone, required=False
        )
        self.order_fields(["initial_dose_mg", "initial_dose_at", "supplemental_dose_mg", "supplemental_dose_at"])


class VitalSignForm(forms.Form):
    timepoint_code = forms.ChoiceField(label=_("Timepoint"), required=False, choices=())
    systolic_bp = _measure(_("Systolic BP (mmHg)"), "systolic_bp")
    diastolic_bp = _measure(_("Diastolic BP (mmHg)"), "diastolic_bp")
    heart_rate = _measure(_("Heart rate (/min)"), "heart_rate")
    temperature_c = forms.DecimalField(
        label=_("Temperature (°C)"), required=False, min_value=VITAL_LIMITS["temperature_c"][0],
        max_value=VITAL_LIMITS["temperature_c"][1], decimal_places=1, widget=forms.NumberInput(attrs=_DECIMAL),
    )  # fmt: skip
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)

    def __init__(
        self, *args: Any, zone: zoneinfo.ZoneInfo, timepoints: Sequence[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["timepoint_code"].choices = [*timepoints, ("", _("Unscheduled"))]  # type: ignore[attr-defined]
        self.fields["measured_at"] = SiteLocalDateTimeField(label=_("Measured at"), zone=zone)
        self.order_fields(["timepoint_code", "measured_at"])

    def values(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.fields if name != "reason"}


class VitalSignCorrectForm(VitalSignForm):
    reason = forms.CharField(label=_("Reason for the correction"), max_length=2000)


class CloseForm(forms.Form):
    missing_timepoints_reason = forms.CharField(
        label=_("Why timepoints have no vital signs"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed when a declared timepoint has no vital signs."),
    )

    def __init__(self, *args: Any, zone: zoneinfo.ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["ended_at"] = SiteLocalDateTimeField(
            label=_("Session ended"), zone=zone, required=False, help_text=_("Empty: now.")
        )
        self.order_fields(["ended_at", "missing_timepoints_reason"])
