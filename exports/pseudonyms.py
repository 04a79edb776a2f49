"""Pseudonymous staff ids for clustered models: a therapist dyad (the set of therapists booked on a session) and a
rater (the member of staff who entered a clinician-rated scale), stable within a study and never a name or username.

An id is a keyed hash (HMAC-SHA-256 under settings.EXPORT_PSEUDONYM_KEY) of the study's code and the staff user ids,
cut to 10 hex digits: the same dyad or rater gets the same id in every export of a study; the same person gets
unrelated ids in two studies, so ids cannot be joined across studies; without the key an id cannot be turned back
into a person (guessing user ids does not help). 40 bits keep collisions negligible for a study's few dozen staff.

The mapping is computed here in Python, once per export, for the keys in scope; the SQL path receives it as a JSON
literal (the key never reaches the database or its logs), so both paths produce the same ids.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from django.conf import settings

from assessments.selectors import raters_at_sites
from participants.selectors import studies_at_sites
from scheduling.protocol import VisitKind
from scheduling.selectors import visit_staff_at_sites

DYAD, RATER = "D", "R"
_HEX = 10


def key_text(kind: str, study_id: int, user_ids: Iterable[int]) -> str:
    """The lookup key of a dyad or rater in an export's mapping (the SQL path builds the same text)."""
    return f"{kind}:{study_id}:{','.join(str(i) for i in sorted(user_ids))}"


def pseudonym(kind: str, study_code: str, user_ids: Iterable[int]) -> str:
    members = ",".join(str(i) for i in sorted(set(user_ids)))
    message = f"trialsite staff pseudonym|{kind}|{study_code}|{members}".encode()
    digest = hmac.new(str(settings.EXPORT_PSEUDONYM_KEY).encode(), message, hashlib.sha256).hexdigest()
    return f"{kind}-{digest[:_HEX]}"


@dataclass(frozen=True)
class StaffIds:
    """The pseudonyms an export needs: by lookup key (:func:`key_text`), and each participant's treating dyad."""

    by_key: dict[str, str] = field(default_factory=dict)
    treating_dyad: dict[int, str] = field(default_factory=dict)  # participant pk -> dyad id
    visit_dyad: dict[int, str] = field(default_factory=dict)  # therapy visit id -> dyad id

    def rater(self, study_id: int, user_id: int | None) -> str | None:
        return None if user_id is None else self.by_key.get(key_text(RATER, study_id, [user_id]))


# Visits whose booked staff form a therapist dyad (a rater booked on an assessment visit is not one).
THERAPY_KINDS = (VisitKind.PREPARATION.value, VisitKind.DOSING.value, VisitKind.INTEGRATION.value)


def staff_ids(site_ids: Collection[int], study_ids: Collection[int] | None) -> StaffIds:
    """Every dyad and rater pseudonym of participants at these sites: three queries, whatever the number of rows.

    A participant's treating dyad is the dyad of their first dosing session that has staff booked (by dosing number):
    dyads rarely change within a treatment, and a clustered model needs one per participant."""
    codes = dict(studies_at_sites(site_ids).values_list("id", "code"))
    members: dict[int, list[int]] = defaultdict(list)
    visit_info: dict[int, tuple[int, int, str, int | None]] = {}
    # Unordered (``order_by()``): the order does not matter here, and a model's default ordering would make the
    # raters' DISTINCT one row per questionnaire rather than per (study, rater).
    for visit_id, participant_pk, study_id, kind, dosing_number, user_id in visit_staff_at_sites(
        site_ids, study_ids
    ).order_by():
        members[visit_id].append(user_id)
        visit_info[visit_id] = (participant_pk, study_id, kind, dosing_number)
    by_key: dict[str, str] = {}
    visit_dyad: dict[int, str] = {}
    first_dosing: dict[int, tuple[tuple[bool, int, int], str]] = {}
    for visit_id, users in members.items():
        participant_pk, study_id, kind, dosing_number = visit_info[visit_id]
        if kind not in THERAPY_KINDS:
            continue
        key = key_text(DYAD, study_id, users)
        if key not in by_key:  # a dyad books many sessions: hashed once
            by_key[key] = pseudonym(DYAD, codes.get(study_id, str(study_id)), users)
        visit_dyad[visit_id] = by_key[key]
        if kind == VisitKind.DOSING.value:
            order = (dosing_number is None, dosing_number or 0, visit_id)
            if participant_pk not in first_dosing or order < first_dosing[participant_pk][0]:
                first_dosing[participant_pk] = (order, by_key[key])
    for study_id, user_id in raters_at_sites(site_ids, study_ids).order_by():
        by_key[key_text(RATER, study_id, [user_id])] = pseudonym(RATER, codes.get(study_id, str(study_id)), [user_id])
    return StaffIds(by_key, {pk: dyad for pk, (_order, dyad) in first_dosing.items()}, visit_dyad)
