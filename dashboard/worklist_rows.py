"""The home page's visit, dosing and questionnaire rows, written in Python: a page of several lists holds up to a
few hundred rows, and an include per row costs more than the rest of the page. The markup is what the row templates
wrote before (tests/dashboard/test_home.py reads it); times are in the row's site zone, as everywhere on the page."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any

from django.urls import reverse
from django.utils import dateformat
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

DASH = "—"


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _local(instant: dt.datetime, zone: str, fmt: str) -> str:
    return dateformat.format(instant.astimezone(_zone(zone)), fmt)


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else DASH


def _leading_cells(visit: Any) -> SafeString:
    participant = visit.participant
    return format_html(
        '<td><a href="{}#visit-{}">{}</a></td>\n  <td>{}</td>\n  <td>{} <span class="code">({})</span></td>',
        reverse("dashboard-participant", args=[participant.participant_id]),
        visit.code,
        participant.participant_id,
        participant.site.code,
        visit.name,
        visit.code,
    )


def visit_row(visit: Any, *, dosing: bool) -> SafeString:
    zone = visit.participant.site.time_zone
    if dosing:
        staff = ", ".join(person.username for person in visit.staff.all()) or DASH
        cells = format_html(
            "<td>{}–{}</td>\n  <td>{}</td>\n  <td>{}</td>",
            _local(visit.scheduled_start, zone, "D Y-m-d H:i"),
            _local(visit.scheduled_end, zone, "H:i T"),
            visit.room.name if visit.room is not None else DASH,
            staff,
        )
    else:
        end = visit.window_end.isoformat() if visit.window_end else ""
        window = f"{visit.window_start.isoformat()} – {end}" if visit.window_start else DASH
        booked = _local(visit.scheduled_start, zone, "Y-m-d H:i T") if visit.scheduled_start else _("not booked")
        cells = format_html(
            '<td>{}</td>\n  <td>{}</td>\n  <td><span class="status status-{}">{}</span></td>',
            window,
            booked,
            visit.status,
            visit.get_status_display(),
        )
    return format_html("<tr>\n  {}\n  {}\n</tr>", _leading_cells(visit), cells)


def _held_note(codes: list[str]) -> SafeString:
    return format_html(
        '<p class="held"><strong>{}</strong> {}</p>',
        _("Validated text missing:"),
        _("%(instruments)s not offered to the participant (no text pack in their language).")
        % {"instruments": ", ".join(codes)},
    )


def questionnaire_row(
    visit: Any, *, may_send: bool, csrf_token: str, list_key: str, held: tuple[list[str], bool] | None = None
) -> SafeString:
    held_codes, all_held = held if held is not None else ([], False)
    if all_held:
        # Nothing of the visit can be offered: no link is sent until a pack is loaded.
        action = _held_note(held_codes)
    elif may_send:
        url = reverse("dashboard-link-send", args=[visit.pk])
        email = bool(getattr(visit, "has_email", False))
        action = format_html(
            '<div id="link-send-{pk}">\n'
            '    <form method="post" action="{url}" class="inline-form"\n'
            '          hx-post="{url}" hx-target="#link-send-{pk}" hx-swap="outerHTML">'
            '<input type="hidden" name="csrfmiddlewaretoken" value="{token}">\n'
            '      <input type="hidden" name="channel" value="{channel}">\n'
            '      <input type="hidden" name="next" value="{home}#{key}">\n'
            '      <button type="submit">{label} <span class="visually-hidden">{pid} {code}</span></button>\n'
            "    </form>\n"
            "    </div>",
            pk=visit.pk,
            url=url,
            token=csrf_token,
            channel="email" if email else "sms",
            home=reverse("dashboard-home"),
            key=list_key,
            label=_("Send link by e-mail") if email else _("Send link by SMS"),
            pid=visit.participant.participant_id,
            code=visit.code,
        )
    else:
        action = format_html('<span class="hint">{}</span>', _("A coordinator at this site sends links."))
    if held_codes and not all_held:
        action = format_html("{}\n    {}", action, _held_note(held_codes))
    return format_html(
        "<tr>\n  {}\n  <td>{}</td>\n  <td>{}</td>\n  <td>\n    {}\n  </td>\n</tr>",
        _leading_cells(visit),
        _day(visit.target_date),
        _day(visit.window_end),
        action,
    )


def rows(
    worklist: Any, *, send_site_ids: set[int], csrf_token: str, held: dict[int, tuple[list[str], bool]] | None = None
) -> SafeString:
    """A worklist's rows as one piece of markup (alert and notification rows keep their templates: they carry
    htmx forms of their own and are few)."""
    if worklist.kind in ("visit", "dosing"):
        dosing = worklist.kind == "dosing"
        return format_html_join("", "{}", ((visit_row(v, dosing=dosing),) for v in worklist.page))
    if worklist.kind == "questionnaire":
        return format_html_join(
            "",
            "{}",
            (
                (
                    questionnaire_row(
                        v,
                        may_send=v.participant.site_id in send_site_ids,
                        csrf_token=csrf_token,
                        list_key=worklist.key,
                        held=(held or {}).get(v.pk),
                    ),
                )
                for v in worklist.page
            ),
        )
    return mark_safe("")  # noqa: S308 (empty)
