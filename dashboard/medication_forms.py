"""The forms of the medications page: record, correct (with a reason) and stop. Shapes only: the services validate
the medication as a whole and their field messages land on these fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from safety.medication_classes import medication_classes
from safety.models import ConcomitantMedication

_DATE = forms.DateInput(attrs={"type": "date"})


def _class_choices() -> list[tuple[str, str]]:
    return [(c.code, c.label) for c in medication_classes().classes]


class MedicationForm(forms.Form):
    name = forms.CharField(label=_("Medication"), max_length=200)
    medication_class = forms.ChoiceField(label=_("Class"), choices=())
    dose_amount = forms.DecimalField(
        label=_("Dose amount"), required=False, max_digits=10, decimal_places=3, min_value=0
    )
    dose_unit = forms.ChoiceField(
        label=_("Dose unit"), required=False, choices=[("", "—"), *ConcomitantMedication.DoseUnit.choices]
    )
    dose_text = forms.CharField(
        label=_("Dose as text"), required=False, max_length=100, help_text=_("Where an amount and unit do not fit.")
    )
    frequency = forms.CharField(label=_("Frequency"), required=False, max_length=100)
    route = forms.ChoiceField(
        label=_("Route"), required=False, choices=[("", "—"), *ConcomitantMedication.Route.choices]
    )
    indication = forms.CharField(label=_("Indication"), required=False, max_length=300)
    start_date = forms.DateField(label=_("Start date"), widget=_DATE)
    stop_date = forms.DateField(
        label=_("Stop date"), required=False, widget=_DATE, help_text=_("Leave empty while the medication is taken.")
    )
    taper_note = forms.CharField(label=_("Taper note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["medication_class"].choices = _class_choices()  # type: ignore[attr-defined]


class MedicationCorrectForm(MedicationForm):
    """The recorded values, to change where wrong, and the reason (kept in the audit trail with the old values)."""

    reason = forms.CharField(label=_("Reason for the correction"), max_length=2000)


class MedicationStopForm(forms.Form):
    stop_date = forms.DateField(
        label=_("Stop date"), widget=_DATE, help_text=_("The last day taken, or the planned end of a taper.")
    )
    taper_note = forms.CharField(label=_("Taper note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
