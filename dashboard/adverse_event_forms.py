"""Forms of the adverse-event pages: record, correct (with a reason), follow up, review, and the log's filters. They
parse input only; the safety services decide what is allowed and whether the values make a valid event."""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from dashboard.action_forms import SiteLocalDateTimeField
from safety.models import SERIOUSNESS_CRITERIA, AdverseEvent, Relatedness

GRADES = [(n, f"{n}") for n in range(1, 6)]
CRITERIA_LABELS = {
    "serious_death": _("Resulted in death"),
    "serious_life_threatening": _("Life-threatening"),
    "serious_hospitalisation": _("Hospitalisation or its prolongation"),
    "serious_disability": _("Persistent or significant disability"),
    "serious_congenital_anomaly": _("Congenital anomaly"),
    "serious_important_medical_event": _("Important medical event"),
}
# Fields of the event form, in the order a clinician fills them (and the service's names for them).
EVENT_FIELDS = (
    "verbatim_term",
    "coded_term_code",
    "coded_term_text",
    "onset_at",
    "resolved_at",
    "severity_grade",
    "seriousness",
    "aesi_categories",
    "relatedness_drug",
    "relatedness_therapy",
    "expectedness",
    "action_taken",
    "outcome",
)


def _choice(label: Any, choices: Sequence[tuple[str, Any]]) -> forms.ChoiceField:
    return forms.ChoiceField(label=label, choices=[("", "—"), *choices])


class AdverseEventForm(forms.Form):
    """An event's values. For a new event the participant is typed (their pseudonymous id); a correction adds a
    reason and starts from the stored values."""

    def __init__(
        self,
        *args: Any,
        zone: zoneinfo.ZoneInfo,
        aesi: Sequence[tuple[str, str]],
        with_participant: bool = False,
        with_reason: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if with_participant:
            self.fields["participant"] = forms.CharField(
                label=_("Participant id"), max_length=40, help_text=_("As on the participant's page, e.g. MAP-PDX-001.")
            )
        self.fields["verbatim_term"] = forms.CharField(
            label=_("Event (verbatim)"),
            max_length=300,
            help_text=_("In the reporter's words. Kept at the site: it is never exported."),
        )
        self.fields["coded_term_code"] = forms.CharField(label=_("Coded term code"), max_length=20, required=False)
        self.fields["coded_term_text"] = forms.CharField(label=_("Coded term"), max_length=200, required=False)
        self.fields["onset_at"] = SiteLocalDateTimeField(label=_("Onset"), zone=zone)
        self.fields["resolved_at"] = SiteLocalDateTimeField(label=_("Resolved"), zone=zone, required=False)
        self.fields["severity_grade"] = forms.TypedChoiceField(
            label=_("Severity grade (CTCAE)"), choices=[("", "—"), *GRADES], coerce=int
        )
        self.fields["seriousness"] = forms.MultipleChoiceField(
            label=_("Seriousness criteria met (none: not serious)"),
            choices=[(name, CRITERIA_LABELS[name]) for name in SERIOUSNESS_CRITERIA],
            widget=forms.CheckboxSelectMultiple,
            required=False,
        )
        self.fields["aesi_categories"] = forms.MultipleChoiceField(
            label=_("Of special interest (AESI)"),
            choices=list(aesi),
            widget=forms.CheckboxSelectMultiple,
            required=False,
        )
        self.fields["relatedness_drug"] = _choice(_("Related to the study drug"), Relatedness.choices)
        self.fields["relatedness_therapy"] = _choice(_("Related to the therapy"), Relatedness.choices)
        self.fields["expectedness"] = _choice(_("Expectedness"), AdverseEvent.Expectedness.choices)
        self.fields["action_taken"] = _choice(_("Action taken with the study drug"), AdverseEvent.ActionTaken.choices)
        self.fields["outcome"] = _choice(_("Outcome"), AdverseEvent.Outcome.choices)
        if with_reason:
            self.fields["reason"] = forms.CharField(
                label=_("Reason for the correction"),
                max_length=2000,
                widget=forms.Textarea(attrs={"rows": 2}),
                error_messages={"required": _("Give a reason: it is kept in the audit trail.")},
            )

    def event_values(self) -> dict[str, Any]:
        values = {name: self.cleaned_data[name] for name in EVENT_FIELDS}
        values["seriousness"] = frozenset(values["seriousness"])
        values["aesi_categories"] = list(values["aesi_categories"])
        for name in ("coded_term_code", "coded_term_text"):
            values[name] = values[name] or ""
        return values

    def field_for(self, key: str) -> str | None:
        """The form's field for a service's field error (a seriousness criterion is one of the boxes)."""
        if key in SERIOUSNESS_CRITERIA:
            return "seriousness"
        return key if key in self.fields else None


def initial_of(event: AdverseEvent) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(event, name) for name in EVENT_FIELDS if hasattr(event, name)}
    values["seriousness"] = [name for name in SERIOUSNESS_CRITERIA if getattr(event, name)]
    return values


class FollowUpForm(forms.Form):
    def __init__(self, *args: Any, zone: zoneinfo.ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["note"] = forms.CharField(
            label=_("Follow-up"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
        )
        self.fields["outcome"] = forms.ChoiceField(
            label=_("Outcome now (leave empty if unchanged)"),
            choices=[("", "—"), *AdverseEvent.Outcome.choices],
            required=False,
        )
        self.fields["resolved_at"] = SiteLocalDateTimeField(
            label=_("Resolved (leave empty if not)"), zone=zone, required=False
        )


class ReviewForm(forms.Form):
    causality_drug = _choice(_("Causality: study drug"), Relatedness.choices)
    causality_therapy = _choice(_("Causality: therapy"), Relatedness.choices)
    note = forms.CharField(label=_("Note"), max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3}))


class LogFilterForm(forms.Form):
    """The log's filters, read from the query string; an unknown value is refused with a 400 naming it."""

    CLOCKS = (("", _("Any")), ("unreviewed", _("Not reviewed")), ("overdue", _("Review overdue (24 h passed)")))

    site = forms.ChoiceField(label=_("Site"), required=False)
    participant = forms.CharField(label=_("Participant id"), max_length=40, required=False)
    serious = forms.ChoiceField(
        label=_("Serious"), choices=(("", _("Any")), ("yes", _("Serious only"))), required=False
    )
    aesi = forms.ChoiceField(label=_("AESI"), choices=(("", _("Any")), ("yes", _("AESI only"))), required=False)
    clock = forms.ChoiceField(label=_("Review"), choices=CLOCKS, required=False)

    def __init__(self, *args: Any, sites: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        site = self.fields["site"]
        assert isinstance(site, forms.ChoiceField)
        site.choices = [("", _("All my sites")), *((code, code) for code in sites)]
