"""The instrument texts page (``/instrument-texts/``): which self-report instruments have validated wording in which
language (a questionnaire without it is held), the packs loaded so far, and, for administrators, loading a pack.

Reads go through ``assessments.texts``; the load goes through ``assessments.services.instrument_text_load``, which
decides who may load (administrators) and refuses a broken pack with every problem's JSON path."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from assessments import services as assessment_services
from assessments import texts as assessment_texts
from assessments.text_packs import TextPackError, decode_pack
from dashboard.views import staff_page
from trialsite.errors import ServiceError

# A pack of a long instrument in a verbose language is a few tens of kilobytes.
MAX_PACK_BYTES = 512 * 1024


class TextPackForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Text pack file (JSON)"), required=False)
    text = forms.CharField(
        label=gettext_lazy("Or paste the pack's JSON"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload is not None and upload.size > MAX_PACK_BYTES:
            raise forms.ValidationError(_("The file is too large for a text pack."))
        if upload is None and not data.get("text"):
            raise forms.ValidationError(_("Choose a text pack file or paste its JSON."))
        return data


def _render(
    request: HttpRequest, form: TextPackForm, *, status: int = 200, problems: list[str] | None = None
) -> HttpResponse:
    context = {
        "form": form,
        "problems": problems or [],
        "coverage": assessment_texts.text_coverage(),
        "packs": assessment_texts.text_packs_loaded(),
        "may_load": assessment_texts.may_load_instrument_texts(request.user),
    }
    return render(request, "dashboard/instrument_texts.html", context, status=status)


@staff_page
@require_http_methods(["GET", "POST"])
def instrument_texts(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render(request, TextPackForm())
    form = TextPackForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, form, status=400)
    upload = form.cleaned_data.get("file")
    name = upload.name if upload is not None else "pasted pack"
    try:
        data = decode_pack(upload.read() if upload is not None else form.cleaned_data["text"], name=name)
        row, created = assessment_services.instrument_text_load(data=data, source=name, by=request.user)
    except TextPackError as exc:
        return _render(request, form, status=400, problems=exc.errors)
    except ServiceError as exc:
        return _render(request, form, status=exc.status_code, problems=[exc.message])
    what = {"instrument": row.instrument_code, "language": row.language, "version": row.version}
    if created:
        messages.success(request, _("Loaded %(instrument)s text in '%(language)s', version %(version)s.") % what)
    else:
        messages.info(
            request, _("%(instrument)s text in '%(language)s', version %(version)s, was already loaded.") % what
        )
    return redirect("dashboard-instrument-texts")
