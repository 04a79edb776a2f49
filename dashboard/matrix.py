"""The record status matrix (/matrix/): one row per participant of one study, one column per protocol visit, each
cell the visit's state. Reads through the owning apps' selectors; who sees which sites, arms and contact searches is
decided by participants.access."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django.views.decorators.http import require_http_methods

from assessments import selectors as assessment_selectors
from assessments.models import Administration
from dashboard.matrix_cells import (
    LEGEND,
    LEGEND_BY_STATE,
    CellState,
    Column,
    LegendEntry,
    cell_state,
    neutral_visit_columns,
    visit_columns,
)
from dashboard.views import chosen_study, staff_page
from participants import access
from participants import selectors as participant_selectors
from participants import services as participant_services
from participants.models import Participant, Site, Study
from scheduling import selectors as scheduling_selectors
from scheduling.blinded_view import Lens
from scheduling.models import Visit
from trialsite.roles import CONTACT

PAGE_SIZE = 50
ID_SEARCH_MAX = 40

# The participant statuses as the staff pages name them (the model's labels are not translated).
STATUS_LABELS: dict[str, str | Promise] = {
    Participant.Status.SCREENING: gettext_lazy("Screening"),
    Participant.Status.ELIGIBLE: gettext_lazy("Eligible"),
    Participant.Status.SCREEN_FAILED: gettext_lazy("Screen failed"),
    Participant.Status.CONSENTED: gettext_lazy("Consented"),
    Participant.Status.ENROLLED: gettext_lazy("Enrolled"),
    Participant.Status.RANDOMIZED: gettext_lazy("Randomized"),
    Participant.Status.IN_TREATMENT: gettext_lazy("In treatment"),
    # A participant who completed the study; "Completed" alone is a visit's state, with another gender in Spanish.
    Participant.Status.COMPLETED: pgettext_lazy("participant status", "Completed"),
    Participant.Status.WITHDRAWN: gettext_lazy("Withdrawn"),
    Participant.Status.LOST_TO_FOLLOW_UP: gettext_lazy("Lost to follow-up"),
}
CONTACT_KIND_LABELS: list[tuple[str, str | Promise]] = [
    ("name", gettext_lazy("Name")),
    ("email", gettext_lazy("E-mail")),
    ("phone", gettext_lazy("Phone")),
]


def participant_visit_url(participant_id: str, visit_code: str) -> str:
    """Where a cell leads: the visit's row on the participant page."""
    return f"{participant_url(participant_id)}#visit-{visit_code}"


def participant_url(participant_id: str) -> str:
    return reverse("dashboard-participant", args=[participant_id])


class MatrixFilterForm(forms.Form):
    """The filters, read from the query string. The choices are the user's own: any other value is an error."""

    site = forms.ChoiceField(label=gettext_lazy("Site"), required=False)
    status = forms.ChoiceField(label=gettext_lazy("Participant status"), required=False)
    visit = forms.ChoiceField(label=gettext_lazy("Visit"), required=False)
    q = forms.CharField(label=gettext_lazy("Participant id"), required=False, max_length=ID_SEARCH_MAX, strip=True)

    def __init__(self, data: QueryDict, *, sites: list[Site], columns: list[Column]) -> None:
        super().__init__(data)
        self._choose("site", [("", _("All your sites")), *((s.code, s.code) for s in sites)])
        self._choose("status", [("", _("Any status")), *STATUS_LABELS.items()])
        self._choose("visit", [("", _("Every visit")), *((c.code, f"{c.code} · {c.name}") for c in columns)])

    def _choose(self, name: str, choices: list[tuple[str, str | Promise]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices


class ContactSearchForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Search by"), choices=CONTACT_KIND_LABELS)
    text = forms.CharField(label=gettext_lazy("Name, e-mail or phone"), max_length=200, strip=True)


@dataclass(frozen=True)
class Cell:
    column: Column
    state: CellState
    url: str | None
    html: str = ""  # the cell's <td>, written once in Python: a page has 50 rows of up to 16 cells

    @property
    def legend(self) -> LegendEntry:
        return LEGEND_BY_STATE[self.state]


class _CellWriter:
    """Writes a cell's markup: colour (the class), symbol and text (for screen readers), with its link. The escaped
    parts of each (visit, state) pair and each state's translated label are made once per page."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, CellState], tuple[str, str]] = {}

    def __call__(self, column: Column, state: CellState, url: str | None) -> str:
        key = (column.code, state)
        if key not in self._parts:
            entry = LEGEND_BY_STATE[state]
            text = escape(f"{column.code}: {entry.label}")
            self._parts[key] = (
                f'<td class="cell cell-{escape(state.value)}" title="{text}">',
                f'<span aria-hidden="true">{escape(entry.symbol)}</span><span class="visually-hidden">{text}</span>',
            )
        opening, inner = self._parts[key]
        if url:
            inner = f'<a href="{escape(url)}">{inner}</a>'
        return mark_safe(f"{opening}{inner}</td>")  # noqa: S308  # every part escaped above


@dataclass(frozen=True)
class Row:
    participant: Participant
    status_label: str | Promise
    arm_label: str | None
    cells: list[Cell]
    url: str


def _rows(
    page: Page[Participant], columns: list[Column], *, study: Study, arm_visible: bool, lens: Lens | None = None
) -> list[Row]:
    """The page's rows from three reads whatever the page size: its visits, their questionnaires, and (for viewers
    who may see it) the arm. With ``lens`` (a blinded viewer) each visit is placed under its neutral face, with the
    dates the face shows."""
    participants = list(page.object_list)
    pks = [p.pk for p in participants]
    visits: dict[tuple[int, str], Visit] = {}
    rows_read = scheduling_selectors.matrix_visits(pks)
    for row in lens.present(lens.annotate(rows_read)) if lens is not None else rows_read:
        visits[(row.participant_id, row.code)] = row
    administrations: dict[int, list[Administration]] = defaultdict(list)
    for adm in assessment_selectors.matrix_administrations(pks):
        administrations[adm.visit_id].append(adm)
    arms: dict[int, str] = {}
    if arm_visible:
        labels = {arm.code: arm.label for arm in study.arms.all()}
        arms = {pk: labels.get(code, code) for pk, code in participant_selectors.arm_codes(pks).items()}
    now = timezone.now()
    todays: dict[str, dt.date] = {}
    rows = []
    write = _CellWriter()
    for participant in participants:
        url_base = participant_url(participant.participant_id)
        zone = participant.site.time_zone
        if zone not in todays:
            todays[zone] = now.astimezone(zoneinfo.ZoneInfo(zone)).date()
        cells = []
        for column in columns:
            visit = visits.get((participant.pk, column.code))
            state = cell_state(visit, administrations.get(visit.pk, []) if visit else [], today=todays[zone], now=now)
            url = f"{url_base}#visit-{column.code}" if visit else None  # participant_visit_url, reversed once a row
            cells.append(Cell(column=column, state=state, url=url, html=write(column, state, url)))
        rows.append(
            Row(
                participant=participant,
                status_label=STATUS_LABELS.get(participant.status, participant.status),
                arm_label=arms.get(participant.pk) if arm_visible else None,
                cells=cells,
                url=url_base,
            )
        )
    return rows


def _page_url(query: QueryDict, number: int) -> str:
    query = query.copy()
    query["page"] = str(number)
    return f"?{query.urlencode()}"


@staff_page
@require_http_methods(["GET", "HEAD", "POST"])
def matrix(request: HttpRequest) -> HttpResponse:
    user = request.user
    studies, study, sites = chosen_study(request)
    if study is None:
        return render(request, "dashboard/matrix/matrix.html", {"studies": [], "legend": LEGEND})
    site_ids = [s.pk for s in sites]
    contact_site_ids = access.site_ids_with(user, CONTACT) & set(site_ids)
    if request.method == "POST" and not contact_site_ids:
        raise PermissionDenied("your role cannot search contact details")

    # The site filter decides which sites' blinding applies, so it is read before the columns are chosen.
    site_code = request.GET.get("site", "") if request.method != "POST" else ""
    chosen = next((s for s in sites if s.code == site_code), None)
    shown_site_ids = [chosen.pk] if chosen else site_ids
    # One blinded site among those shown is enough to hide the arm-only visits: a column is the same for every row.
    arm_visible = bool(shown_site_ids) and all(
        access.can_see_allocation(user, site_id=sid, study=study) for sid in shown_site_ids
    )
    protocol = scheduling_selectors.study_protocol(study.protocol_code)
    lens = None if arm_visible else Lens(user)
    sources: dict[str, frozenset[str]] = {}
    if arm_visible:
        columns = visit_columns(protocol, arm_visible=True)
    else:
        columns, sources = neutral_visit_columns(protocol)

    filters = MatrixFilterForm(request.GET if request.method != "POST" else QueryDict(), sites=sites, columns=columns)
    contact_form = ContactSearchForm(request.POST if request.method == "POST" else None)
    status = 200
    notice = None
    matched: list[int] | None = None
    if request.method == "POST":
        if not contact_form.is_valid():
            status = 400
            matched = []
        else:
            kind, text = contact_form.cleaned_data["kind"], contact_form.cleaned_data["text"]
            matched = participant_selectors.participant_pks_by_contact(
                user, study=study, kind=kind, text=text, limit=PAGE_SIZE
            )
            participant_services.contact_search_record(study=study, query_kind=kind, result_count=len(matched), by=user)
            notice = ngettext(
                "%(count)d participant matches the contact search.",
                "%(count)d participants match the contact search.",
                len(matched),
            ) % {"count": len(matched)}
            # The text searched is not shown again: the page keeps no contact detail.
            contact_form = ContactSearchForm()
    elif not filters.is_valid():
        status = 400

    page: Page[Participant] | None = None
    rows: list[Row] = []
    if status == 200:
        data = filters.cleaned_data if request.method != "POST" else {}
        visit_code = data.get("visit", "")
        participants = participant_selectors.matrix_participants(
            user,
            study=study,
            site_ids=shown_site_ids,
            status=data.get("status", ""),
            id_contains=data.get("q", ""),
            pks=matched,
        )
        if visit_code:
            codes = sources.get(visit_code, frozenset({visit_code}))
            participants = scheduling_selectors.participants_with_visit(participants, codes)
            columns = [c for c in columns if c.code == visit_code]
        page = Paginator(participants, PAGE_SIZE).get_page(request.GET.get("page"))
        rows = _rows(page, columns, study=study, arm_visible=arm_visible, lens=lens)

    context = {
        "studies": studies,
        "study": study,
        "sites": sites,
        "filters": filters,
        "contact_form": contact_form if contact_site_ids else None,
        "columns": columns,
        "rows": rows,
        "page": page,
        "listed": page is not None,
        "total": page.paginator.count if page is not None else 0,
        "previous_url": _page_url(request.GET, page.previous_page_number())
        if page is not None and page.has_previous()
        else None,
        "next_url": _page_url(request.GET, page.next_page_number()) if page is not None and page.has_next() else None,
        "arm_visible": arm_visible,
        "legend": LEGEND,
        "notice": notice,
        "contact_search": request.method == "POST",
    }
    return render(request, "dashboard/matrix/matrix.html", context, status=status)
