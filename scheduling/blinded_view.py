"""The schedule as a blinded viewer sees it: arm-neutral, so that no visit, name, date or count names the arm.

A viewer is blinded at a site for a study when ``participants.access.can_see_allocation`` says no (raters and
statisticians always; everyone but the unblinded roles in a blinded study until it is unblinded). For such a viewer
each visit of a participant's plan has one *face* (``Face``), decided by the participant's protocol version alone:

- a visit every arm has in the same form (the same code, name, kind, instruments and timing, anchors included: the
  screening and baseline of both designs, every visit of arms that differ only in what is given) shows as itself;
- a visit that serves one of the protocol's declared timepoints (``scheduling.protocol.blinded_schedule``: SCREENING,
  BASELINE, PRIMARY, FOLLOW_UP ...) shows under the timepoint's neutral code and label, with the fields every arm's
  visit of it shares (kind, instruments, duration ...; where they differ, a value that is the same for every arm);
- every other visit (a waitlist arm's WAIT_END, an arm's dosing and integration sessions) is not shown at all.

Dates (target, window, booking, occurrence) are shown only for a face whose visits are due at the same time in every
arm (``scheduling.protocol.same_timing``); an undated face never enters a list ordered or filtered by date (the site's
visit list, worklists, calendars), only the participant's own schedule, after the dated visits in timepoint order.

The blind may end for a role, as the protocol declares (``blind_ends``: e.g. raters and statisticians after the
primary endpoint of a waitlist design): once the participant's visit of that timepoint is completed or missed, a viewer
whose every role at the site is among those roles sees that participant's schedule as it is.

The faces are computed per protocol version (cached in process: a stored version never changes). Lists are filtered
in SQL (``Lens.hidden``, ``Lens.undated``), so pages and counts hold only what is shown; rows read for display carry
the participant's arm and whether the blind ended as annotations (``Lens.annotate``), read inside the query and never
rendered.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import BooleanField, Case, Exists, OuterRef, Q, QuerySet, Subquery, Value, When

from participants.access import Actor, can_see_allocation, roles_at, site_ids_for
from participants.models import Participant, Study
from participants.selectors import arm_code_subquery, arm_of, studies_for, study_by_pk
from scheduling.models import ProtocolVersion, Visit
from scheduling.protocol import Arm, Protocol, VisitDef, blinded_schedule, same_timing

NO_ARM = ""  # the arm key of a participant not randomized yet (their visits are the common ones)
_ENDED = (Visit.Status.COMPLETED, Visit.Status.MISSED)
# What a face carries besides code and name: the visit fields that could differ between arms.
_SHARED_FIELDS = ("kind", "instruments", "duration_minutes", "staff_required", "overnight", "optional")
# The fields a face without dates leaves empty.
DATE_FIELDS = ("target_date", "window_start", "window_end", "scheduled_start", "scheduled_end", "occurred_at")


# The fields of a visit a page shows that a face may change.
_PRESENTED = ("code", "name", "dosing_number", *_SHARED_FIELDS, *DATE_FIELDS)


@dataclass(frozen=True)
class Face:
    """How one visit shows to a blinded viewer. ``own``: as itself (nothing about it differs between arms)."""

    code: str
    name: str
    dated: bool
    own: bool
    rank: int  # position in the protocol's neutral order (the undated ones are listed by it)
    fields: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Faces:
    """The faces of one protocol version: per arm (and NO_ARM), visit code -> Face; absent codes are not shown."""

    by_arm: Mapping[str, Mapping[str, Face]]
    # Per blind end: its roles, and per arm the visit code whose completion ends the blind.
    ends: tuple[tuple[frozenset[str], Mapping[str, str]], ...]

    def face(self, arm: str | None, code: str) -> Face | None:
        return self.by_arm.get(arm or NO_ARM, {}).get(code)

    def hidden_codes(self, arm: str) -> frozenset[str]:
        return frozenset(self._all_codes(arm)) - frozenset(self.by_arm.get(arm, {}))

    def _all_codes(self, arm: str) -> Iterable[str]:
        return self.by_arm.get(f"*{arm}", {})

    def undated_codes(self, arm: str) -> frozenset[str]:
        return frozenset(code for code, face in self.by_arm.get(arm, {}).items() if not face.dated)

    def own_codes(self) -> frozenset[str]:
        """The codes every arm shows as themselves: a visit with any other code names the arm."""
        arms = self.arms()
        if not arms:
            return frozenset()
        return (
            frozenset.intersection(
                *(frozenset(c for c, f in self.by_arm[a].items() if f.own) for a in arms if a != NO_ARM)
            )
            if [a for a in arms if a != NO_ARM]
            else frozenset(self.by_arm.get(NO_ARM, {}))
        )

    def arms(self) -> list[str]:
        return [a for a in self.by_arm if not a.startswith("*")]


def _timing(arm: Arm, code: str, depth: int = 0) -> tuple[Any, ...]:
    v = arm.visit(code)
    anchor = v.anchor_visit
    base: Any = _timing(arm, anchor, depth + 1) if anchor and anchor in arm.codes and depth < 50 else v.anchor
    return (base, v.offset_days, v.window_before_days, v.window_after_days)


def _shape(arm: Arm, v: VisitDef) -> tuple[Any, ...]:
    return (v.name, v.kind, v.instruments, v.duration_minutes, v.staff_required, v.overnight, v.optional) + (
        _timing(arm, v.code),
    )


def _value(v: VisitDef, name: str) -> Any:
    value = getattr(v, name)
    if name == "instruments":
        return [{"code": i.code, "respondent": i.respondent} for i in value]
    return str(value) if name == "kind" else value


def _shared(visits: list[VisitDef]) -> dict[str, Any]:
    """The fields of a timepoint's visits, as one value that is the same whichever arm's visit it is: the common
    value where every arm agrees; else the most demanding (longest, most staff, overnight if any) or the instruments
    every arm's visit administers."""
    out: dict[str, Any] = {}
    for name in _SHARED_FIELDS:
        values = [_value(v, name) for v in visits]
        if all(x == values[0] for x in values):
            out[name] = values[0]
        elif name == "instruments":
            common = [i for i in values[0] if all(i in other for other in values[1:])]
            out[name] = common
        elif name == "kind":
            out[name] = "assessment"
        elif name == "optional":
            out[name] = all(values)
        elif name == "overnight":
            out[name] = any(values)
        else:
            out[name] = max(values)
    return out


def protocol_faces(protocol: Protocol) -> Faces:
    schedule = blinded_schedule(protocol)
    arms = list(protocol.arms.values())
    identical: set[str] = set()
    if arms:
        for v in arms[0].visits:
            shape = _shape(arms[0], v)
            if all(v.code in a.codes and _shape(a, a.visit(v.code)) == shape for a in arms[1:]):
                identical.add(v.code)
    order = {tp.code: n for n, tp in enumerate(schedule.timepoints)}
    by_arm: dict[str, dict[str, Face]] = {}
    for arm in arms:
        faces: dict[str, Face] = {}
        for n, v in enumerate(arm.visits):
            tp = schedule.timepoint_of(arm.code, v.code)
            if v.code in identical:
                rank = order[tp.code] if tp is not None else 1000 + n
                faces[v.code] = Face(v.code, v.name, True, True, rank, {k: _value(v, k) for k in _SHARED_FIELDS})
            elif tp is not None:
                visits = [a.visit(tp.visits[a.code]) for a in arms if tp.visits.get(a.code) in a.codes]
                faces[v.code] = Face(
                    tp.code, tp.label, same_timing(protocol, tp), False, order[tp.code], _shared(visits)
                )
        by_arm[arm.code] = faces
        by_arm[f"*{arm.code}"] = {v.code: Face(v.code, v.name, True, True, 0) for v in arm.visits}
    # Before randomization a participant has only the common visits, the same in every arm.
    by_arm[NO_ARM] = {
        v.code: Face(v.code, v.name, True, True, n, {k: _value(v, k) for k in _SHARED_FIELDS})
        for n, v in enumerate(protocol.common_visits)
    }
    ends = tuple(
        (frozenset(end.roles), {a: code for a, code in tp.visits.items()})
        for end in schedule.blind_ends
        if (tp := schedule.timepoint(end.after)) is not None
    )
    return Faces(by_arm=by_arm, ends=ends)


_faces: dict[tuple[int, str], Faces] = {}


def _faces_of_version(pk: int, code: str, version: ProtocolVersion | None = None) -> Faces:
    # A stored version never changes: its faces are computed once per process (keyed with the code, as
    # ProtocolVersion.protocol() caches, so that a pk reused by a rolled-back test cannot serve another protocol).
    key = (pk, code)
    if key not in _faces:
        _faces[key] = protocol_faces((version or ProtocolVersion.objects.get(pk=pk)).protocol())
    return _faces[key]


def faces_of(version: ProtocolVersion) -> Faces:
    return _faces_of_version(version.pk, version.code, version)


def _arm_code() -> Subquery:
    return arm_code_subquery("participant_id")


def _ended(version_pk: int, arm: str, code: str) -> Q:
    done = Visit.objects.filter(participant_id=OuterRef("participant_id"), code=code, status__in=_ENDED)
    return Q(protocol_version_id=version_pk, participant__allocation__arm__code=arm) & Q(Exists(done))


@dataclass
class _Scope:
    """One (study, sites) pair where the viewer is blinded, with the blind ends that apply to the viewer there."""

    study: Study
    site_ids: list[int]
    versions: list[ProtocolVersion]
    ends_by_site: dict[int, list[Mapping[str, str]]]


class Lens:
    """One viewer's view of schedules. Reads a few rows per study the viewer sees (the study, its protocol
    versions), once, whatever the number of visits."""

    def __init__(self, user: Actor) -> None:
        self.user = user
        self._scopes: list[_Scope] | None = None
        self._blinded: dict[tuple[int, int], bool] = {}
        self._studies: dict[int, Study] = {}  # every study the viewer sees, read with the scopes
        self._versions: dict[int, ProtocolVersion] = {}  # the protocol versions of the blinded ones

    # --- which viewers and where ---

    def blinded_at(self, site_id: int, study: Study) -> bool:
        key = (site_id, study.pk)
        if key not in self._blinded:
            self._blinded[key] = not can_see_allocation(self.user, site_id=site_id, study=study)
        return self._blinded[key]

    def _ends(self, site_id: int, faces: Faces) -> list[Mapping[str, str]]:
        held = set(roles_at(self.user, site_id))
        return [visits for roles, visits in faces.ends if held and held <= roles]

    def scopes(self) -> list[_Scope]:
        """The studies and sites where the viewer is blinded, with their protocol versions: two queries (the
        studies, the versions of all of them), whatever their number."""
        if self._scopes is None:
            site_ids = sorted(site_ids_for(self.user))
            blinded: list[tuple[Study, list[int]]] = []
            for study in studies_for(self.user):
                self._studies[study.pk] = study
                sites = [sid for sid in site_ids if self.blinded_at(sid, study)]
                if sites:
                    blinded.append((study, sites))
            versions: dict[str, list[ProtocolVersion]] = {}
            if blinded:
                # One query whenever the viewer is blinded somewhere (a study without a protocol asks for '').
                codes = sorted({study.protocol_code for study, _ in blinded})
                for version in ProtocolVersion.objects.filter(code__in=codes).order_by("code", "version"):
                    versions.setdefault(version.code, []).append(version)
                    self._versions[version.pk] = version
            scopes = []
            for study, sites in blinded:
                mine = versions.get(study.protocol_code, [])
                ends = {sid: [e for v in mine for e in self._ends(sid, faces_of(v))] for sid in sites}
                scopes.append(_Scope(study, sites, mine, ends))
            self._scopes = scopes
        return self._scopes

    def any_blinded(self) -> bool:
        return bool(self.scopes())

    # --- conditions for lists ---

    def _condition(self, pick: str, study_id: int | None = None) -> Q | None:
        """The visits hidden (``pick`` "hidden") or left out of date-ordered lists ("not_listed"), in every study
        or in ``study_id`` only; None when there are none."""
        out: Q | None = None
        for scope in self.scopes():
            if study_id is not None and scope.study.pk != study_id:
                continue
            for version in scope.versions:
                faces = faces_of(version)
                arms: Q | None = None
                for arm in faces.arms():
                    codes = faces.hidden_codes(arm)
                    if pick != "hidden":
                        codes |= faces.undated_codes(arm)
                    if codes:
                        q = Q(participant__allocation__arm__code=arm, code__in=sorted(codes))
                        arms = q if arms is None else arms | q
                if arms is None:
                    continue
                where = Q(study_id=scope.study.pk, site_id__in=scope.site_ids, protocol_version_id=version.pk)
                where &= Q(unscheduled=False) & arms
                for sid, ends in scope.ends_by_site.items():
                    for end in ends:
                        for arm, code in end.items():
                            where &= ~(Q(site_id=sid) & _ended(version.pk, arm, code))
                out = where if out is None else out | where
        return out

    def not_listed_in(self, study_id: int) -> Q | None:
        """``not_listed`` for one study; None when it leaves out nothing there (so no query need ask)."""
        return self._condition("not_listed", study_id)

    def hidden(self) -> Q:
        """The visits the viewer may not see at all."""
        return self._condition("hidden") or Q(pk__in=[])

    def not_listed(self) -> Q:
        """The visits a list ordered or filtered by date leaves out: the hidden ones and those shown without dates."""
        return self._condition("not_listed") or Q(pk__in=[])

    def unlisted_ids(self) -> QuerySet[Visit, Any]:
        """The ids of the visits ``not_listed`` names, as a subquery (for another app's rows about visits)."""
        return Visit.objects.filter(self.not_listed()).values("pk")

    def may_hide(self, visit: Visit) -> bool:
        """Could ``hidden`` name this visit (read with its participant's study and its protocol version)? False is
        certain and costs no query: the viewer is not blinded at the visit's site for its study, or the visit is
        unscheduled or outside any plan, or no arm of its protocol version hides its code. True: ask ``shown``."""
        if visit.unscheduled or visit.protocol_version_id is None:
            return False
        participant = visit.participant
        if visit.study_id != participant.study_id:
            return True  # not the participant's study as read: let the query decide
        if not self.blinded_at(visit.site_id, participant.study):
            return False
        version = visit.protocol_version
        assert version is not None
        faces = faces_of(version)
        return any(visit.code in faces.hidden_codes(arm) for arm in faces.arms())

    def shown(self, qs: QuerySet[Visit]) -> QuerySet[Visit]:
        return qs.exclude(self.hidden()) if self.any_blinded() else qs

    def listed(self, qs: QuerySet[Visit]) -> QuerySet[Visit]:
        return qs.exclude(self.not_listed()) if self.any_blinded() else qs

    # --- rows for display ---

    def annotate(self, qs: QuerySet[Visit]) -> QuerySet[Visit]:
        """The participant's arm and whether the blind ended for the viewer, for ``face`` (read, never rendered)."""
        if not self.any_blinded():
            return qs
        open_ = Q(pk__in=[])
        for scope in self.scopes():
            for version in scope.versions:
                for sid, ends in scope.ends_by_site.items():
                    for end in ends:
                        for arm, code in end.items():
                            open_ |= Q(site_id=sid) & _ended(version.pk, arm, code)
        return qs.annotate(
            blind_arm=_arm_code(),
            blind_open=Case(When(open_, then=Value(True)), default=Value(False), output_field=BooleanField()),
        )

    def face(self, visit: Visit) -> Face | None:
        """How ``visit`` shows: None when as itself (the viewer is not blinded there, or the visit is outside any
        plan); else its Face (``own`` when it is shown as itself), or ``HIDDEN``."""
        # The study and protocol version as read with the scopes: no query per visit, whatever columns it was read
        # with (a list's rows carry their code, site, study, version and whether they are unscheduled).
        self.scopes()
        study = self._studies.get(visit.study_id) or study_by_pk(visit.study_id)
        if not self.blinded_at(visit.site_id, study) or visit.unscheduled or visit.protocol_version_id is None:
            return None
        version = self._versions.get(visit.protocol_version_id)
        if version is not None:
            faces = faces_of(version)
        else:
            code = ProtocolVersion.objects.values_list("code", flat=True).get(pk=visit.protocol_version_id)
            faces = _faces_of_version(visit.protocol_version_id, code)
        if visit.code in faces.own_codes():
            return None  # shown as itself in every arm: no need to know the arm
        row: Any = visit  # the annotations ``annotate`` adds, or read now for a visit read without them
        if not hasattr(row, "blind_arm"):
            fields = ("blind_arm", "blind_open")  # annotations, which the model's type does not know
            annotated: Any = self.annotate(Visit.objects.filter(pk=visit.pk)).values(*fields).first()
            row.blind_arm = annotated["blind_arm"] if annotated else None
            row.blind_open = bool(annotated and annotated["blind_open"])
        if row.blind_open:
            return None
        return faces.face(row.blind_arm, visit.code) or HIDDEN

    def visible(self, visit: Visit) -> bool:
        return self.face(visit) is not HIDDEN

    def render(self, visit: Visit, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` (a visit's fields by name) as the viewer may see them."""
        face = self.face(visit)
        if face is None or face is HIDDEN:
            return data
        data = dict(data)
        if not face.own:
            data["code"], data["name"] = face.code, face.name
            for name, value in face.fields.items():
                if name in data:
                    data[name] = value
            if "dosing_number" in data:
                data["dosing_number"] = None
        if not face.dated:
            for name in DATE_FIELDS:
                if name in data:
                    data[name] = None
        return data

    def present(self, visits: Iterable[Visit]) -> list[Visit]:
        """The visits the viewer may see, each as it shows to them, for pages: a visit under a neutral face is a
        copy carrying the face's code, name and fields (and no dates when the face has none), never saved."""
        out = []
        for visit in visits:
            face = self.face(visit)
            if face is HIDDEN:
                continue
            if face is None or (face.own and face.dated):
                out.append(visit)
                continue
            shown = copy.copy(visit)
            for name, value in self.render(visit, {n: getattr(visit, n) for n in _PRESENTED}).items():
                setattr(shown, name, value)
            out.append(shown)
        return out

    def order(self, visits: Iterable[Visit]) -> list[Visit]:
        """A participant's visits in the order the viewer sees them: those with dates by target date, then the
        undated ones in the protocol's neutral order."""
        rows = list(visits)
        faces = {v.pk: self.face(v) for v in rows}
        dated = [v for v in rows if (f := faces[v.pk]) is None or (f is not HIDDEN and f.dated)]
        undated = [v for v in rows if (f := faces[v.pk]) is not None and f is not HIDDEN and not f.dated]
        undated.sort(key=lambda v: (faces[v.pk].rank, v.pk))  # type: ignore[union-attr]
        return dated + undated


HIDDEN = Face("", "", False, False, -1)


def neutral_columns(protocol: Protocol) -> list[tuple[str, str, frozenset[str]]]:
    """The schedule's columns as a blinded viewer sees them, in the protocol's neutral order: each face's code and
    name, with the visit codes (of any arm) that show as it."""
    faces = protocol_faces(protocol)
    found: dict[str, tuple[int, int, str, set[str]]] = {}
    n = 0
    for arm in faces.arms():
        for code, face in faces.by_arm[arm].items():
            n += 1
            rank, first, name, sources = found.get(face.code, (face.rank, n, face.name, set()))
            sources.add(code)
            found[face.code] = (rank, first, name, sources)
    ordered = sorted(found.items(), key=lambda item: (item[1][0], item[1][1]))
    return [(code, name, frozenset(sources)) for code, (_rank, _first, name, sources) in ordered]


def blinded_codes(participant: Participant, visits: Iterable[Visit]) -> dict[int, str]:
    """For messages to blinded staff about the participant's visits (a coordinator's escalation): visit id -> the
    code their schedule shows, for the visits it lists with dates; the others are absent (their recipients are not
    told of them). No blind end applies (it is declared for raters and statisticians, who get no such messages). Two
    queries: the arm and the protocol versions."""
    rows = list(visits)
    planned = [v for v in rows if not v.unscheduled and v.protocol_version_id is not None]
    out = {v.pk: v.code for v in rows if v.unscheduled or v.protocol_version_id is None}
    if not planned:
        return out
    arm = arm_of(participant)
    codes = dict(
        ProtocolVersion.objects.filter(pk__in={v.protocol_version_id for v in planned}).values_list("pk", "code")
    )
    for v in planned:
        assert v.protocol_version_id is not None
        face = _faces_of_version(v.protocol_version_id, codes[v.protocol_version_id]).face(
            arm.code if arm is not None else None, v.code
        )
        if face is not None and face.dated:
            out[v.pk] = face.code
    return out


def unlisted_visit_ids(user: Actor, participant: Participant) -> list[int] | None:
    """The ids of the participant's visits whose records a blinded viewer's history leaves out (those the view hides
    and those it shows without dates: when something happened at them would tell the time); None when the viewer is
    not blinded for this participant."""
    lens = Lens(user)
    if not lens.blinded_at(participant.site_id, participant.study):
        return None
    condition = lens.not_listed_in(participant.study_id)
    if condition is None:
        return []
    return sorted(Visit.objects.filter(participant=participant).filter(condition).values_list("pk", flat=True))


def history_hidden(user: Actor, participant: Participant) -> Q | None:
    """The audit rows of the participant's history about visits the viewer's history leaves out."""
    ids = unlisted_visit_ids(user, participant)
    return Q(entity_type="visit", entity_id__in=[str(pk) for pk in ids]) if ids else None
