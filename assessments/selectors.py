"""Assessment reads. Nothing here writes, and nothing joins the allocation (raters are blinded).

Staff reads are scoped by the acting user's sites. The participant link reads take the token (the credential) and
answer alike for unknown, revoked, expired and submitted links.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import Any

from django.conf import settings
from django.db.models import BooleanField, ExpressionWrapper, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from assessments import links, texts
from assessments.definitions import Instrument
from assessments.models import Administration, Answer, ParticipantLink, Response, SafetyAlert, Score
from assessments.windows import ANSWERABLE, SELF, administration_status, is_open
from participants import access
from participants.access import Actor, site_ids_for
from participants.models import Participant
from scheduling.models import Visit

INACTIVE_PARTICIPANT = frozenset({Participant.Status.WITHDRAWN, Participant.Status.SCREEN_FAILED})
# A real token is 43 characters; anything far longer is refused before it is hashed.
MAX_TOKEN_LENGTH = 200


# --- responses and scores ---------------------------------------------------------------------------------------------


def responses_for(user: Actor) -> QuerySet[Response]:
    return (
        Response.objects.filter(participant__site_id__in=site_ids_for(user))
        .select_related("participant__site", "visit")
        .prefetch_related(
            Prefetch("scores", queryset=Score.objects.order_by("kind", "id")),
            Prefetch("answers", queryset=Answer.objects.order_by("id")),
        )
    )


def response_get(user: Actor, response_id: int) -> Response:
    return get_object_or_404(responses_for(user), pk=response_id)


def scores_dict(response: Response) -> dict[str, float | None]:
    return {s.code: s.value for s in response.scores.all() if s.kind == Score.Kind.SCALE}


def flags_dict(response: Response) -> dict[str, Any]:
    return {s.code: (s.text_value or s.value) for s in response.scores.all() if s.kind == Score.Kind.FLAG}


# --- administrations ------------------------------------------------------------------------------------------------


def administrations_of_visit(visit: Visit) -> QuerySet[Administration]:
    return Administration.objects.filter(visit=visit).select_related("response").order_by("order", "id")


def administration_get(user: Actor, administration_id: int) -> Administration:
    qs = Administration.objects.filter(participant__site_id__in=site_ids_for(user)).select_related("participant__site")
    return get_object_or_404(qs, pk=administration_id)


# --- participant links ----------------------------------------------------------------------------------------------


def link_find(token: str, *, now: dt.datetime | None = None) -> ParticipantLink | None:
    """The usable link for ``token``, or None. A pure read (a GET must never consume anything): unknown, revoked,
    expired and fully submitted links all give None, so callers cannot tell them apart."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    link = (
        ParticipantLink.objects.select_related("participant__site", "participant__contact", "visit")
        .filter(token_hash=links.token_hash(token))
        .first()
    )
    return link if link is not None and link_usable(link, now=now) else None


def link_by_pk(link_id: int) -> ParticipantLink | None:
    """The link a participant's session holds, if it is still usable."""
    link = (
        ParticipantLink.objects.select_related("participant__site", "participant__contact", "visit")
        .filter(pk=link_id)
        .first()
    )
    return link if link is not None and link_usable(link) else None


def link_wording(link: ParticipantLink) -> texts.Wording:
    """The library and text packs as read for this link's request (read once per link object: a request reads its
    link afresh, and so sees a pack loaded since the last one)."""
    wording: texts.Wording | None = getattr(link, "_wording", None)
    if wording is None:
        wording = link._wording = texts.Wording()  # type: ignore[attr-defined]
    return wording


def _self_reports(link: ParticipantLink) -> list[Administration]:
    # The visit's self-report administrations, in visit order, read once per link object (``link_forget_reads``
    # after a write to them).
    adms: list[Administration] | None = getattr(link, "_self_reports", None)
    if adms is None:
        adms = list(Administration.objects.filter(visit_id=link.visit_id, respondent=SELF).order_by("order", "id"))
        link._self_reports = adms  # type: ignore[attr-defined]
    return adms


def link_forget_reads(link: ParticipantLink) -> None:
    """After a write to the link's administrations: the next read of them reads them again."""
    link._self_reports = None  # type: ignore[attr-defined]


def link_usable(link: ParticipantLink, *, now: dt.datetime | None = None) -> bool:
    """Not revoked, the participant active, and one of the visit's self-report questionnaires still answerable."""
    now = now or timezone.now()
    if link.revoked_at is not None or link.participant.status in INACTIVE_PARTICIPANT:
        return False
    adms = _offered(link.participant, _self_reports(link), link_wording(link).available())
    closes = [a.closes_at for a in adms if administration_status(a, now) in ANSWERABLE and a.closes_at is not None]
    return bool(closes) and now <= max(closes)


def _offered(
    participant: Participant, adms: Iterable[Administration], available: Collection[tuple[str, str]] | None = None
) -> list[Administration]:
    """The administrations a participant is offered: those held for want of wording in their language are not."""
    language = texts.language_of(participant)
    if available is None:
        available = texts.text_available()
    return [a for a in adms if not texts.is_held(a, language, available)]


def link_pending(link: ParticipantLink, now: dt.datetime) -> list[Administration]:
    """The link's self-report administrations that can be answered now and have wording in the participant's
    language, in visit order."""
    offered = _offered(link.participant, _self_reports(link), link_wording(link).available())
    return [a for a in offered if is_open(a, now)]


def administrations_offered(participant: Participant, adms: Iterable[Administration]) -> list[Administration]:
    """``adms`` without those held for want of wording in the participant's language (``assessments.texts``)."""
    return _offered(participant, adms)


def held_administration_ids(participant: Participant, adms: Iterable[Administration]) -> set[int]:
    """The ids of ``adms`` held for want of validated wording in the participant's language: staff see "validated
    text missing" for them. Answered and closed ones are not held (nothing more is asked of them)."""
    language = texts.language_of(participant)
    available = texts.text_available()
    return {
        a.pk
        for a in adms
        if a.status not in (Administration.Status.COMPLETED, Administration.Status.NOT_APPLICABLE)
        and texts.is_held(a, language, available)
    }


def held_by_visit(visit_pks: Collection[int], *, now: dt.datetime) -> dict[int, tuple[list[str], bool]]:
    """For each of these visits with an open self-report questionnaire held for want of validated wording in the
    participant's language: the held instrument codes, and whether every open one is held (then no link can be
    sent). Visits with none held are absent. Three queries whatever the number of visits."""
    available = texts.text_available()
    rows = (
        _answerable_self_reports(now)
        .filter(visit_id__in=list(visit_pks))
        .order_by("visit_id", "order", "id")
        .values_list("visit_id", "instrument_code", "text_pack_id", "participant__contact__language")
    )
    held: dict[int, list[str]] = {}
    offered: set[int] = set()
    for visit_id, code, pack_id, language in rows:
        if pack_id is None and (code, language or settings.LANGUAGE_CODE) not in available:
            held.setdefault(visit_id, []).append(code)
        else:
            offered.add(visit_id)
    return {visit_id: (codes, visit_id not in offered) for visit_id, codes in held.items()}


def link_responses(link: ParticipantLink) -> list[Response]:
    return list(Response.objects.filter(visit_id=link.visit_id, administration__respondent=SELF).order_by("id"))


def link_submitted(token: str) -> ParticipantLink | None:
    """A link whose questionnaires were submitted through it (for the idempotent repeat answer to a submit)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    link = ParticipantLink.objects.filter(token_hash=links.token_hash(token), revoked_at__isnull=True).first()
    if link is None or not Response.objects.filter(link=link).exists():
        return None
    return link


# --- safety alerts --------------------------------------------------------------------------------------------------


def safety_alerts_for(user: Actor) -> QuerySet[SafetyAlert]:
    return SafetyAlert.objects.filter(participant__site_id__in=site_ids_for(user)).select_related(
        "participant__site", "response", "acknowledged_by"
    )


def safety_alerts_raised_by(source: str, source_ids: Collection[int]) -> QuerySet[SafetyAlert]:
    """The alerts raised by these rows of another app's source (vital signs, adverse events), oldest first. The
    caller has already checked that the user may see the rows."""
    return (
        SafetyAlert.objects.filter(source=source, source_id__in=list(source_ids))
        .select_related("acknowledged_by")
        .order_by("created_at", "id")
    )


def safety_alert_get(user: Actor, alert_id: int) -> SafetyAlert:
    return get_object_or_404(safety_alerts_for(user), pk=alert_id)


def safety_alerts_unnotified_counts() -> dict[str, int]:
    """Open alerts whose first mail reached no investigator (the site has none with an e-mail address), in all sites:
    ``no_investigator_notified`` (its coordinators were mailed instead, or nobody) and ``nobody_notified``. /readyz
    reports them (counts only: it is public). One query."""
    from django.db.models import Count, Q

    unnotified = (SafetyAlert.NotifiedTo.COORDINATORS, SafetyAlert.NotifiedTo.NOBODY)
    counts = SafetyAlert.objects.filter(acknowledged_at__isnull=True, notified_to__in=unnotified).aggregate(
        no_investigator_notified=Count("id"),
        nobody_notified=Count("id", filter=Q(notified_to=SafetyAlert.NotifiedTo.NOBODY)),
    )
    return {key: int(value or 0) for key, value in counts.items()}


def escalate_after() -> dt.timedelta:
    """How long an alert may stay unacknowledged before it is escalated (SAFETY_ALERT_ESCALATE_AFTER_MINUTES)."""
    return dt.timedelta(minutes=int(getattr(settings, "SAFETY_ALERT_ESCALATE_AFTER_MINUTES", 60)))


# --- reads for exports ---


def answers_at_sites(site_ids: Collection[int], study_ids: Collection[int] | None = None) -> QuerySet[Answer]:
    """Answers of participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = Answer.objects.filter(response__participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(response__participant__study_id__in=study_ids)
    return qs


def scores_at_sites(site_ids: Collection[int], study_ids: Collection[int] | None = None) -> QuerySet[Score]:
    """Scores of participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = Score.objects.filter(response__participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(response__participant__study_id__in=study_ids)
    return qs


def raters_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[Response, tuple[int, int]]:
    """(study id, user id) of every member of staff who entered a clinician-rated questionnaire of participants at
    these sites: the exports' rater ids, in one query."""
    qs = Response.objects.filter(
        participant__site_id__in=site_ids,
        entered_by__isnull=False,
        administration__respondent=Administration.Respondent.CLINICIAN,
    )
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs.values_list("participant__study_id", "entered_by_id").distinct()


def safety_alerts_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[SafetyAlert]:
    """Safety alerts of participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = SafetyAlert.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs


def questionnaire_alerts_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[SafetyAlert]:
    """As ``safety_alerts_at_sites``, the alerts a questionnaire raised only (the safety_alerts export's rows; vital
    signs and adverse events are exported with their own records)."""
    qs = SafetyAlert.objects.filter(participant__site_id__in=site_ids, source=SafetyAlert.Source.QUESTIONNAIRE)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs


# --- reads for notifications ---
# The import sits in this appended block so that the block merges on its own.

_ADMINISTRATION_DONE = (Administration.Status.COMPLETED, Administration.Status.NOT_APPLICABLE)


def administrations_outstanding(participant_pk: int) -> QuerySet[Administration]:
    """A participant's administrations not done yet (neither completed nor not applicable), expired ones included:
    what the site is still waiting for."""
    return Administration.objects.filter(participant_id=participant_pk).exclude(status__in=_ADMINISTRATION_DONE)


def self_reports_open(participant_pk: int, *, now: dt.datetime) -> QuerySet[Administration]:
    """A participant's self-report administrations that can still be answered: not done, with a window that has not
    closed at ``now`` (it may not have opened yet). Whether one has expired comes from the clock, never from the
    stored status, which nothing refreshes on a read."""
    return (
        administrations_outstanding(participant_pk)
        .filter(respondent=Administration.Respondent.SELF, opens_at__isnull=False, closes_at__gte=now)
        # Held for want of wording in the participant's language: no reminder is planned for it (the periodic
        # reconcile plans it once a pack is loaded).
        .exclude(texts.held_q(texts.text_available()))
    )


def outstanding_counts_by_visit(visit_pks: set[int]) -> dict[int, int]:
    """How many administrations of each visit are not done yet (one query); visits with none are absent."""
    from django.db.models import Count

    rows = (
        Administration.objects.filter(visit_id__in=visit_pks)
        .exclude(status__in=_ADMINISTRATION_DONE)
        .order_by()
        .values("visit_id")
        .annotate(n=Count("id"))
    )
    return {row["visit_id"]: row["n"] for row in rows}


def safety_alerts_listed(user: Actor, *, open_only: bool = False) -> QuerySet[SafetyAlert]:
    """The alerts the user may read (alert readers' sites only), newest first; ``open_only``: not yet acknowledged."""
    qs = safety_alerts_for(user).filter(participant__site_id__in=access.alert_site_ids(user))
    if open_only:
        qs = qs.filter(acknowledged_at__isnull=True)
    return qs.order_by("-created_at", "-id")


# --- reads for the dashboard matrix ---


def matrix_administrations(participant_pks: Collection[int]) -> QuerySet[Administration]:
    """The administrations of these participants, with what ``windows.administration_status`` needs. One query."""
    return (
        Administration.objects.filter(participant_id__in=list(participant_pks))
        .only("id", "visit_id", "status", "respondent", "closes_at", "draft_answers")
        .order_by("visit_id", "order", "id")
    )


# --- reads for the dashboard participant page ---


def administrations_of_participant(participant: Participant) -> QuerySet[Administration]:
    """Every questionnaire of the participant with its visit, response and scores (three queries however many), in
    visit order."""
    return (
        Administration.objects.filter(participant=participant)
        .select_related("visit", "response")
        .prefetch_related(Prefetch("response__scores", queryset=Score.objects.order_by("kind", "id")))
        .order_by("visit__target_date", "visit__scheduled_start", "visit_id", "order", "id")
    )


# --- reads for the dashboard (links) ---

# Participants who no longer answer questionnaires by link: nothing is chased for them.
_NO_LONGER_ASKED = frozenset(
    {
        Participant.Status.WITHDRAWN,
        Participant.Status.SCREEN_FAILED,
        Participant.Status.COMPLETED,
        Participant.Status.LOST_TO_FOLLOW_UP,
    }
)


def _answerable_self_reports(now: dt.datetime) -> QuerySet[Administration]:
    # ``windows.is_open`` as SQL: not done, opened, and its window not closed at ``now``. A window without an end is
    # left out, as ``services.link_issue`` leaves it out (a link needs an expiry).
    return Administration.objects.filter(respondent=SELF, opens_at__lte=now, closes_at__gte=now).exclude(
        status__in=_ADMINISTRATION_DONE
    )


def visit_has_answerable_self_report(visit_pk: int, *, now: dt.datetime) -> bool:
    """Can any self-report questionnaire of the visit be answered at ``now``, with wording in the participant's
    language (a held one is not offered)? Three queries."""
    return (
        _answerable_self_reports(now).filter(visit_id=visit_pk).exclude(texts.held_q(texts.text_available())).exists()
    )


def visit_ids_with_answerable_self_reports(now: dt.datetime) -> set[int]:
    """The ids of visits with a self-report questionnaire open and answerable at ``now``, whoever the participant: a
    caller keeps the participants ``still_asked`` in the query that reads the visits (which joins them anyway), so
    this one reads the partial index alone (administration_open_self_idx carries the visit)."""
    return set(_answerable_self_reports(now).order_by().values_list("visit_id", flat=True))


def still_asked(prefix: str = "") -> Q:
    """The participants still asked to answer questionnaires by link (not withdrawn at any level, not screen-failed,
    completed or lost to follow-up), as a condition on the participant reached through ``prefix`` (for a visit
    query, ``"participant__"``)."""
    return ~Q(**{f"{prefix}status__in": sorted(_NO_LONGER_ASKED)}) & ~Q(**{f"{prefix}withdrawal_level__gt": ""})


def may_correct_response(user: Actor, *, site_id: int, entered_by_id: int | None, instrument: Instrument) -> bool:
    """Who may correct a stored response. A self-report: any of the instrument's entry roles at the site. A clinician
    rating is the rater's judgement: the clinician who entered it (while still holding an entry role at the site), or
    an investigator (or administrator) of the site, who answers for its data; another entry role may not
    (docs/security.md)."""
    may_enter = access.has_role(user, site_id, instrument.entry_roles)
    if instrument.respondent != "clinician":
        return may_enter
    if access.has_role(user, site_id, access.INVESTIGATORS):
        return True
    return may_enter and entered_by_id is not None and entered_by_id == getattr(user, "pk", None)


def administration_inputs_by_participant(
    participant_pks: Collection[int], *, now: dt.datetime
) -> dict[int, tuple[object, ...]]:
    """What the reminder planner reads of each participant's outstanding administrations (``administrations_outstanding``
    and ``self_reports_open`` at ``now``), as plain values, in one query for the batch: a window closing by the clock
    or a language pack loaded for a held questionnaire changes them as surely as a write does."""
    held = texts.held_q(texts.text_available())
    rows = (
        Administration.objects.filter(participant_id__in=list(participant_pks))
        .exclude(status__in=_ADMINISTRATION_DONE)
        .annotate(held=ExpressionWrapper(held, output_field=BooleanField()))
        .order_by("participant_id", "id")
        .values_list("participant_id", "id", "visit_id", "status", "respondent", "opens_at", "closes_at", "held")
    )
    out: dict[int, list[object]] = {}
    for participant, pk, visit, status, respondent, opens, closes, is_held in rows:
        still_open = closes is not None and closes >= now
        out.setdefault(participant, []).append((pk, visit, status, respondent, opens, closes, still_open, is_held))
    return {pk: tuple(adms) for pk, adms in out.items()}
