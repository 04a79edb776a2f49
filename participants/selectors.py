"""Reads scoped by the acting user's sites and blinding. Views never filter by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncWeek
from django.shortcuts import get_object_or_404

from audit.selectors import status_transitions_to
from participants.access import Actor, is_superuser, site_ids_for
from participants.demographics import FORM_CODE, DemographicForm, parse_form, shipped_form
from participants.models import (
    AllocationSlot,
    Arm,
    ConsentDocument,
    ConsentRecord,
    ContactDetails,
    DemographicFormVersion,
    DemographicRecord,
    EligibilityAnswer,
    EligibilityCriterion,
    Participant,
    Site,
    StaffMembership,
    StaffProfile,
    Study,
)
from trialsite.roles import ALWAYS_BLINDED, ALWAYS_UNBLINDED, Role

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def sites_for(user: Actor) -> QuerySet[Site]:
    return Site.objects.filter(id__in=site_ids_for(user)).order_by("code")


def studies_for(user: Actor) -> QuerySet[Study]:
    return Study.objects.filter(sites__in=site_ids_for(user)).distinct().prefetch_related("arms").order_by("code")


def participants_for(user: Actor) -> QuerySet[Participant]:
    """Participants at the user's sites. The allocation is not joined here: callers that may show it ask for it."""
    return Participant.objects.filter(site_id__in=site_ids_for(user)).select_related("study", "site")


def participant_get(user: Actor, participant_id: str) -> Participant:
    """One participant, or Http404 if it does not exist or lies outside the user's sites (the two look the same)."""
    return get_object_or_404(participants_for(user), participant_id=participant_id)


def site_get(user: Actor, code: str) -> Site:
    """One of the user's sites, or Http404."""
    return get_object_or_404(sites_for(user), code=code)


def site_of_user(user: Actor, code: str) -> Site | None:
    """One of the user's sites by code, or None."""
    return sites_for(user).filter(code=code).first()


def study_by_code(code: str) -> Study | None:
    return Study.objects.filter(code=code).first()


def study_of_user_get(user: Actor, code: str) -> Study:
    """A study at one of the user's sites, or Http404: a study elsewhere looks the same as one that does not exist
    (unblinding then decides itself who of the study's staff may act on it)."""
    return get_object_or_404(studies_for(user), code=code)


def studies_by_code(codes: Iterable[str]) -> dict[str, Study]:
    return {study.code: study for study in Study.objects.filter(code__in=list(codes))}


def staff_member_at(site: Site, username: str) -> User | None:
    """A user holding a role at ``site``, by username."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username, memberships__site=site).distinct().first()


def user_by_username(username: str) -> User | None:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(username=username).first()


def latest_consent(participant: Participant) -> ConsentRecord | None:
    return participant.consents.select_related("document").order_by("-id").first()


def latest_consent_versions(participant_ids: Iterable[int]) -> dict[int, str]:
    """The consent version each participant signed last (one query for a page of participants)."""
    versions: dict[int, str] = {}
    for pid, version in (
        ConsentRecord.objects.filter(participant_id__in=list(participant_ids))
        .order_by("id")
        .values_list("participant_id", "document__version")
    ):
        versions[pid] = version
    return versions


def arm_codes(participant_ids: Iterable[int]) -> dict[int, str]:
    """The arm of each randomized participant among ``participant_ids``: only for callers that may see it."""
    return dict(
        AllocationSlot.objects.filter(participant_id__in=list(participant_ids)).values_list(
            "participant_id", "arm__code"
        )
    )


# --- configuration (administrators) ----------------------------------------------------------------------------------


def configurable_studies(user: Actor) -> QuerySet[Study]:
    """Studies an administrator may open for configuration: every study for a superuser (a new study has no site
    yet), the studies of the user's sites otherwise (whether the user may change them is the service's question)."""
    if is_superuser(user):
        return Study.objects.order_by("code")
    return Study.objects.filter(sites__in=site_ids_for(user)).distinct().order_by("code")


def configurable_study_get(user: Actor, code: str) -> Study:
    return get_object_or_404(configurable_studies(user), code=code)


def configurable_site_get(user: Actor, code: str) -> Site:
    """Superusers see every site (site_ids_for already says so); others their own."""
    return get_object_or_404(sites_for(user), code=code)


def criteria_of(study: Study) -> QuerySet[EligibilityCriterion]:
    """Every criterion of the study, retired ones included, in the order they are asked."""
    return EligibilityCriterion.objects.filter(study=study).order_by("order", "code")


def criterion_get(study: Study, criterion_id: int) -> EligibilityCriterion:
    return get_object_or_404(criteria_of(study), pk=criterion_id)


def consent_documents_of(study: Study) -> QuerySet[ConsentDocument]:
    return ConsentDocument.objects.filter(study=study).select_related("published_by").order_by("published_at", "id")


def memberships_at(site: Site) -> QuerySet[StaffMembership]:
    return StaffMembership.objects.filter(site=site).select_related("user", "site").order_by("user__username", "role")


def membership_get(site: Site, membership_id: int) -> StaffMembership:
    return get_object_or_404(memberships_at(site), pk=membership_id)


def current_consent_document(study: Study) -> ConsentDocument | None:
    return study.consent_documents.order_by("-published_at", "-id").first()


# --- reads for exports ---


def sites_all() -> QuerySet[Site]:
    """Every site, by code (exports resolve site codes and freeze scopes against them)."""
    return Site.objects.order_by("code")


def studies_at_sites(site_ids: Collection[int]) -> QuerySet[Study]:
    """Studies run at any of these sites."""
    return Study.objects.filter(sites__in=site_ids).distinct()


def studies_of_sites(site_ids: Collection[int]) -> QuerySet[Study]:
    """Studies run at any of these sites or with participants there."""
    return Study.objects.filter(Q(sites__in=site_ids) | Q(participants__site_id__in=site_ids)).distinct()


def participants_at_sites(site_ids: Collection[int], study_ids: Collection[int] | None = None) -> QuerySet[Participant]:
    """Participants at these sites (and of these studies, if given); unordered, nothing joined."""
    qs = Participant.objects.filter(site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(study_id__in=study_ids)
    return qs


def participants_with_consent_version(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[Participant]:
    """:func:`participants_at_sites`, each annotated with ``consent_version``: the document version of its latest
    consent record (None if it has none)."""
    latest = ConsentRecord.objects.filter(participant=OuterRef("pk")).order_by("-id").values("document__version")[:1]
    return participants_at_sites(site_ids, study_ids).annotate(consent_version=Subquery(latest))


# --- reads for notifications ---


def participant_with_study_and_contact(participant_pk: int) -> Participant:
    """One participant by primary key with its site, study and contact details, in one query. No user scoping: the
    reminder planner and sender run as the system, and the contact details they read never leave the message."""
    return Participant.objects.select_related("site", "study", "contact").get(pk=participant_pk)


def participants_with_study_and_contact(participant_pks: Collection[int]) -> dict[int, Participant]:
    """``participant_with_study_and_contact`` for many participants at once, by primary key (one query)."""
    return Participant.objects.select_related("site", "study", "contact").in_bulk(list(participant_pks))


def participant_pks_with_status(statuses: frozenset[str]) -> set[int]:
    return set(Participant.objects.filter(status__in=statuses).values_list("id", flat=True))


def staff_user_ids_with_email(*, site_id: int, roles: tuple[str, ...]) -> tuple[int, ...]:
    """Active users who hold one of ``roles`` at the site and have an e-mail address, by user id (one query)."""
    return tuple(
        StaffMembership.objects.filter(site_id=site_id, role__in=roles, user__is_active=True)
        .exclude(user__email="")
        .order_by("user_id")
        .values_list("user_id", flat=True)
        .distinct()
    )


def user_ids_blinded_at(*, site_id: int, user_ids: Collection[int], study: Study) -> tuple[int, ...]:
    """Those of ``user_ids`` who may not see the arm of the study's participants at the site (as
    ``access.can_see_allocation`` decides from their roles there), by user id (one query)."""
    roles: dict[int, set[str]] = {}
    for user_id, role in StaffMembership.objects.filter(site_id=site_id, user_id__in=list(user_ids)).values_list(
        "user_id", "role"
    ):
        roles.setdefault(user_id, set()).add(role)
    open_study = not study.blinded or study.unblinded
    return tuple(
        user_id
        for user_id in sorted(user_ids)
        if (held := roles.get(user_id, set())) & ALWAYS_BLINDED
        or not held
        or (not held & ALWAYS_UNBLINDED and not open_study)
    )


# --- reads for assessments ---


def participant_with_contact(participant_pk: int) -> Participant:
    """One participant with site and contact details loaded: status, time zone and language in one query."""
    return Participant.objects.select_related("site", "contact").get(pk=participant_pk)


def staff_emails_at(site_id: int, roles: set[str] | frozenset[str]) -> list[str]:
    """The e-mail addresses of active staff holding one of ``roles`` at the site, sorted, each once."""
    emails = (
        StaffMembership.objects.filter(site_id=site_id, role__in=sorted(roles), user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
        .distinct()
    )
    return sorted(set(emails))


def sites_with_public_contact() -> QuerySet[Site]:
    """Sites that publish an e-mail address or a phone number for participants, by name."""
    return Site.objects.exclude(contact_email="", contact_phone="").order_by("name")


# --- reads for scheduling ---


def study_arm_codes(study_pk: int) -> list[str]:
    """The codes of a study's arms, in their configured order: configuration, which names no one's allocation."""
    return list(Arm.objects.filter(study_id=study_pk).order_by("id").values_list("code", flat=True))


def arm_code_of(participant: Participant) -> str | None:
    """The code of the arm the participant is allocated to, or None before randomization. Scheduling plans visits
    from it and never shows it."""
    code: str | None = (
        AllocationSlot.objects.filter(participant=participant).values_list("arm__code", flat=True).first()
    )
    return code


def site_visible(user: Actor, code: str) -> Site | None:
    """The site with ``code`` if the user may see it; None when it does not exist or lies outside the user's sites."""
    return Site.objects.filter(id__in=site_ids_for(user), code=code).first()


def participant_locked(participant: Participant) -> Participant:
    """The participant's row read again and locked until the transaction ends, for writers that number things per
    participant (two requests must not both take the same number)."""
    return Participant.objects.select_for_update(of=("self",)).select_related("site", "study").get(pk=participant.pk)


def active_staff_at_site(site: Site, usernames: Collection[str], *, role: str | None = None) -> dict[str, User]:
    """The active users among ``usernames`` who hold a role at the site (``role`` when given), by username."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(username__in=list(usernames), memberships__site=site, is_active=True)
    if role is not None:
        users = users.filter(memberships__role=role)
    return {user.username: user for user in users.distinct()}


# --- reads for dashboard ---


def staff_language(user: Actor) -> str | None:
    """The language the user chose for the staff pages, or None when they never chose one."""
    if user is None or not user.is_authenticated:
        return None
    language: str | None = StaffProfile.objects.filter(user_id=user.pk).values_list("language", flat=True).first()
    return language


# --- reads for the dashboard matrix ---


def matrix_sites(user: Actor, study: Study) -> QuerySet[Site]:
    """The user's sites that run ``study``, by code."""
    return sites_for(user).filter(studies=study)


def matrix_participants(
    user: Actor,
    *,
    study: Study,
    site_ids: Collection[int],
    status: str = "",
    id_contains: str = "",
    pks: Collection[int] | None = None,
) -> QuerySet[Participant]:
    """The study's participants at ``site_ids`` (those outside the user's sites are dropped, so a caller cannot
    widen the scope), by participant id, with their site. ``status``, ``id_contains`` (case-insensitive) and ``pks``
    narrow the rows when given."""
    qs = Participant.objects.filter(study=study, site_id__in=set(site_ids) & site_ids_for(user)).select_related("site")
    if status:
        qs = qs.filter(status=status)
    if id_contains:
        qs = qs.filter(participant_id__icontains=id_contains)
    if pks is not None:
        qs = qs.filter(pk__in=list(pks))
    return qs.order_by("participant_id")


CONTACT_SEARCH_KINDS = ("name", "email", "phone")


def participant_pks_by_contact(user: Actor, *, study: Study, kind: str, text: str, limit: int) -> list[int]:
    """The study's participants whose contact details match ``text`` (name or e-mail: contains, case-insensitive;
    phone: the digits contain the digits typed), at the sites where the user may see contact details only; at most
    ``limit``, by participant id. Only the primary keys leave this function, never the contact details."""
    from django.db import connection
    from django.db.models import F, Func, Value

    from participants.access import site_ids_with
    from trialsite.roles import CONTACT

    if kind not in CONTACT_SEARCH_KINDS:
        raise ValueError(f"unknown contact search kind {kind!r}")
    text = text.strip()
    if not text:
        return []
    qs = Participant.objects.filter(study=study, site_id__in=site_ids_with(user, CONTACT))
    if kind == "name":
        qs = qs.filter(contact__full_name__icontains=text)
    elif kind == "email":
        qs = qs.filter(contact__email__icontains=text)
    else:
        digits = "".join(ch for ch in text if ch.isdigit())
        if not digits:
            return []
        if connection.vendor == "postgresql":
            only_digits = Func(F("contact__phone"), Value(r"\D"), Value(""), Value("g"), function="regexp_replace")
            qs = qs.annotate(phone_digits=only_digits).filter(phone_digits__contains=digits)
        else:
            qs = qs.filter(contact__phone__contains=digits)
    return list(qs.order_by("participant_id").values_list("pk", flat=True)[:limit])


# --- reads for the dashboard participant page ---


def participant_page_get(user: Actor, participant_id: str) -> Participant:
    """One participant with study, site and contact details joined (the time zone is a contact detail), or Http404
    as :func:`participant_get`. Whether the contact details may be shown is ``access.can_see_contact``'s question."""
    return get_object_or_404(participants_for(user).select_related("contact"), participant_id=participant_id)


def consents_of(participant: Participant) -> QuerySet[ConsentRecord]:
    """Every consent the participant signed, oldest first, with its document and who obtained it."""
    return (
        ConsentRecord.objects.filter(participant=participant)
        .select_related("document", "obtained_by")
        .order_by("signed_at", "id")
    )


def eligibility_answers_of(participant: Participant) -> QuerySet[EligibilityAnswer]:
    """The participant's eligibility answers with their criteria (retired ones included), in the order asked."""
    return (
        EligibilityAnswer.objects.filter(participant=participant)
        .select_related("criterion", "answered_by")
        .order_by("criterion__order", "criterion__code", "id")
    )


def arm_of(participant: Participant) -> Arm | None:
    """The arm the participant is allocated to, or None before randomization: only for callers that may see it."""
    slot = AllocationSlot.objects.filter(participant=participant).select_related("arm").first()
    return slot.arm if slot is not None else None


# --- reads for the dashboard (overview) ---

# The stages of the study flow, as counted by :func:`overview_flow`. A participant counts at every stage they reached,
# not only at the one they are at now: one randomized and later withdrawn counts as randomized and as withdrawn.
FLOW_STAGES = (
    "screened",
    "screen_failed",
    "screen_failed_no_criterion",
    "consented",
    "enrolled",
    "randomized",
    "in_treatment",
    "completed",
    "withdrawn_stop_contact",
    "withdrawn_stop_follow_up",
    "withdrawn_stop_data_use",
    "lost_to_follow_up",
)


def _overview_participants(user: Actor, study: Study, site_ids: Collection[int]) -> QuerySet[Participant]:
    # Sites outside the user's are dropped, so a caller cannot widen the scope by passing them.
    return Participant.objects.filter(study=study, site_id__in=set(site_ids) & site_ids_for(user))


def _failed_criterion() -> Q:
    """An answer that failed its criterion: an inclusion criterion answered "no", an exclusion criterion "yes"."""
    return Q(criterion__kind=EligibilityCriterion.Kind.INCLUSION, answer=False) | Q(
        criterion__kind=EligibilityCriterion.Kind.EXCLUSION, answer=True
    )


def overview_flow(user: Actor, *, study: Study, site_ids: Collection[int]) -> dict[int, dict[str, int]]:
    """How many of the study's participants at each of ``site_ids`` (the user's only) reached each stage of
    :data:`FLOW_STAGES`, by site id (sites with no participant are absent). One aggregate query.

    Every participant record is a person screened. Consent, enrolment and randomization are read from what stays
    when the status moves on (a consent record, ``enrolled_at``, ``randomized_at``); "in treatment" has no field of
    its own, so it is read from the audit trail's status transitions (or the current status); completion,
    withdrawal (by level) and loss to follow-up are final statuses. "Screen failed without a failed criterion" is a
    screen failure decided by an investigator's override."""
    S = Participant.Status
    failed_answer = EligibilityAnswer.objects.filter(_failed_criterion(), participant_id=OuterRef("pk"))
    consent = ConsentRecord.objects.filter(participant_id=OuterRef("pk"))
    treated = status_transitions_to(S.IN_TREATMENT).filter(participant_id=OuterRef("participant_id"))

    def withdrawn(level: str) -> Q:
        return Q(status=S.WITHDRAWN, withdrawal_level=level)

    counts = {
        "screened": Count("pk"),
        "screen_failed": Count("pk", filter=Q(status=S.SCREEN_FAILED)),
        "screen_failed_no_criterion": Count("pk", filter=Q(status=S.SCREEN_FAILED) & ~Q(Exists(failed_answer))),
        "consented": Count("pk", filter=Q(Exists(consent))),
        "enrolled": Count("pk", filter=Q(enrolled_at__isnull=False)),
        "randomized": Count("pk", filter=Q(randomized_at__isnull=False)),
        "in_treatment": Count("pk", filter=Q(status__in=[S.IN_TREATMENT, S.COMPLETED]) | Q(Exists(treated))),
        "completed": Count("pk", filter=Q(status=S.COMPLETED)),
        "withdrawn_stop_contact": Count("pk", filter=withdrawn(Participant.WithdrawalLevel.STOP_CONTACT)),
        "withdrawn_stop_follow_up": Count("pk", filter=withdrawn(Participant.WithdrawalLevel.STOP_FOLLOW_UP)),
        "withdrawn_stop_data_use": Count("pk", filter=withdrawn(Participant.WithdrawalLevel.STOP_DATA_USE)),
        "lost_to_follow_up": Count("pk", filter=Q(status=S.LOST_TO_FOLLOW_UP)),
    }
    rows = _overview_participants(user, study, site_ids).order_by().values("site_id").annotate(**counts)
    out: dict[int, dict[str, int]] = {}
    for row in rows:
        values = cast("dict[str, int]", row)
        out[values["site_id"]] = {stage: int(values[stage]) for stage in FLOW_STAGES}
    return out


def overview_screen_failures(user: Actor, *, study: Study, site_ids: Collection[int]) -> dict[int, dict[int, int]]:
    """The criteria the screen-failed participants failed: by site id, criterion id -> how many participants failed
    it (a participant failing two criteria counts under both). One aggregate query."""
    failed = (
        EligibilityAnswer.objects.filter(
            _failed_criterion(),
            participant__in=_overview_participants(user, study, site_ids).filter(
                status=Participant.Status.SCREEN_FAILED
            ),
        )
        .order_by()
        .values("participant__site_id", "criterion_id")
        .annotate(n=Count("participant_id", distinct=True))
    )
    out: dict[int, dict[int, int]] = {}
    for row in failed:
        out.setdefault(row["participant__site_id"], {})[row["criterion_id"]] = int(row["n"])
    return out


def overview_enrolled_by_week(user: Actor, *, study: Study, site_ids: Collection[int]) -> dict[dt.date, int]:
    """How many of the study's participants at ``site_ids`` (the user's only) were enrolled in each week, by the
    Monday that starts the week in UTC (a study-level calendar: the sites' local weeks differ by hours). Weeks with no
    enrolment are absent. One aggregate query."""
    rows = (
        _overview_participants(user, study, site_ids)
        .filter(enrolled_at__isnull=False)
        .annotate(week=TruncWeek("enrolled_at", tzinfo=dt.UTC))
        .order_by()
        .values("week")
        .annotate(n=Count("pk"))
    )
    return {row["week"].date(): int(row["n"]) for row in rows}


def overview_randomized_by_arm(user: Actor, *, study: Study, site_ids: Collection[int]) -> dict[int, dict[str, int]]:
    """How many of the study's participants at ``site_ids`` (the user's only) were randomized to each arm: by site
    id, arm code -> count. Only for callers that may see the allocation. One aggregate query."""
    rows = (
        AllocationSlot.objects.filter(participant__in=_overview_participants(user, study, site_ids))
        .order_by()
        .values("participant__site_id", "arm__code")
        .annotate(n=Count("pk"))
    )
    out: dict[int, dict[str, int]] = {}
    for row in rows:
        out.setdefault(row["participant__site_id"], {})[row["arm__code"]] = int(row["n"])
    return out


# --- reads for the dashboard (calendar) ---


def therapists_at_site(user: Actor, site: Site) -> QuerySet[User]:
    """The active users holding the therapist role at the site, by username (those a dosing session may book);
    none when the site lies outside the user's sites."""
    users = get_user_model().objects.filter(is_active=True, memberships__site=site, memberships__role=Role.THERAPIST)
    if site.pk not in site_ids_for(user):
        users = users.none()
    return users.distinct().only("id", "username").order_by("username")


# --- reads for the dashboard (links) ---


def participant_pks_with_email(participant_pks: Collection[int]) -> set[int]:
    """Which of these participants have an e-mail address on file: whether there is one, never the address. One
    query."""
    return set(
        ContactDetails.objects.filter(participant_id__in=list(participant_pks))
        .exclude(email="")
        .values_list("participant_id", flat=True)
    )


def staff_languages(user_ids: Collection[int]) -> dict[int, str]:
    """The language each of these users chose for the staff pages and their e-mail (settings.LANGUAGE_CODE for those
    who never chose one). One query."""
    chosen = dict(StaffProfile.objects.filter(user_id__in=list(user_ids)).values_list("user_id", "language"))
    return {pk: chosen.get(pk) or settings.LANGUAGE_CODE for pk in user_ids}


def staff_emails_by_language_at(site_id: int, roles: set[str] | frozenset[str]) -> dict[str, list[str]]:
    """``staff_emails_at`` grouped by each person's language (settings.LANGUAGE_CODE when they never chose one):
    staff mail is written in the reader's language. One query."""
    rows = (
        StaffMembership.objects.filter(site_id=site_id, role__in=sorted(roles), user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", "user__staff_profile__language")
        .distinct()
    )
    out: dict[str, set[str]] = {}
    for email, language in rows:
        out.setdefault(language or settings.LANGUAGE_CODE, set()).add(email)
    return {language: sorted(emails) for language, emails in sorted(out.items())}


# --- reads for the dashboard (actions) ---


def sites_managed(user: Actor) -> QuerySet[Site]:
    """The user's sites where they manage participants (may create one there), with the studies each takes part in."""
    from participants.access import managed_site_ids

    return Site.objects.filter(id__in=managed_site_ids(user)).prefetch_related("studies").order_by("code")


def current_criteria_of(study: Study) -> QuerySet[EligibilityCriterion]:
    """The criteria asked now (retired ones left out), in the order they are asked."""
    return criteria_of(study).filter(retired_at__isnull=True)


# --- reads for the deployment checks (assessments: instrument texts) ---

# Participants no longer asked anything: a study whose participants are all in these states is not active.
_FINISHED = (
    Participant.Status.WITHDRAWN,
    Participant.Status.SCREEN_FAILED,
    Participant.Status.COMPLETED,
    Participant.Status.LOST_TO_FOLLOW_UP,
)


def studies_active_with_languages() -> list[tuple[Study, set[str]]]:
    """The studies with a protocol that are active (no participant yet, or one still taking part), each with the
    languages its participants still taking part are contacted in, the site default always among them. Two
    queries."""
    studies = list(Study.objects.exclude(protocol_code="").order_by("code"))
    rows = (
        Participant.objects.filter(study__in=studies)
        .order_by()
        .values_list("study_id", "status", "contact__language")
        .distinct()
    )
    any_participant: set[int] = set()
    languages: dict[int, set[str]] = {}
    for study_id, status, language in rows:
        any_participant.add(study_id)
        if status not in _FINISHED:
            languages.setdefault(study_id, set()).add(language or settings.LANGUAGE_CODE)
    out = []
    for study in studies:
        if study.pk in any_participant and study.pk not in languages:
            continue  # every participant has finished
        out.append((study, languages.get(study.pk, set()) | {settings.LANGUAGE_CODE}))
    return out


# --- demographics ---


def demographic_form_row_latest(code: str = FORM_CODE) -> DemographicFormVersion | None:
    """The latest loaded version of a demographic form (None: none loaded, the shipped file applies)."""
    return DemographicFormVersion.objects.filter(code=code).order_by("-loaded_at", "-id").first()


def demographic_form_active() -> DemographicForm:
    """The form staff fill in and exports describe: the latest loaded version, else the shipped definition."""
    row = demographic_form_row_latest()
    return parse_form(row.definition) if row is not None else shipped_form()


def demographics_of(participant: Participant) -> DemographicRecord | None:
    return DemographicRecord.objects.filter(participant=participant).first()


def demographics_at_sites(
    site_ids: Collection[int], study_ids: Collection[int] | None = None
) -> QuerySet[DemographicRecord]:
    """Demographic records of participants at these sites (and of these studies, if given); for exports."""
    qs = DemographicRecord.objects.filter(participant__site_id__in=site_ids)
    if study_ids is not None:
        qs = qs.filter(participant__study_id__in=study_ids)
    return qs


# --- reads for scheduling's blinded view ---


def arm_code_subquery(participant_ref: str) -> Subquery:
    """The arm code of the participant ``OuterRef(participant_ref)``, as a subquery for an annotation. The blinded view
    of the schedule (scheduling.blinded_view) reads it to decide what a blinded viewer sees; it is never rendered."""
    return Subquery(AllocationSlot.objects.filter(participant_id=OuterRef(participant_ref)).values("arm__code")[:1])


def site_pk_of_code(code: str) -> Subquery:
    """The id of the site ``code`` as a subquery (evaluated once, before the rows): filtering another table by it
    lets PostgreSQL read that table's (site, ...) index in order, as for a constant."""
    return Subquery(Site.objects.filter(code=code).values("pk")[:1])


def study_by_pk(pk: int) -> Study:
    return Study.objects.get(pk=pk)


# --- reads for the reminder sweep (notifications) ---


def reminder_inputs_by_participant(participant_pks: Collection[int]) -> dict[int, tuple[object, ...]]:
    """What the reminder planner reads of each participant, as plain values (one query): status, site and its time
    zone, protocol, the contact details that choose the channel, language and zone (whether an address exists,
    never the address), and the study's blinding (what blinded recipients of an escalation are told). The periodic sweep compares a digest of these with the one it planned from."""
    rows = Participant.objects.filter(pk__in=list(participant_pks)).values_list(
        "pk",
        "status",
        "site_id",
        "site__time_zone",
        "study__protocol_code",
        "contact__pk",
        "contact__preferred_channel",
        "contact__email",
        "contact__phone",
        "contact__time_zone",
        "contact__language",
        "study__blinded",
        "study__unblinded",
    )
    return {
        pk: (status, site, site_tz, protocol, contact, channel, bool(email), bool(phone), tz, language, blind, open_)
        for pk, status, site, site_tz, protocol, contact, channel, email, phone, tz, language, blind, open_ in rows
    }


def staff_inputs_by_site(site_pks: Collection[int]) -> dict[int, tuple[object, ...]]:
    """Each site's staff as the reminder planner's escalation sees them (one query): role, active, whether they have an
    e-mail address, and their language."""
    rows = (
        StaffMembership.objects.filter(site_id__in=list(site_pks))
        .order_by("site_id", "user_id", "role")
        .values_list("site_id", "user_id", "role", "user__is_active", "user__email", "user__staff_profile__language")
    )
    out: dict[int, list[object]] = {}
    for site, user, role, active, email, language in rows:
        out.setdefault(site, []).append((user, role, active, bool(email), language))
    return {site: tuple(staff) for site, staff in out.items()}
