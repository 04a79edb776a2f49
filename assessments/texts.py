"""The wording a participant is shown, read: which text pack is in force for an instrument and a language, and which
self-report questionnaires are held because none is (writes: ``assessments.services.texts``). Nothing here writes.

A participant never sees a neutral label ("Item 1"): a self-report administration whose instrument has no pack in the
participant's language is *held*. It is not offered on the participant's link, no link is issued for it alone, no
reminder is planned for it, and staff see "validated text missing" on the dashboard and through the API. Being held is
a fact of the library and the participant's language, computed at read time: loading a pack releases every
administration it covers without a write to them.

An administration answered under a pack is pinned to it (``Administration.text_pack``, set when the first answer is
saved), so the wording never changes under a participant half-way through; a newer pack serves the questionnaires
not started yet.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from assessments.definitions import Instrument
from assessments.library import Library, instrument_get, unless_read
from assessments.models import Administration, InstrumentText
from assessments.text_packs import TextPack, has_own_text, pack_from_definition, parse_text_pack
from assessments.windows import SELF
from participants import access
from participants.access import Actor
from trialsite.roles import Role

HOLD_REASON = "validated_text_missing"
_parsed: dict[tuple[int, str, str, str], TextPack] = {}
# The contents of the packs this process has read but not parsed yet (not in force when met).
_contents: dict[tuple[int, str, str, str], object] = {}


def site_languages() -> list[str]:
    """The languages a participant may be contacted in (settings.LANGUAGES): the languages a pack may declare."""
    return [code for code, _name in settings.LANGUAGES]


def language_of(participant: object) -> str:
    """A participant's language: their contact's, else the site default. Reads ``participant.contact`` (select it
    with the participant)."""
    contact = getattr(participant, "contact", None)
    return (
        (getattr(contact, "language", "") or settings.LANGUAGE_CODE) if contact is not None else settings.LANGUAGE_CODE
    )


def may_load_instrument_texts(by: Actor) -> bool:
    """Packs serve every site, so they are loaded by an administrator (a superuser, or a site's administrator) or by
    the system (a command, the demo seed)."""
    return access.may_configure(by) or bool(access.site_ids_with(by, {Role.ADMIN}))


def _placeholders_allowed() -> bool:
    # The demo's stand-in packs are honoured only where they may be loaded: never in production.
    return bool(settings.DEBUG)


# The light columns of a stored pack (its content, a large JSON document, is read once per process: rows are immutable).
_ROW = ("pk", "instrument_code", "instrument_version", "language", "version", "placeholder")
_RowKey = tuple[int, str, str, str, str, bool]


def _parse(
    key: tuple[int, str, str, str], content: object, lookup: Callable[[str, str | None], Instrument]
) -> TextPack:
    pack = parse_text_pack(content, instrument_lookup=lookup, languages=[key[2]], allow_placeholder=True)
    _parsed[key] = TextPack(**{**pack.__dict__, "pk": key[0]})
    return _parsed[key]


def pack_of_row(row: InstrumentText, instrument: Instrument | None = None) -> TextPack:
    """The parsed pack of a stored row (rows are immutable, so the parse is cached per row)."""
    key = (row.pk, row.instrument_code, row.language, row.version)
    if key not in _parsed:
        _parse(key, row.content, _lookup(instrument, instrument_get))
    return _parsed[key]


def _lookup(
    instrument: Instrument | None, fallback: Callable[[str, str | None], Instrument]
) -> Callable[[str, str | None], Instrument]:
    return lambda code, version: (
        instrument if instrument is not None and instrument.version == version else fallback(code, version)
    )


_own_packs: dict[int, tuple[Instrument, TextPack]] = {}


def _own_pack(instrument: Instrument) -> TextPack:
    # Parsed definitions are cached per process, so their own wording is built once per definition.
    held = _own_packs.get(id(instrument))
    if held is None or held[0] is not instrument:
        held = _own_packs[id(instrument)] = (instrument, pack_from_definition(instrument))
    return held[1]


class Wording:
    """The packs as they stand, read once: one query for the stored packs (their light columns; a pack's content is
    read once per process), with the library read once (``library.Library``). For a request that shows several
    questionnaires, so that none costs a query; read a new one for each request (a site may load a pack at any time,
    and a participant must see it on their next page)."""

    def __init__(self, library: Library | None = None) -> None:
        self.library = library if library is not None else Library()
        self._rows: dict[int, _RowKey] = {}
        new_content = unless_read("content", [key[0] for key in _parsed] + [key[0] for key in _contents])
        rows = InstrumentText.objects.order_by("loaded_at", "id").annotate(new_content=new_content)
        for *row, content in rows.values_list(*_ROW, "new_content"):
            key = (row[0], row[1], row[3], row[4])
            if content is not None and key not in _parsed:
                _contents[key] = content
            self._rows[row[0]] = tuple(row)
        self._in_force: dict[tuple[str, str], TextPack] | None = None

    def _packs(self, rows: list[tuple[_RowKey, Instrument | None]]) -> list[TextPack]:
        """The parsed packs of these rows (a row met for the first time came with its content)."""
        keys = [(row[0], row[1], row[3], row[4]) for row, _inst in rows]
        missing = [key[0] for key in keys if key not in _parsed and key not in _contents]
        if missing:  # a pk met before under another pack (a rolled-back test's row): read it
            for pk, code, language, version, content in InstrumentText.objects.filter(pk__in=missing).values_list(
                "pk", "instrument_code", "language", "version", "content"
            ):
                _contents[(pk, code, language, version)] = content
        out = []
        for key, (_row, instrument) in zip(keys, rows, strict=True):
            pack = _parsed.get(key)
            if pack is None:
                pack = _parse(key, _contents.pop(key), _lookup(instrument, self.library.instrument))
            out.append(pack)
        return out

    def in_force(self) -> dict[tuple[str, str], TextPack]:
        """As ``packs_in_force``."""
        if self._in_force is None:
            instruments = {inst.code: inst for inst in self.library.instruments()}
            out: dict[tuple[str, str], TextPack] = {}
            for inst in instruments.values():
                if has_own_text(inst):
                    out[(inst.code, "en")] = _own_pack(inst)
            placeholders = _placeholders_allowed()
            chosen: dict[tuple[str, str], tuple[_RowKey, Instrument | None]] = {}
            for row in self._rows.values():  # in load order: a later pack replaces an earlier one
                _pk, code, version, language, _v, placeholder = row
                current = instruments.get(code)
                if current is None or version != current.version or (placeholder and not placeholders):
                    continue
                chosen[(code, language)] = (row, current)
            for key, pack in zip(chosen, self._packs(list(chosen.values())), strict=True):
                out[key] = pack
            self._in_force = out
        return self._in_force

    def available(self) -> set[tuple[str, str]]:
        """As ``text_available``."""
        return set(self.in_force())

    def pack_for(self, administration: Administration, language: str) -> TextPack | None:
        """As ``pack_for``."""
        if administration.text_pack_id is not None:
            return self._packs([(self._rows[administration.text_pack_id], None)])[0]
        return self.in_force().get((administration.instrument_code, language))

    def participant_wording(self, administration: Administration, language: str) -> TextPack:
        """As ``participant_wording``."""
        pack = self.pack_for(administration, language)
        if pack is None:
            raise LookupError(f"{administration.instrument_code} has no wording in '{language}': it is held")
        return pack


def packs_in_force() -> dict[tuple[str, str], TextPack]:
    """The pack shown for each (instrument code, language) to a questionnaire not yet started: the latest loaded pack
    of the instrument's current version, else the wording of a verbatim or site-supplied definition (English). Two
    queries whatever the number of packs (and, the first time a process meets a pack or a definition, one to read
    them)."""
    return Wording().in_force()


def text_available() -> set[tuple[str, str]]:
    """The (instrument code, language) pairs a participant can be shown."""
    return set(packs_in_force())


def validated_text_available() -> set[tuple[str, str]]:
    """As ``text_available``, without the demo's placeholders: what counts for the deployment check."""
    return {key for key, pack in packs_in_force().items() if not pack.placeholder}


def pack_for(administration: Administration, language: str) -> TextPack | None:
    """The wording of ``administration`` for a participant in ``language``: its pinned pack, else the pack in force;
    None when it has none (it is held)."""
    if administration.text_pack_id is not None:
        # One query: the pinned pack's row, with its content only if this process has not parsed it.
        new_content = unless_read("content", [key[0] for key in _parsed])
        *row, content = (
            InstrumentText.objects.annotate(new_content=new_content)
            .values_list(*_ROW, "new_content")
            .get(pk=administration.text_pack_id)
        )
        key = (row[0], row[1], row[3], row[4])
        if key in _parsed:
            return _parsed[key]
        if content is None:
            content = InstrumentText.objects.values_list("content", flat=True).get(pk=row[0])
        return _parse(key, content, _lookup(None, instrument_get))
    return packs_in_force().get((administration.instrument_code, language))


def is_held(administration: Administration, language: str, available: Collection[tuple[str, str]]) -> bool:
    """Is ``administration`` a self-report questionnaire with no wording in ``language``? ``available`` is
    ``text_available()``, read once for many rows."""
    return (
        administration.respondent == SELF
        and administration.text_pack_id is None
        and (administration.instrument_code, language) not in available
    )


def held_q(available: Iterable[tuple[str, str]]) -> Q:
    """``is_held`` as a filter on administrations (the participant's language joined from their contact)."""
    shown = Q(text_pack__isnull=False)
    for code, language in available:
        shown |= Q(instrument_code=code, participant__contact__language=language)
        if language == settings.LANGUAGE_CODE:
            shown |= Q(instrument_code=code, participant__contact__isnull=True)
    return Q(respondent=SELF) & ~shown


def participant_wording(administration: Administration, language: str) -> TextPack:
    """The wording to show a participant for ``administration`` (the participant pages call this). A held
    administration is never offered (``selectors.link_pending``), so reaching one here is a programming error."""
    pack = pack_for(administration, language)
    if pack is None:
        raise LookupError(f"{administration.instrument_code} has no wording in '{language}': it is held")
    return pack


def text_packs_loaded() -> list[InstrumentText]:
    """Every loaded pack, newest first, with who loaded it (one query): superseded ones stay listed."""
    return list(InstrumentText.objects.select_related("loaded_by").order_by("-loaded_at", "-id"))


@dataclass(frozen=True)
class Coverage:
    """Whether a self-report instrument can be shown in a language, and with which wording."""

    instrument: str
    version: str
    language: str
    pack: TextPack | None

    @property
    def missing(self) -> bool:
        return self.pack is None


def text_coverage() -> list[Coverage]:
    """For each self-report instrument (current version) and each site language, the pack in force or none (then its
    questionnaires are held for participants in that language). Two queries."""
    wording = Wording()
    packs = wording.in_force()
    return [
        Coverage(inst.code, inst.version, language, packs.get((inst.code, language)))
        for inst in wording.library.instruments()
        if inst.respondent == SELF
        for language in site_languages()
    ]
