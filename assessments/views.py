"""Participant pages: the private link flow, one instrument after another, each in screens of a few items
(``assessments.paging``), answers saved as the participant goes.

Questionnaire ``n`` of the link starts at ``/l/q/<n>/``; its further screens are ``/l/q/<n>/<screen>/``. Drafts are
per questionnaire, so every screen of one questionnaire saves through the same ``/l/q/<n>/autosave/``.

``/l/<token>/`` never shows a page of its own: it moves the link into the session and redirects to the token-free
``/l/``, so the token leaves the address bar, the history and any Referer (its policy is no-referrer as well). Opening
it changes nothing else: mail scanners and link previews open links too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from assessments import links, selectors, services
from assessments.definitions import Instrument, Item, validate_answers, visible_items
from assessments.models import Administration, ParticipantLink
from assessments.paging import Screen, answered_of, instrument_screens, screen_of
from participants import selectors as participant_selectors
from trialsite.errors import ServiceError

DONE_KEY = "assessments_done"
# The participant's language, kept in the session so the pages after the link is done with (thank-you, closed link)
# stay in it.
LANGUAGE_KEY = "assessments_language"


View = Callable[..., HttpResponseBase]
Page = tuple[Administration, Instrument]


def no_referrer(view: View) -> View:
    """The token URL sends ``Referrer-Policy: no-referrer`` (the site's default is same-origin): its address holds
    the token, so no request that follows it may carry it in a Referer, even to this site."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return wrapped


def _unavailable(request: HttpRequest, status: int = 404) -> HttpResponse:
    """One page, one status, for unknown, expired, revoked and submitted links: nothing tells them apart. It lists
    every site's public contact, since an unknown token names no site. Shown in the language of the link this browser
    last opened, if any."""
    request.session.pop(links.SESSION_KEY, None)
    _activate_session_language(request)
    sites = participant_selectors.sites_with_public_contact()
    return render(request, "assessments/unavailable.html", {"sites": sites}, status=status)


def _limited(request: HttpRequest) -> HttpResponse:
    """Too many wrong links from this address (429). It says what happened and that waiting helps; it never suggests
    that a link was used up, since a working link is never refused here."""
    request.session.pop(links.SESSION_KEY, None)
    _activate_session_language(request)
    sites = participant_selectors.sites_with_public_contact()
    minutes = max(1, links.failure_window_seconds() // 60)
    return render(request, "assessments/limited.html", {"sites": sites, "minutes": minutes}, status=429)


@no_referrer
@never_cache
@require_http_methods(["GET", "HEAD"])
def link_open(request: HttpRequest, token: str) -> HttpResponse:
    # The token first: a working link is always served, however many wrong ones came from this address.
    link = selectors.link_find(token)
    if link is None:
        if links.wrong_token_limited(links.client_address(request)):
            return _limited(request)
        return _unavailable(request)
    # A fresh session key on entry: a session id planted before the link was opened cannot ride along.
    request.session.cycle_key()
    request.session[links.SESSION_KEY] = link.pk
    request.session.pop(DONE_KEY, None)
    return HttpResponseRedirect(reverse("participant-start"))


def _session_link(request: HttpRequest) -> ParticipantLink | None:
    link_id = request.session.get(links.SESSION_KEY)
    if not link_id:
        return None
    link = selectors.link_by_pk(link_id)
    if link is None:
        return None
    contact = getattr(link.participant, "contact", None)
    language = contact.language if contact and contact.language else "en"
    request.session[LANGUAGE_KEY] = language
    translation.activate(language)
    request.LANGUAGE_CODE = language
    return link


def _activate_session_language(request: HttpRequest) -> None:
    language = request.session.get(LANGUAGE_KEY)
    if language and translation.check_for_language(language):
        translation.activate(language)
        request.LANGUAGE_CODE = language


def _pages(link: ParticipantLink) -> list[Page]:
    pending = selectors.link_pending(link, timezone.now())
    library = selectors.link_wording(link).library
    return [(adm, library.instrument(adm.instrument_code)) for adm in pending]


def _missing(instrument: Instrument, answers: dict[str, Any]) -> dict[str, list[str]]:
    return validate_answers(instrument, answers, require_complete=True)


def _context(request: HttpRequest, link: ParticipantLink, **extra: Any) -> dict[str, Any]:
    site = link.participant.site
    return {"site": site, "visit": link.visit, **extra}


def _screen_url(number: int, screen: int) -> str:
    if screen == 1:
        return reverse("participant-page", args=[number])
    return reverse("participant-screen", args=[number, screen])


def _first_missing_url(number: int, instrument: Instrument, missing: dict[str, list[str]]) -> str:
    """The screen that holds the questionnaire's first unanswered (or refused) item."""
    first = next((it.code for it in instrument.items if it.code in missing), "")
    return _screen_url(number, screen_of(instrument_screens(instrument), first))


def _back_url(pages: list[Page], number: int, screen: int) -> str:
    """The screen before this one: the previous screen of this questionnaire, else the last of the previous one."""
    if screen > 1:
        return _screen_url(number, screen - 1)
    if number > 1:
        return _screen_url(number - 1, len(instrument_screens(pages[number - 2][1])))
    return ""


@never_cache
def start(request: HttpRequest) -> HttpResponse:
    link = _session_link(request)
    if link is None:
        if request.session.get(DONE_KEY):
            return HttpResponseRedirect(reverse("participant-done"))
        return _unavailable(request)
    pages = _pages(link)
    if not pages:
        return render(request, "assessments/not_open.html", _context(request, link), status=200)
    for number, (adm, instrument) in enumerate(pages, start=1):
        missing = _missing(instrument, adm.draft_answers)
        if missing:
            return HttpResponseRedirect(_first_missing_url(number, instrument, missing))
    return HttpResponseRedirect(reverse("participant-review"))


def _form_answers(request: HttpRequest, items: tuple[Item, ...]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for item in items:
        raw = request.POST.get(item.code)
        if raw in (None, ""):
            continue
        try:
            answers[item.code] = int(raw)
        except ValueError:
            answers[item.code] = raw  # refused per item by validation, with the item named
    return answers


def _render_page(
    request: HttpRequest,
    link: ParticipantLink,
    pages: list[Page],
    number: int,
    screen: int,
    *,
    answers: dict[str, Any],
    errors: dict[str, list[str]],
    status: int = 200,
) -> HttpResponse:
    adm, instrument = pages[number - 1]
    screens = instrument_screens(instrument)
    on_screen = {it.code for it in screens[screen - 1]}
    wording = selectors.link_wording(link).participant_wording(adm, translation.get_language() or "en")
    shown = {it.code for it in visible_items(instrument, answers)}
    position = {it.code: i for i, it in enumerate(instrument.items, start=1)}
    items = [
        {
            "code": it.code,
            "position": position[it.code],
            "text": wording.item_text(it.code),
            "required": it.required,
            "hidden": it.code not in shown,
            "show_if": it.show_if,
            "options": [
                {
                    "value": o.value,
                    "label": wording.option_label(it.code, o.value),
                    "checked": answers.get(it.code) == o.value,
                }
                for o in it.options
            ],
            "errors": errors.get(it.code, []),
        }
        for it in screens[screen - 1]
    ]
    # Progress over the whole link: the other questionnaires' saved drafts, this one's other screens, and this screen
    # (sent apart, so that the page script can keep the count current as questions here are answered).
    elsewhere = [answered_of(i, a.draft_answers) for a, i in pages if a.pk != adm.pk]
    elsewhere.append(answered_of(instrument, answers, set(instrument.item_codes) - on_screen))
    answered_elsewhere, items_elsewhere = (sum(n for n, _ in elsewhere), sum(t for _, t in elsewhere))
    answered_here, items_here = answered_of(instrument, answers, on_screen)
    context = _context(
        request,
        link,
        number=number,
        total=len(pages),
        screen=screen,
        screens=len(screens),
        last=screen == len(screens) and number == len(pages),
        back_url=_back_url(pages, number, screen),
        back_is_questionnaire=screen == 1,
        answered=answered_elsewhere + answered_here,
        total_items=items_elsewhere + items_here,
        answered_elsewhere=answered_elsewhere,
        items_elsewhere=items_elsewhere,
        instrument=instrument,
        wording=wording,
        items=items,
        errors=errors,
        error_count=sum(1 for it in items if it["errors"]),
        autosave_url=reverse("participant-autosave", args=[number]),
    )
    return render(request, "assessments/page.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def page(request: HttpRequest, number: int, screen: int = 1) -> HttpResponse:
    link = _session_link(request)
    if link is None:
        return _unavailable(request)
    pages = _pages(link)
    if not 1 <= number <= len(pages):
        return HttpResponseRedirect(reverse("participant-start"))
    adm, instrument = pages[number - 1]
    screens = instrument_screens(instrument)
    if not 1 <= screen <= len(screens):
        return HttpResponseRedirect(reverse("participant-page", args=[number]))
    if request.method == "GET":
        return _render_page(request, link, pages, number, screen, answers=adm.draft_answers, errors={})
    on_screen: Screen = screens[screen - 1]
    posted = _form_answers(request, on_screen)
    try:
        saved = services.link_save_answers(
            link=link, answers_by_instrument={adm.instrument_code: posted}, prune_hidden=True
        )
    except ServiceError as exc:
        return _render_page(
            request,
            link,
            pages,
            number,
            screen,
            answers={**adm.draft_answers, **posted},
            errors=exc.field_errors,
            status=400,
        )
    answers = saved[0].draft_answers
    action = request.POST.get("action")
    if action == "later":
        return render(request, "assessments/saved.html", _context(request, link))
    if action == "back" and (back := _back_url(pages, number, screen)):
        return HttpResponseRedirect(back)
    # Only this screen's questions are asked for here; the others are asked for on their own screens and at review.
    codes = {it.code for it in on_screen}
    missing = {code: problems for code, problems in _missing(instrument, answers).items() if code in codes}
    if missing:
        return _render_page(request, link, pages, number, screen, answers=answers, errors=missing, status=400)
    if screen < len(screens):
        return HttpResponseRedirect(_screen_url(number, screen + 1))
    if number < len(pages):
        return HttpResponseRedirect(reverse("participant-page", args=[number + 1]))
    return HttpResponseRedirect(reverse("participant-review"))


@never_cache
@require_http_methods(["POST"])
def autosave(request: HttpRequest, number: int) -> HttpResponse:
    """Saves answers as they are chosen (the page's script posts each change), so a participant who closes the tab
    resumes where they stopped, on any device, by opening the link again."""
    link = _session_link(request)
    if link is None:
        return JsonResponse({"saved": False}, status=404)
    pages = _pages(link)
    if not 1 <= number <= len(pages):
        return JsonResponse({"saved": False}, status=404)
    adm, instrument = pages[number - 1]
    try:
        services.link_save_answers(
            link=link,
            answers_by_instrument={adm.instrument_code: _form_answers(request, instrument.items)},
            prune_hidden=True,
        )
    except ServiceError as exc:
        return JsonResponse({"saved": False, "errors": exc.field_errors}, status=400)
    return JsonResponse({"saved": True})


@never_cache
@require_http_methods(["GET", "POST"])
def review(request: HttpRequest) -> HttpResponse:
    link = _session_link(request)
    if link is None:
        if request.session.get(DONE_KEY):
            return HttpResponseRedirect(reverse("participant-done"))
        return _unavailable(request)
    pages = _pages(link)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            services.link_submit(link=link)
        except ServiceError as exc:
            errors = exc.field_errors
        else:
            request.session.pop(links.SESSION_KEY, None)
            request.session[DONE_KEY] = True
            return HttpResponseRedirect(reverse("participant-done"))
    language = translation.get_language() or "en"
    sections: list[dict[str, Any]] = []
    incomplete = 0
    for number, (adm, instrument) in enumerate(pages, start=1):
        answers = adm.draft_answers
        missing = _missing(instrument, answers)
        incomplete += len(missing)
        wording = selectors.link_wording(link).participant_wording(adm, language)
        rows = []
        for it in visible_items(instrument, answers):
            value = answers.get(it.code)
            label = wording.option_label(it.code, value) if isinstance(value, int) else None
            rows.append(
                {
                    "code": it.code,
                    "text": wording.item_text(it.code),
                    "answer": label,
                    "missing": it.code in missing,
                }
            )
        # "Change answers" opens the screen of the first unanswered question, else the questionnaire's first screen.
        url = _first_missing_url(number, instrument, missing) if missing else _screen_url(number, 1)
        sections.append(
            {
                "number": number,
                "instrument": instrument,
                "wording": wording,
                "rows": rows,
                "missing": len(missing),
                "url": url,
            }
        )
    context = _context(
        request,
        link,
        sections=sections,
        incomplete=incomplete,
        submit_errors=bool(errors),
        total=len(pages),
        placeholder=any(section["wording"].placeholder for section in sections),
    )
    return render(request, "assessments/review.html", context, status=400 if errors else 200)


@never_cache
def done(request: HttpRequest) -> HttpResponse:
    if not request.session.get(DONE_KEY):
        return _unavailable(request)
    # The link left the session at submit: the thank-you page keeps the participant's language from the session.
    _activate_session_language(request)
    return render(request, "assessments/done.html", {"message": _("Thank you")})
