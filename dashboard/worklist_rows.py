"""The home page's rows, written in Python: a page of several lists holds up to a few hundred rows, and an include
per row costs more than the rest of the page. The markup is what the row templates wrote before
(tests/dashboard/test_home.py reads it); times are in the row's site zone, as everywhere on the page. An alert's or
a failed message's row is also what the acknowledge and retry actions send back for htmx to swap in."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any

from django.utils import dates
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from dashboard.url_templates import url_for

DASH = "—"


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def _local(instant: dt.datetime, zone: str) -> dt.datetime:
    return instant.astimezone(_zone(zone))


# The formats the row templates used (Django's date filter), written out: "Y-m-d H:i T", "H:i T" and the weekday's
# translated abbreviation ("D").
def _minute(local: dt.datetime) -> str:
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else DASH


def _csrf_input(token: str) -> SafeString:
    return format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token)


def _leading_cells(visit: Any) -> SafeString:
    participant = visit.participant
    return format_html(
        '<td><a href="{}#visit-{}">{}</a></td>\n  <td>{}</td>\n  <td>{} <span class="code">({})</span></td>',
        url_for("dashboard-participant", participant.participant_id),
        visit.code,
        participant.participant_id,
        visit.site.code,
        visit.name,
        visit.code,
    )


def visit_row(visit: Any, *, dosing: bool) -> SafeString:
    zone = visit.site.time_zone
    if dosing:
        staff = ", ".join(person.username for person in visit.staff.all()) or DASH
        start, end = _local(visit.scheduled_start, zone), _local(visit.scheduled_end, zone)
        cells = format_html(
            "<td>{} {}–{}</td>\n  <td>{}</td>\n  <td>{}</td>",
            dates.WEEKDAYS_ABBR[start.weekday()],
            f"{start:%Y-%m-%d %H:%M}",
            f"{end:%H:%M} {end.tzname()}",
            visit.room.name if visit.room is not None else DASH,
            staff,
        )
    else:
        closes = visit.window_end.isoformat() if visit.window_end else ""
        window = f"{visit.window_start.isoformat()} – {closes}" if visit.window_start else DASH
        booked = _minute(_local(visit.scheduled_start, zone)) if visit.scheduled_start else _("not booked")
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
    visit: Any,
    *,
    may_send: bool,
    csrf_token: str,
    list_key: str,
    home: str,
    held: tuple[list[str], bool] | None = None,
) -> SafeString:
    held_codes, all_held = held if held is not None else ([], False)
    if all_held:
        # Nothing of the visit can be offered: no link is sent until a pack is loaded.
        action = _held_note(held_codes)
    elif may_send:
        url = url_for("dashboard-link-send", visit.pk)
        email = bool(getattr(visit, "has_email", False))
        action = format_html(
            '<div id="link-send-{pk}">\n'
            '    <form method="post" action="{url}" class="inline-form"\n'
            '          hx-post="{url}" hx-target="#link-send-{pk}" hx-swap="outerHTML">{csrf}\n'
            '      <input type="hidden" name="channel" value="{channel}">\n'
            '      <input type="hidden" name="next" value="{home}#{key}">\n'
            '      <button type="submit">{label} <span class="visually-hidden">{pid} {code}</span></button>\n'
            "    </form>\n"
            "    </div>",
            pk=visit.pk,
            url=url,
            csrf=_csrf_input(csrf_token),
            channel="email" if email else "sms",
            home=home,
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


def _unnotified(alert: Any) -> SafeString | str:
    """Said on an open alert whose mail reached no investigator: the site has none with an e-mail address."""
    if alert.acknowledged_at or alert.notified_to not in ("coordinators", "nobody"):
        return ""
    if alert.notified_to == "coordinators":
        text = _("No investigator notified: no investigator at this site has an e-mail address; its coordinators were.")
    else:
        text = _("Nobody notified: no investigator or coordinator at this site has an e-mail address.")
    return format_html('<p class="alert-unnotified" role="alert">{}</p>', text)


def alert_row(alert: Any, *, may_acknowledge: bool, csrf_token: str, error: str | None = None) -> SafeString:
    """An open (or just acknowledged) safety alert: who, when, what, and the investigator's acknowledge form."""
    participant = alert.participant
    zone = participant.site.time_zone
    if alert.acknowledged_at:
        outcome = format_html(
            '<p class="acknowledged" role="status">{}\n    <span class="note">{}</span></p>',
            _("Acknowledged by %(who)s at %(when)s.")
            % {"who": alert.acknowledged_by.username, "when": _minute(_local(alert.acknowledged_at, zone))},
            alert.acknowledgement_note,
        )
    elif may_acknowledge:
        url = url_for("dashboard-alert-acknowledge", alert.pk)
        outcome = format_html(
            '<form method="post" action="{url}" class="inline-form"\n'
            '        hx-post="{url}" hx-target="#alert-{pk}" hx-swap="outerHTML">{csrf}\n'
            '    <label for="note-{pk}">{label}</label>\n'
            '    <textarea id="note-{pk}" name="note" rows="2" required></textarea>\n'
            '    <button type="submit">{button}</button>\n'
            "  </form>",
            url=url,
            pk=alert.pk,
            csrf=_csrf_input(csrf_token),
            label=_("Acknowledgement note"),
            button=_("Acknowledge"),
        )
    else:
        outcome = format_html('<p class="hint">{}</p>', _("An investigator at this site acknowledges this alert."))
    return format_html(
        '<li class="alert-item severity-{severity}" id="alert-{pk}">\n'
        '  <p class="alert-head"><span class="severity">{severity_label}</span>\n'
        '    <a class="participant" href="{url}">{pid}</a>\n'
        '    <span class="site">{site}</span>\n'
        '    <time datetime="{utc}">{local}</time></p>\n'
        '  <p class="alert-message">{message}</p>\n'
        "  {unnotified}\n"
        "  {error}\n"
        "  {outcome}\n"
        "</li>",
        severity=alert.severity,
        pk=alert.pk,
        severity_label=alert.get_severity_display(),
        url=url_for("dashboard-participant", participant.participant_id),
        pid=participant.participant_id,
        site=participant.site.code,
        utc=alert.created_at.astimezone(dt.UTC).isoformat(),
        local=_minute(_local(alert.created_at, zone)),
        message=alert.message,
        unnotified=_unnotified(alert),
        error=format_html('<p class="field-error" role="alert">{}</p>', error) if error else "",
        outcome=outcome,
    )


def notification_row(notification: Any, *, csrf_token: str, error: str | None = None) -> SafeString:
    """A failed message, with its retry form (or, once retried, that it is queued again)."""
    participant = notification.participant
    if notification.status == "failed":
        url = url_for("dashboard-notification-retry", notification.pk)
        action = format_html(
            '<form method="post" action="{url}" class="inline-form"\n'
            '          hx-post="{url}" hx-target="#notification-{pk}" hx-swap="outerHTML">{csrf}\n'
            '      <button type="submit">{label} <span class="visually-hidden">{pid} {template}</span></button>\n'
            "    </form>",
            url=url,
            pk=notification.pk,
            csrf=_csrf_input(csrf_token),
            label=_("Retry"),
            pid=participant.participant_id,
            template=notification.template,
        )
    else:
        action = format_html('<span role="status">{}</span>', _("Queued to send again."))
    return format_html(
        '<tr id="notification-{pk}">\n'
        '  <td><a href="{url}">{pid}</a></td>\n'
        "  <td>{site}</td>\n"
        "  <td>{channel}</td>\n"
        "  <td>{template}</td>\n"
        "  <td>{attempts}</td>\n"
        "  <td>{last_error}</td>\n"
        "  <td>\n    {error}\n    {action}\n  </td>\n"
        "</tr>",
        pk=notification.pk,
        url=url_for("dashboard-participant", participant.participant_id),
        pid=participant.participant_id,
        site=participant.site.code,
        channel=notification.get_channel_display(),
        template=notification.template,
        attempts=notification.attempts,
        last_error=Truncator(notification.last_error or DASH).chars(160),
        error=format_html('<p class="field-error" role="alert">{}</p>', error) if error else "",
        action=action,
    )


def rows(
    worklist: Any,
    *,
    send_site_ids: set[int],
    acknowledge_site_ids: set[int],
    csrf_token: str,
    home: str,
    held: dict[int, tuple[list[str], bool]] | None = None,
) -> SafeString:
    """A worklist's rows as one piece of markup."""
    page = worklist.page
    if worklist.kind in ("visit", "dosing"):
        dosing = worklist.kind == "dosing"
        return format_html_join("", "{}", ((visit_row(v, dosing=dosing),) for v in page))
    if worklist.kind == "questionnaire":
        return format_html_join(
            "",
            "{}",
            (
                (
                    questionnaire_row(
                        v,
                        may_send=v.site_id in send_site_ids,
                        csrf_token=csrf_token,
                        list_key=worklist.key,
                        home=home,
                        held=(held or {}).get(v.pk),
                    ),
                )
                for v in page
            ),
        )
    if worklist.kind == "alert":
        return format_html_join(
            "",
            "{}",
            (
                (alert_row(a, may_acknowledge=a.participant.site_id in acknowledge_site_ids, csrf_token=csrf_token),)
                for a in page
            ),
        )
    if worklist.kind == "notification":
        return format_html_join("", "{}", ((notification_row(n, csrf_token=csrf_token),) for n in page))
    return mark_safe("")  # noqa: S308 (empty)
