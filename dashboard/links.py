"""Sending a participant the link to a visit's questionnaires, from the staff pages (``POST /visits/<id>/link/``):

- ``channel=email`` or ``channel=sms``: ``notifications.services.questionnaire_link_send`` queues the message in the
  outbox (the link is issued when it is sent); the page goes back to ``next`` with a message, or an htmx request gets
  the row's status fragment.
- ``channel=show``: the link is issued now (``assessments.services.link_issue_in_clinic``) and shown on a page of its own, as a
  QR code and as text, for a participant in the clinic to open on their phone. The token is in that response only:
  it is not stored (only its hash), not logged, not cached (``no-store``) and not sent on as a Referer.

Another site's visit is a 404; who may send or show a link is the services' answer.
"""

from __future__ import annotations

import segno
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from assessments import links as assessment_links
from assessments import services as assessment_services
from dashboard.views import _is_htmx, _next_url, staff_page
from notifications import services as notification_services
from scheduling import selectors as scheduling_selectors
from scheduling.models import Visit
from trialsite.errors import ServiceError

CHANNELS = ("email", "sms", "show")


def qr_svg(text: str) -> str:
    """``text`` as a QR code, an SVG element to inline in the page: dark modules drawn as one path, no style
    attribute (the page's CSP allows none), sized by its viewBox."""
    return str(
        segno.make(text, error="m").svg_inline(
            scale=1, border=4, dark="#000", light="#fff", omitsize=True, title=_("QR code of the questionnaire link")
        )
    )


def _show(request: HttpRequest, visit: Visit) -> HttpResponse:
    link, token = assessment_services.link_issue_in_clinic(visit=visit, by=request.user)
    url = assessment_links.link_url(token)
    response = render(
        request,
        "dashboard/link_show.html",
        {"visit": visit, "url": url, "qr": qr_svg(url), "expires_at": link.expires_at, "back": _back(request, visit)},
    )
    # The token is a credential: no cache may keep this page and no link on it may carry it on as a Referer.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _back(request: HttpRequest, visit: Visit) -> str:
    return _next_url(request, reverse("dashboard-participant", args=[visit.participant.participant_id]))


@staff_page
@require_POST
def link_send(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = scheduling_selectors.visit_get(request.user, visit_id)  # another site's visit: 404
    channel = request.POST.get("channel", "")
    error: str | None = None
    done = ""
    if channel not in CHANNELS:
        error = _("Choose how to send the link: e-mail, SMS or shown here.")
    elif channel == "show":
        try:
            return _show(request, visit)
        except ServiceError as exc:
            error = exc.message
    else:
        try:
            notification_services.questionnaire_link_send(visit=visit, channel=channel, by=request.user)
        except ServiceError as exc:
            error = exc.message
        else:
            done = (
                _("The link to %(visit)s will be sent to %(participant)s by e-mail.")
                if channel == "email"
                else _("The link to %(visit)s will be sent to %(participant)s by SMS.")
            ) % {"visit": visit.code, "participant": visit.participant.participant_id}
    if _is_htmx(request):
        return render(
            request,
            "dashboard/_link_sent.html",
            {"visit": visit, "done": done, "error": error},
            status=400 if error and channel not in CHANNELS else 200,
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect(_back(request, visit) if channel == "show" else _next_url(request, reverse("dashboard-home")))
